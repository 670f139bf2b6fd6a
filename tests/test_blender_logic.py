"""The add-on's plain logic (no Blender): key layout, naming, spans and seams, stored motion."""

from __future__ import annotations

import numpy as np
import pytest

from mosa_blender import spans
from mosa_blender.tracks import PoseTracks, action_name, flat_keys
from retarget import canonical, packed, rotations


def test_flat_keys_interleave_frames_and_values():
    keys = flat_keys(np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0]))
    assert keys.dtype == np.float32
    np.testing.assert_array_equal(keys, [1, 0.5, 2, -1, 3, 2])
    with pytest.raises(ValueError, match="matching 1-D"):
        flat_keys(np.zeros(3), np.zeros(4))


def test_pose_tracks_list_one_channel_per_fcurve_and_check_shapes():
    tracks = PoseTracks(
        frames=[1, 2], rotations={"hips": np.tile([1, 0, 0, 0], (2, 1))}, locations={"hips": np.zeros((2, 3))}
    )
    paths = [(path, index) for path, index, _ in tracks.channels()]
    assert paths[:4] == [('pose.bones["hips"].rotation_quaternion', i) for i in range(4)]
    assert paths[4:] == [('pose.bones["hips"].location', i) for i in range(3)]
    with pytest.raises(ValueError, match="bone 'hips'.*expected \\(2, 4\\)"):
        PoseTracks(frames=[1, 2], rotations={"hips": np.zeros((3, 4))})


def test_action_name_carries_prompt_and_seed_within_blender_limit():
    assert action_name("a person   walks", 3) == "MoSa: a person walks (seed 3)"
    long_name = action_name("a person walks forward and then turns around " * 5, 12)
    assert len(long_name.encode()) <= 63 and long_name.endswith("... (seed 12)")


def test_default_span_prefers_preview_range_then_selected_keys():
    assert spans.default_span((40, 80), [1.0, 5.0]) == (40, 80)
    assert spans.default_span(None, [12.4, 30.0, 20.0]) == (12, 30)
    assert spans.default_span(None, []) is None


def test_canonical_mask_maps_scene_frames_at_scene_fps_to_20_fps():
    # Action starts at frame 1 at 30 fps: frames 31..61 are seconds 1..2, canonical frames 20..40.
    mask = spans.canonical_mask((31, 61), action_start=1, scene_fps=30, canonical_frames=80)
    assert np.flatnonzero(mask).tolist() == list(range(20, 41))
    with pytest.raises(ValueError, match="outside the motion"):
        spans.canonical_mask((500, 600), action_start=1, scene_fps=30, canonical_frames=80)
    with pytest.raises(ValueError, match="ends before it starts"):
        spans.canonical_mask((60, 30), action_start=1, scene_fps=30, canonical_frames=80)


def test_seam_weights_ramp_inside_the_span_only():
    inside = np.zeros(20, dtype=bool)
    inside[5:15] = True
    weights = spans.seam_weights(inside, blend_frames=3)
    assert np.all(weights[~inside] == 0)
    np.testing.assert_allclose(weights[5:9], [0.15625, 0.5, 0.84375, 1.0])
    np.testing.assert_allclose(weights[11:15], [1.0, 0.84375, 0.5, 0.15625])


def test_seam_width_grows_with_the_gap_within_bounds():
    assert spans.seam_width(0.01, 0.025, minimum=4, maximum=20) == 4
    assert spans.seam_width(0.3, 0.025, minimum=4, maximum=20) == 17
    assert spans.seam_width(5.0, 0.025, minimum=4, maximum=20) == 20
    assert spans.seam_width(0.3, 0.0, minimum=4, maximum=20) == 20


def test_blended_seam_is_no_jumpier_than_the_motions_themselves():
    frames = np.arange(40)
    source = rotations.from_axis_angle(np.stack([0.02 * frames, 0 * frames, 0 * frames], 1))
    generated = rotations.from_axis_angle(np.stack([0 * frames, 0.02 * frames + 1.0, 0 * frames], 1))
    inside = (frames >= 10) & (frames < 30)
    blended = np.where(inside[:, None], spans.blend_rotations(source, generated, spans.seam_weights(inside, 8)), source)
    step = rotations.angle_between(blended[1:], blended[:-1])
    unblended = np.where(inside[:, None], generated, source)
    assert rotations.angle_between(unblended[10], unblended[9]) > 0.9  # the jump blending removes
    assert step[9] < 0.08 and step[29] < 0.08  # the seams themselves barely move (gaps of 1.1 and 1.6)
    assert step.max() < 1.5 * 1.6 / 9 + 0.03  # smoothstep: at most 1.5x the mean step over the 8+1 frames
    np.testing.assert_array_equal(blended[~inside], source[~inside])


def test_stored_motion_round_trips_compactly():
    frames = 60
    motion = {
        "fps": canonical.FPS,
        "joint_names": list(canonical.JOINT_NAMES),
        "parents": list(canonical.PARENTS),
        "positions": np.random.default_rng(0).normal(size=(frames, 22, 3)).tolist(),
        "rotations": rotations.normalize(np.random.default_rng(1).normal(size=(frames, 22, 4))),
        "root_translation": np.zeros((frames, 3)),
    }
    text = packed.encode_motion(motion)
    back = packed.decode_motion(text)
    assert back["fps"] == 20.0 and back["joint_names"] == list(canonical.JOINT_NAMES)
    np.testing.assert_allclose(back["positions"], np.asarray(motion["positions"], dtype=np.float32))
    np.testing.assert_array_equal(back["parents"], canonical.PARENTS)
    assert len(text) < 60 * 22 * 7 * 4 * 4 / 3 * 1.1  # no bigger than the float32 arrays in base64
    with pytest.raises(ValueError, match="lacks"):
        packed.encode_motion({"fps": 20})
    with pytest.raises(ValueError, match="not a base64 .npz"):
        packed.decode_motion("not base64!")
