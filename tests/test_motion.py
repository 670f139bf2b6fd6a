"""Canonical motion: the rotation convention, IK from positions on real clips, file and dict forms."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from engine import representation
from engine.datasets import real_clips
from retarget import canonical, rotations
from retarget.motion import CanonicalMotion, fitted_rest_offsets, forward_kinematics, rotations_from_positions

# Joints whose every ancestor has a single child below the pelvis: IK places them exactly.
LEGS_AND_SPINE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


@pytest.fixture(scope="module")
def normalized_clips(shared_data) -> dict[str, np.ndarray]:
    return {name: representation.normalize_joints(joints) for name, joints in real_clips(shared_data)}


def random_rotations(frames: int, seed: int) -> np.ndarray:
    return rotations.from_axis_angle(
        np.random.default_rng(seed).normal(scale=0.6, size=(frames, canonical.NUM_JOINTS, 3))
    )


def test_identity_rotations_give_the_rest_pose_and_a_root_yaw_turns_the_body():
    still = forward_kinematics(rotations.identity((1, 22)), np.zeros((1, 3)))
    np.testing.assert_allclose(still[0], canonical.rest_positions(), atol=1e-12)
    turned = rotations.identity((1, 22))
    turned[0, 0] = rotations.from_axis_angle(np.array([0.0, np.pi / 2, 0.0]))
    left_hip = forward_kinematics(turned, np.zeros((1, 3)))[0, 1]
    np.testing.assert_allclose(left_hip, [0.0, 0.0, -np.linalg.norm(canonical.OFFSETS[1])], atol=1e-12)


def test_ik_recovers_positions_made_by_fk_on_the_canonical_offsets():
    positions = forward_kinematics(random_rotations(30, seed=1), np.random.default_rng(2).normal(size=(30, 3)))
    rebuilt = forward_kinematics(rotations_from_positions(positions), positions[:, 0])
    assert np.abs(rebuilt - positions).max() < 1e-9


def test_ik_on_real_clips(normalized_clips):
    for name, positions in normalized_clips.items():
        motion = CanonicalMotion.from_positions(positions)
        error = np.linalg.norm(motion.forward_kinematics() - motion.positions, axis=-1)
        print(
            f"{name}: FK on canonical offsets lands max {error.max() * 1000:.1f} mm, mean {error.mean() * 1000:.2f} mm from the positions"
        )
        assert error[:, LEGS_AND_SPINE].max() < 1e-4, name
        offsets = fitted_rest_offsets(positions)
        exact = forward_kinematics(rotations_from_positions(positions, offsets), positions[:, 0], offsets)
        assert np.abs(exact - positions).max() < 1e-5, f"{name}: fitted offsets should reproduce a rigid clip"


def test_features_to_motion_keeps_ric_positions_and_features(normalized_clips):
    joints = normalized_clips["deepmimic_walk"]
    features = representation.joints_to_features(joints)
    motion = representation.features_to_motion(features)
    assert motion.frames == len(features) and motion.fps == canonical.FPS
    np.testing.assert_allclose(motion.positions, representation.features_to_joints(features), atol=1e-6)
    np.testing.assert_array_equal(motion.features, features)
    np.testing.assert_allclose(motion.root_translation, motion.positions[:, 0])


def test_npz_and_dict_round_trips(tmp_path, normalized_clips):
    positions = normalized_clips["deepmimic_jump"]
    motion = CanonicalMotion.from_positions(positions, features=representation.joints_to_features(positions))
    motion.save(tmp_path / "jump.npz")
    for copy in (
        CanonicalMotion.load(tmp_path / "jump.npz"),
        CanonicalMotion.from_dict(json.loads(json.dumps(motion.to_dict()))),
    ):
        for name in ("positions", "rotations", "root_translation", "features", "parents"):
            np.testing.assert_array_equal(getattr(copy, name), getattr(motion, name), err_msg=name)
        assert copy.fps == motion.fps and copy.joint_names == motion.joint_names


def test_from_dict_derives_rotations_from_positions_alone(normalized_clips):
    positions = normalized_clips["aistpp_gBR_sBM_cAll_d04_mBR0_ch01"][:40]
    motion = CanonicalMotion.from_dict({"fps": 20, "positions": positions.tolist()})
    np.testing.assert_allclose(motion.forward_kinematics(), positions, atol=1e-5)


def test_slice_cuts_positions_and_per_step_features(normalized_clips):
    positions = normalized_clips["deepmimic_run"]
    motion = CanonicalMotion.from_positions(positions, features=representation.joints_to_features(positions))
    part = motion.slice(2, 8)
    assert len(part) == 6 and len(part.features) == 5
    np.testing.assert_array_equal(part.positions, motion.positions[2:8])
    with pytest.raises(ValueError, match="slice 5:3"):
        motion.slice(5, 3)


def test_bad_motion_is_refused_clearly(tmp_path):
    positions = canonical.rest_positions()[None].repeat(4, axis=0)
    good = CanonicalMotion.from_positions(positions)
    cases = {
        r"positions must have shape \(frames, 22, 3\)": dict(positions=positions[:, :21]),
        "rotations has 3 frames": dict(rotations=good.rotations[:3]),
        "unit quaternions": dict(rotations=good.rotations * 2),
        "NaN": dict(root_translation=np.full((4, 3), np.nan)),
        "expected 3 or 4": dict(features=np.zeros((7, 263))),
        "joint_names must be the canonical": dict(joint_names=["a"] * 22),
        "fps must be a positive": dict(fps=0),
        # A JSON file's wrong types: a clear ValueError, not a TypeError from iterating or converting.
        "joint_names must be a list of 22 names; got int": dict(joint_names=5),
        "joint_names must be a list of 22 names; got str": dict(joint_names="Hips"),
        "fps must be a positive number; got str": dict(fps="20"),
        "fps must be a positive number; got list": dict(fps=[20]),
        "parents must be whole numbers; got float64": dict(parents=canonical.PARENTS + 0.5),
        "parents must be whole numbers; got complex128": dict(parents=canonical.PARENTS + 0j),
    }
    for message, change in cases.items():
        fields = (
            dict(positions=good.positions, rotations=good.rotations, root_translation=good.root_translation) | change
        )
        with pytest.raises(ValueError, match=message):
            CanonicalMotion(**fields)
    with pytest.raises(ValueError, match="needs 'positions'"):
        CanonicalMotion.from_dict({"fps": 20})
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a canonical motion .npz"):
        CanonicalMotion.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        CanonicalMotion.load(tmp_path / "absent.npz")
    # One fps value in an array of one (the fuzz test's find): read without numpy's deprecation of float(array).
    np.savez(
        tmp_path / "fps1.npz",
        **(good.to_arrays() | {"fps": np.array([[20.0]]), "joint_names": np.array(good.joint_names)}),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CanonicalMotion.load(tmp_path / "fps1.npz").fps == 20.0
