"""Whether a mapping holds the body together, checked on the transfer before any key is written.

A wrong but plausible mapping transfers without an error and still ruins the take: a lower-body
bone as Hips leaves the upper body behind while the root travels (hips to neck 0.55 -> 3.40 m on
a real case), the right thigh given to LeftUpLeg crosses the legs, and a four-legged rig whose
names match a human's (Rigify's cat metarig) would be stood up on its hind legs. Four checks,
each naming the joint and its bone:
- posture: at rest the spine (Hips to the highest mapped spine joint) stands within
  UPRIGHT_DEGREES of straight up, as every human rig does (5-6 degrees on Rigify's human;
  Rigify's bird leans 48, its cat 91);
- hierarchy: every mapped bone hangs under the bone that carries the root motion, else that
  motion leaves it behind;
- sides: at rest every Left joint lies on the rig's left of its Right partner, the rig's left
  taken from where its feet point (whatever the mapping says about them);
- motion: the rig's bones are rigid, so the distance from each mapped joint to the mapped joint
  above it stays what it is at rest through the whole motion, and the head never gets farther
  from the hips than the spine between them is long.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from .canonical import PARENTS
from .inverse import posed_bones
from .mapping import JOINTS, J, Mapping, joint_positions
from .skeleton import Skeleton
from .transfer import PosedRig, root_bone_of

# How far (share of the rig's height) a joint may drift from the joint above it under the motion.
DRIFT_TOLERANCE = 0.1
# How far (share of the rig's height) a Left joint must lie on the rig's left of its Right partner.
SIDE_MARGIN = 0.005
# How far (degrees) a human rig's spine may lean from straight up at rest.
UPRIGHT_DEGREES = 35.0
PAIRS = [(name, "Right" + name[len("Left") :]) for name in JOINTS if name.startswith("Left")]


class ImplausibleMapping(ValueError):
    """The mapping would pull the body apart or cross it; the message says where."""


def _named(mapping: Mapping, joint: str) -> str:
    return f"{joint} ('{mapping.bones[joint]}')"


def _mapped_parent(mapping: Mapping, joint: str) -> str | None:
    """The nearest canonical ancestor of `joint` that has a bone."""
    parent = int(J[joint])
    while True:
        parent = int(PARENTS[parent])
        if parent < 0:
            return None
        if mapping.bones[JOINTS[parent]]:
            return JOINTS[parent]


def _height(skeleton: Skeleton) -> float:
    points = np.concatenate([skeleton.world_heads(), skeleton.world_tails()])
    return float(np.ptp(points[:, 2])) or 1.0


def hierarchy_problems(skeleton: Skeleton, mapping: Mapping) -> list[str]:
    root = root_bone_of(skeleton, skeleton.index(mapping.bones["Hips"]))
    strays = [
        joint
        for joint in JOINTS
        if mapping.bones[joint]
        and skeleton.index(mapping.bones[joint]) != root
        and root not in skeleton.ancestors(skeleton.index(mapping.bones[joint]))
    ]
    if not strays:
        return []
    listed = ", ".join(_named(mapping, joint) for joint in strays[:4]) + (" ..." if len(strays) > 4 else "")
    return [
        (
            f"{listed} do not hang under '{skeleton.names[root]}', which carries the root motion for Hips "
            f"('{mapping.bones['Hips']}'): the body would come apart as it moves"
        )
    ]


def posture_problems(skeleton: Skeleton, mapping: Mapping) -> list[str]:
    rest = skeleton.to_world(joint_positions(skeleton, mapping, skeleton.heads, skeleton.tails))
    top = [joint for joint in ("Spine", "Spine1", "Spine2", "Neck", "Head") if mapping.bones[joint]][-1]
    spine = rest[J[top]] - rest[J["Hips"]]
    lean = float(np.degrees(np.arccos(np.clip(spine[2] / max(np.linalg.norm(spine), 1e-12), -1.0, 1.0))))
    if lean <= UPRIGHT_DEGREES:
        return []
    return [
        (
            f"from {_named(mapping, 'Hips')} to {_named(mapping, top)} the spine leans {lean:.0f} degrees from "
            f"straight up at rest, where a human rig's stands within {UPRIGHT_DEGREES:.0f}: MoSa's motions are "
            "for two-legged humans, and this rig looks like another body (or a human lying down: stand it up)"
        )
    ]


def side_problems(skeleton: Skeleton, mapping: Mapping) -> list[str]:
    rest = skeleton.to_world(joint_positions(skeleton, mapping, skeleton.heads, skeleton.tails))
    forward = sum(rest[J[f"{side}Toe"]] - rest[J[f"{side}Foot"]] for side in ("Left", "Right"))
    forward[2] = 0.0
    if np.linalg.norm(forward) < 1e-6:
        return []  # feet without a direction: nothing to tell the sides by
    left = np.cross([0.0, 0.0, 1.0], forward / np.linalg.norm(forward))
    margin = SIDE_MARGIN * _height(skeleton)
    return [
        (
            f"{_named(mapping, left_joint)} lies on the rig's right of {_named(mapping, right_joint)} "
            "(the rig's left is found from where its feet point): left and right are crossed"
        )
        for left_joint, right_joint in PAIRS
        if mapping.bones[left_joint]
        and mapping.bones[right_joint]
        and (rest[J[left_joint]] - rest[J[right_joint]]) @ left < margin
    ]


def motion_problems(skeleton: Skeleton, mapping: Mapping, posed: PosedRig) -> list[str]:
    """Joints drifting from the mapped joint above them (the rig's bones are rigid, so a joint may
    not), and the head farther from the hips than the spine between them is long (bending brings
    it nearer; nothing a body does takes it farther)."""
    joints = skeleton.to_world(
        joint_positions(skeleton, mapping, *posed_bones(skeleton, mapping, posed.rotations, posed.root_location))
    )
    rest = skeleton.to_world(joint_positions(skeleton, mapping, skeleton.heads, skeleton.tails))
    tolerance = DRIFT_TOLERANCE * _height(skeleton)

    def distances(points: np.ndarray, joint: str, parent: str) -> np.ndarray:
        return np.linalg.norm(points[..., J[joint], :] - points[..., J[parent], :], axis=-1)

    problems = []
    for joint in JOINTS[1:]:
        parent = _mapped_parent(mapping, joint) if mapping.bones[joint] else None
        if parent is None:
            continue
        moved = np.abs(distances(joints, joint, parent) - distances(rest, joint, parent))
        worst = int(np.argmax(moved))
        if moved[worst] > tolerance:
            problems.append(
                f"{parent} to {joint} goes from {distances(rest, joint, parent):.2f} m at rest to "
                f"{distances(joints[worst], joint, parent):.2f} m at frame {worst} of the motion "
                f"({_named(mapping, parent)}, {_named(mapping, joint)})"
            )
    spine = [joint for joint in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head") if mapping.bones[joint]]
    spine_length = sum(float(distances(rest, b, a)) for a, b in pairwise(spine))
    reach = distances(joints, spine[-1], "Hips")
    worst = int(np.argmax(reach))
    if reach[worst] > spine_length + tolerance:
        problems.append(
            f"Hips to {spine[-1]} goes from {distances(rest, spine[-1], 'Hips'):.2f} m at rest to "
            f"{reach[worst]:.2f} m at frame {worst} of the motion, longer than the spine between them "
            f"({spine_length:.2f} m)"
        )
    return problems


def check(skeleton: Skeleton, mapping: Mapping, posed: PosedRig | None = None) -> None:
    """ImplausibleMapping listing every problem found (the motion ones only with `posed`, the transfer)."""
    problems = (
        posture_problems(skeleton, mapping) + hierarchy_problems(skeleton, mapping) + side_problems(skeleton, mapping)
    )
    if posed is not None:
        problems += motion_problems(skeleton, mapping, posed)
    if problems:
        raise ImplausibleMapping(
            "the mapping does not hold the body together, so nothing was keyed: "
            + "; ".join(problems)
            + ". Check the bones mapped to these joints in the MoSa panel"
        )
