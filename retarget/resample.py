"""Frame-rate conversion: the engine's 20 fps to the scene's rate and back.

Frame k of the result sits at time k / fps; rotations are slerped between the two source frames
around it, translations and positions interpolated linearly. The first frame stays the first;
the last result frame is the last one that still falls inside the source clip.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import rotations
from .motion import CanonicalMotion
from .transfer import PosedRig


def sample_points(frames: int, source_fps: float, fps: float) -> np.ndarray:
    """Source frame positions (fractional) of each result frame."""
    if source_fps <= 0 or fps <= 0 or not np.isfinite(source_fps) or not np.isfinite(fps):
        raise ValueError(f"frame rates must be positive numbers; got {source_fps} -> {fps}")
    duration = (frames - 1) / source_fps
    count = int(np.floor(duration * fps + 1e-6)) + 1
    return np.minimum(np.arange(count) * (source_fps / fps), frames - 1)


def _neighbours(points: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    before = np.minimum(np.floor(points).astype(int), frames - 1)
    after = np.minimum(before + 1, frames - 1)
    return before, after, points - before


def linear(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """values (T, ...) at fractional frames."""
    before, after, t = _neighbours(points, len(values))
    t = t.reshape((-1,) + (1,) * (values.ndim - 1))
    return (1 - t) * values[before] + t * values[after]


def spherical(quaternions: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Quaternions (T, ..., 4) at fractional frames, slerped, signs kept continuous."""
    before, after, t = _neighbours(points, len(quaternions))
    t = t.reshape((-1,) + (1,) * (quaternions.ndim - 1))
    return rotations.make_continuous(rotations.slerp(quaternions[before], quaternions[after], t))


def resample(posed: PosedRig, fps: float) -> PosedRig:
    """The transfer's output at another frame rate."""
    if abs(fps - posed.fps) < 1e-9:
        return posed
    points = sample_points(posed.frames, posed.fps, fps)
    contacts = None if posed.contacts is None else linear(posed.contacts.astype(float), points) > 0.5
    return replace(
        posed,
        rotations={bone: spherical(q, points) for bone, q in posed.rotations.items()},
        root_location=linear(posed.root_location, points),
        fps=float(fps),
        contacts=contacts,
    )


def resample_motion(motion: CanonicalMotion, fps: float) -> CanonicalMotion:
    """A canonical motion at another frame rate (positions interpolated, rotations re-solved;
    features, which describe steps at the old rate, are dropped)."""
    if abs(fps - motion.fps) < 1e-9:
        return motion
    return CanonicalMotion.from_positions(
        linear(motion.positions, sample_points(motion.frames, motion.fps, fps)), fps=fps
    )
