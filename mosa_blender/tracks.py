"""Pose tracks: a rig's keyed channels as arrays, laid out the way fcurves take them.

Plain numpy (no bpy): the bake writes these with `keyframe_points.foreach_set("co", ...)`, which
wants one flat array of (frame, value) pairs per fcurve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .vendored import rotations

QUATERNION = "QUATERNION"
AXIS_ANGLE = "AXIS_ANGLE"
# What bpy.utils.escape_identifier escapes: a quote or backslash left as it is ends the path early.
_ESCAPED = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
)


def bone_path(bone: str) -> str:
    """The data path of pose bone `bone`, its name escaped as Blender's paths want it."""
    return f'pose.bones["{bone.translate(_ESCAPED)}"]'


def location_path(bone: str) -> str:
    return f"{bone_path(bone)}.location"


def rotation_path(bone: str, mode: str) -> str:
    """The fcurve path that rotates `bone` in its rotation mode (QUATERNION, AXIS_ANGLE or an Euler order)."""
    prop = {QUATERNION: "rotation_quaternion", AXIS_ANGLE: "rotation_axis_angle"}.get(mode, "rotation_euler")
    return f"{bone_path(bone)}.{prop}"


def rest_rotation(mode: str) -> np.ndarray:
    """What an unkeyed bone's rotation channels hold at rest, in its mode."""
    return {QUATERNION: np.array([1.0, 0.0, 0.0, 0.0]), AXIS_ANGLE: np.array([0.0, 0.0, 1.0, 0.0])}.get(
        mode, np.zeros(3)
    )


def rotation_values(quaternions: np.ndarray, mode: str, previous: np.ndarray | None = None) -> np.ndarray:
    """Quaternions over frames as the values a bone of `mode` keys, continuous from `previous`
    (the value keyed just before, if any) and frame to frame."""
    if mode == QUATERNION:
        if previous is not None and np.dot(quaternions[0], previous) < 0:
            quaternions = -quaternions
        return rotations.make_continuous(quaternions)
    if mode == AXIS_ANGLE:
        return rotations.to_blender_axis_angle(quaternions, previous)
    return rotations.to_blender_euler(quaternions, mode, previous)


def quaternions_from(values: np.ndarray, mode: str) -> np.ndarray:
    """A bone's keyed rotation values in `mode` as quaternions (w, x, y, z)."""
    if mode == QUATERNION:
        return rotations.normalize(values)
    if mode == AXIS_ANGLE:
        return rotations.from_blender_axis_angle(values)
    return rotations.from_blender_euler(values, mode)


@dataclass
class PoseTracks:
    """Per-frame pose-basis channels for some bones of one armature.

    frames: (T,) scene frame numbers; rotations: bone -> (T, 4) quaternions (w, x, y, z);
    locations: bone -> (T, 3) (usually just the root/hip bone).
    """

    frames: np.ndarray
    rotations: dict[str, np.ndarray] = field(default_factory=dict)
    locations: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.float64)
        for kind, channels, width in (("rotation", self.rotations, 4), ("location", self.locations, 3)):
            for bone, values in channels.items():
                values = np.asarray(values, dtype=np.float64)
                if values.shape != (len(self.frames), width):
                    raise ValueError(
                        f"{kind} track of bone {bone!r} has shape {values.shape}, "
                        f"expected ({len(self.frames)}, {width}) to match the frames"
                    )
                channels[bone] = values

    def take(self, which) -> PoseTracks:
        """The tracks at some of the frames (a boolean mask or a slice over them)."""
        return PoseTracks(
            frames=self.frames[which],
            rotations={bone: q[which] for bone, q in self.rotations.items()},
            locations={bone: p[which] for bone, p in self.locations.items()},
        )

    def merged(self, other: PoseTracks) -> PoseTracks:
        """These tracks and `other`'s (the same channels, at other frames), in frame order."""
        order = np.argsort(np.concatenate([self.frames, other.frames]), kind="stable")
        return PoseTracks(
            frames=np.concatenate([self.frames, other.frames])[order],
            rotations={bone: np.concatenate([q, other.rotations[bone]])[order] for bone, q in self.rotations.items()},
            locations={bone: np.concatenate([p, other.locations[bone]])[order] for bone, p in self.locations.items()},
        )

    def channels(
        self, modes: dict[str, str] | None = None, previous: dict[str, np.ndarray] | None = None
    ) -> list[tuple[str, int, np.ndarray]]:
        """(data_path, array_index, values over frames) for every fcurve to write, each bone's
        rotation in its mode (`modes`: bone -> rotation mode; quaternions where not given),
        continuous from the value `previous` says it holds just before the first frame."""
        modes, previous = modes or {}, previous or {}
        result = []
        for bone, quaternions in self.rotations.items():
            mode = modes.get(bone, QUATERNION)
            values = rotation_values(quaternions, mode, previous.get(bone))
            result.extend((rotation_path(bone, mode), index, values[:, index]) for index in range(values.shape[1]))
        for bone, values in self.locations.items():
            result.extend((location_path(bone), index, values[:, index]) for index in range(3))
        return result


def flat_keys(frames: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Interleave frames and values into [f0, v0, f1, v1, ...] (float32, what foreach_set wants)."""
    frames, values = np.asarray(frames), np.asarray(values)
    if frames.shape != values.shape or frames.ndim != 1:
        raise ValueError(f"frames {frames.shape} and values {values.shape} must be matching 1-D arrays")
    return np.stack([frames, values], axis=1).astype(np.float32).ravel()


def action_name(prompt: str, seed: int, limit: int = 63) -> str:
    """'MoSa: a person walks (seed 3)', the prompt shortened so the name fits Blender's 63 bytes."""
    suffix = f" (seed {seed})"
    text = " ".join(prompt.split())
    room = limit - len("MoSa: ") - len(suffix)
    if len(text.encode()) > room:
        text = text.encode()[: room - 3].decode(errors="ignore").rstrip() + "..."
    return f"MoSa: {text}{suffix}"
