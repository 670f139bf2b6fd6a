"""Motions composed of two real takes: the first one, a short blend, then the second one.

The demo data has no single take in which someone walks and then waves, the README's first
prompt. Composing the DeepMimic walk with the CMU wave gives the model one: the second take is
turned and moved to start where the first one stops, the first is cut where its pose is nearest
the second's first pose, and the joints are blended over BLEND_FRAMES (about half a second).
The result is rebuilt on the canonical skeleton (IK, then FK on its offsets), so the two takes'
proportions and the blend's shortened bones become one rigid body with one rest layout.
"""

from __future__ import annotations

import numpy as np

from retarget import rotations

from .placement import heading_angles, on_canonical_skeleton, place_on_floor_facing_z, yaw_rotation

BLEND_FRAMES = 10
CUT_SEARCH_FRAMES = 20  # where in its last second the first take may stop
GROUND = np.array([1.0, 0.0, 1.0])  # keeps the X and Z of a position: its point on the floor


def _pose(joints: np.ndarray) -> np.ndarray:
    """Joints relative to the pelvis's ground point, turned to face +Z: the pose without place or heading."""
    grounded = joints - joints[:, :1] * GROUND
    return rotations.rotate(yaw_rotation(-heading_angles(joints))[:, None], grounded)


def compose(first: np.ndarray, second: np.ndarray, blend_frames: int = BLEND_FRAMES) -> np.ndarray:
    """Canonical joints (T, 22, 3): `first` up to its frame nearest `second`'s start pose, a blend,
    then `second`, starting at the origin facing +Z."""
    start_pose = _pose(second[:1])[0]
    candidates = np.arange(max(len(first) - CUT_SEARCH_FRAMES, 1), len(first))
    distances = np.linalg.norm(_pose(first[candidates]) - start_pose, axis=-1).mean(-1)
    first = first[: candidates[np.argmin(distances)] + 1]

    end = first[-1]
    turn = yaw_rotation(heading_angles(end[None])[0] - heading_angles(second[:1])[0])
    placed = rotations.rotate(turn, second - second[:1, :1] * GROUND)
    placed += end[0] * GROUND

    weights = np.linspace(0.0, 1.0, blend_frames + 2)[1:-1]
    weights = weights * weights * (3.0 - 2.0 * weights)  # smoothstep: no jump in speed at either end
    blend = (1.0 - weights[:, None, None]) * end + weights[:, None, None] * placed[0]
    return place_on_floor_facing_z(on_canonical_skeleton(np.concatenate([first, blend, placed])))
