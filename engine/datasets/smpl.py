"""SMPL poses (axis-angle per joint) to canonical joints, with or without SMPL model files.

Two paths give the 22 body joints:
- `forward_kinematics`: no model files. It rotates a fixed rest skeleton, SMPL_REST_OFFSETS.
- `smpl_joints`: through the `smplx` package and a user's SMPL / SMPL-H / SMPL-X file, so the
  rest joints come from the body shape (betas) exactly as SMPL defines them.

The rest skeleton choice: SMPL's pose angles are relative to SMPL's own rest pose, a T-pose with
the arms straight out sideways, while the HumanML3D offsets (canonical.OFFSETS) describe a stick
figure whose arms hang down. Rotating the stick figure by SMPL angles would put every arm 90
degrees off. So SMPL_REST_OFFSETS keeps the canonical bone lengths (the HumanML3D normalisation
skeleton) but turns the bones whose stick direction differs clearly from SMPL's rest pose:
the arm bones (shoulder, elbow, wrist) point along +X for the left arm and -X for the right, the
head sits up and forward of the neck, and the toes point forward and down from the ankles, with
directions read off SMPL's neutral rest joints. Smaller differences (hips slightly below the
pelvis) are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retarget import canonical, rotations

# Bone directions of SMPL's neutral rest pose where they differ from the stick figure's.
SMPL_REST_DIRECTIONS: dict[int, tuple[float, float, float]] = {
    16: (1.0, 0.0, 0.0),
    18: (1.0, 0.0, 0.0),
    20: (1.0, 0.0, 0.0),  # left arm out sideways
    17: (-1.0, 0.0, 0.0),
    19: (-1.0, 0.0, 0.0),
    21: (-1.0, 0.0, 0.0),  # right arm
    15: (0.0, 0.77, 0.64),  # head: up and forward of the neck
    10: (0.22, -0.41, 0.88),
    11: (-0.22, -0.41, 0.88),  # toes: forward, down, a little outward
}


def _t_pose_offsets() -> np.ndarray:
    offsets = canonical.OFFSETS.copy()
    for joint, direction in SMPL_REST_DIRECTIONS.items():
        offsets[joint] = np.linalg.norm(offsets[joint]) * rotations.normalize(np.array(direction))
    return offsets


SMPL_REST_OFFSETS: np.ndarray = _t_pose_offsets()


def _check_poses(poses: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    poses = np.asarray(poses, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] % 3 or poses.shape[1] < 3 * canonical.NUM_JOINTS:
        raise ValueError(
            f"expected poses (frames, 3 x joints) with at least {canonical.NUM_JOINTS} joints "
            f"(72 for SMPL, 156 for SMPL-H, 165 for SMPL-X), got shape {poses.shape}"
        )
    if trans.shape != (len(poses), 3):
        raise ValueError(f"expected trans of shape ({len(poses)}, 3) to match the poses, got {trans.shape}")
    return poses, trans


def forward_kinematics(poses: np.ndarray, trans: np.ndarray, offsets: np.ndarray = SMPL_REST_OFFSETS) -> np.ndarray:
    """Joints (T, 22, 3) from SMPL axis-angle poses (T, >=66) and root positions (T, 3).

    The pelvis lands on `trans`; joints beyond the 22 body joints (hands, face) are ignored.
    """
    poses, trans = _check_poses(poses, trans)
    local = rotations.from_axis_angle(poses[:, : 3 * canonical.NUM_JOINTS].reshape(len(poses), -1, 3))
    world_q = [local[:, 0]]
    joints = [trans]
    for j in range(1, canonical.NUM_JOINTS):
        parent = canonical.PARENTS[j]
        joints.append(joints[parent] + rotations.rotate(world_q[parent], offsets[j]))
        world_q.append(rotations.multiply(world_q[parent], local[:, j]))
    return np.stack(joints, axis=1)


def smpl_joints(
    poses: np.ndarray,
    trans: np.ndarray,
    model_path: str | Path,
    gender: str = "neutral",
    model_type: str = "smpl",
    betas: np.ndarray | None = None,
) -> np.ndarray:
    """Joints (T, 22, 3) of an SMPL-family body model posed by axis-angle `poses`.

    `model_path` is a model file or the folder smplx.create expects (with smpl/, smplx/ ...).
    Joints come straight from the model's joint regressor and skinning transforms (smplx.lbs),
    not from the extra vertex landmarks, so any vertex count works. Like smplx, the pelvis
    lands at its rest position plus `trans`.
    """
    import smplx
    import torch

    poses, trans = _check_poses(poses, trans)
    if not Path(model_path).exists():
        raise ValueError(f"SMPL model not found at {model_path}: pass a model file or a folder of them")
    ext = "npz" if Path(model_path).suffix == ".npz" else "pkl"
    model = smplx.create(str(model_path), model_type=model_type, gender=gender, ext=ext, use_pca=False)
    joint_count = model.J_regressor.shape[0]
    full_pose = np.zeros((len(poses), joint_count * 3))
    used = min(poses.shape[1], full_pose.shape[1])
    full_pose[:, :used] = poses[:, :used]
    shape = (
        np.zeros((len(poses), model.num_betas))
        if betas is None
        else np.broadcast_to(betas, (len(poses), model.num_betas))
    )
    dtype = model.shapedirs.dtype
    with torch.no_grad():
        _, joints = smplx.lbs.lbs(
            torch.as_tensor(shape, dtype=dtype),
            torch.as_tensor(full_pose, dtype=dtype),
            model.v_template,
            model.shapedirs,
            model.posedirs,
            model.J_regressor,
            model.parents,
            model.lbs_weights,
        )
    return joints[:, : canonical.NUM_JOINTS].double().numpy() + trans[:, None]
