"""Write pose tracks into actions with foreach_set, and read them back by evaluating fcurves."""

from __future__ import annotations

import hashlib

import bpy
import numpy as np

from .action_compat import fcurves_for
from .tracks import PoseTracks, bone_path, flat_keys, location_path, quaternions_from, rest_rotation, rotation_path

_SELECTION = ("select_control_point", "select_left_handle", "select_right_handle")


def bake_tracks(action: bpy.types.Action, obj: bpy.types.Object, tracks: PoseTracks) -> None:
    """Key every channel of `tracks` at its frames; any keys already in that span are replaced.

    Each bone is keyed in its own rotation mode (quaternion, axis-angle or its Euler order: keys
    on another mode's channels would not play), continuous with the keys kept before the span.
    Keys outside the span keep their values, handles and interpolation: the new keys are appended
    behind the kept ones, and foreach_set rewrites the kept ones with their own values.
    """
    first, last = tracks.frames.min(), tracks.frames.max()
    fcurves = fcurves_for(action, obj)
    modes = rotation_modes(obj, tracks)
    before = {
        bone: _keyed_before(fcurves, rotation_path(bone, mode), len(rest_rotation(mode)), first)
        for bone, mode in modes.items()
    }
    for data_path, index, values in tracks.channels(modes, {bone: v for bone, v in before.items() if v is not None}):
        fcurve = fcurves.find(data_path, index=index) or fcurves.new(data_path, index=index)
        points = fcurve.keyframe_points
        inside = [point for point in points if first - 1e-4 <= point.co[0] <= last + 1e-4]
        for point in reversed(inside):
            points.remove(point, fast=True)
        kept = np.empty(2 * len(points), dtype=np.float32)
        points.foreach_get("co", kept)
        handles = _handles(points)
        selected = {name: np.empty(len(points), dtype=bool) for name in _SELECTION}
        for name, flags in selected.items():
            points.foreach_get(name, flags)
        points.add(len(tracks.frames))
        points.foreach_set("co", np.concatenate([kept, flat_keys(tracks.frames, values)]))
        for name, flags in selected.items():  # new keys come unselected: a selection is the animator's
            points.foreach_set(name, np.concatenate([flags, np.zeros(len(tracks.frames), dtype=bool)]))
        fcurve.update()
        _keep_handles(points, kept[0::2], handles)
    key_fk_switches(action, obj, tracks)


def bake_keeping_the_rest(action: bpy.types.Action, obj: bpy.types.Object, part: PoseTracks) -> None:
    """bake_tracks for `part` (one stretch of frames), each channel with the action's own values
    on the frames between the stretch and that channel's nearest keys outside it. Those frames
    were in-between keys on both sides of the stretch; keyed as they were, they play as before
    whatever the stretch now holds (on sparse keys, a blocking pass, they would follow the new keys)."""
    first, last = part.frames.min(), part.frames.max()
    modes = rotation_modes(obj, part)
    channels = [
        (rotation_path(bone, modes[bone]), PoseTracks(part.frames, rotations={bone: q}))
        for bone, q in part.rotations.items()
    ]
    channels += [
        (location_path(bone), PoseTracks(part.frames, locations={bone: p})) for bone, p in part.locations.items()
    ]
    for data_path, track in channels:
        keyed = np.array(keyed_frames(action, obj, data_path=data_path))
        before, after = keyed[keyed < first], keyed[keyed > last]
        held = np.concatenate(
            [
                np.arange(np.floor(before.max()) + 1, first) if len(before) else [],
                np.arange(last + 1, np.ceil(after.min())) if len(after) else [],
            ]
        )
        bake_tracks(action, obj, track.merged(sample_tracks(action, obj, track, held)) if len(held) else track)


def _handles(points) -> np.ndarray:
    """(n, 4) each key's left and right handle (frame, value)."""
    left, right = np.empty(2 * len(points), dtype=np.float32), np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("handle_left", left)
    points.foreach_get("handle_right", right)
    return np.concatenate([left.reshape(-1, 2), right.reshape(-1, 2)], axis=1)


def _keep_handles(points, kept_frames: np.ndarray, kept_handles: np.ndarray) -> None:
    """Put back the handles the kept keys had before new keys came beside them: automatic handles
    follow their neighbours (and with continuous acceleration, every key on the curve), which would
    change how the frames around the kept keys play. Those keys' handles become free."""
    frames = np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("co", frames)
    index = np.searchsorted(frames[0::2], kept_frames)  # update() sorted the keys; kept frames are distinct
    moved = np.flatnonzero(np.abs(_handles(points)[index] - kept_handles).max(axis=1, initial=0.0) > 0)
    for k in moved:
        point = points[int(index[k])]
        point.handle_left_type = point.handle_right_type = "FREE"
        point.handle_left, point.handle_right = kept_handles[k, :2], kept_handles[k, 2:]


def rotation_modes(obj: bpy.types.Object, tracks: PoseTracks) -> dict[str, str]:
    """bone -> the rotation mode its pose bone plays (QUATERNION, AXIS_ANGLE, or an Euler order)."""
    return {bone: obj.pose.bones[bone].rotation_mode for bone in tracks.rotations}


def _keyed_before(fcurves, data_path: str, width: int, frame: float) -> np.ndarray | None:
    """The channels' value at their last key before `frame`, or None where none is keyed before it."""
    curves = [fcurves.find(data_path, index=index) for index in range(width)]
    keyed = [
        max((p.co[0] for p in curve.keyframe_points if p.co[0] < frame - 1e-4), default=None) if curve else None
        for curve in curves
    ]
    if any(last is None for last in keyed):
        return None
    return np.array([curve.evaluate(last) for curve, last in zip(curves, keyed)])


def key_fk_switches(action: bpy.types.Action, obj: bpy.types.Object, tracks: PoseTracks) -> None:
    """Switch the limbs whose FK controls the tracks key to FK, in the action itself.

    A generated Rigify rig starts its limbs in IK (the "IK_FK" property of `<limb>_parent.L`
    is 0): FK keys would not show, and the IK targets left behind would stretch the limbs.
    """
    fcurves = fcurves_for(action, obj)
    for pose_bone in obj.pose.bones:
        limb, _, side = pose_bone.name.rpartition("_parent.")
        if "IK_FK" in pose_bone and f"{limb}_fk.{side}" in tracks.rotations:
            data_path = f'{bone_path(pose_bone.name)}["IK_FK"]'
            if fcurves.find(data_path) is None:
                fcurves.new(data_path).keyframe_points.insert(float(tracks.frames[0]), 1.0)


def sample_tracks(
    action: bpy.types.Action, obj: bpy.types.Object, like: PoseTracks, frames: np.ndarray | None = None
) -> PoseTracks:
    """The action's values on the channels of `like`, at its frames or the `frames` given (the
    rest pose where unkeyed); rotations read in each bone's own mode, as quaternions."""
    fcurves = fcurves_for(action, obj)
    frames = like.frames if frames is None else np.asarray(frames, dtype=np.float64)

    def sampled(data_path: str, rest: np.ndarray) -> np.ndarray:
        columns = []
        for index, value in enumerate(rest):
            fcurve = fcurves.find(data_path, index=index)
            columns.append([fcurve.evaluate(frame) for frame in frames] if fcurve else np.full(len(frames), value))
        return np.stack(columns, axis=1)

    return PoseTracks(
        frames=frames,
        rotations={
            bone: quaternions_from(sampled(rotation_path(bone, mode), rest_rotation(mode)), mode)
            for bone, mode in rotation_modes(obj, like).items()
        },
        locations={bone: sampled(location_path(bone), np.zeros(3)) for bone in like.locations},
    )


def keyed_frames(
    action: bpy.types.Action, obj: bpy.types.Object, selected_only: bool = False, data_path: str | None = None
) -> list[float]:
    """Frames of the action's keys (only the selected ones, or one channel's, if asked)."""
    frames = []
    for fcurve in fcurves_for(action, obj):
        if data_path is not None and fcurve.data_path != data_path:
            continue
        frames.extend(
            point.co[0] for point in fcurve.keyframe_points if point.select_control_point or not selected_only
        )
    return frames


def keyed_span(action: bpy.types.Action) -> tuple[int, int]:
    """The frames of the action's first and last key. Not `action.frame_range`: with a manual
    frame range set (a cycle's, say) that is the range, not where the keys are."""
    first, last = action.curve_frame_range
    return int(np.floor(first)), int(np.ceil(last))  # whole frames that hold every key


def keys_digest(action: bpy.types.Action, obj: bpy.types.Object) -> str:
    """A digest of every key the action holds for `obj` (frame, value, handles, interpolation) and
    of its curves' modifiers: whether its keys are still the ones they were when it was taken."""
    digest = hashlib.sha256()
    for fcurve in sorted(fcurves_for(action, obj), key=lambda curve: (curve.data_path, curve.array_index)):
        points = fcurve.keyframe_points
        digest.update(f"{fcurve.data_path}[{fcurve.array_index}]{[m.type for m in fcurve.modifiers]}".encode())
        for name, kind, width in (
            ("co", np.float32, 2),
            ("handle_left", np.float32, 2),
            ("handle_right", np.float32, 2),
            ("interpolation", np.int32, 1),
        ):
            values = np.empty(width * len(points), dtype=kind)
            points.foreach_get(name, values)
            digest.update(values.tobytes())
    return digest.hexdigest()
