"""The smplx path agrees with direct forward kinematics on a synthetic SMPL model file.

The model file has the real SMPL layout (keys, dtypes, shapes, sparse joint regressor, pickled
the way the official files are) but only a few vertices: one at each rest joint of
SMPL_REST_OFFSETS, so the joint regressor puts the rest joints exactly where we choose.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse

from engine.datasets import aistpp, smpl
from retarget import canonical

SMPL_JOINTS = 24
HAND_OFFSET = 0.08  # SMPL's hand joints (22, 23) sit a little beyond the wrists


def write_synthetic_smpl(path, rest_joints: np.ndarray, extra_vertices: int = 6) -> None:
    rng = np.random.default_rng(0)
    vertex_count = SMPL_JOINTS + extra_vertices
    v_template = np.concatenate([rest_joints, rng.normal(scale=0.3, size=(extra_vertices, 3))])
    regressor = np.zeros((SMPL_JOINTS, vertex_count))
    regressor[np.arange(SMPL_JOINTS), np.arange(SMPL_JOINTS)] = 1.0
    parents = np.concatenate([canonical.PARENTS, [20, 21]]).astype(np.int64)
    parents[0] = 4294967295  # how the official kintree_table marks the root
    weights = np.zeros((vertex_count, SMPL_JOINTS))
    weights[np.arange(vertex_count), np.arange(vertex_count) % SMPL_JOINTS] = 1.0
    model = {
        "v_template": v_template,
        "shapedirs": rng.normal(scale=0.01, size=(vertex_count, 3, 10)),
        "posedirs": rng.normal(scale=0.01, size=(vertex_count, 3, 207)),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "weights": weights,
        "kintree_table": np.stack([parents, np.arange(SMPL_JOINTS)]),
        "f": rng.integers(0, vertex_count, size=(10, 3)).astype(np.uint32),
    }
    with open(path, "wb") as file:
        pickle.dump(model, file, protocol=2)


def rest_joints_24() -> np.ndarray:
    body = canonical.rest_positions(smpl.SMPL_REST_OFFSETS)
    hands = body[[20, 21]] + [[HAND_OFFSET, 0.0, 0.0], [-HAND_OFFSET, 0.0, 0.0]]
    return np.concatenate([body, hands])


def test_smplx_joints_match_direct_forward_kinematics(tmp_path, shared_data):
    model_path = tmp_path / "SMPL_NEUTRAL.pkl"
    write_synthetic_smpl(model_path, rest_joints_24())
    take = aistpp.read_take(shared_data / "aistpp_gBR_sBM_cAll_d04_mBR0_ch01.pkl")
    poses = take["smpl_poses"][:90:3].astype(np.float64)
    trans = take["smpl_trans"][:90:3] / take["smpl_scaling"][0]

    through_smplx = smpl.smpl_joints(poses, trans, model_path)
    direct = smpl.forward_kinematics(poses, trans)
    assert through_smplx.shape == direct.shape == (30, 22, 3)
    assert np.abs(through_smplx - direct).max() < 1e-4  # float32 inside smplx
    # The poses really move the body: far from the rest pose.
    assert np.abs(direct - canonical.rest_positions(smpl.SMPL_REST_OFFSETS) - trans[:, None]).max() > 0.3


def test_rest_offsets_keep_the_canonical_bone_lengths_in_a_t_pose():
    lengths = np.linalg.norm(smpl.SMPL_REST_OFFSETS, axis=-1)
    assert lengths == pytest.approx(np.linalg.norm(canonical.OFFSETS, axis=-1))
    rest = canonical.rest_positions(smpl.SMPL_REST_OFFSETS)
    assert rest[20, 0] - rest[16, 0] == pytest.approx(lengths[18] + lengths[20])  # left arm along +X
    assert rest[21, 0] < rest[17, 0] and rest[21, 1] == pytest.approx(rest[17, 1])


def test_smpl_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="poses"):
        smpl.forward_kinematics(np.zeros((5, 30)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="trans"):
        smpl.forward_kinematics(np.zeros((5, 72)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="SMPL model not found"):
        smpl.smpl_joints(np.zeros((5, 72)), np.zeros((5, 3)), tmp_path / "missing.pkl")
