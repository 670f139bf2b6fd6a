"""Retargeting onto real armatures in real bpy (import bpy, no torch).

Every naming family is built as an armature from its bone names on human proportions, in T-pose
and A-pose with random rolls, next to Rigify's own human metarig, its generated control rig and
a DEF-only export of it, and Rigify's basic human. Each maps with no manual step; motion from the
demo dataset goes on through armature_io and is measured on the bones Blender evaluates.
"""

from __future__ import annotations

from pathlib import Path

import bpy

# isort: split
import addon_utils  # Blender's own module, importable once bpy is loaded (alone, this file failed to import)
import numpy as np
import pytest
from mathutils import Matrix

from mosa_blender import armature_io
from retarget import plausibility, rotations
from retarget.inverse import motion_from_bones
from retarget.mapping import auto_map, joint_positions, map_by_structure
from retarget.transfer import transfer
from tests import retarget_rigs as rigs
from tests import rigify_human
from tests.retarget_checks import demo_clips, direction_errors, planted_drift

CLIPS = ("deepmimic_walk", "deepmimic_cartwheel", "deepmimic_dance_a", "aistpp_gBR_sBM_cAll_d04_mBR0_ch01")
EVERY_NTH_FRAME = 8  # a few frames of each clip for the direction checks
# Families built in both poses; the others (the numpy tests cover both) in A-pose only, to keep this quick.
BOTH_POSES = {
    "mixamo",
    "mixamo1",
    "unreal4",
    "unreal5",
    "unity",
    "vrm",
    "smpl",
    "smplx",
    "cmu",
    "humanml3d",
    "unfamiliar",
}


# ---------------------------------------------------------------- building armatures


def armature_from_bones(name: str, bones, pose: str, roll_seed: int, scale: float = 1.0, fbx_axes: bool = False):
    """A real armature from a retarget_rigs bone list. fbx_axes: the way an FBX from Mixamo
    arrives, bones in centimetres with Y up inside an object turned 90 degrees about X, scale 0.01."""
    names, heads, tails, parents, rolls = rigs.rig_arrays(bones, pose, roll_seed, scale)
    if fbx_axes:
        z_up_to_y_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
        heads, tails = 100 * heads @ z_up_to_y_up.T, 100 * tails @ z_up_to_y_up.T
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    if fbx_axes:
        obj.rotation_euler = (np.pi / 2, 0.0, 0.0)
        obj.scale = (0.01, 0.01, 0.01)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    edit_bones = []
    for bone_name, head, tail, roll in zip(names, heads, tails, rolls):
        bone = data.edit_bones.new(bone_name)
        bone.head, bone.tail, bone.roll = head.tolist(), tail.tolist(), float(roll)
        edit_bones.append(bone)
    for bone, parent in zip(edit_bones, parents):
        if parent >= 0:
            bone.parent = edit_bones[parent]
            bone.use_connect = bool(np.allclose(bone.head, edit_bones[parent].tail))
    bpy.ops.object.mode_set(mode="OBJECT")
    bpy.context.view_layer.update()
    return obj


def rigify_rigs(rigify_file: Path) -> dict:
    """Rigify's human metarig, the rig it generates (limbs switched to FK, the controls transfer
    writes), a DEF-only copy of that rig (what a game export keeps) and the basic human."""
    metarig, generated = rigify_human.append(rigify_file)
    metarig.hide_viewport = metarig.hide_render = False  # the demo hides it; here it is posed too
    for limb in ("upper_arm_parent.L", "upper_arm_parent.R", "thigh_parent.L", "thigh_parent.R"):
        generated.pose.bones[limb]["IK_FK"] = 1.0
    deform_only = generated.copy()
    deform_only.data = generated.data.copy()
    deform_only.name = "rig_DEF"
    bpy.context.scene.collection.objects.link(deform_only)
    bpy.ops.object.select_all(action="DESELECT")
    bpy.context.view_layer.objects.active = deform_only
    for pose_bone in deform_only.pose.bones:
        while pose_bone.constraints:
            pose_bone.constraints.remove(pose_bone.constraints[0])
    bpy.ops.object.mode_set(mode="EDIT")
    edit_bones = deform_only.data.edit_bones
    for bone in list(edit_bones):
        if not bone.name.startswith("DEF-"):
            edit_bones.remove(bone)
    # Rigify hangs thighs, collars and upper arms off helper bones; an export re-parents them.
    for side in ("L", "R"):
        for child, parent in (
            (f"DEF-thigh.{side}", "DEF-spine"),
            (f"DEF-shoulder.{side}", "DEF-spine.003"),
            (f"DEF-upper_arm.{side}", f"DEF-shoulder.{side}"),
        ):
            edit_bones[child].parent = edit_bones[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_basic_human_metarig_add()
    basic = bpy.context.object
    return {"rigify_metarig": metarig, "rigify_controls": generated, "rigify_def": deform_only, "basic_human": basic}


# ---------------------------------------------------------------- posing and reading back


def evaluated_joints(obj, skeleton, mapping) -> np.ndarray:
    """The canonical joints (22, 3) in world space on the bones as Blender evaluated them."""
    bones = obj.pose.bones
    heads = np.array([np.array(obj.matrix_world @ bones[name].head) for name in skeleton.names])
    tails = np.array([np.array(obj.matrix_world @ bones[name].tail) for name in skeleton.names])
    return joint_positions(skeleton, mapping, heads, tails)


def play(obj, skeleton, mapping, posed) -> np.ndarray:
    """Apply every frame of a transfer result through armature_io; world joints (T, 22, 3)."""
    joints = []
    for frame in range(posed.frames):
        armature_io.apply_pose(obj, posed, frame)
        bpy.context.view_layer.update()
        joints.append(evaluated_joints(obj, skeleton, mapping))
    return np.array(joints)


def key_animation(obj, posed) -> list[int]:
    """Keyframe a transfer result into the armature's action, one key per frame from frame 1."""
    frames = list(range(1, posed.frames + 1))
    for frame in range(posed.frames):
        armature_io.apply_pose(obj, posed, frame)
        for name in posed.rotations:
            obj.pose.bones[name].keyframe_insert("rotation_quaternion", frame=frames[frame])
        obj.pose.bones[posed.root_bone].keyframe_insert("location", frame=frames[frame])
    return frames


def world_orientations(obj, names: list[str]) -> np.ndarray:
    """(bones, 4) world orientations of these pose bones, as Blender evaluated them."""
    rotation = np.array(obj.matrix_world.to_3x3().normalized())
    return np.array(
        [rotations.from_matrix(rotation @ np.array(obj.pose.bones[name].matrix.to_3x3())) for name in names]
    )


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clips(tmp_path_factory, shared_data):
    every = {clip.name: clip for clip in demo_clips(tmp_path_factory.mktemp("demo_dataset"), shared_data)}
    return [every[name] for name in CLIPS]


@pytest.fixture(scope="module")
def armatures(rigify_file):
    """Every test armature, built once: (family, pose) -> object."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = {
        (family, pose): armature_from_bones(f"{family}_{pose}", build(), pose, roll_seed=11 + k)
        for k, (family, build) in enumerate(sorted(rigs.RIGS.items()))
        for pose in (("T", "A") if family in BOTH_POSES else ("A",))
    }
    built["mixamo", "fbx"] = armature_from_bones(
        "mixamo_fbx", rigs.mixamo(), "T", roll_seed=5, scale=1.2, fbx_axes=True
    )
    built.update({(family, "rest"): obj for family, obj in rigify_rigs(rigify_file).items()})
    yield built
    bpy.ops.wm.read_factory_settings(use_empty=True)


def mapped(obj):
    skeleton = armature_io.skeleton_from_armature(obj)
    return skeleton, auto_map(skeleton)


# ---------------------------------------------------------------- tests


def test_every_rig_maps_automatically(armatures):
    expected = {
        **rigs.MAPPED_AS,
        "rigify_metarig": "rigify_metarig",
        "rigify_controls": "rigify_controls",
        "rigify_def": "rigify_def",
        "basic_human": "rigify_metarig",
    }
    lines = []
    for (family, pose), obj in sorted(armatures.items()):
        skeleton, found = mapped(obj)
        lines.append(
            f"{family} {pose}: {len(skeleton)} bones -> {found.family}, confidence {found.confidence:.2f}, "
            f"unmapped {found.unmapped()}"
        )
        assert found.family == expected[family], lines[-1]
        assert not found.missing_essentials()
    print("\n" + "\n".join(lines))


def test_rigifys_animal_metarigs_are_refused_as_not_human():
    """Rigify's cat maps by name (its legs and spine carry human names) and its bird by structure;
    both used to be stood up as humans without a word. Every animal Rigify ships is refused, each
    saying why, before the engine is asked for anything."""
    addon_utils.enable("rigify", default_set=True)
    refusals = {}
    for kind in ("cat", "bird", "wolf", "horse", "shark", "basic_quadruped"):
        getattr(bpy.ops.object, f"armature_{kind}_metarig_add")()
        metarig = bpy.context.object
        skeleton = armature_io.skeleton_from_armature(metarig)
        with pytest.raises(ValueError, match="two-legged human") as refused:
            plausibility.check(skeleton, auto_map(skeleton))
        refusals[kind] = str(refused.value)
        bpy.data.objects.remove(metarig)
    assert "leans 91 degrees from straight up" in refusals["cat"]
    assert "leans 48 degrees from straight up" in refusals["bird"]


def test_structure_alone_finds_the_same_bones(armatures):
    """Reading hierarchy and rest geometry only (names ignored) gives the bones the names give,
    Rigify's metarigs (face, heel, breast and pelvis bones) included."""
    for (family, pose), obj in sorted(armatures.items()):
        if family == "rigify_controls" or family in rigs.STRUCTURE_DIFFERS:
            continue  # controls hang off helper bones: the hierarchy is no skeleton; the others are read in numpy
        skeleton, by_names = mapped(obj)
        assert map_by_structure(skeleton).bones == by_names.bones, f"{family} {pose}"


def test_motion_follows_the_source_on_every_rig(armatures, clips):
    """World direction of every mapped bone on the evaluated armature against the source."""
    lines, worst_mean, worst_max = [], 0.0, 0.0
    for (family, pose), obj in sorted(armatures.items()):
        skeleton, found = mapped(obj)
        errors = []
        for clip in clips:
            frames = slice(0, None, EVERY_NTH_FRAME)
            posed = armature_io.follow_constraints(obj, skeleton, transfer(clip.motion(frames), skeleton, found))
            errors.append(
                direction_errors(skeleton, found, play(obj, skeleton, found, posed), clip.joints[frames]).ravel()
            )
        errors = np.concatenate(errors)
        lines.append(
            f"{family} {pose}: mean {errors.mean():.4f} max {errors.max():.4f} deg over {errors.size} bone-frames"
        )
        assert not np.isnan(errors).any(), lines[-1]
        assert errors.mean() < 2.0 and errors.max() < 5.0, lines[-1]
        worst_mean, worst_max = max(worst_mean, errors.mean()), max(worst_max, errors.max())
    print(
        "\ndirection error in Blender:\n" + "\n".join(lines) + f"\nworst: mean {worst_mean:.4f} max {worst_max:.4f} deg"
    )


def test_hip_height_follows_the_rig(armatures, clips):
    """The same dance on a 1.0 m-legged Mixamo rig and on its 1.2x FBX-style twin (centimetres, Y up, scale 0.01)."""
    dance = clips[-1].motion(slice(0, None, EVERY_NTH_FRAME))
    heights, legs = [], []
    for key in (("mixamo", "T"), ("mixamo", "fbx")):
        skeleton, found = mapped(armatures[key])
        joints = play(armatures[key], skeleton, found, transfer(dance, skeleton, found))
        rest = skeleton.to_world(joint_positions(skeleton, found, skeleton.heads, skeleton.tails))
        heights.append(joints[:, 0, 2])
        legs.append(np.linalg.norm(rest[1] - rest[4]) + np.linalg.norm(rest[4] - rest[7]))
    ratio = heights[1] / heights[0]
    print(f"\nhip height ratio {ratio.min():.4f}..{ratio.max():.4f}, leg length ratio {legs[1] / legs[0]:.4f}")
    assert np.allclose(ratio, legs[1] / legs[0], rtol=1e-3) and abs(legs[1] / legs[0] - 1.2) < 1e-3


def test_locked_feet_stay_planted(armatures, clips):
    obj = armatures["unreal5", "A"]
    skeleton, found = mapped(obj)
    lines = []
    for clip in (clips[0], clips[-1]):
        window = clip.motion(slice(0, 40))
        free, locked = (transfer(window, skeleton, found, foot_lock=lock) for lock in (False, True))
        drift_free = planted_drift(play(obj, skeleton, found, free), free.contacts)
        drift_locked = planted_drift(play(obj, skeleton, found, locked), locked.contacts)
        lines.append(
            f"{clip.name}: {locked.contacts.sum()} contact flags, planted drift {100 * drift_free:.2f} cm free, "
            f"{100 * drift_locked:.4f} cm locked"
        )
        assert locked.contacts.any() and drift_locked < 0.01, lines[-1]
    print("\n" + "\n".join(lines))


def test_control_rig_correction_leaves_the_users_pose(armatures, clips):
    obj = armatures["rigify_controls", "rest"]
    skeleton, found = mapped(obj)
    chest = obj.pose.bones["spine_fk.003"]
    chest.rotation_mode = "XYZ"
    chest.rotation_euler = (0.3, 0.1, -0.2)
    before = [bone.matrix_basis.copy() for bone in obj.pose.bones]
    posed = transfer(clips[0].motion(slice(0, 4)), skeleton, found)
    corrected = armature_io.follow_constraints(obj, skeleton, posed)
    changed = max(
        rotations.angle_between(posed.rotations[name], corrected.rotations[name]).max() for name in posed.rotations
    )
    assert np.degrees(changed) > 5.0  # the neck and the arms hang off bones that copy rotations
    assert chest.rotation_mode == "XYZ"
    assert all(np.allclose(bone.matrix_basis, basis, atol=1e-6) for bone, basis in zip(obj.pose.bones, before))
    chest.rotation_euler = (0.0, 0.0, 0.0)


@pytest.mark.parametrize("key", [("smpl", "A"), ("cmu", "T"), ("rigify_metarig", "rest"), ("rigify_controls", "rest")])
def test_inverse_then_forward_gives_back_the_keyed_pose(armatures, clips, key):
    """An action keyed on the rig is read back off the evaluated bones (armature_io.read_posed_bones),
    turned into canonical motion and transferred again (align and ground off): every keyed bone
    ends within a degree of where it was, control rigs included."""
    obj = armatures[key]
    skeleton, found = mapped(obj)
    original = armature_io.follow_constraints(
        obj, skeleton, transfer(clips[1].motion(slice(0, 24)), skeleton, found, foot_lock=True)
    )
    action = bpy.data.actions.new(f"keyed_{key[0]}")
    obj.animation_data_create()
    obj.animation_data.action = action
    frames = key_animation(obj, original)
    motion = motion_from_bones(skeleton, found, *armature_io.read_posed_bones(obj, skeleton, frames), fps=20.0)
    again = armature_io.follow_constraints(obj, skeleton, transfer(motion, skeleton, found, align=False, ground=False))
    names = list(original.rotations)
    worst = 0.0
    for frame in range(original.frames):
        obj.animation_data.action = action
        bpy.context.scene.frame_set(frames[frame])
        before = world_orientations(obj, names)
        obj.animation_data.action = None
        armature_io.apply_pose(obj, again, frame)
        bpy.context.view_layer.update()
        worst = max(worst, np.degrees(rotations.angle_between(before, world_orientations(obj, names))).max())
    for pose_bone in obj.pose.bones:
        pose_bone.matrix_basis = Matrix.Identity(4)
    print(f"\ninverse then forward on {key[0]} {key[1]}: worst bone {worst:.5f} deg over {original.frames} frames")
    assert worst < 1.0
