"""Canonical motion -> pose tracks on the user's armature, through the vendored retarget package.

The one bridge between the add-on and retarget: the skeleton from the armature
(armature_io.skeleton_from_armature), the mapping (mapping_ops.armature_mapping: the panel's
list, else found automatically), the transfer with the optional foot lock, checked against the
motion before any key is written, and the resampling to the scene's fps; and the way back (an
action MoSa did not make, as canonical motion the engine can edit).
"""

from __future__ import annotations

from dataclasses import replace

import bpy
import numpy as np

from . import armature_io
from .mapping_ops import armature_mapping
from .tracks import PoseTracks
from .vendored import canonical, inverse, plausibility, resample, transfer


def motion_to_tracks(
    obj: bpy.types.Object,
    motion: dict,
    scene_fps: float,
    start_frame: int,
    foot_lock: bool = True,
    in_place: bool = False,
    span: tuple[int, int] | None = None,
    on_rig: bool = False,
    placed_from: int = 0,
) -> PoseTracks:
    """Pose-basis rotations for every mapped bone and the root's location, one key per scene frame."""
    steps = motion_to_tracks_steps(obj, motion, scene_fps, start_frame, foot_lock, in_place, span, on_rig, placed_from)
    return armature_io.run_steps(steps)


def motion_to_tracks_steps(
    obj: bpy.types.Object,
    motion: dict,
    scene_fps: float,
    start_frame: int,
    foot_lock: bool = True,
    in_place: bool = False,
    span: tuple[int, int] | None = None,
    on_rig: bool = False,
    placed_from: int = 0,
):
    """motion_to_tracks as a generator of slices: yields its progress (0..1) after each stage
    (mapping, transfer, the check, the constraint solve's slices) and returns the PoseTracks.
    `span`: the scene frames that will be used (Regenerate Range); the constraint solve then
    corrects only the engine frames around them, and the frames outside keep plain values.
    `on_rig`: the motion is in this rig's own canonical space (read back by action_to_motion, or
    made from such a motion), so it goes back where it is, not onto the rig's rest place.
    `placed_from`: the engine frame where a motion already on the rig begins (Extend Before: the
    source after the lead-in), whose placement it keeps (transfer.transfer)."""
    skeleton, mapping = armature_mapping(obj)
    skeleton = mapping.moving_part(skeleton)  # the rest never moves a key
    yield 0.1
    posed = transfer.transfer(
        motion,
        skeleton,
        mapping,
        foot_lock=foot_lock,
        in_place=in_place,
        ground=not on_rig,
        align=not on_rig,
        placed_from=placed_from,
    )
    yield 0.3
    frames = None if span is None else engine_frames(span, start_frame, scene_fps, posed.fps, posed.frames)
    written = (
        posed
        if frames is None
        else replace(
            posed,
            rotations={bone: q[frames] for bone, q in posed.rotations.items()},
            root_location=posed.root_location[frames],
            contacts=None,
        )
    )
    plausibility.check(skeleton, mapping, written)  # before any key: a body that comes apart (where keyed) is refused
    yield 0.4
    posed, _ = yield from armature_io.scaled(
        armature_io.follow_constraints_steps(obj, skeleton, posed, frames), 0.4, 0.5
    )
    posed = resample.resample(posed, scene_fps)
    frames = start_frame + np.arange(len(posed.root_location))
    return PoseTracks(frames=frames, rotations=dict(posed.rotations), locations={posed.root_bone: posed.root_location})


def engine_frames(span: tuple[int, int], start_frame: int, scene_fps: float, fps: float, count: int) -> np.ndarray:
    """The engine frames (at `fps`) that scene frames span[0]..span[1] (at scene_fps, from
    start_frame) are interpolated from, one more on each side."""
    first, last = ((frame - start_frame) / scene_fps * fps for frame in span)
    return np.arange(max(0, int(np.floor(first)) - 1), min(count, int(np.ceil(last)) + 2))


def action_to_motion(obj: bpy.types.Object, frames: list[int], scene_fps: float) -> dict:
    """The armature's animation over `frames` (the active action, evaluated) as a canonical
    motion dict at the engine's 20 fps: inverse transfer through the same mapping."""
    skeleton, mapping = armature_mapping(obj)
    heads, tails = armature_io.read_posed_bones(obj, skeleton, frames)
    motion = inverse.motion_from_bones(skeleton, mapping, heads, tails, fps=scene_fps)
    return resample.resample_motion(motion, canonical.FPS).to_dict()
