"""Pose tracks: a rig's keyed channels as arrays, laid out the way fcurves take them.

Plain numpy (no bpy): the bake writes these with `keyframe_points.foreach_set("co", ...)`, which
wants one flat array of (frame, value) pairs per fcurve.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROTATION_PATH = 'pose.bones["{}"].rotation_quaternion'
LOCATION_PATH = 'pose.bones["{}"].location'


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
                        f"expected ({len(self.frames)}, {width}) to match the frames")
                channels[bone] = values

    def take(self, which) -> PoseTracks:
        """The tracks at some of the frames (a boolean mask or a slice over them)."""
        return PoseTracks(frames=self.frames[which], rotations={bone: q[which] for bone, q in self.rotations.items()},
                          locations={bone: p[which] for bone, p in self.locations.items()})

    def channels(self) -> list[tuple[str, int, np.ndarray]]:
        """(data_path, array_index, values over frames) for every fcurve to write."""
        result = []
        for path, channels in ((ROTATION_PATH, self.rotations), (LOCATION_PATH, self.locations)):
            for bone, values in channels.items():
                for index in range(values.shape[1]):
                    result.append((path.format(bone), index, values[:, index]))
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
