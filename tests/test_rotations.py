"""The quaternion layer every part builds on: round trips against independent formulas."""

import numpy as np
import pytest

from retarget import canonical
from retarget import rotations as R

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


@pytest.mark.parametrize("order", R.BLENDER_EULER_ORDERS)
def test_blender_euler_applies_the_first_named_axis_first(order):
    """Blender's "XYZ" turns about X first: R = Rz @ Ry @ Rx, values stored (x, y, z) whatever the order."""
    angles = rng.uniform(-np.pi, np.pi, size=(50, 3))
    single = {axis: R.to_matrix(R.from_axis_angle(np.eye(3)[i] * angles[:, i : i + 1])) for i, axis in enumerate("XYZ")}
    first, second, third = (single[axis] for axis in order)
    np.testing.assert_allclose(R.to_matrix(R.from_blender_euler(angles, order)), third @ second @ first, atol=1e-12)
    back = R.from_blender_euler(R.to_blender_euler(R.from_blender_euler(angles, order), order), order)
    assert R.angle_between(back, R.from_blender_euler(angles, order)).max() < 1e-6


def spin(order: str = "XYZ", frames: int = 200) -> np.ndarray:
    """A bone turning four full turns about the axis its Euler order applies first while it
    wobbles about the other two: that angle wraps, the others stay away from gimbal lock."""
    t = np.linspace(0.0, 1.0, frames)
    first, second, third = ("XYZ".index(axis) for axis in order)
    turn = np.zeros((frames, 3))
    turn[:, first], turn[:, second], turn[:, third] = 8 * np.pi * t, 0.3 * np.sin(5 * t), 0.4 * np.cos(3 * t)
    return R.from_blender_euler(turn, order)


@pytest.mark.parametrize("order", R.BLENDER_EULER_ORDERS)
def test_blender_euler_tracks_are_continuous(order):
    """Frame-to-frame steps of the keyed values stay as small as the rotation's own steps (no
    +-180 or whole-turn flips), every frame is the same rotation, and a previous key is followed."""
    q = spin(order)
    euler = R.to_blender_euler(q, order)
    assert R.angle_between(R.from_blender_euler(euler, order), q).max() < 1e-6
    rotation_steps = R.angle_between(q[1:], q[:-1])
    assert np.abs(np.diff(euler, axis=0)).max() < 2 * rotation_steps.max()
    assert np.ptp(euler, axis=0).max() > 7 * np.pi  # it kept turning instead of wrapping back
    later = R.to_blender_euler(q[100:], order, previous=euler[99])
    np.testing.assert_allclose(later, euler[100:], atol=1e-9)
    # A swing about the middle axis past 90 degrees: principal angles would flip the other two by 180.
    middle = np.zeros((60, 3))
    middle[:, "XYZ".index(order[1])] = np.linspace(0.0, np.radians(170), 60)
    np.testing.assert_allclose(R.to_blender_euler(R.from_blender_euler(middle, order), order), middle, atol=1e-6)


def test_blender_axis_angle_tracks_are_continuous_through_rest():
    """Three turns one way to three the other about one axis, through rest on the middle frame:
    the angle runs on smoothly (negative, not the axis flipping) and whole turns do not wrap."""
    axis = R.normalize(rng.normal(size=3))
    angles = np.linspace(-3 * np.pi, 3 * np.pi, 201)
    q = R.from_axis_angle(axis * angles[:, None])
    values = R.to_blender_axis_angle(q)
    assert R.angle_between(R.from_blender_axis_angle(values), q).max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(values[:, 1:], axis=-1), 1.0)
    assert np.abs(np.diff(values, axis=0)).max() < 1.01 * np.diff(angles).max()
    assert np.ptp(values[:, 0]) > 5.9 * np.pi
    later = R.to_blender_axis_angle(q[100:], previous=values[99])
    np.testing.assert_allclose(later, values[100:], atol=1e-9)
