"""Canonical motion -> pose-basis rotations and root location on a target rig.

Every mapped bone is turned so that the direction from its joint to the next mapped joint down
the chain matches the source in the world, whatever the rig's rest pose (T, A, odd rolls). Each
mapped canonical joint gets a frame made of two directions measured on joint positions: the
`primary` one along the chain, and a `reference` fixing the twist (the hip axis for the pelvis;
the pelvis's and the chest's sides for the spine, neck and head, the chest's sides coming from
where the collars start; the knee or elbow bend plane for limbs, hands and feet). The same frame
is measured on the rig's rest joints; the bone's world rotation is the source frame times the
inverse rest frame, applied to the bone's rest orientation. References are built only from what
this reproduces exactly, so the frames measured on the posed rig are the source's: a pose read
back off the rig (inverse.py) transfers to itself. Bones between mapped ones (extra spine or
neck bones, split limb segments) keep an identity basis and so share the rotation of the mapped
bone below them; unmapped bones elsewhere (fingers, face, twist bones) are not written.

Root motion is scaled by leg length (target / source); the hips height follows the target's
scale and, with `ground`, the feet are put on the rig's floor. The foot lock (footlock.py) moves
the leg joints of the posed rig; the leg bones are then turned to those joints like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import canonical, footlock, rotations
from .mapping import SPINE_CHAIN, J, Mapping, joint_positions
from .skeleton import CANONICAL_TO_BLENDER, WORLD_UP, Skeleton

# (side prefix, shoulder, elbow, wrist); the legs are footlock.LEGS: (hip, knee, ankle, toe)
ARMS = [(side, J[f"{side}Arm"], J[f"{side}ForeArm"], J[f"{side}Hand"]) for side in ("Left", "Right")]
LEG_ROWS = np.array(footlock.LEGS)  # (side, hip knee ankle toe)
ARM_ROWS = np.array([arm[1:] for arm in ARMS])  # (side, shoulder elbow wrist)
BEND_HINT = 0.3  # how much the foot (legs) or the chest's forward (arms) decides the bend plane of a straight limb


@dataclass
class PosedRig:
    """Transfer output, per frame: pose-basis quaternions (w, x, y, z) of the bones written and the
    root bone's pose-basis location; `contacts` (T, 4) are the foot contact flags used (footlock.contacts)."""

    rotations: dict[str, np.ndarray]  # bone -> (T, 4)
    root_bone: str
    root_location: np.ndarray  # (T, 3)
    fps: float
    contacts: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return len(self.root_location)


# ---------------------------------------------------------------- joint frames


def primary_pairs(mapping: Mapping, rest_joints: np.ndarray) -> dict[int, tuple[int, int]]:
    """For every mapped joint, the joints (from, to) whose direction its bone follows: its own
    joint to the next mapped joint down the chain that sits apart from it in the rig's rest pose;
    a chain's last joint continues the one before. Where mapped spine joints start at one point
    (CMU's Hips and LowerBack) all follow the lowest one's segment, the only one the rig shows."""
    mapped = {j for name, j in J.items() if mapping.bones[name]}
    apart = 1e-3 * np.ptp(rest_joints, axis=0).max()
    distances = np.linalg.norm(rest_joints[:, None] - rest_joints[None], axis=-1)

    def is_apart(a: int, b: int) -> bool:
        return bool(distances[a, b] > apart)

    def next_apart(j: int) -> int:
        ends = [
            e for e in SPINE_CHAIN[SPINE_CHAIN.index(j) + 1 :] if (e in mapped or e == J["Head"]) and is_apart(e, j)
        ]
        return ends[0] if ends else J["Head"]

    def segment_start(k: int) -> int:
        start = SPINE_CHAIN[k]
        for other in SPINE_CHAIN[k + 1 : -1]:
            if other in mapped:
                if is_apart(other, start):
                    break
                start = other
        return start

    pairs = {}
    for k, j in enumerate(SPINE_CHAIN[:-1]):
        start = segment_start(k)
        pairs[j] = (start, next_apart(start))
    below_head = [j for j in SPINE_CHAIN[:-1] if j in mapped and is_apart(j, J["Head"])]
    pairs[J["Head"]] = (below_head[-1], J["Head"])
    for hip, knee, ankle, toe in footlock.LEGS:
        pairs.update({hip: (hip, knee), knee: (knee, ankle), ankle: (ankle, toe), toe: (ankle, toe)})
    for side, shoulder, elbow, wrist in ARMS:
        collar = J[f"{side}Shoulder"]
        pairs.update(
            {collar: (collar, shoulder), shoulder: (shoulder, elbow), elbow: (elbow, wrist), wrist: (elbow, wrist)}
        )
    return {j: pair for j, pair in pairs.items() if j in mapped}


def reference_directions(positions: np.ndarray, directions: np.ndarray, mapped: set[int]) -> np.ndarray:
    """The twist reference (T, 22, 3) of every joint, from joint positions (T, 22, 3) in Blender
    axes and the primary directions (T, 22, 3) of the mapped joints.

    References are built from primary directions and the pelvis frame only, which the transfer
    reproduces exactly on any rig; so the frames measured on a posed rig are the source's and
    inverse transfer gives back what forward transfer was given."""
    p, d = positions, directions
    along = rotations.normalize(d)
    hips_axis = p[:, J["LeftUpLeg"]] - p[:, J["RightUpLeg"]]
    hips_side = _across(along[:, J["Hips"]], hips_axis)
    # The chest's sides: where the collars start (or without collars, the shoulders), both
    # carried by the chest bone like the hips by the pelvis.
    collars = (
        (J["LeftShoulder"], J["RightShoulder"])
        if J["LeftShoulder"] in mapped and J["RightShoulder"] in mapped
        else (J["LeftArm"], J["RightArm"])
    )
    chest = max((j for j in (J["Spine"], J["Spine1"], J["Spine2"]) if j in mapped), key=SPINE_CHAIN.index)
    chest_up = along[:, chest]
    chest_side = _across(chest_up, p[:, collars[0]] - p[:, collars[1]])
    chest_forward = rotations.normalize(rotations.cross(chest_side, chest_up))
    refs = np.zeros_like(d)
    refs[:, J["Hips"]] = hips_axis
    refs[:, J["Spine"]] = hips_side
    refs[:, J["Spine1"]] = rotations.normalize(hips_side + chest_side)
    refs[:, [J["Spine2"], J["Neck"], J["Head"]]] = chest_side[:, None]
    refs[:, [J["LeftShoulder"], J["RightShoulder"]]] = chest_up[:, None]
    # Both sides at once; each limb's joints share its hinge.
    # The knee bends backwards, away from the toes: a straight leg's hinge comes from the foot.
    hips, knees, ankles, _ = LEG_ROWS.T
    refs[:, LEG_ROWS] = rotations.cross(along[:, hips], along[:, knees] - BEND_HINT * along[:, ankles])[:, :, None]
    # The elbow bends the forearm forwards: a straight arm's hinge comes from the chest's forward.
    shoulders, elbows, _ = ARM_ROWS.T
    bend = along[:, elbows] + BEND_HINT * chest_forward[:, None] + 0.05 * chest_up[:, None]
    refs[:, ARM_ROWS] = rotations.cross(along[:, shoulders], bend)[:, :, None]
    return refs


def _across(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The reference (T, ..., 3) made perpendicular to the unit directions y, unit length. Where
    it is parallel to y, the last good one over the time axis 0 is kept."""
    x = reference - rotations.dot(reference, y)[..., None] * y
    bad = np.sqrt(rotations.dot(x, x)) < 1e-6
    if np.any(bad):
        fallback = rotations.cross(y, np.where(np.abs(y[..., 2:3]) < 0.9, WORLD_UP, [1.0, 0.0, 0.0]))
        x = np.where(bad[..., None], fallback, x)
        bad_frames = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
        for t in bad_frames[bad_frames > 0]:
            carried = x[t - 1] - rotations.dot(x[t - 1], y[t])[..., None] * y[t]
            x[t] = np.where(bad[t, ..., None], carried, x[t])
    return rotations.normalize(x)


def frames_from_directions(primary: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Orthonormal frames (T, ..., 3, 3) from directions (T, ..., 3): Y along primary, X along the
    reference made perpendicular (_across)."""
    y = rotations.normalize(primary)
    x = _across(y, reference)
    return np.stack([x, y, rotations.cross(x, y)], axis=-1)


def joint_frames(positions: np.ndarray, pairs: dict[int, tuple[int, int]]) -> np.ndarray:
    """Frames (T, len(pairs), 3, 3) of the mapped joints, in the order of `pairs`, on joint
    positions (T, 22, 3), Blender axes: all joints in one go."""
    joints = list(pairs)
    starts, ends = np.array(list(pairs.values())).T
    directions = np.zeros(positions.shape)
    directions[:, joints] = positions[:, ends] - positions[:, starts]
    refs = reference_directions(positions, directions, set(joints))
    return frames_from_directions(directions[:, joints], refs[:, joints])


# ---------------------------------------------------------------- placing the motion


def written_bones(skeleton: Skeleton, mapped: set[int]) -> list[int]:
    """Mapped bones and the bones on the way up from each to the mapped bone above it."""
    written = set(mapped)
    for b in mapped:
        between = []
        for ancestor in skeleton.ancestors(b):
            if ancestor in mapped:
                written.update(between)
                break
            between.append(ancestor)
    return sorted(written)


def root_bone_of(skeleton: Skeleton, hips: int) -> int:
    """The bone that carries the root motion: the hips, or the first unconnected bone above them
    (a connected bone's location is ignored by Blender)."""
    bone = hips
    while skeleton.connected[bone] and skeleton.parents[bone] >= 0:
        bone = int(skeleton.parents[bone])
    return bone


def leg_length(positions: np.ndarray) -> float:
    """Hip to knee to ankle, both sides averaged, median over frames (positions (..., 22, 3))."""
    hips, knees, ankles, _ = LEG_ROWS.T
    thighs = np.linalg.norm(positions[..., knees, :] - positions[..., hips, :], axis=-1)
    shins = np.linalg.norm(positions[..., ankles, :] - positions[..., knees, :], axis=-1)
    lengths = thighs + shins  # (..., side)
    return float(np.median(0.5 * (lengths[..., 0] + lengths[..., 1])))


def facing(positions: np.ndarray) -> np.ndarray:
    """Horizontal forward direction (3,) of a body (positions (22, 3), Blender axes): hips axis x up."""
    left = positions[J["LeftUpLeg"]] - positions[J["RightUpLeg"]] + positions[J["LeftArm"]] - positions[J["RightArm"]]
    forward = np.cross(left, WORLD_UP)
    forward[2] = 0.0
    if np.linalg.norm(forward) < 1e-9:
        raise ValueError("cannot tell which way the body faces: its hips and shoulders point up")
    return forward / np.linalg.norm(forward)


def yaw_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) about Z taking one horizontal direction onto another."""
    angle = np.arctan2(source[0] * target[1] - source[1] * target[0], source @ target)
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def motion_arrays(motion) -> tuple[np.ndarray, float, np.ndarray | None]:
    """(positions (T, 22, 3), fps, features or None) from a CanonicalMotion or its dict form."""
    if isinstance(motion, dict):
        if motion.get("positions") is None:
            raise ValueError("a motion needs 'positions' of shape (frames, 22, 3)")
        positions, fps, features = motion["positions"], motion.get("fps", canonical.FPS), motion.get("features")
    else:
        positions, fps, features = motion.positions, motion.fps, motion.features
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[1:] != (canonical.NUM_JOINTS, 3) or len(positions) < 1:
        raise ValueError(f"positions must have shape (frames, 22, 3); got {positions.shape}")
    if not np.all(np.isfinite(positions)):
        raise ValueError("positions contain NaN or infinite values")
    return positions, float(fps), None if features is None else np.asarray(features, dtype=np.float64)


@dataclass
class Placement:
    """Where the source goes on the rig: canonical points -> armature-space points, and the scale."""

    rotation: np.ndarray  # (3, 3) canonical -> armature space directions
    scale: float  # target leg length / source leg length (armature units)
    source_origin: np.ndarray  # (3,) canonical point that lands on target_origin
    target_origin: np.ndarray  # (3,) armature space

    def points(self, canonical_points: np.ndarray) -> np.ndarray:
        return self.target_origin + self.scale * (canonical_points - self.source_origin) @ self.rotation.T

    def directions(self, canonical_vectors: np.ndarray) -> np.ndarray:
        return canonical_vectors @ self.rotation.T

    def canonical_points(self, points: np.ndarray) -> np.ndarray:
        """The inverse of `points`: armature-space points back in canonical space."""
        return self.source_origin + (points - self.target_origin) @ self.rotation / self.scale


CANONICAL_FORWARD = np.array([0.0, 0.0, 1.0])


def placement(skeleton: Skeleton, rest_joints: np.ndarray, source: np.ndarray, align: bool = True) -> Placement:
    """Scale the source (canonical joints (T, 22, 3)) by leg length and put it on the rig's floor.

    With `align`, its frame-0 facing turns onto the rig's and its frame-0 hips land over the
    rig's hips (generated motion). Without, canonical space itself is placed: its origin on the
    rig's hips at floor level, +Z onto the rig's facing, so a motion read off this rig by
    inverse transfer lands exactly where it was."""
    to_world = skeleton.object_rotation
    world_rest = skeleton.to_world(rest_joints)
    source_blender = source @ CANONICAL_TO_BLENDER.T
    source_facing = facing(source_blender[0]) if align else CANONICAL_TO_BLENDER @ CANONICAL_FORWARD
    rotation = to_world.T @ yaw_between(source_facing, facing(world_rest)) @ CANONICAL_TO_BLENDER
    scale = leg_length(world_rest) / leg_length(source_blender)
    if align:
        source_floor = footlock.floor_height(source[:, footlock.FOOT_JOINTS, 1])
        source_origin = np.array([source[0, 0, 0], source_floor, source[0, 0, 2]])
    else:
        source_origin = np.zeros(3)
    target_floor = world_rest[footlock.FOOT_JOINTS, 2].min()
    target_origin = skeleton.to_armature(np.array([world_rest[0, 0], world_rest[0, 1], target_floor]))
    return Placement(rotation, scale / skeleton.object_scale, source_origin, target_origin)


def transfer(
    motion,
    skeleton: Skeleton,
    mapping: Mapping,
    foot_lock: bool = False,
    in_place: bool = False,
    ground: bool = True,
    align: bool = True,
    placed_from: int = 0,
) -> PosedRig:
    """Pose the rig like the motion, frame by frame (see the module docstring). `align` and
    `ground` suit generated motion; a motion from inverse transfer of this rig goes back where it
    was with both off. `placed_from`: the frame from which on the motion is one already on the
    rig (extended before it): the alignment and the ground come from those frames, so they land
    where they did."""
    mapping.check(skeleton)
    skeleton = mapping.moving_part(skeleton)  # the rest moves nothing written or measured (idempotent)
    source, fps, features = motion_arrays(motion)
    frames = len(source)
    bone_of = {j: skeleton.index(mapping.bones[name]) for name, j in J.items() if mapping.bones[name]}
    rest_joints = joint_positions(skeleton, mapping, skeleton.heads, skeleton.tails)
    place = placement(skeleton, rest_joints, source[placed_from:], align)

    # Bone rotations: source frame @ rest frame^T, both measured in armature space.
    pairs = primary_pairs(mapping, rest_joints)
    bones = [bone_of[j] for j in pairs]
    rest_inverse = np.swapaxes(joint_frames(rest_joints[None], pairs)[0], -1, -2)
    turns = rotations.times_fixed(joint_frames(place.directions(source), pairs), rest_inverse)
    deltas = dict(zip(bones, np.moveaxis(turns, 1, 0)))

    # Root path: the source's hips, scaled, over the rig's hips; flattened for in-place.
    hips = bone_of[J["Hips"]]
    hips_path = place.points(source[:, J["Hips"]])
    if in_place:
        up = skeleton.up
        drift = hips_path - hips_path[:1]
        hips_path = hips_path - (drift - np.outer(drift @ up, up))  # keep only the vertical motion
    root = root_bone_of(skeleton, hips)
    root_head = skeleton.heads[root] + (hips_path - skeleton.heads[hips])

    world = skeleton.world_rotations(deltas, frames)
    if ground:
        root_head = root_head + _ground_offset(
            skeleton, mapping, world[placed_from:], root, root_head[placed_from:], rest_joints
        )
    contacts = footlock.contacts(source, features)
    if foot_lock:
        locked, root_head = footlock.lock_feet(skeleton, mapping, world, root, root_head, contacts)
        locked_turns = rotations.times_fixed(joint_frames(locked, pairs), rest_inverse)
        deltas.update({bones[k]: locked_turns[:, k] for k, j in enumerate(pairs) if j in footlock.LEG_JOINTS})
        world = skeleton.world_rotations(deltas, frames)
    # Blender: posed head = rest head + rest rotation @ location (the bones above the root stay at rest).
    root_location = (root_head - skeleton.heads[root]) @ skeleton.rest_rotations[root]
    rotations_written = skeleton.basis_from_world(world, written_bones(skeleton, set(bone_of.values())))
    return PosedRig(rotations_written, skeleton.names[root], root_location, fps, contacts)


def _ground_offset(
    skeleton: Skeleton,
    mapping: Mapping,
    world: np.ndarray,
    root: int,
    root_head: np.ndarray,
    rest_joints: np.ndarray,
) -> np.ndarray:
    """A constant shift (3,) along the rig's up axis putting the feet of the rig posed with these
    bone rotations (world: (T, B, 3, 3)) on the rig's floor: the lowest foot joint, over the
    clip's lower frames, at the height it has in the rest pose."""
    heads, tails = skeleton.posed_heads_tails(world, root, root_head)
    feet = joint_positions(skeleton, mapping, heads, tails)[:, footlock.FOOT_JOINTS]
    up = skeleton.up
    posed_low = footlock.floor_height(feet @ up)
    rest_low = (rest_joints[footlock.FOOT_JOINTS] @ up).min()
    return (rest_low - posed_low) * up
