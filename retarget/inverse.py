"""A rig's animation back to canonical motion, so any action can be edited by the engine.

The canonical joints are read off the posed bones (mapping.joint_positions): in Blender the
evaluated pose bones (armature_io.read_posed_bones, so constraints and IK count), or bones posed
here from pose-basis values. They are carried into canonical space by the inverse of the
placement the forward transfer uses without alignment: the rig's facing becomes +Z, its floor
y = 0, its leg length the canonical one. Rotations follow by IK on the canonical skeleton
(CanonicalMotion.from_positions). Forward transfer with align=False and ground=False puts such a
motion back exactly where it was. A BVH file of any known naming family takes the same road
(motion_from_bvh).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import canonical, rotations
from .bvh import BvhClip, read_clip
from .mapping import Mapping, auto_map, joint_positions
from .motion import CanonicalMotion, forward_kinematics
from .skeleton import CANONICAL_TO_BLENDER, Skeleton
from .transfer import placement, root_bone_of


def posed_bones(
    skeleton: Skeleton, mapping: Mapping, rotations_by_bone: dict[str, np.ndarray], root_location: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bone heads and tails (T, B, 3) in armature space of the rig posed by pose-basis values, as
    Blender composes them without constraints. Bones without a rotation track stay at rest;
    root_location (T, 3) is the pose-basis location of the bone that carries the root motion
    (transfer.root_bone_of: the hips or the first unconnected bone above)."""
    root_location = np.asarray(root_location, dtype=np.float64)
    if root_location.ndim != 2 or root_location.shape[1] != 3:
        raise ValueError(f"root_location must have shape (frames, 3); got {root_location.shape}")
    frames = len(root_location)
    tracks = {}
    for name, track in rotations_by_bone.items():
        track = np.asarray(track, dtype=np.float64)
        if track.shape != (frames, 4):
            raise ValueError(f"rotation track of bone {name!r} has shape {track.shape}; expected ({frames}, 4)")
        tracks[skeleton.index(name)] = track
    basis = np.tile(np.eye(3), (frames, len(skeleton), 1, 1))
    if tracks:
        basis[:, list(tracks)] = rotations.to_matrix(np.stack(list(tracks.values()), axis=1))
    root = root_bone_of(skeleton, skeleton.index(mapping.bones["Hips"]))
    root_head = skeleton.heads[root] + root_location @ skeleton.rest_rotations[root].T
    return skeleton.posed_heads_tails(skeleton.world_from_basis(basis), root, root_head)


def motion_from_bones(
    skeleton: Skeleton, mapping: Mapping, heads: np.ndarray, tails: np.ndarray, fps: float
) -> CanonicalMotion:
    """A canonical motion from the posed bones (heads, tails (T, B, 3) in armature space; in
    Blender the evaluated pose bones, so constraints and IK count), in the canonical space the
    forward transfer places on this rig: with align=False and ground=False it lands back here."""
    mapping.check(skeleton)
    joints = joint_positions(skeleton, mapping, heads, tails)
    rest_joints = joint_positions(skeleton, mapping, skeleton.heads, skeleton.tails)
    # Placed without alignment, canonical space keeps the rig's facing and floor; its leg length
    # (measured on the canonical rest body) becomes the canonical one.
    canonical_rest = canonical.rest_positions()
    place = placement(skeleton, rest_joints, canonical_rest[None], align=False)
    return CanonicalMotion.from_positions(place.canonical_points(joints), fps=fps)


def pose_to_motion(
    skeleton: Skeleton,
    mapping: Mapping,
    rotations_by_bone: dict[str, np.ndarray],
    root_location: np.ndarray,
    fps: float,
) -> CanonicalMotion:
    """The rig's animation given as pose-basis values, as a canonical motion at the rig's fps
    (resample.resample_motion brings it to the engine's 20)."""
    mapping.check(skeleton)
    return motion_from_bones(skeleton, mapping, *posed_bones(skeleton, mapping, rotations_by_bone, root_location), fps)


def motion_from_bvh(path: str | Path, mapping: Mapping | None = None) -> CanonicalMotion:
    """A canonical motion from a BVH file of any naming family the mapping knows (or a given
    mapping): the file's skeleton is posed by its own channels and read like a rig. A leaf
    joint's bone ends at its End Site (a foot's at the toes, which an unmapped toe takes) and
    turns with the joint."""
    clip = read_clip(path)
    # The rest pose (Y up): the file's offsets under identity rotations, the root at its own offset.
    rest = forward_kinematics(rotations.identity((1, len(clip.names))), clip.offsets[:1], clip.offsets, clip.parents)[0]
    skeleton = _with_end_sites(Skeleton.from_joints(clip.names, rest, clip.parents), clip, rest)
    mapping = mapping or auto_map(skeleton)
    mapping.check(skeleton)
    heads = clip.positions() @ CANONICAL_TO_BLENDER.T
    world = _world_rotations(clip.rotations, clip.parents)
    tail_joints = [_tail_joint(skeleton, b) for b in range(len(skeleton))]
    tails = np.stack(
        [
            heads[:, joint]
            if joint is not None
            else heads[:, b]
            + rotations.rotate(world[:, b], (skeleton.tails[b] - skeleton.heads[b]) @ CANONICAL_TO_BLENDER)
            @ CANONICAL_TO_BLENDER.T
            for b, joint in enumerate(tail_joints)
        ],
        axis=1,
    )
    joints = joint_positions(skeleton, mapping, heads, tails) @ CANONICAL_TO_BLENDER
    return CanonicalMotion.from_positions(joints, fps=clip.fps)


def _with_end_sites(skeleton: Skeleton, clip: BvhClip, rest: np.ndarray) -> Skeleton:
    """The skeleton with each leaf bone ending at its End Site, where the file gives one."""
    tails = skeleton.tails.copy()
    for joint, offset in clip.end_sites.items():
        if not skeleton.children(joint) and np.linalg.norm(offset) > 1e-6:
            tails[joint] = (rest[joint] + offset) @ CANONICAL_TO_BLENDER.T
    return Skeleton.from_bones(skeleton.names, skeleton.heads, tails, skeleton.parents)


def _world_rotations(local: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """World rotations (T, J, 4) from local ones; parents come before their children."""
    world = local.copy()
    for joint, parent in enumerate(parents):
        if parent >= 0:
            world[:, joint] = rotations.multiply(world[:, parent], local[:, joint])
    return world


def _tail_joint(skeleton: Skeleton, bone: int) -> int | None:
    """The child joint a bone built by Skeleton.from_joints points at, if any."""
    for child in skeleton.children(bone):
        if np.allclose(skeleton.heads[child], skeleton.tails[bone]):
            return child
    return None
