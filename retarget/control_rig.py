"""A control rig's pose solved in numpy: which pose-basis rotations give the written bones the
armature-space orientations transfer meant, once Blender's constraints have run.

Control rigs (Rigify's generated rig) hang their controls off helper bones that copy
transforms, rotations or scale from other bones, or follow a parent through an Armature
constraint. Those are fixed relations: a bone's evaluated matrix is its parent's evaluated
matrix times its rest offset and basis, then each constraint replaces it with something built
from other bones' evaluated matrices, blended in by the constraint's influence. This module
evaluates exactly that for every frame at once, written bones first set so that their
unconstrained matrix has the wanted orientation (what assigning `pose_bone.matrix` does in
Blender), so no depsgraph update per bone level per frame is needed.

Everything is in armature (pose) space, 4x4 matrices acting on column vectors, frames first.
The bpy side (mosa_blender/armature_io.py) reads a rig into a ControlRig, says which bones it
could not describe, and checks the solve against Blender's own evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import rotations

# Constraint kinds this module evaluates; anything else makes its bone (and what hangs off it) fall back.
COPY_TRANSFORMS, COPY_ROTATION, COPY_SCALE, ARMATURE = "COPY_TRANSFORMS", "COPY_ROTATION", "COPY_SCALE", "ARMATURE"
POSE, LOCAL = "POSE", "LOCAL"  # the space a constraint works in (world space is pose space moved by the object)


@dataclass
class Constraint:
    """One active constraint: kind, influence, target bones (index, weight), space, and for Copy
    Scale whether it makes the scale uniform (the target's volume, the owner's proportions kept)."""

    kind: str
    influence: float
    targets: list[tuple[int, float]]
    space: str = POSE
    uniform: bool = False


@dataclass
class RigBone:
    """A bone as the pose evaluates it: parent index (-1 none), rest matrix (4, 4, armature
    space), the current pose basis (4, 4; a written bone's rotation is replaced by the solve)
    and its constraints in stack order."""

    name: str
    parent: int
    rest: np.ndarray
    basis: np.ndarray
    constraints: list[Constraint] = field(default_factory=list)


@dataclass
class ControlRig:
    """The bones the written bones depend on, ordered so every parent and constraint target
    comes before the bones that use it."""

    bones: list[RigBone]

    def index(self, name: str) -> int:
        return next(i for i, bone in enumerate(self.bones) if bone.name == name)

    def signature(self, written: list[str]) -> int:
        """A hash of everything the solve reads (of a written bone's basis, only its location and
        scale; the solve sets its rotation): two rigs with the same one solve alike."""

        def basis(bone: RigBone) -> bytes:
            kept = (
                (bone.basis[:3, 3], np.linalg.norm(bone.basis[:3, :3], axis=0))
                if bone.name in written
                else (bone.basis,)
            )
            return b"".join(np.round(part, 6).tobytes() for part in kept)

        parts = [
            (
                bone.name,
                bone.parent,
                np.round(bone.rest, 6).tobytes(),
                basis(bone),
                tuple((c.kind, round(c.influence, 6), tuple(c.targets), c.space, c.uniform) for c in bone.constraints),
            )
            for bone in self.bones
        ]
        return hash(tuple(parts))


def dependency_order(names: list[str], depends_on: dict[str, list[str]]) -> list[str] | None:
    """`names` and everything they depend on (parents, constraint targets), dependencies first;
    None if the dependencies form a cycle."""
    order, state = [], {}

    def visit(name: str) -> bool:
        if state.get(name) == "done":
            return True
        if state.get(name) == "visiting":
            return False
        state[name] = "visiting"
        if not all(visit(other) for other in depends_on.get(name, [])):
            return False
        state[name] = "done"
        order.append(name)
        return True

    return order if all(visit(name) for name in names) else None


# ---------------------------------------------------------------- matrix pieces


def _polar(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rotation, stretch) with matrices = rotation @ stretch: a bone matrix without shear is a
    rotation times a scale along its own axes, so the rotation is its normalized columns (the
    polar decomposition Blender's interp_m4_m4m4 takes, without an SVD per frame)."""
    rotation = matrices / np.maximum(np.linalg.norm(matrices, axis=-2, keepdims=True), 1e-12)
    return rotation, np.swapaxes(rotation, -1, -2) @ matrices


def blend(old: np.ndarray, new: np.ndarray, influence: float) -> np.ndarray:
    """A constraint's result blended into the matrix before it (Blender's interp_m4_m4m4):
    rotations slerped, stretch and location interpolated linearly."""
    old, new = np.broadcast_arrays(old, new)
    old_rotation, old_stretch = _polar(old[..., :3, :3])
    new_rotation, new_stretch = _polar(new[..., :3, :3])
    quaternion = rotations.slerp(rotations.from_matrix(old_rotation), rotations.from_matrix(new_rotation), influence)
    result = np.array(new)
    result[..., :3, :3] = rotations.to_matrix(quaternion) @ ((1 - influence) * old_stretch + influence * new_stretch)
    result[..., :3, 3] = (1 - influence) * old[..., :3, 3] + influence * new[..., :3, 3]
    return result


def _sizes(matrices: np.ndarray) -> np.ndarray:
    """Column lengths (..., 3): the scale along each of a matrix's axes."""
    return np.linalg.norm(matrices[..., :3, :3], axis=-2)


def _with_rotation(rotation: np.ndarray, like: np.ndarray) -> np.ndarray:
    """`like` (..., 4, 4) with its axes turned to `rotation` (..., 3, 3), keeping its sizes and location."""
    rotation, like = np.broadcast_arrays(rotation, like[..., :3, :3])[0], like
    result = np.array(np.broadcast_to(like, rotation.shape[:-2] + (4, 4)))
    result[..., :3, :3] = rotation * _sizes(like)[..., None, :]
    return result


def solution(
    constraint: Constraint,
    owner: np.ndarray,
    owner_frame: np.ndarray,
    rig: ControlRig,
    posed: list[np.ndarray],
    frames: list[np.ndarray],
) -> np.ndarray:
    """What a constraint makes of its owner's matrix (before the influence blend). owner_frame:
    the owner's parent matrix times its rest offset (what LOCAL space is relative to); posed /
    frames: every evaluated bone's matrix and frame so far."""
    target = constraint.targets[0][0] if constraint.targets else -1
    if constraint.kind == COPY_TRANSFORMS and constraint.space == POSE:
        return np.broadcast_to(posed[target], np.broadcast_shapes(posed[target].shape, owner.shape))
    if constraint.kind == COPY_TRANSFORMS:  # LOCAL: the target's matrix relative to its own frame, on the owner's
        return owner_frame @ (np.linalg.inv(frames[target]) @ posed[target])
    if constraint.kind == COPY_ROTATION:
        rotation, _ = _polar(posed[target][..., :3, :3])
        return _with_rotation(rotation, owner)
    if constraint.kind == COPY_SCALE:
        shape = np.broadcast_shapes(posed[target].shape, owner.shape)
        result = np.array(np.broadcast_to(owner, shape))
        ratio = _sizes(posed[target]) / np.maximum(_sizes(owner), 1e-12)
        if constraint.uniform:
            ratio = np.repeat(np.cbrt(np.prod(ratio, axis=-1, keepdims=True)), 3, axis=-1)
        result[..., :3, :3] *= np.broadcast_to(ratio, result.shape[:-2] + (3,))[..., None, :]
        return result
    if constraint.kind == ARMATURE:  # the owner moves as the target bones deform their rest pose
        deform = sum(
            weight * (posed[bone] @ np.linalg.inv(rig.bones[bone].rest)) for bone, weight in constraint.targets
        )
        return deform @ owner
    raise ValueError(f"constraint kind {constraint.kind!r} is not one control_rig evaluates")


# ---------------------------------------------------------------- the solve


@dataclass
class Solved:
    """Pose-basis rotations (T, 3, 3) of the written bones, the root's basis location (T, 3),
    and every rig bone's evaluated matrix (T or 1, 4, 4) for checking against Blender."""

    rotations: dict[str, np.ndarray]
    root_location: np.ndarray
    posed: dict[str, np.ndarray]


def solve(rig: ControlRig, targets: dict[str, np.ndarray], root: str, root_head: np.ndarray) -> Solved:
    """Basis rotations giving each written bone (targets: name -> (T, 3, 3) armature-space
    orientation) that orientation before its own constraints, its parent and constraint targets
    evaluated with the bones solved before it; the root's location puts its head at root_head (T, 3)."""
    frames = len(root_head)
    posed, bone_frames = [], []
    result, root_location = {}, np.zeros((frames, 3))
    for bone in rig.bones:
        if bone.parent < 0:
            frame = bone.rest[None]
        else:
            frame = posed[bone.parent] @ (np.linalg.inv(rig.bones[bone.parent].rest) @ bone.rest)
        basis = bone.basis[None]
        if bone.name in targets:
            frame_rotation, _ = _polar(frame[..., :3, :3])
            turn = np.swapaxes(frame_rotation, -1, -2) @ targets[bone.name]
            result[bone.name] = rotations.to_matrix(
                rotations.from_matrix(turn)
            )  # a rotation, as Blender's quaternion is
            basis = _with_rotation(result[bone.name], basis)
        if bone.name == root:
            head = np.concatenate([root_head, np.ones((frames, 1))], axis=1)[..., None]
            root_location = np.broadcast_to((np.linalg.inv(frame) @ head)[..., :3, 0], (frames, 3)).copy()
            basis = np.array(np.broadcast_to(basis, (frames, 4, 4)))
            basis[..., :3, 3] = root_location
        matrix = frame @ basis
        for constraint in bone.constraints:
            solved = solution(constraint, matrix, frame, rig, posed, bone_frames)
            matrix = solved if constraint.influence >= 1.0 else blend(matrix, solved, constraint.influence)
        posed.append(matrix)
        bone_frames.append(frame)
    return Solved(result, root_location, {bone.name: matrix for bone, matrix in zip(rig.bones, posed)})
