"""The bpy edge of retargeting: an armature's rest pose as a retarget Skeleton, its pose and
animation as arrays, and transfer output written onto the pose bones.

Armature space is the frame of `bone.matrix_local`; `obj.matrix_world` takes it to the world.
Transfer computes pose-basis values as if every bone simply hung off its parent. Control rigs
(Rigify's generated rig) hang controls off helper bones that copy rotations from elsewhere, so
`follow_constraints` lets Blender evaluate the rig and corrects the values until each written
bone has the orientation transfer meant.
"""
from __future__ import annotations

from dataclasses import replace

import bpy
import numpy as np
from mathutils import Matrix

from .vendored import rotations as rotations_module
from .vendored import skeleton as skeleton_module



def _parents_first(bones) -> list:
    """Bones ordered so that every parent comes before its children (depth first from the roots)."""
    ordered = []

    def visit(bone) -> None:
        ordered.append(bone)
        for child in bone.children:
            visit(child)

    for bone in bones:
        if bone.parent is None:
            visit(bone)
    return ordered


def skeleton_from_armature(obj: bpy.types.Object):
    """The armature's rest pose (bone.matrix_local, tail_local, parent, use_connect) and object matrix."""
    if obj is None or obj.type != "ARMATURE":
        raise ValueError(f"'{getattr(obj, 'name', obj)}' is not an armature; select the character's armature")
    bones = _parents_first(obj.data.bones)
    if not bones:
        raise ValueError(f"armature '{obj.name}' has no bones")
    index = {bone.name: i for i, bone in enumerate(bones)}
    return skeleton_module.Skeleton(
        names=[bone.name for bone in bones],
        parents=np.array([index[bone.parent.name] if bone.parent else -1 for bone in bones]),
        rest_matrices=np.array([np.array(bone.matrix_local) for bone in bones]),
        tails=np.array([np.array(bone.tail_local) for bone in bones]),
        connected=np.array([bone.use_connect for bone in bones]),
        object_matrix=np.array(obj.matrix_world),
    )


def read_posed_bones(obj: bpy.types.Object, skeleton, frames: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Bone heads and tails (T, B, 3, armature space, in the skeleton's bone order) at each scene
    frame, as Blender evaluates them: keys, constraints, IK and drivers all count."""
    scene = bpy.context.scene
    current = scene.frame_current
    order = np.array([obj.pose.bones.find(name) for name in skeleton.names])
    count = len(obj.pose.bones)
    heads, tails = np.zeros((len(frames), count * 3)), np.zeros((len(frames), count * 3))
    try:
        for t, frame in enumerate(frames):
            scene.frame_set(int(frame))
            obj.pose.bones.foreach_get("head", heads[t])
            obj.pose.bones.foreach_get("tail", tails[t])
    finally:
        scene.frame_set(current)
    return heads.reshape(len(frames), count, 3)[:, order], tails.reshape(len(frames), count, 3)[:, order]


def apply_pose(obj: bpy.types.Object, posed, frame: int) -> None:
    """Set the pose bones from transfer output (retarget.transfer.PosedRig) at one of its frames."""
    for name, quaternions in posed.rotations.items():
        pose_bone = obj.pose.bones[name]
        pose_bone.rotation_mode = "QUATERNION"
        pose_bone.rotation_quaternion = quaternions[frame]
    obj.pose.bones[posed.root_bone].location = posed.root_location[frame]


def _constrained(pose_bone) -> bool:
    """Whether an active constraint moves this bone or any bone above it."""
    return any(not constraint.mute and constraint.influence > 0
               for bone in [pose_bone, *pose_bone.parent_recursive] for constraint in bone.constraints)


def follow_constraints(obj: bpy.types.Object, skeleton, posed):
    """Transfer output (PosedRig) corrected for constraints above the written bones: frame by
    frame, bones are set parents first (pose_bone.matrix, which Blender turns into pose-basis
    values under the evaluated parent) to the armature-space orientation the plain hierarchy
    gives, and read back; the rig's own pose is restored afterwards. Rigs without such
    constraints come back unchanged, at no cost."""
    names = list(posed.rotations)
    if not any(_constrained(obj.pose.bones[name]) for name in names + [posed.root_bone]):
        return posed
    basis = np.tile(np.eye(3), (posed.frames, len(skeleton), 1, 1))
    for name, track in posed.rotations.items():
        basis[:, skeleton.index(name)] = rotations_module.to_matrix(track)
    targets = skeleton.world_from_basis(basis)
    root = skeleton.index(posed.root_bone)
    root_heads = skeleton.heads[root] + posed.root_location @ skeleton.rest_rotations[root].T
    depth = {name: len(obj.pose.bones[name].parent_recursive) for name in names}
    levels = [[name for name in names if depth[name] == level] for level in sorted(set(depth.values()))]
    rotations = {name: np.zeros((posed.frames, 4)) for name in names}
    root_location = np.zeros((posed.frames, 3))
    touched = [obj.pose.bones[name] for name in dict.fromkeys(names + [posed.root_bone])]
    users_pose = [(bone.rotation_mode, bone.matrix_basis.copy()) for bone in touched]
    try:
        for frame in range(posed.frames):
            apply_pose(obj, posed, frame)
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
                rotations[name][frame] = np.array(obj.pose.bones[name].rotation_quaternion)
            root_location[frame] = np.array(obj.pose.bones[posed.root_bone].location)
    finally:  # the user's pose comes back
        for bone, (mode, basis) in zip(touched, users_pose):
            bone.rotation_mode, bone.matrix_basis = mode, basis
        bpy.context.view_layer.update()
    return replace(posed, rotations={name: rotations_module.make_continuous(track) for name, track in rotations.items()},
                   root_location=root_location)
