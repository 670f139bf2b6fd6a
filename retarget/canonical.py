"""The canonical skeleton: the 22-joint HumanML3D/SMPL skeleton the engine speaks.

Joint order is SMPL's (0 pelvis ... 21 right wrist). Names are those of the HumanML3D BVH
template (Hips, LeftUpLeg, ...), because those are the names users see in BVH files and in
Blender. Bone offsets are the dataset's normalisation skeleton (data/humanml3d_skeleton.json,
measured from real HumanML3D data), not the template's visualisation offsets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_DATA = json.loads((Path(__file__).parent / "data" / "humanml3d_skeleton.json").read_text())

FPS: int = int(_DATA["fps"])
# Sizes the engine and the add-on share (defined here once: this module runs on both sides).
MAX_FRAMES = 196  # the model's longest motion, 9.8 s
FRAMES_PER_LATENT = 4  # the tokenizer's time step: lengths are multiples of 4 frames
FEATURE_SIZE = 263  # HumanML3D features per frame
NUM_JOINTS = 22

SMPL_NAMES: list[str] = list(_DATA["joint_names"])
PARENTS: np.ndarray = np.array(_DATA["parents"], dtype=np.int64)
OFFSETS: np.ndarray = np.array(_DATA["offsets"], dtype=np.float64)
RAW_OFFSET_DIRECTIONS: np.ndarray = np.array(_DATA["raw_offset_directions"], dtype=np.float64)
KINEMATIC_CHAINS: list[list[int]] = [list(c) for c in _DATA["kinematic_chains"]]
FACE_JOINTS: list[int] = list(_DATA["face_joints"])  # r_hip, l_hip, r_shoulder, l_shoulder
LEFT_FOOT: list[int] = list(_DATA["foot_joints"]["left"])  # ankle, toe
RIGHT_FOOT: list[int] = list(_DATA["foot_joints"]["right"])
CONTACT_VELOCITY_THRESHOLD: float = float(_DATA["contact_velocity_threshold"])

# BVH template names, indexed by SMPL joint.
JOINT_NAMES: list[str] = [
    "Hips",
    "LeftUpLeg",
    "RightUpLeg",
    "Spine",
    "LeftLeg",
    "RightLeg",
    "Spine1",
    "LeftFoot",
    "RightFoot",
    "Spine2",
    "LeftToe",
    "RightToe",
    "Neck",
    "LeftShoulder",
    "RightShoulder",
    "Head",
    "LeftArm",
    "RightArm",
    "LeftForeArm",
    "RightForeArm",
    "LeftHand",
    "RightHand",
]
# The order in which the template BVH lists its joints (depth first), as SMPL indices.
BVH_ORDER: list[int] = [0, 1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12, 15, 13, 16, 18, 20, 14, 17, 19, 21]

# Left/right partner of every joint, for mirroring motion.
MIRROR: list[int] = [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20]

# Leg length (hip to ankle, averaged over both sides): the scale used for root motion.
LEG_LENGTH: float = float(
    0.5
    * (
        np.linalg.norm(OFFSETS[4])
        + np.linalg.norm(OFFSETS[7])
        + np.linalg.norm(OFFSETS[5])
        + np.linalg.norm(OFFSETS[8])
    )
)


def rest_positions(offsets: np.ndarray = OFFSETS, root: np.ndarray | None = None) -> np.ndarray:
    """Joint positions (22, 3) of the rest pose: offsets accumulated down the tree."""
    positions = np.zeros((NUM_JOINTS, 3))
    if root is not None:
        positions[0] = root
    for j in range(1, NUM_JOINTS):
        positions[j] = positions[PARENTS[j]] + offsets[j]
    return positions


def floor_height(offsets: np.ndarray = OFFSETS) -> float:
    """Height of the pelvis above the lowest foot joint in the rest pose."""
    rest = rest_positions(offsets)
    return float(-rest[:, 1].min())
