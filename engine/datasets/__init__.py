"""Real motion for the demo dataset: loaders that turn each source into canonical joints.

Every loader returns joints (T, 22, 3) in metres, Y up, at 20 fps, in the canonical (SMPL)
joint order, standing on y = 0 and facing +Z at frame 0 with the left side at +X.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

AISTPP_PATTERN = "aistpp_*.pkl"
WAVE_TAKE = "111_37"  # CMU subject 111, trial 37: "Wave"
WALK_BEFORE_WAVE_SECONDS = 3.0  # a few steps, so the walk reads as one


def default_shared_data() -> Path:
    """The read-only reference data beside the clone (../shared/data), or $MOSA_SHARED_DATA."""
    repo = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("MOSA_SHARED_DATA", repo.parent / "shared" / "data"))


def aistpp_takes(shared_data: Path | None = None) -> list[Path]:
    folder = default_shared_data() if shared_data is None else Path(shared_data)
    return sorted(folder.glob(AISTPP_PATTERN))


def real_clips(shared_data: Path | None = None, min_seconds: float = 0.0) -> Iterator[tuple[str, np.ndarray]]:
    """Every real clip available offline, as (name, joints (T, 22, 3) at 20 fps).

    Names are "deepmimic_<clip>" for the pybullet humanoid clips, "aistpp_<take>" for the
    AIST++ takes in the shared data folder, "cmu_<trial>" for the CMU takes committed here,
    "composed_walk_wave" for the DeepMimic walk followed by the CMU wave, and
    "cmu_<subject>_<trial>_<part>" for the segments of the CMU archive (cmu_takes, cmu_segments). Looping DeepMimic clips
    shorter than `min_seconds` are chained until they are long enough.
    """
    from . import aistpp, cmu, cmu_takes, compose, deepmimic

    for clip in deepmimic.clip_names():
        yield f"deepmimic_{clip}", deepmimic.load_joints(clip, min_seconds=min_seconds)
    for take in aistpp_takes(shared_data):
        yield take.stem, aistpp.load_joints(take)
    takes = {trial: cmu.load_joints(trial) for trial in cmu.take_names()}
    for trial, joints in takes.items():
        yield f"cmu_{trial}", joints
    walk = deepmimic.load_joints("walk", min_seconds=WALK_BEFORE_WAVE_SECONDS)
    yield "composed_walk_wave", compose.compose(walk, takes[WAVE_TAKE])
    yield from cmu_takes.load_segments().items()
