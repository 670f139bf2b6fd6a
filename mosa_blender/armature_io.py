"""The bpy edge of retargeting: an armature's rest pose as a retarget Skeleton, its pose and
animation as arrays, and transfer output written onto the pose bones.

Armature space is the frame of `bone.matrix_local`; `obj.matrix_world` takes it to the world.
Transfer computes pose-basis values as if every bone simply hung off its parent. Control rigs
(Rigify's generated rig) hang controls off helper bones that copy rotations from elsewhere, so
`follow_constraints` lets Blender evaluate the rig and corrects the values until each written
bone has the orientation transfer meant.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import bpy
import numpy as np
from mathutils import Matrix

from . import control_rig_io
from .vendored import control_rig
from .vendored import rotations as rotations_module
from .vendored import skeleton as skeleton_module

LOG = logging.getLogger(__name__)
CHECK_DEGREES = 0.01  # how far Blender's evaluation may be from the numpy solve before a bone falls back
SLICE_S = 0.05  # seconds of work between two looks at the UI (see follow_constraints_steps)
_CHECKED: set[tuple] = set()  # (armature, bones, ControlRig.signature) whose numpy solve matched Blender's


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


# Constraints that aim a bone themselves after the keys: no value keyed on it shows as keyed.
AIMING_CONSTRAINTS = {"IK", "SPLINE_IK", "DAMPED_TRACK", "LOCKED_TRACK", "TRACK_TO", "STRETCH_TO"}
SCALE_TOLERANCE = 0.01  # a pose scale this close to 1 changes nothing a user would see


def pose_warnings(obj: bpy.types.Object, bones: set[str]) -> list[str]:
    """What on the rig keeps the motion keyed on `bones` (the mapped ones) from showing as made:
    a constraint that aims a bone itself (an IK chain over them), or a pose scale MoSa does not
    key (the motion is for the rest size, so a scaled hip leaves the feet in the air)."""
    warnings = []
    for pose_bone in obj.pose.bones:
        for constraint in pose_bone.constraints:
            working = constraint.is_valid and not constraint.mute and constraint.influence > 0
            if constraint.type not in AIMING_CONSTRAINTS or not working:  # an IK without a target does nothing
                continue
            chain = [pose_bone, *pose_bone.parent_recursive]
            length = getattr(constraint, "chain_count", 1)
            covered = {bone.name for bone in (chain[:length] if length else chain)} & bones
            if covered:
                kind = constraint.bl_rna.properties["type"].enum_items[constraint.type].name
                warnings.append(
                    f"the {kind} constraint on '{pose_bone.name}' poses {', '.join(sorted(covered))} its own way, "
                    "not as keyed: mute it to see the motion as made"
                )
    scaled = [
        f"'{bone.name}' ({max(bone.scale, key=lambda s: abs(s - 1)):.2f})"
        for bone in obj.pose.bones
        if bone.name in bones and max(abs(s - 1) for s in bone.scale) > SCALE_TOLERANCE
    ]
    if scaled:
        warnings.append(
            f"{', '.join(scaled)} scaled in pose mode, which MoSa does not key: the motion is made for the rest "
            "size, so the feet may float or sink; set the scale back to 1 or apply it to the rest pose"
        )
    return warnings


def _constrained(pose_bone) -> bool:
    """Whether an active constraint moves this bone or any bone above it."""
    return any(
        not constraint.mute and constraint.influence > 0
        for bone in [pose_bone, *pose_bone.parent_recursive]
        for constraint in bone.constraints
    )


def run_steps(steps):
    """Run a generator of slices (see follow_constraints_steps) to its end; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def scaled(steps, start: float, width: float):
    """A generator of slices whose progress (0..1) is mapped onto start..start + width of a
    larger one (`result = yield from scaled(...)`)."""
    while True:
        try:
            progress = next(steps)
        except StopIteration as done:
            return done.value
        yield start + width * progress


def follow_constraints(obj: bpy.types.Object, skeleton, posed, frames=None):
    """follow_constraints_steps in one go: the corrected PosedRig."""
    corrected, _ = run_steps(follow_constraints_steps(obj, skeleton, posed, frames))
    return corrected


def _targets(skeleton, posed, frames: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The armature-space orientation (T, 3, 3) the plain hierarchy gives each written bone, and
    the root's head (T, 3), at `frames` of the transfer output (only the bones above a written
    one are composed: a control rig has hundreds more)."""
    written = [skeleton.index(name) for name in posed.rotations]
    needed = sorted({bone for b in written for bone in [b, *skeleton.ancestors(b)]})
    rest, world = skeleton.rest_rotations, {}
    for b in needed:  # parents come first in a skeleton
        parent = skeleton.parents[b]
        unposed = rest[b] if parent < 0 else world[parent] @ (rest[parent].T @ rest[b])
        name = skeleton.names[b]
        world[b] = (
            unposed @ rotations_module.to_matrix(posed.rotations[name][frames]) if name in posed.rotations else unposed
        )
    root = skeleton.index(posed.root_bone)
    root_heads = skeleton.heads[root] + posed.root_location[frames] @ skeleton.rest_rotations[root].T
    return {
        name: np.broadcast_to(world[skeleton.index(name)], (len(frames), 3, 3)) for name in posed.rotations
    }, root_heads


def _set_pose(obj: bpy.types.Object, rotations: dict[str, np.ndarray], root_bone: str, root_location) -> None:
    for name, quaternion in rotations.items():
        pose_bone = obj.pose.bones[name]
        pose_bone.rotation_mode = "QUATERNION"
        pose_bone.rotation_quaternion = quaternion
    obj.pose.bones[root_bone].location = root_location


def _pose_matrices(obj: bpy.types.Object) -> np.ndarray:
    """Every pose bone's evaluated matrix (bones, 3, 3 rotation and scale; armature space), in one read."""
    flat = np.empty(len(obj.pose.bones) * 16, dtype=np.float32)
    obj.pose.bones.foreach_get("matrix", flat)
    return np.swapaxes(flat.reshape(-1, 4, 4), -1, -2)[:, :3, :3].astype(np.float64)  # stored column by column


def _normalized(matrices: np.ndarray) -> np.ndarray:
    return matrices / np.linalg.norm(matrices, axis=-2, keepdims=True)


def _solve_in_numpy(obj, posed, targets, root_heads):
    """control_rig's solve of the written bones it can describe, checked against Blender's own
    evaluation at one frame; bones where the two differ by more than CHECK_DEGREES fall back,
    with what hangs off them. (solved quaternions (T, 4) per bone, root location or None,
    the bones left to evaluate -> why)."""
    written = list(dict.fromkeys([*posed.rotations, posed.root_bone]))
    distrusted: dict[str, str] = {}
    while True:
        rig, evaluated = control_rig_io.read_control_rig(obj, written, distrusted)
        modelled = [name for name in posed.rotations if name not in evaluated]
        if not modelled:
            return {}, None, evaluated
        solved = control_rig.solve(rig, {name: targets[name] for name in modelled}, posed.root_bone, root_heads)
        quaternions = {name: rotations_module.from_matrix(turn) for name, turn in solved.rotations.items()}
        root_location = solved.root_location if posed.root_bone not in evaluated else None
        checked = (obj.name_full, tuple(modelled), rig.signature(modelled))
        if checked in _CHECKED:  # measured once per rig: this one, set up like this, was checked already
            return quaternions, root_location, evaluated
        root, order = obj.pose.bones[posed.root_bone], [obj.pose.bones.find(name) for name in modelled]
        t = len(root_heads) // 2  # one posed frame shows a relation the model gets wrong
        _set_pose(
            obj,
            {name: q[t] for name, q in quaternions.items()},
            posed.root_bone,
            root.location if root_location is None else root_location[t],
        )
        bpy.context.view_layer.update()
        wanted = np.stack([solved.posed[name][min(t, len(solved.posed[name]) - 1), :3, :3] for name in modelled])
        degrees = np.degrees(
            rotations_module.angle_between(
                rotations_module.from_matrix(_normalized(wanted)),
                rotations_module.from_matrix(_normalized(_pose_matrices(obj)[order])),
            )
        )
        mismatched = {
            name: f"Blender evaluates it {angle:.3f} degrees away from the numpy solve"
            for name, angle in zip(modelled, degrees)
            if angle > CHECK_DEGREES
        }
        if not mismatched:
            _CHECKED.add(checked)
            return quaternions, root_location, evaluated
        distrusted.update(mismatched)


def follow_constraints_steps(obj: bpy.types.Object, skeleton, posed, frames=None, slice_s: float = SLICE_S):
    """Transfer output (PosedRig) corrected for constraints above the written bones, so that
    each written bone has, as Blender evaluates it, the armature-space orientation the plain
    hierarchy gives; a generator that yields its progress (0..1) between slices of about
    `slice_s` and returns (PosedRig, the bones evaluated by Blender -> why).

    Bones whose constraints are fixed relations (retarget.control_rig) are solved for all
    frames at once in numpy. The others are set frame by frame, parents first
    (pose_bone.matrix, which Blender turns into pose-basis values under the evaluated parent)
    and read back; the rig's own pose is restored afterwards, also when the generator is
    closed halfway. `frames`: the transfer frames to correct (all by default); the others keep
    the transfer's values. Rigs without such constraints come back unchanged, at no cost."""
    names = list(posed.rotations)
    if not any(_constrained(obj.pose.bones[name]) for name in names + [posed.root_bone]):
        return posed, {}
    frames = np.arange(posed.frames) if frames is None else np.asarray(frames, dtype=int)
    bpy.context.view_layer.update()  # a newly assigned action poses the rig first: read the pose it gives
    targets, root_heads = _targets(skeleton, posed, frames)
    rotations = {name: np.array(track) for name, track in posed.rotations.items()}
    root_location = np.array(posed.root_location)
    touched = [obj.pose.bones[name] for name in dict.fromkeys(names + [posed.root_bone])]
    users_pose = [(bone.rotation_mode, bone.matrix_basis.copy()) for bone in touched]
    try:
        solved, solved_root, evaluated = _solve_in_numpy(obj, posed, targets, root_heads)
        for name, quaternions in solved.items():
            rotations[name][frames] = quaternions
        if solved_root is not None:
            root_location[frames] = solved_root
        if evaluated:
            LOG.warning(
                "MoSa: %d bone(s) solved by Blender's evaluation, frame by frame (slower): %s",
                len(evaluated),
                "; ".join(evaluated.values()),
            )
            yield from _evaluate(obj, posed, frames, targets, root_heads, rotations, root_location, evaluated, slice_s)
    finally:  # the user's pose comes back (evaluated at the next update: a redraw, a frame change)
        for bone, (mode, basis) in zip(touched, users_pose):
            bone.rotation_mode, bone.matrix_basis = mode, basis
    continuous = rotations_module.make_continuous(np.stack(list(rotations.values()), axis=1))  # (T, bones, 4) at once
    corrected = replace(
        posed, rotations={name: continuous[:, i] for i, name in enumerate(rotations)}, root_location=root_location
    )
    return corrected, evaluated


def _evaluate(obj, posed, frames, targets, root_heads, rotations, root_location, evaluated, slice_s):
    """The fallback for the bones in `evaluated`: each frame, every written bone gets its value
    (the numpy solve's or the transfer's), then the evaluated ones are set level by level to
    their target orientation and read back; progress is yielded whenever a slice is used up."""
    names = [name for name in posed.rotations if name in evaluated]
    depth = {name: len(obj.pose.bones[name].parent_recursive) for name in names}
    levels = [[name for name in names if depth[name] == level] for level in sorted(set(depth.values()))]
    if posed.root_bone in evaluated and posed.root_bone not in names:
        levels.insert(0, [posed.root_bone])
    started = time.perf_counter()
    for t, frame in enumerate(frames):
        _set_pose(obj, {name: track[frame] for name, track in rotations.items()}, posed.root_bone, root_location[frame])
        bpy.context.view_layer.update()
        for level in levels:
            for name in level:
                pose_bone = obj.pose.bones[name]
                matrix = np.eye(4)
                matrix[:3, :3] = targets[name][t] if name in targets else np.array(pose_bone.matrix.to_3x3())
                matrix[:3, 3] = root_heads[t] if name == posed.root_bone else np.array(pose_bone.matrix.translation)
                pose_bone.matrix = Matrix(matrix.tolist())
            bpy.context.view_layer.update()
            if time.perf_counter() - started > slice_s:
                yield (t + 0.5) / len(frames)
                started = time.perf_counter()
        for name in names:
            rotations[name][frame] = np.array(obj.pose.bones[name].rotation_quaternion)
        if posed.root_bone in evaluated:
            root_location[frame] = np.array(obj.pose.bones[posed.root_bone].location)
