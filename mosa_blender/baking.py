"""Write pose tracks into actions with foreach_set, and read them back by evaluating fcurves."""
from __future__ import annotations

import bpy
import numpy as np

from .action_compat import fcurves_for
from .tracks import LOCATION_PATH, ROTATION_PATH, PoseTracks, flat_keys


def bake_tracks(action: bpy.types.Action, obj: bpy.types.Object, tracks: PoseTracks) -> None:
    """Key every channel of `tracks` at its frames; any keys already in that span are replaced.

    Keys outside the span keep their values, handles and interpolation: the new keys are appended
    behind the kept ones, and foreach_set rewrites the kept ones with their own values.
    """
    first, last = tracks.frames.min(), tracks.frames.max()
    fcurves = fcurves_for(action, obj)
    for data_path, index, values in tracks.channels():
        fcurve = fcurves.find(data_path, index=index) or fcurves.new(data_path, index=index)
        points = fcurve.keyframe_points
        inside = [point for point in points if first - 1e-4 <= point.co[0] <= last + 1e-4]
        for point in reversed(inside):
            points.remove(point, fast=True)
        kept = np.empty(2 * len(points), dtype=np.float32)
        points.foreach_get("co", kept)
        points.add(len(tracks.frames))
        points.foreach_set("co", np.concatenate([kept, flat_keys(tracks.frames, values)]))
        fcurve.update()
    key_fk_switches(action, obj, tracks)


def key_fk_switches(action: bpy.types.Action, obj: bpy.types.Object, tracks: PoseTracks) -> None:
    """Switch the limbs whose FK controls the tracks key to FK, in the action itself.

    A generated Rigify rig starts its limbs in IK (the "IK_FK" property of `<limb>_parent.L`
    is 0): FK keys would not show, and the IK targets left behind would stretch the limbs.
    """
    fcurves = fcurves_for(action, obj)
    for pose_bone in obj.pose.bones:
        limb, _, side = pose_bone.name.rpartition("_parent.")
        if "IK_FK" in pose_bone and f"{limb}_fk.{side}" in tracks.rotations:
            data_path = f'pose.bones["{pose_bone.name}"]["IK_FK"]'
            if fcurves.find(data_path) is None:
                fcurves.new(data_path).keyframe_points.insert(float(tracks.frames[0]), 1.0)


def sample_tracks(action: bpy.types.Action, obj: bpy.types.Object, like: PoseTracks,
                  frames: np.ndarray | None = None) -> PoseTracks:
    """The action's values on the channels of `like`, at its frames or the `frames` given (the
    rest pose where unkeyed)."""
    fcurves = fcurves_for(action, obj)
    frames = like.frames if frames is None else np.asarray(frames, dtype=np.float64)
    rest = {"rotation": np.array([1.0, 0.0, 0.0, 0.0]), "location": np.zeros(3)}

    def sampled(data_path: str, kind: str, width: int) -> np.ndarray:
        columns = []
        for index in range(width):
            fcurve = fcurves.find(data_path, index=index)
            columns.append([fcurve.evaluate(frame) for frame in frames] if fcurve
                           else np.full(len(frames), rest[kind][index]))
        return np.stack(columns, axis=1)

    return PoseTracks(
        frames=frames,
        rotations={bone: sampled(ROTATION_PATH.format(bone), "rotation", 4) for bone in like.rotations},
        locations={bone: sampled(LOCATION_PATH.format(bone), "location", 3) for bone in like.locations},
    )


def keyed_frames(action: bpy.types.Action, obj: bpy.types.Object, selected_only: bool = False) -> list[float]:
    """Frames of the action's keys (only the selected ones if asked): the default span's source."""
    frames = []
    for fcurve in fcurves_for(action, obj):
        frames.extend(point.co[0] for point in fcurve.keyframe_points if point.select_control_point or not selected_only)
    return frames


def bones_keyed_without_quaternions(action: bpy.types.Action, obj: bpy.types.Object) -> list[str]:
    """Bones whose rotation the action keys as Euler or axis-angle: a span of quaternion keys
    spliced into them would not play."""
    return sorted({fcurve.data_path.split('"')[1] for fcurve in fcurves_for(action, obj)
                   if fcurve.data_path.startswith("pose.bones[") and fcurve.data_path.endswith(("rotation_euler", "rotation_axis_angle"))})
