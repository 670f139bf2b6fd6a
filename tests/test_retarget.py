"""Retargeting in numpy (no bpy, no torch): mapping by name and by structure, transfer onto rigs
in T- and A-pose with random rolls on the demo dataset's real clips, foot locking, resampling,
inverse transfer. The same rigs are built as real armatures in test_retarget_blender.py."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from retarget import bvh, canonical, plausibility, rotations
from retarget.families import FAMILIES
from retarget.footlock import FOOT_JOINTS
from retarget.inverse import motion_from_bvh, pose_to_motion, posed_bones
from retarget.mapping import Mapping, auto_map, joint_positions, map_by_structure
from retarget.motion import CanonicalMotion
from retarget.resample import resample, sample_points
from retarget.skeleton import CANONICAL_TO_BLENDER, Skeleton
from retarget.transfer import transfer
from tests import retarget_rigs as rigs
from tests.retarget_checks import contact_sink, demo_clips, direction_errors, planted_drift, planted_height


@pytest.fixture(scope="module")
def clips(tmp_path_factory, shared_data):
    return demo_clips(tmp_path_factory.mktemp("demo_dataset"), shared_data)


def world_joints(skeleton, mapping, posed) -> np.ndarray:
    return skeleton.to_world(
        joint_positions(skeleton, mapping, *posed_bones(skeleton, mapping, posed.rotations, posed.root_location))
    )


@pytest.mark.parametrize("pose", ["T", "A"])
@pytest.mark.parametrize("family", sorted(rigs.FAMILIES))
def test_every_family_maps_by_name(family, pose):
    skeleton = rigs.skeleton(rigs.FAMILIES[family](), pose, roll_seed=1)
    found = auto_map(skeleton)
    assert found.family == rigs.MAPPED_AS[family]
    # Every joint the family names a bone for is found (a two-bone spine names no Spine1).
    assert found.unmapped() == [joint for joint in canonical.JOINT_NAMES if joint not in FAMILIES[found.family]]
    assert found.confidence == 1.0
    assert all(bone in skeleton.names for bone in found.bones.values() if bone)


@pytest.mark.parametrize("pose", ["T", "A"])
@pytest.mark.parametrize("family", sorted(set(rigs.FAMILIES) - rigs.STRUCTURE_DIFFERS))
def test_unfamiliar_names_map_by_structure_like_the_named_rig(family, pose):
    """Every family's rig with its bones renamed to meaningless words maps each joint onto the
    renamed twin of the bone its names give: extra root bones, bend/twist-split limbs, twist and
    corrective helpers, IK helper bones, CMU hip joints, Japanese names."""
    named, renamed = rigs.FAMILIES[family](), rigs.renamed(rigs.FAMILIES[family](), seed=len(family))
    twin = {old[0]: new[0] for old, new in zip(named, renamed)}
    by_names = auto_map(rigs.skeleton(named, pose, roll_seed=2))
    by_structure = auto_map(rigs.skeleton(renamed, pose, roll_seed=2))
    assert by_structure.family == "structure" and 0 < by_structure.confidence < 1
    assert by_structure.bones == {joint: twin.get(bone) for joint, bone in by_names.bones.items()}


@pytest.mark.parametrize("family", sorted(rigs.STRUCTURE_DIFFERS))
def test_structure_reads_rigs_whose_names_say_otherwise(clips, family):
    """Biped (thighs under the first spine link) and MMD (two body halves under the waist, D leg
    chains, leg IK on the floor) renamed: structure finds a mapping that carries the motion."""
    skeleton = rigs.skeleton(rigs.renamed(rigs.FAMILIES[family](), seed=3), "A", roll_seed=4)
    found = auto_map(skeleton)
    assert found.family == "structure" and not found.missing_essentials()
    errors = np.concatenate(
        [
            direction_errors(
                skeleton, found, world_joints(skeleton, found, transfer(clip.motion(), skeleton, found)), clip.joints
            ).ravel()
            for clip in clips
        ]
    )
    print(f"\n{family} by structure: direction error mean {errors.mean():.4f} max {errors.max():.4f} deg")
    assert errors.mean() < 2.0 and errors.max() < 5.0


def test_a_rig_without_legs_names_the_missing_bones():
    bones = [bone for bone in rigs.mixamo() if not any(part in bone[0] for part in ("UpLeg", "Leg", "Foot", "Toe"))]
    with pytest.raises(ValueError) as error:
        auto_map(rigs.skeleton(bones))
    message = str(error.value)
    print(f"\nessential-bones error: {message}")
    for joint in ("LeftUpLeg", "RightUpLeg", "LeftLeg", "RightLeg", "LeftFoot", "RightFoot"):
        assert joint in message
    assert "LeftArm" not in message.split("(by structure")[0]
    with pytest.raises(ValueError, match="no bone has two legs"):
        map_by_structure(rigs.skeleton(bones))


def test_mapping_round_trips_through_json(tmp_path):
    found = auto_map(rigs.skeleton(rigs.unreal(5)))
    edited = found.to_dict()
    edited["bones"]["LeftToe"] = None
    path = tmp_path / "mapping.json"
    Mapping.from_dict(edited).save(path)
    loaded = Mapping.load(path)
    assert loaded.bones == {**found.bones, "LeftToe": None} and loaded.family == "unreal5"
    assert json.loads(path.read_text())["unmapped"] == ["LeftToe"]
    with pytest.raises(ValueError, match="Tail"):
        Mapping.from_dict({"bones": {"Tail": "tail_01"}})
    with pytest.raises(ValueError, match="rig lacks"):
        Mapping.from_dict({"bones": {**found.bones, "Hips": "no_such_bone"}}).check(rigs.skeleton(rigs.unreal(5)))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a mapping JSON"):
        Mapping.load(path)


@pytest.mark.parametrize("pose", ["T", "A"])
def test_transfer_matches_bone_directions_on_every_family(clips, pose):
    report = []
    for family, build in sorted(rigs.RIGS.items()):
        skeleton = rigs.skeleton(build(), pose, roll_seed=3)
        found = auto_map(skeleton)
        errors = np.concatenate(
            [
                direction_errors(
                    skeleton,
                    found,
                    world_joints(skeleton, found, transfer(clip.motion(), skeleton, found)),
                    clip.joints,
                ).ravel()
                for clip in clips
            ]
        )
        report.append(f"{family} {pose}: mean {errors.mean():.4f} max {errors.max():.4f} deg")
        assert not np.isnan(errors).any()
        assert errors.mean() < 2.0 and errors.max() < 5.0, report[-1]
    print("\ndirection error over", len(clips), "clips:\n  " + "\n  ".join(report))


def test_hip_height_follows_the_rig_scale(clips):
    clip = next(clip for clip in clips if clip.name.startswith("aistpp"))
    small, tall = (rigs.skeleton(rigs.mixamo(), scale=scale) for scale in (1.0, 1.5))
    heights = [
        world_joints(rig, auto_map(rig), transfer(clip.motion(), rig, auto_map(rig)))[:, 0, 2] for rig in (small, tall)
    ]
    ratio = heights[1] / heights[0]
    print(f"\nhip height ratio on a 1.5x rig: {ratio.min():.4f}..{ratio.max():.4f}")
    assert np.allclose(ratio, 1.5, atol=1e-3)
    source = clip.joints[:, 0, 1] - clip.joints[:, canonical.LEFT_FOOT + canonical.RIGHT_FOOT, 1].min()
    assert np.corrcoef(heights[0], source)[0, 1] > 0.99


def test_in_place_keeps_the_hips_over_their_start(clips):
    rig = rigs.skeleton(rigs.unity())
    found = auto_map(rig)
    hips = world_joints(rig, found, transfer(clips[0].motion(), rig, found, in_place=True))[:, 0]
    assert np.abs(hips[:, :2] - hips[0, :2]).max() < 1e-9 and np.ptp(hips[:, 2]) > 0.1


def test_foot_lock_holds_planted_feet_where_the_motion_plants_them(clips):
    """Planted feet stay put, and at the height the real capture puts them: a contact flag is set
    while the foot still comes down, and pinning it there left it hovering (1.5 cm median on
    DeepMimic's walk, 7.5 cm on a walk from the demo model, against 0.1 and 3.2 cm unlocked). Nor
    does a pin go below where the motion puts its joint (a toe carried down with its lowered
    ankle went 10.9 cm lower on CMU 05_03; before either change, 6.5 cm on CMU 05_12)."""
    rig = rigs.skeleton(rigs.cmu(), "A", roll_seed=4)
    found = auto_map(rig)
    floor = float(rig.to_world(joint_positions(rig, found, rig.heads, rig.tails))[FOOT_JOINTS, 2].min())
    free_drift, locked_drift, heights, sinks = [], [], [], []
    for clip in clips:
        free, locked = (transfer(clip.motion(), rig, found, foot_lock=lock) for lock in (False, True))
        assert locked.contacts.any()
        free_joints, locked_joints = world_joints(rig, found, free), world_joints(rig, found, locked)
        free_drift.append(planted_drift(free_joints, free.contacts))
        locked_drift.append(planted_drift(locked_joints, locked.contacts))
        heights.append(
            (planted_height(free_joints, free.contacts, floor), planted_height(locked_joints, locked.contacts, floor))
        )
        sinks.append(contact_sink(free_joints, locked_joints, locked.contacts))
        print(f"{clip.name}: planted foot {100 * heights[-1][0]:.2f} cm up free, {100 * heights[-1][1]:.2f} cm locked")
    print(
        f"\nplanted-foot drift, worst clip: {100 * max(free_drift):.2f} cm free, {100 * max(locked_drift):.4f} cm locked"
    )
    assert max(locked_drift) < 0.01 < max(free_drift)
    assert all(locked <= free + 0.002 for free, locked in heights)
    print(f"lowest a locked foot joint goes below the free motion's lowest: {100 * min(sinks):.1f} cm")
    assert min(sinks) > -0.03


def test_contacts_come_from_the_joints_without_features(clips):
    rig = rigs.skeleton(rigs.smpl())
    found = auto_map(rig)
    walk = next(clip for clip in clips if len(clip.joints) > 40)
    locked = transfer({"positions": walk.joints, "fps": 20.0}, rig, found, foot_lock=True)
    assert locked.contacts.any() and planted_drift(world_joints(rig, found, locked), locked.contacts) < 0.01


def test_resample_to_the_scene_rate(clips):
    rig = rigs.skeleton(rigs.unreal(4))
    found = auto_map(rig)
    posed = transfer(clips[0].motion(), rig, found)
    at_30 = resample(posed, 30.0)
    assert at_30.frames == len(sample_points(posed.frames, 20.0, 30.0)) == int((posed.frames - 1) * 1.5) + 1
    bone = found.bones["LeftLeg"]
    assert np.allclose(
        at_30.rotations[bone][::3], posed.rotations[bone][::2][: len(at_30.rotations[bone][::3])], atol=1e-9
    )
    halfway = rotations.slerp(posed.rotations[bone][0], posed.rotations[bone][1], 2 / 3)
    assert rotations.angle_between(at_30.rotations[bone][1], halfway) < 1e-9
    assert np.allclose(
        at_30.root_location[1], posed.root_location[0] + (posed.root_location[1] - posed.root_location[0]) * 2 / 3
    )
    assert np.allclose(np.linalg.norm(at_30.rotations[bone], axis=-1), 1.0)
    assert resample(posed, 20.0) is posed
    with pytest.raises(ValueError, match="positive"):
        resample(posed, 0.0)


@pytest.mark.parametrize("family", ["mixamo", "unreal5", "cmu"])
def test_inverse_then_forward_gives_back_the_pose(clips, family):
    """A rig animated by transfer (feet locked) is read back to canonical motion and transferred
    again: every written bone gets the same rotation, the root the same location."""
    rig = rigs.skeleton(rigs.FAMILIES[family](), "A", roll_seed=5)
    found = auto_map(rig)
    worst = 0.0
    for clip in clips:
        original = transfer(clip.motion(), rig, found, foot_lock=True)
        motion = pose_to_motion(rig, found, original.rotations, original.root_location, original.fps)
        again = transfer(motion, rig, found, align=False, ground=False)
        worst = max(
            worst,
            max(
                np.degrees(rotations.angle_between(original.rotations[b], again.rotations[b])).max()
                for b in original.rotations
            ),
        )
        assert np.abs(again.root_location - original.root_location).max() < 1e-5
    print(f"\ninverse then forward on {family}: worst bone {worst:.5f} deg")
    assert worst < 1.0


def test_inverse_gives_canonical_proportions(clips):
    rig = rigs.skeleton(rigs.vrm(), scale=0.8)
    found = auto_map(rig)
    posed = transfer(clips[1].motion(), rig, found)
    motion = pose_to_motion(rig, found, posed.rotations, posed.root_location, posed.fps)
    legs = np.linalg.norm(motion.positions[:, 4] - motion.positions[:, 1], axis=-1) + np.linalg.norm(
        motion.positions[:, 7] - motion.positions[:, 4], axis=-1
    )
    assert np.allclose(legs, canonical.LEG_LENGTH, atol=1e-4)
    assert abs(motion.positions[0, canonical.LEFT_FOOT + canonical.RIGHT_FOOT, 1].min()) < 0.1


def test_the_canonical_skeleton_takes_motion_unchanged(clips):
    """The template skeleton as a rig (Skeleton.from_canonical) is the source's own body: the
    joints land where the source has them, turned into Blender axes and moved as one."""
    dance = next(clip for clip in clips if clip.name.startswith("aistpp"))
    rig = Skeleton.from_canonical()
    found = auto_map(rig)
    assert found.family == "humanml3d"
    joints = world_joints(rig, found, transfer(dance.motion(), rig, found))
    moved = joints - dance.joints @ CANONICAL_TO_BLENDER.T
    print(
        f"\ncanonical rig: joints within {np.abs(moved - moved[0, 0]).max() * 1000:.4f} mm of the source, moved as one"
    )
    assert np.abs(moved - moved[0, 0]).max() < 1e-5


def test_a_bvh_of_another_family_reads_into_canonical_motion(clips, tmp_path):
    """A BVH whose joints carry Mixamo names comes in through the same mapping as a rig."""
    dance = next(clip for clip in clips if clip.name.startswith("aistpp"))
    clip = bvh.canonical_clip(CanonicalMotion.from_positions(dance.joints[:30]))
    clip.names = ["mixamorig:" + name.replace("Toe", "ToeBase") for name in clip.names]
    bvh.write_clip(tmp_path / "mixamo.bvh", clip)
    motion = motion_from_bvh(tmp_path / "mixamo.bvh")
    error = np.abs(motion.positions - dance.joints[:30]).max()
    print(f"\nMixamo-named BVH back to canonical joints within {error * 1000:.4f} mm")
    assert error < 1e-4


@pytest.mark.parametrize("family", sorted(rigs.RIGS))
def test_every_rig_holds_together_under_the_motion(clips, family):
    """The plausibility check passes every rig's own mapping on real clips, feet locked."""
    rig = rigs.skeleton(rigs.RIGS[family](), "A", roll_seed=6)
    found = auto_map(rig)
    for clip in clips[::4]:
        plausibility.check(rig, found, transfer(clip.motion(), rig, found, foot_lock=True))


@pytest.mark.parametrize(
    ("family", "lower_body"), [("mmd", "下半身"), ("daz_genesis8", "pelvis"), ("character_creator", "CC_Base_Pelvis")]
)
def test_a_lower_body_bone_as_hips_is_flagged(clips, family, lower_body):
    """The plausible wrong choice: the bone the legs hang from, not the one carrying the spine too."""
    walk = next(clip for clip in clips if clip.name == "deepmimic_walk")
    rig = rigs.skeleton(rigs.FAMILIES[family](), "T", roll_seed=0)
    wrong = Mapping({**auto_map(rig).bones, "Hips": lower_body})
    with pytest.raises(plausibility.ImplausibleMapping) as flagged:
        plausibility.check(rig, wrong, transfer(walk.motion(), rig, wrong))
    message = str(flagged.value)
    print(f"\n{family}, Hips = {lower_body}: {message}")
    assert f"Hips ('{lower_body}')" in message and "Spine (" in message
    hips_to_head = re.search(r"Hips to Head goes from ([\d.]+) m at rest to ([\d.]+) m", message)
    assert hips_to_head and float(hips_to_head[2]) - float(hips_to_head[1]) > 1.0  # the walk leaves the body behind
    assert plausibility.motion_problems(
        rig, wrong, transfer(walk.motion(), rig, wrong)
    )  # the motion alone shows it too


@pytest.mark.parametrize(
    ("family", "left", "right"),
    [("unreal_manny", "LeftUpLeg", "RightUpLeg"), ("mixamo", "LeftArm", "RightArm"), ("mmd", "LeftHand", "RightHand")],
)
def test_crossed_sides_are_flagged(family, left, right):
    for pose in ("T", "A"):
        rig = rigs.skeleton(rigs.FAMILIES[family](), pose, roll_seed=0)
        found = auto_map(rig)
        plausibility.check(rig, found)
        crossed = Mapping({**found.bones, left: found.bones[right], right: found.bones[left]})
        with pytest.raises(plausibility.ImplausibleMapping, match=f"{left} .* lies on the rig's right of {right}"):
            plausibility.check(rig, crossed)
