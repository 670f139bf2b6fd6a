"""AIST++ dance takes (SMPL poses at 60 fps) as canonical joints at 20 fps.

A take is a pickle with `smpl_poses` (T, 72) axis-angle for the 24 SMPL joints, `smpl_trans`
(T, 3) and `smpl_scaling` (1,): the translation is in the capture's scaled units, so metres are
trans / scaling. AIST++ is Y up, like the canonical skeleton. Joints come from smpl's direct
forward kinematics (SMPL_REST_OFFSETS: HumanML3D bone lengths in SMPL's T-pose), so no SMPL
model files are needed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from retarget import canonical

from .placement import place_on_floor_facing_z
from .smpl import forward_kinematics

SOURCE_FPS = 60


def read_take(path: str | Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as file:
        take = pickle.load(file)
    missing = {"smpl_poses", "smpl_trans", "smpl_scaling"} - set(take)
    if missing:
        raise ValueError(f"{path}: not an AIST++ take, missing {sorted(missing)}")
    return take


def load_joints(path: str | Path, fps: int = canonical.FPS) -> np.ndarray:
    """Joints (T, 22, 3) of an AIST++ take at `fps`, on the floor, starting at the origin facing +Z."""
    if SOURCE_FPS % fps:
        raise ValueError(f"AIST++ is {SOURCE_FPS} fps; choose an fps that divides it, got {fps}")
    take = read_take(path)
    step = SOURCE_FPS // fps
    poses = np.asarray(take["smpl_poses"], dtype=np.float64)[::step]
    trans = np.asarray(take["smpl_trans"], dtype=np.float64)[::step] / float(
        np.asarray(take["smpl_scaling"]).ravel()[0]
    )
    return place_on_floor_facing_z(forward_kinematics(poses, trans))
