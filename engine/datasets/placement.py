"""Where a loaded motion stands: on the floor, starting at the origin, facing +Z.

Every loader ends with `place_on_floor_facing_z`, so all real clips share HumanML3D's starting
convention (floor at y = 0, root above the XZ origin at frame 0, body facing +Z with its left
side at +X) and a test can compare sources directly.
"""

from __future__ import annotations

import numpy as np

from retarget import canonical, motion, rotations

UP = np.array([0.0, 1.0, 0.0])


def facing_directions(joints: np.ndarray) -> np.ndarray:
    """Horizontal unit vectors (T, 3) the body faces, from the hips and shoulders.

    The right-minus-left vector across hips and shoulders, crossed with up, points forward
    (facing +Z puts the left side at +X, as the HumanML3D data does).
    """
    r_hip, l_hip, r_shoulder, l_shoulder = canonical.FACE_JOINTS
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, r_shoulder] - joints[:, l_shoulder])
    forward = np.cross(UP, across)
    forward[:, 1] = 0.0
    return rotations.normalize(forward)


def yaw_rotation(angle: np.ndarray | float) -> np.ndarray:
    """Quaternions turning by `angle` radians about +Y."""
    angle = np.asarray(angle, dtype=np.float64)
    return rotations.from_axis_angle(angle[..., None] * UP)


def heading_angles(joints: np.ndarray) -> np.ndarray:
    """Yaw (T,) of the facing direction, measured from +Z towards +X."""
    forward = facing_directions(joints)
    return np.arctan2(forward[:, 0], forward[:, 2])


def place_on_floor_facing_z(joints: np.ndarray) -> np.ndarray:
    """Move and turn a motion (T, 22, 3) so it starts at the origin facing +Z, feet on y = 0."""
    joints = np.array(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (canonical.NUM_JOINTS, 3):
        raise ValueError(f"expected joints of shape (frames, {canonical.NUM_JOINTS}, 3), got {joints.shape}")
    joints[..., 1] -= joints[..., 1].min()
    start = joints[0, 0].copy()
    joints[..., 0] -= start[0]
    joints[..., 2] -= start[2]
    turn = yaw_rotation(-heading_angles(joints[:1])[0])
    return rotations.rotate(turn, joints)


def on_canonical_skeleton(joints: np.ndarray) -> np.ndarray:
    """The motion rebuilt on the canonical offsets (IK, then FK): one rigid body with the canonical
    rest layout at every joint, for sources whose skeleton only approximates it."""
    return motion.forward_kinematics(motion.rotations_from_positions(joints), joints[:, 0])


def frame_times(fps: float, seconds: float) -> np.ndarray:
    """Sample times of a motion `seconds` long at `fps`, the last one at or before the end."""
    return np.arange(int(np.floor(seconds * fps + 1e-6)) + 1) / fps


def interpolation_weights(times: np.ndarray, new_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each new time, the earlier source frame and the weight (0..1) of the next one."""
    index = np.clip(np.searchsorted(times, new_times, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[index + 1] - times[index], 1e-12)
    weight = np.clip((new_times - times[index]) / span, 0.0, 1.0)
    return index, weight
