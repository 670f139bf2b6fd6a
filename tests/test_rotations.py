"""The quaternion layer every part builds on: round trips against independent formulas."""
import numpy as np
import pytest

from retarget import canonical, rotations as R

rng = np.random.default_rng(7)
QUATS = R.normalize(rng.normal(size=(500, 4)))


@pytest.mark.parametrize("order", ["ZYX", "XYZ", "YXZ", "ZXY", "XZY", "YZX"])
def test_euler_round_trip(order):
    back = R.from_euler(R.to_euler(QUATS, order), order)
    assert R.angle_between(QUATS, back).max() < 1e-6


def test_euler_matches_matrix_product():
    angles = rng.uniform(-180, 180, size=(50, 3))
    rz, ry, rx = (R.to_matrix(R.from_euler(a[:, None], axis)) for a, axis in zip(angles.T, "ZYX"))
    np.testing.assert_allclose(R.to_matrix(R.from_euler(angles, "ZYX")), rz @ ry @ rx, atol=1e-12)


def test_matrix_axis_angle_and_6d_round_trips():
    assert R.angle_between(R.from_matrix(R.to_matrix(QUATS)), QUATS).max() < 1e-6
    assert R.angle_between(R.from_axis_angle(R.to_axis_angle(QUATS)), QUATS).max() < 1e-6
    assert R.angle_between(R.from_cont6d(R.to_cont6d(QUATS)), QUATS).max() < 1e-6


def test_rotate_matches_matrix_and_between_aligns():
    v = rng.normal(size=(500, 3))
    u = rng.normal(size=(500, 3))
    np.testing.assert_allclose(R.rotate(QUATS, v), np.einsum("nij,nj->ni", R.to_matrix(QUATS), v), atol=1e-12)
    aligned = R.rotate(R.between(u, v), R.normalize(u))
    np.testing.assert_allclose(aligned, R.normalize(v), atol=1e-9)
    flipped = R.between(np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.0, 0.0]))
    np.testing.assert_allclose(R.rotate(flipped, [0.0, 1.0, 0.0]), [0.0, -1.0, 0.0], atol=1e-12)


def test_slerp_ends_and_midpoint():
    a, b = QUATS[:10], QUATS[10:20]
    assert R.angle_between(R.slerp(a, b, 0.0), a).max() < 1e-6
    assert R.angle_between(R.slerp(a, b, 1.0), b).max() < 1e-6
    mid = R.slerp(a, b, 0.5)
    np.testing.assert_allclose(R.angle_between(a, mid), R.angle_between(mid, b), atol=1e-6)


def test_canonical_skeleton_matches_spec():
    assert len(canonical.JOINT_NAMES) == canonical.NUM_JOINTS == len(canonical.PARENTS)
    assert sorted(canonical.BVH_ORDER) == list(range(22))
    assert all(canonical.MIRROR[canonical.MIRROR[j]] == j for j in range(22))
    # Leg bone lengths quoted in the spec (thigh 0.394/0.390, shin 0.432/0.426).
    lengths = np.linalg.norm(canonical.OFFSETS, axis=1)
    np.testing.assert_allclose(lengths[[4, 5, 7, 8]], [0.394, 0.390, 0.432, 0.426], atol=1e-3)
