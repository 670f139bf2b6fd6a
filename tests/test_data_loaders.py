"""Real motion loaders: DeepMimic clips and the AIST++ take come out as plausible canonical joints."""

from __future__ import annotations

import numpy as np
import pytest

from engine.datasets import WALK_BEFORE_WAVE_SECONDS, WAVE_TAKE, aistpp, cmu, compose, deepmimic, real_clips
from engine.datasets.placement import facing_directions
from retarget import canonical

LEFT_SIDE = [1, 13, 16]  # left hip, collar, shoulder
RIGHT_SIDE = [2, 14, 17]
FEET = [7, 8, 10, 11]


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(joints[:, 1:] - joints[:, canonical.PARENTS[1:]], axis=-1)


def check_canonical_clip(joints: np.ndarray, name: str) -> None:
    assert joints.ndim == 3 and joints.shape[1:] == (22, 3), name
    assert np.isfinite(joints).all(), name
    lengths = bone_lengths(joints)
    # Rigid skeleton: every bone keeps its length through the clip.
    assert lengths.std(axis=0).max() < 1e-6, name
    # Plausible human bones: thighs and shins 30-50 cm, no bone longer than that.
    assert lengths.max() < 0.5 and lengths[:, [3, 4, 6, 7]].min() > 0.3, name
    # Placed on the floor, at the origin, facing +Z with the left side at +X.
    assert joints[..., 1].min() == pytest.approx(0.0, abs=1e-9), name
    assert np.allclose(joints[0, 0, [0, 2]], 0.0, atol=1e-9), name
    assert facing_directions(joints[:1])[0] == pytest.approx([0.0, 0.0, 1.0], abs=1e-6), name
    assert (joints[0, LEFT_SIDE, 0] > joints[0, RIGHT_SIDE, 0]).all(), name


def test_deepmimic_lists_the_humanoid_clips():
    names = deepmimic.clip_names()
    assert {"walk", "run", "backflip", "cartwheel", "getup_faceup", "spinkick"} <= set(names)
    assert len(names) == 15 and not any("walker" in n or "laikago" in n for n in names)


def test_deepmimic_clips_are_plausible_canonical_motion():
    for name in deepmimic.clip_names():
        check_canonical_clip(deepmimic.load_joints(name), name)


def test_deepmimic_walk_is_grounded_forward_walking_at_20fps():
    joints = deepmimic.load_joints("walk")
    clip = deepmimic.read_clip(deepmimic.clip_path("walk"))
    # 20 fps over the clip's own duration (38 frames of 1/30 s).
    assert len(joints) == int(np.floor(clip.times[-1] * canonical.FPS + 1e-6)) + 1
    lowest_foot = joints[:, FEET, 1].min(axis=1)
    assert np.median(lowest_foot) < 0.03 and lowest_foot.max() < 0.1
    travel = joints[-1, 0] - joints[0, 0]
    speed = np.linalg.norm(travel[[0, 2]]) / (len(joints) / canonical.FPS)
    assert travel[2] > 0.8 * np.linalg.norm(travel[[0, 2]])  # mostly straight ahead, +Z
    assert 0.8 < speed < 1.8  # a walking pace in m/s
    # Standing tall: the head joint sits 1.3-1.5 m up (the humanoid is about 1.62 m to the skull top).
    assert 1.3 < np.median(joints[:, 15, 1]) < 1.5
    assert deepmimic.standing_height() == pytest.approx(1.62, abs=0.02)


def test_deepmimic_looping_clips_chain_cycles_to_the_requested_length():
    one = deepmimic.load_joints("run")
    chained = deepmimic.load_joints("run", min_seconds=2.0)
    assert len(chained) >= 2.0 * canonical.FPS > len(one)
    # Whole cycles continue the run: the first cycle is unchanged (up to where the floor is put),
    # and the pelvis keeps moving forward.
    floor_shift = chained[0, 0, 1] - one[0, 0, 1]
    assert np.allclose(chained[: len(one)] - [0.0, floor_shift, 0.0], one, atol=1e-6)
    forward = np.diff(chained[:, 0, 2])
    assert (forward > 0).mean() > 0.9
    # No jump at the cycle seams: no step is larger than the largest step within one cycle.
    steps = np.linalg.norm(np.diff(chained, axis=0), axis=-1).max()
    assert steps <= 1.05 * np.linalg.norm(np.diff(one, axis=0), axis=-1).max()


def test_deepmimic_rejects_unknown_clip():
    with pytest.raises(ValueError, match="unknown DeepMimic clip"):
        deepmimic.load_joints("moonwalk")


def test_aistpp_take_is_plausible_dance_at_20fps(shared_data):
    path = shared_data / "aistpp_gBR_sBM_cAll_d04_mBR0_ch01.pkl"
    joints = aistpp.load_joints(path)
    assert len(joints) == 720 // 3
    check_canonical_clip(joints, path.name)
    # The bones are the HumanML3D normalisation skeleton's.
    assert bone_lengths(joints)[0] == pytest.approx(np.linalg.norm(canonical.OFFSETS[1:], axis=-1), abs=1e-6)
    lowest_foot = joints[:, FEET, 1].min(axis=1)
    assert np.median(lowest_foot) < 0.1
    assert 1.3 < np.median(joints[:, 15, 1]) < 1.6  # upright dancer, head joint height


def test_aistpp_rejects_other_pickles(tmp_path):
    import pickle

    path = tmp_path / "not_a_take.pkl"
    path.write_bytes(pickle.dumps({"poses": np.zeros((3, 72))}))
    with pytest.raises(ValueError, match="missing"):
        aistpp.load_joints(path)


def test_real_clips_yields_every_source(shared_data):
    from engine.datasets import cmu_segments

    names = [name for name, _ in real_clips(shared_data)]
    assert len(names) == 18 + len(cmu_segments.SEGMENTS)
    assert "cmu_111_37" in names and "composed_walk_wave" in names
    assert "deepmimic_walk" in names and "aistpp_gBR_sBM_cAll_d04_mBR0_ch01" in names


def test_cmu_wave_take_is_plausible_and_the_right_forearm_is_up_then_lowered():
    assert cmu.take_names() == ["111_37"]
    joints = cmu.load_joints("111_37")
    check_canonical_clip(joints, "cmu_111_37")
    assert len(joints) == 54  # 325 frames at 120 fps, every sixth
    right_wrist, right_elbow, left_wrist, left_elbow = joints[:, 21], joints[:, 19], joints[:, 20], joints[:, 18]
    forearm_up = right_wrist[:, 1] - right_elbow[:, 1]
    assert (forearm_up[:44] > 0.1).all() and forearm_up[-1] < 0  # up from the start, lowered at the end
    assert (left_wrist[:, 1] < left_elbow[:, 1]).all()  # the other arm hangs
    assert np.linalg.norm(joints[-1, 0, [0, 2]]) < 0.1  # stands in place
    with pytest.raises(ValueError, match="unknown CMU take"):
        cmu.load_joints("01_01")


def test_composed_walk_and_wave_walks_then_stands_and_waves():
    walk = deepmimic.load_joints("walk", min_seconds=WALK_BEFORE_WAVE_SECONDS)
    wave = cmu.load_joints(WAVE_TAKE)
    joints = compose.compose(walk, wave)
    assert len(walk) - compose.CUT_SEARCH_FRAMES < len(joints) - len(wave) - compose.BLEND_FRAMES <= len(walk)

    # The wave is the take itself on the canonical skeleton, only turned and moved: every frame
    # keeps its joint distances; and the whole clip is one rigid body.
    def distances(motion):
        return np.linalg.norm(motion[:, :, None] - motion[:, None], axis=-1)

    assert np.allclose(distances(joints[-len(wave) :]), distances(wave), atol=1e-9)
    check_canonical_clip(joints, "composed_walk_wave")
    walked = joints[-len(wave), 0, [0, 2]] - joints[0, 0, [0, 2]]
    assert np.linalg.norm(walked) > 2.0  # a few metres of walking first
    tail = joints[-len(wave) :]
    assert np.abs(np.diff(tail[:, 0, [0, 2]], axis=0)).max() < 0.02  # then standing
    assert (tail[:44, 21, 1] > tail[:44, 19, 1] + 0.1).all()  # with the right forearm up
    steps = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max()
    assert steps < 0.25  # no jump anywhere, blend included (20 fps)


def test_a_daz_named_bvh_take_converts_back_to_its_motion(tmp_path):
    """A take written as the Daz-friendly CMU release writes it (Genesis 2 names, centimetres, a
    T-pose before the first frame) comes back through the family mapping as the same motion."""
    from engine.datasets import cmu_takes
    from engine.datasets.placement import on_canonical_skeleton, place_on_floor_facing_z
    from retarget import bvh
    from retarget.motion import CanonicalMotion

    walk = place_on_floor_facing_z(on_canonical_skeleton(deepmimic.load_joints("walk")))
    clip = bvh.canonical_clip(CanonicalMotion.from_positions(walk))
    daz = {
        "Hips": "hip",
        "Spine": "abdomen",
        "Spine1": "abdomen2",
        "Spine2": "chest",
        "Neck": "neck",
        "Head": "head",
        **{
            f"{side}{part}": side[0].lower() + name
            for side in ("Left", "Right")
            for part, name in (
                ("UpLeg", "Thigh"),
                ("Leg", "Shin"),
                ("Foot", "Foot"),
                ("Toe", "Toe"),
                ("Shoulder", "Collar"),
                ("Arm", "Shldr"),
                ("ForeArm", "ForeArm"),
                ("Hand", "Hand"),
            )
        },
    }
    clip.names = [daz[name] for name in clip.names]
    clip.offsets, clip.translations = clip.offsets * 100, clip.translations * 100
    clip.end_sites = {joint: offset * 100 for joint, offset in clip.end_sites.items()}
    clip.rotations = np.concatenate([np.tile([1.0, 0.0, 0.0, 0.0], (1, len(clip.names), 1)), clip.rotations])
    clip.translations = np.concatenate([clip.translations[:1], clip.translations])
    bvh.write_clip(tmp_path / "99_01.bvh", clip)

    joints, problems = cmu_takes.convert_take(tmp_path / "99_01.bvh")
    assert problems == []
    assert joints.shape == walk.shape  # the T-pose frame is gone
    error = np.abs(joints - walk).max()
    print(f"\nDaz-named BVH take back to the canonical walk within {error * 1000:.2f} mm")
    assert error < 2e-3


def test_the_cmu_segments_are_plausible_canonical_motion():
    from engine.datasets import cmu_segments, cmu_takes

    segments = cmu_takes.load_segments()
    assert set(segments) == set(cmu_segments.BY_NAME) and len(segments) >= 90
    seconds = sum(len(joints) for joints in segments.values()) / canonical.FPS
    print(f"\n{len(segments)} CMU segments, {seconds:.1f} s")
    assert seconds > 500
    for name, joints in segments.items():
        assert len(joints) >= 40, name
        assert cmu_takes.check_take(joints) == [], name
        lengths = bone_lengths(joints)
        assert lengths.std(axis=0).max() < 1e-6 and np.allclose(
            lengths[0], bone_lengths(canonical.rest_positions()[None])[0]
        ), name
        assert joints[..., 1].min() == pytest.approx(0.0, abs=1e-3) and np.allclose(
            joints[0, 0, [0, 2]], 0.0, atol=1e-5
        ), name
        assert facing_directions(joints[:1])[0] == pytest.approx([0.0, 0.0, 1.0], abs=1e-2), name
    # What the captions say, measured: walks go forward, the backward dribble goes back, the
    # sideways one to the performer's left (+X), the vertical jumps leave the floor in place.
    assert all(segments[s.name][-1, 0, 2] > 1.5 for s in cmu_segments.SEGMENTS if s.captions == "walk")
    assert all(segments[s.name][-1, 0, 2] < -1.5 for s in cmu_segments.SEGMENTS if s.captions == "dribble backward")
    assert all(segments[s.name][-1, 0, 0] > 1.5 for s in cmu_segments.SEGMENTS if s.captions == "dribble sideways")
    for segment in (s for s in cmu_segments.SEGMENTS if s.kind == "jump up"):
        joints = segments[segment.name]
        assert joints[:, FEET, 1].min(axis=1).max() > 0.15 and np.linalg.norm(joints[-1, 0, [0, 2]]) < 0.5, segment.name
