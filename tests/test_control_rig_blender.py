"""The numpy constraint solve (retarget.control_rig through armature_io.follow_constraints) on
Rigify's generated human, in real bpy: the same pose-basis values as letting Blender evaluate
the rig bone level by bone level, frame by frame, on every bone and frame; bones with a
constraint it does not model are evaluated by Blender and named; a span is re-solved alone."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from mathutils import Matrix

from engine.datasets import deepmimic
from mosa_blender import armature_io, retargeting
from retarget import rotations
from retarget.mapping import auto_map
from retarget.motion import CanonicalMotion
from retarget.transfer import transfer
from tests import rigify_human

FRAMES = 30  # every one of them is compared, so the evaluated reference (about 0.2 s a frame) stays short


def evaluated_solve(obj, skeleton, posed):
    """The reference: each frame, the transfer's values set, then the written bones set level by
    level (pose_bone.matrix) to the orientation the plain hierarchy gives and read back, with a
    depsgraph update after every level (follow_constraints before the numpy solve)."""
    names = list(posed.rotations)
    basis = np.tile(np.eye(3), (posed.frames, len(skeleton), 1, 1))
    for name, track in posed.rotations.items():
        basis[:, skeleton.index(name)] = rotations.to_matrix(track)
    targets = skeleton.world_from_basis(basis)
    root = skeleton.index(posed.root_bone)
    root_heads = skeleton.heads[root] + posed.root_location @ skeleton.rest_rotations[root].T
    depth = {name: len(obj.pose.bones[name].parent_recursive) for name in names}
    levels = [[name for name in names if depth[name] == level] for level in sorted(set(depth.values()))]
    result = {name: np.zeros((posed.frames, 4)) for name in names}
    root_location = np.zeros((posed.frames, 3))
    users_pose = [(bone.rotation_mode, bone.matrix_basis.copy()) for bone in obj.pose.bones]
    for frame in range(posed.frames):
        armature_io.apply_pose(obj, posed, frame)
        bpy.context.view_layer.update()
        for level in levels:
            for name in level:
                pose_bone = obj.pose.bones[name]
                matrix = np.eye(4)
                matrix[:3, :3] = targets[frame, skeleton.index(name)]
                matrix[:3, 3] = root_heads[frame] if name == posed.root_bone else np.array(pose_bone.matrix.translation)
                pose_bone.matrix = Matrix(matrix.tolist())
            bpy.context.view_layer.update()
        for name in names:
            result[name][frame] = np.array(obj.pose.bones[name].rotation_quaternion)
        root_location[frame] = np.array(obj.pose.bones[posed.root_bone].location)
    for pose_bone, (mode, basis) in zip(obj.pose.bones, users_pose):
        pose_bone.rotation_mode, pose_bone.matrix_basis = mode, basis
    bpy.context.view_layer.update()
    return result, root_location


def worst_degrees(expected: dict, posed) -> tuple[float, str]:
    worst = {
        name: float(np.degrees(rotations.angle_between(expected[name], posed.rotations[name]).max()))
        for name in expected
    }
    name = max(worst, key=worst.get)
    return worst[name], name


@pytest.fixture(scope="module")
def rigify(rigify_file):
    """The demo's Rigify human (metarig generated into the full control rig), its skeleton and mapping."""
    bpy.ops.wm.read_homefile(use_empty=True)
    obj = rigify_human.append(rigify_file)[1]
    skeleton = armature_io.skeleton_from_armature(obj)
    return obj, skeleton, auto_map(skeleton)


@pytest.fixture(scope="module")
def clips() -> dict:
    """Real motion capture (DeepMimic's clips, shipped with pybullet) as canonical motion dicts."""
    return {
        name: CanonicalMotion.from_positions(deepmimic.load_joints(name)[:FRAMES]).to_dict()
        for name in ("cartwheel", "walk")
    }


@pytest.mark.parametrize("clip", ["cartwheel", "walk"])
def test_the_numpy_solve_equals_blenders_evaluation_on_every_bone_and_frame(rigify, clips, clip):
    obj, skeleton, mapping = rigify
    posed = transfer(clips[clip], skeleton, mapping)
    chest = obj.pose.bones["chest"]  # a bone the user posed that is not written: the spine copies half of it
    chest.rotation_mode = "XYZ"
    chest.rotation_euler = (0.2, 0.0, -0.1)
    expected, expected_root = evaluated_solve(obj, skeleton, posed)
    before = [bone.matrix_basis.copy() for bone in obj.pose.bones]
    solved, evaluated = armature_io.run_steps(armature_io.follow_constraints_steps(obj, skeleton, posed))
    assert chest.rotation_mode == "XYZ"
    assert all(np.allclose(bone.matrix_basis, basis, atol=1e-6) for bone, basis in zip(obj.pose.bones, before))
    chest.rotation_euler = (0.0, 0.0, 0.0)
    assert evaluated == {}, f"Rigify's FK controls should all be fixed relations: {evaluated}"
    degrees, bone = worst_degrees(expected, solved)
    print(
        f"\n{clip}: {len(expected)} bones x {posed.frames} frames, worst {degrees:.6f} deg ({bone}), "
        f"root {np.abs(expected_root - solved.root_location).max():.2e} m apart"
    )
    assert degrees < 0.1
    np.testing.assert_allclose(solved.root_location, expected_root, atol=1e-4)


def test_bones_under_a_constraint_it_does_not_model_are_evaluated_and_named(rigify, clips):
    obj, skeleton, mapping = rigify
    posed = transfer(clips["cartwheel"], skeleton, mapping)
    limit = obj.pose.bones["MCH-upper_arm_parent.L"].constraints.new("LIMIT_ROTATION")
    limit.use_limit_x, limit.min_x, limit.max_x, limit.owner_space = True, -0.3, 0.3, "LOCAL"
    try:
        expected, _ = evaluated_solve(obj, skeleton, posed)
        solved, evaluated = armature_io.run_steps(armature_io.follow_constraints_steps(obj, skeleton, posed))
    finally:
        obj.pose.bones["MCH-upper_arm_parent.L"].constraints.remove(limit)
    left_arm = {name for name in posed.rotations if name.endswith(".L") and ("arm" in name or "hand" in name)}
    assert set(evaluated) == left_arm, evaluated
    assert all("Limit Rotation" in why for why in evaluated.values())
    degrees, bone = worst_degrees(expected, solved)
    print(f"\nwith a Limit Rotation on the left arm: {sorted(evaluated)} evaluated; worst {degrees:.6f} deg ({bone})")
    assert degrees < 0.1


def test_a_span_is_solved_alone(rigify, clips):
    obj, skeleton, mapping = rigify
    posed = transfer(clips["walk"], skeleton, mapping)
    everything = armature_io.follow_constraints(obj, skeleton, posed)
    frames = retargeting.engine_frames((20, 26), start_frame=1, scene_fps=30.0, fps=posed.fps, count=posed.frames)
    assert frames[0] <= (20 - 1) / 30 * 20 - 1 and frames[-1] >= (26 - 1) / 30 * 20 + 1 and len(frames) < posed.frames
    span = armature_io.follow_constraints(obj, skeleton, posed, frames)
    outside = np.setdiff1d(np.arange(posed.frames), frames)
    for name in posed.rotations:
        angles = np.degrees(rotations.angle_between(span.rotations[name][frames], everything.rotations[name][frames]))
        assert angles.max() < 1e-6, name
        np.testing.assert_array_equal(np.abs(span.rotations[name][outside]), np.abs(posed.rotations[name][outside]))
