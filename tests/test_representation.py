"""HumanML3D features on real clips: the official processing frame by frame, round trip, 6-D FK, contacts,
normalisation statistics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from engine import representation
from engine.datasets import deepmimic, real_clips
from retarget import bvh, canonical, rotations

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_FEATURES = Path(__file__).parent / "data" / "official_features.npz"  # see tests/data/README.md
FEET = canonical.LEFT_FOOT + canonical.RIGHT_FOOT


@pytest.fixture(scope="module")
def clips(shared_data) -> dict[str, np.ndarray]:
    """Every real clip at 20 fps, and the BVH template's own motion (60 fps, every third frame)."""
    return dict(real_clips(shared_data)) | {
        "template": bvh.read_bvh(shared_data / "humanml3d_template.bvh").positions[::3]
    }


def test_import_does_not_load_torch():
    code = "import engine.representation, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_gaussian_smoothing_matches_scipy():
    values = np.random.default_rng(0).normal(size=(50, 3))
    expected = gaussian_filter1d(values, 20, axis=0, mode="nearest")
    np.testing.assert_allclose(representation.gaussian_smooth(values, 20.0), expected, atol=1e-12)


def test_normalized_joints_stand_on_the_floor_at_the_origin_facing_forward(clips):
    for name, joints in clips.items():
        normalized = representation.normalize_joints(joints)
        assert normalized[:, :, 1].min() == pytest.approx(0.0, abs=1e-9), name
        np.testing.assert_allclose(normalized[0, 0, [0, 2]], 0.0, atol=1e-9, err_msg=name)
        bones = np.linalg.norm(normalized[:, 1:] - normalized[:, canonical.PARENTS[1:]], axis=-1)
        np.testing.assert_allclose(
            bones, np.broadcast_to(np.linalg.norm(canonical.OFFSETS[1:], axis=-1), bones.shape), atol=1e-9
        )
        r_hip, l_hip, r_shoulder, l_shoulder = canonical.FACE_JOINTS
        across = normalized[0, r_hip] - normalized[0, l_hip] + normalized[0, r_shoulder] - normalized[0, l_shoulder]
        forward = np.cross([0.0, 1.0, 0.0], across)
        assert forward[2] / np.linalg.norm(forward) == pytest.approx(1.0, abs=1e-9), name


def test_features_match_the_official_processing_on_every_frame(clips):
    """The official process_file's output on real clips (computed outside the repository), frame 0
    included: there the official root rotation is the identity, not the smoothed facing."""
    with np.load(OFFICIAL_FEATURES) as official:
        references = dict(official)
    assert len(references) >= 4
    for name, reference in references.items():
        features = representation.joints_to_features(clips[name])
        assert features.shape == reference.shape, name
        per_frame = np.abs(features - reference).max(axis=1)
        print(f"{name}: frame 0 {per_frame[0]:.2e}, frames 1.. {per_frame[1:].max():.2e}")
        assert per_frame.max() < 1e-4, f"{name}: frame {per_frame.argmax()} differs by {per_frame.max():.2e}"


def frames_before_a_hemisphere_flip(joints: np.ndarray) -> int:
    """How many frames the official features describe exactly. The official processing takes each
    frame's yaw velocity as arcsin of the y part of q[t+1] q[t]^-1; when the smoothed facing crosses
    -Z, q changes hemisphere (w < 0 in that product) and that one step's velocity gets the wrong
    sign. HumanML3D's own features have the same flaw; five CMU segments (dances, dribbles) turn
    that far."""
    root = representation.root_rotations(representation.normalize_joints(joints), smooth=True)
    flips = np.flatnonzero(rotations.multiply(root[1:], rotations.inverse(root[:-1]))[:, 0] < 0)
    return int(flips[0]) + 1 if len(flips) else len(joints) - 1


def test_round_trip_reproduces_normalized_joints(clips):
    worst = 0.0
    checked = total = 0
    for name, joints in clips.items():
        features = representation.joints_to_features(joints)
        assert features.shape == (len(joints) - 1, representation.FEATURE_SIZE) and features.dtype == np.float32
        normalized = representation.normalize_joints(joints)
        recovered = representation.features_to_joints(features)
        exact = frames_before_a_hemisphere_flip(joints)
        checked, total = checked + exact, total + len(joints) - 1
        error = np.linalg.norm(recovered - normalized[:-1], axis=-1)[:exact].max()
        worst = max(worst, error)
        assert error < 1e-5, f"{name}: the round trip moves a joint by {error * 1000:.4f} mm"
    assert checked > 0.9 * total, f"only {checked} of {total} frames come before a flip"  # the flip is rare
    print(f"worst round trip {worst * 1000:.5f} mm over {checked} frames")


def test_six_d_rotations_rebuild_the_ric_positions(clips):
    for name, joints in clips.items():
        features = representation.joints_to_features(joints)
        from_ric = representation.features_to_joints(features)
        from_rotations = representation.features_to_rotation_joints(features)
        error = np.linalg.norm(from_rotations - from_ric, axis=-1)[: frames_before_a_hemisphere_flip(joints)].max()
        assert error < 1e-5, f"{name}: 6-D FK lands {error * 1000:.4f} mm from the ric joints"


def test_contacts_are_off_in_flight_and_on_while_standing():
    for clip in ("jump", "run"):
        normalized = representation.normalize_joints(deepmimic.load_joints(clip))
        contacts = representation.joints_to_features(normalized)[:, representation.CONTACT_SLICE]
        feet_height = normalized[:-1, FEET, 1]
        flight = feet_height.min(axis=1) > 0.05
        assert flight.any(), f"{clip} should have frames with both feet in the air"
        assert not contacts[flight].any(), clip
        step = np.linalg.norm(normalized[1:, FEET] - normalized[:-1, FEET], axis=-1)
        planted = (step < 0.01) & (feet_height < 0.1)
        assert planted.any(), clip
        assert contacts[planted].all(), clip


def test_contact_threshold_is_squared_step_length():
    still = np.repeat(canonical.rest_positions()[None], 3, axis=0)
    still[2, canonical.LEFT_FOOT, 2] += 0.05  # 0.0025 m^2: over the 0.002 threshold
    np.testing.assert_array_equal(representation.foot_contacts(still), [[1, 1, 1, 1], [0, 0, 1, 1]])


def test_normalization_round_trip_and_feature_bias(clips):
    features = [representation.joints_to_features(j) for j in clips.values()]
    mean, std = representation.mean_std(features)
    assert mean.shape == std.shape == (representation.FEATURE_SIZE,) and np.all(std > 0)
    unbiased = np.concatenate(features).std(axis=0)
    assert std[3] == pytest.approx(unbiased[3] / 5, rel=1e-5)
    assert std[100] == pytest.approx(unbiased[representation.ROT_SLICE].mean(), rel=1e-5)
    normalized = representation.normalize(features[0], mean, std)
    np.testing.assert_allclose(representation.denormalize(normalized, mean, std), features[0], atol=1e-5)
    np.testing.assert_allclose(
        representation.feature_std_with_bias(np.ones(263))[[0, 3, 4, 258, 259, 262]], [0.2, 0.2, 1, 1, 0.2, 0.2]
    )


def test_bad_input_is_refused_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(frames, 22, 3\)"):
        representation.joints_to_features(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        representation.joints_to_features(np.zeros((1, 22, 3)))
    with pytest.raises(ValueError, match="NaN"):
        representation.joints_to_features(np.full((4, 22, 3), np.nan))
    with pytest.raises(ValueError, match=r"\(frames, 263\)"):
        representation.features_to_joints(np.zeros((5, 262)))
    with pytest.raises(ValueError, match=r"\(263,\)"):
        representation.feature_std_with_bias(np.ones(5))
