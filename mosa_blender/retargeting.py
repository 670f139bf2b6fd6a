"""Canonical motion -> pose tracks on the user's armature, through the vendored retarget package.

The one bridge between the add-on and retarget: the skeleton from the armature
(armature_io.skeleton_from_armature), the mapping (mapping_ops.armature_mapping: the panel's
list, else found automatically), the transfer with the optional foot lock, checked against the
motion before any key is written, and the resampling to the scene's fps; and the way back (an
action MoSa did not make, as canonical motion the engine can edit).
"""
from __future__ import annotations

import bpy
import numpy as np

from . import armature_io
from .mapping_ops import armature_mapping
from .tracks import PoseTracks
from .vendored import canonical, inverse, plausibility, resample, transfer


def motion_to_tracks(obj: bpy.types.Object, motion: dict, scene_fps: float, start_frame: int,
                     foot_lock: bool = True, in_place: bool = False) -> PoseTracks:
    """Pose-basis rotations for every mapped bone and the root's location, one key per scene frame."""
    skeleton, mapping = armature_mapping(obj)
    posed = transfer.transfer(motion, skeleton, mapping, foot_lock=foot_lock, in_place=in_place)
    plausibility.check(skeleton, mapping, posed)  # before any key: a body that comes apart is refused
    posed = resample.resample(armature_io.follow_constraints(obj, skeleton, posed), scene_fps)
    frames = start_frame + np.arange(len(posed.root_location))
    return PoseTracks(frames=frames, rotations=dict(posed.rotations),
                      locations={posed.root_bone: posed.root_location})


def action_to_motion(obj: bpy.types.Object, frames: list[int], scene_fps: float) -> dict:
    """The armature's animation over `frames` (the active action, evaluated) as a canonical
    motion dict at the engine's 20 fps: inverse transfer through the same mapping."""
    skeleton, mapping = armature_mapping(obj)
    heads, tails = armature_io.read_posed_bones(obj, skeleton, frames)
    motion = inverse.motion_from_bones(skeleton, mapping, heads, tails, fps=scene_fps)
    return resample.resample_motion(motion, canonical.FPS).to_dict()
