"""The bpy edge of retarget.control_rig: the bones the written bones depend on (parents and
constraint targets), read into a ControlRig, and which written bones it cannot describe, and why.

A bone is described when every bone it depends on has only constraints control_rig evaluates
(Copy Transforms, Copy Rotation, Copy Scale with their plain settings, Armature with bone
targets), inherits its parent's rotation, and has no driver that may follow another bone's
transform. Drivers on influences that read custom properties (Rigify's follow sliders) are
fixed over the clip and count as their current value.
"""

from __future__ import annotations

import re

import bpy
import numpy as np

from .vendored import control_rig

_BONE_PATH = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)*)"\]\.?(.*)$')
_SPACES = {"WORLD": control_rig.POSE, "POSE": control_rig.POSE, "LOCAL": control_rig.LOCAL}


def _driven(obj: bpy.types.Object) -> dict[str, str]:
    """Bone name -> why its drivers make it move with the pose (transform channels driven, or
    an influence driven by something other than a custom property)."""
    found = {}
    animation = obj.animation_data
    for driver in animation.drivers if animation else []:
        match = _BONE_PATH.match(driver.data_path)
        if match is None:
            continue
        bone, rest = bpy.utils.unescape_identifier(match.group(1)), match.group(2)
        if rest.startswith(("location", "rotation", "scale")):
            found[bone] = f"its {rest} is driven"
        elif any(
            variable.type != "SINGLE_PROP"
            or any(
                re.search(r"\.(location|rotation|scale|matrix|head|tail)", target.data_path or "")
                for target in variable.targets
            )
            for variable in driver.driver.variables
        ):
            found[bone] = f"a driver on {rest} reads a transform"
    return found


def _constraint(obj: bpy.types.Object, constraint) -> tuple[control_rig.Constraint | None, list[str], str]:
    """(the constraint as control_rig evaluates it, or None when it has no effect; the bones it
    reads; why it cannot be evaluated, '' when it can)."""
    if constraint.mute or constraint.influence <= 0.0:
        return None, [], ""
    kind = constraint.type
    if kind == control_rig.ARMATURE:
        targets = [
            (target.subtarget, target.weight)
            for target in constraint.targets
            if target.target == obj and target.subtarget in obj.pose.bones
        ]
        plain = not (
            constraint.use_deform_preserve_volume or constraint.use_bone_envelopes or constraint.use_current_location
        )
        if len(targets) != len(constraint.targets) or not plain or abs(sum(w for _, w in targets) - 1.0) > 1e-6:
            return None, [], "an Armature constraint with envelopes, other objects or weights not summing to 1"
        return control_rig.Constraint(kind, constraint.influence, targets), [name for name, _ in targets], ""
    if kind not in (control_rig.COPY_TRANSFORMS, control_rig.COPY_ROTATION, control_rig.COPY_SCALE):
        return None, [], f"a {kind.replace('_', ' ').title()} constraint"
    if constraint.target != obj or constraint.subtarget not in obj.pose.bones:
        return None, [], f"a {constraint.name!r} constraint that follows another object"
    space = _SPACES.get(constraint.owner_space)
    plain = space is not None and space == _SPACES.get(constraint.target_space)
    plain &= getattr(constraint, "head_tail", 0.0) == 0.0 and not getattr(constraint, "use_bbone_shape", False)
    plain &= getattr(constraint, "mix_mode", "REPLACE") == "REPLACE"
    if kind == control_rig.COPY_ROTATION:
        plain &= space == control_rig.POSE and constraint.euler_order == "AUTO"
        plain &= all(getattr(constraint, f"use_{axis}") and not getattr(constraint, f"invert_{axis}") for axis in "xyz")
    if kind == control_rig.COPY_SCALE:
        plain &= (
            space == control_rig.POSE
            and constraint.power == 1.0
            and all(getattr(constraint, f"use_{a}") for a in "xyz")
        )
        plain &= not (constraint.use_offset or constraint.use_add)
    if not plain:
        return None, [], f"a {constraint.name!r} constraint with settings other than the plain ones"
    uniform = kind == control_rig.COPY_SCALE and constraint.use_make_uniform
    described = control_rig.Constraint(kind, constraint.influence, [(constraint.subtarget, 1.0)], space, uniform)
    return described, [constraint.subtarget], ""


def read_control_rig(
    obj: bpy.types.Object, written: list[str], distrusted: dict[str, str] | None = None
) -> tuple[control_rig.ControlRig, dict[str, str]]:
    """The rig the written bones described by it depend on, and the written bones it cannot
    describe (name -> why: which bone above it, and what that bone does). `distrusted`: bones
    (name -> why) to leave out as well, e.g. where a check found Blender evaluating them otherwise."""
    driven = {**_driven(obj), **(distrusted or {})}
    depends_on, problems, constraints = {}, {}, {}
    pending = list(written)
    while pending:
        name = pending.pop()
        if name in depends_on:
            continue
        pose_bone = obj.pose.bones[name]
        depends_on[name] = [pose_bone.parent.name] if pose_bone.parent else []
        constraints[name] = []
        if not pose_bone.bone.use_inherit_rotation:
            problems[name] = "it does not inherit its parent's rotation"
        if name in driven:
            problems[name] = driven[name]
        for constraint in pose_bone.constraints:
            described, reads, why = _constraint(obj, constraint)
            if why:
                problems.setdefault(name, why)
            elif described is not None:
                constraints[name].append(described)
                depends_on[name].extend(reads)
        pending.extend(depends_on[name])
    order = control_rig.dependency_order(list(written), depends_on)
    if order is None:
        return control_rig.ControlRig([]), {name: "its constraints depend on each other in a cycle" for name in written}

    reasons = {}
    for name in order:  # dependencies first: a bone's reason is the first problem above it
        above = [reasons[other] for other in depends_on[name] if other in reasons]
        if name in problems:
            reasons[name] = f"{name}: {problems[name]}"
        elif above:
            reasons[name] = above[0]
    kept = [name for name in order if name not in reasons]
    index = {name: i for i, name in enumerate(kept)}
    bones = []
    for name in kept:
        pose_bone = obj.pose.bones[name]
        for constraint in constraints[name]:
            constraint.targets = [(index[target], weight) for target, weight in constraint.targets]
        bones.append(
            control_rig.RigBone(
                name,
                index[pose_bone.parent.name] if pose_bone.parent else -1,
                np.array(pose_bone.bone.matrix_local),
                np.array(pose_bone.matrix_basis),
                constraints[name],
            )
        )
    return control_rig.ControlRig(bones), {name: reasons[name] for name in written if name in reasons}
