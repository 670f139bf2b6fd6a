"""Canonical motion -> pose tracks on the user's armature, through the vendored retarget package.

The one bridge between the add-on and retarget: the skeleton from the armature
(armature_io.skeleton_from_armature), the mapping (stored on the armature or found
automatically), the transfer, the resampling to the scene's fps and the optional foot lock.
"""
from __future__ import annotations

from importlib import import_module

import bpy
import numpy as np

from .tracks import PoseTracks
from .vendored import retarget


def _retarget(module: str):
    try:
        return import_module(f"{retarget.__name__}.{module}")
    except ImportError as error:
        raise RuntimeError(f"retargeting is not available in this build ({error})") from error


def motion_to_tracks(obj: bpy.types.Object, motion: dict, scene_fps: float, start_frame: int,
                     foot_lock: bool = True, in_place: bool = False) -> PoseTracks:
    """Pose-basis rotations for every mapped bone and the root's location, one key per scene frame."""
    from . import armature_io

    mapping_module, transfer, resample = _retarget("mapping"), _retarget("transfer"), _retarget("resample")
    skeleton = armature_io.skeleton_from_armature(obj)
    mapping = mapping_module.auto_map(skeleton)
    if not mapping.mapped_joints():
        raise ValueError(f"no bones of '{obj.name}' map onto the human skeleton; map them by hand in the MoSa panel")
    posed = transfer.transfer(motion, skeleton, mapping, foot_lock=foot_lock, in_place=in_place)
    posed = resample.resample(posed, scene_fps)
    frames = start_frame + np.arange(len(posed.root_location))
    return PoseTracks(frames=frames, rotations=dict(posed.rotations),
                      locations={posed.root_bone: posed.root_location})
