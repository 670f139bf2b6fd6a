"""The HumanML3D 263-feature motion representation, computed as the official processing does.

Numpy only: importing this module must never import torch (Blender-side tools and the dataset
builder use it without the model).

Joints (T, 22, 3) become features (T-1, 263) in four steps, each matching one official
function (HumanML3D motion_representation.py and common/skeleton.py):

1. `normalize_joints`: retarget onto the canonical skeleton (scale the root by leg length,
   swing IK, FK with `canonical.OFFSETS`), put the lowest joint on the floor, move the root's
   XZ at frame 0 to the origin and turn the body to face +Z at frame 0.
2. The root rotation of every frame but the first comes from a Gaussian-smoothed (sigma 20
   frames) forward direction; frame 0 keeps the identity, as the official IK sets it. The
   official IK adds the hip vector and the *reversed* shoulder vector (its face joints unpack in
   a different order than in step 1), so this facing is not the facing that step 1 aligned to
   +Z. We reproduce both quirks exactly, because the checkpoints expect them.
3. Per-chain IK rotations (shortest arc from the raw offset direction, relative to the rotation
   accumulated down the chain, every chain starting from the root rotation) as 6-D.
4. The layout: [0] root yaw velocity (arcsin of y of the relative root quaternion, a half
   angle), [1:3] root XZ velocity in the facing frame, [3] root height, [4:67] 21 joint
   positions relative to the root in XZ and rotated into the facing frame ("ric"),
   [67:193] 21 rotations in 6-D, [193:259] 22 joint velocities in the facing frame,
   [259:263] foot contacts left (ankle, toe), right (ankle, toe).

Because frame 0's root rotation is the identity, the recovery (which starts from yaw 0) gives
back the normalised joints: features_to_joints(joints_to_features(J)) equals normalize_joints(J)
without its last frame, and so do the 6-D rotations by FK (`features_to_rotation_joints`), to
float32 precision. One official flaw remains: the yaw velocity is arcsin of a quaternion part,
so a step whose relative root quaternion has w < 0 (the smoothed facing crossing -Z) gets the
wrong sign, and the recovery drifts from there; HumanML3D's own features share it.
"""

from __future__ import annotations

import numpy as np

from retarget import canonical, rotations
from retarget.motion import CanonicalMotion

FEATURE_SIZE = canonical.FEATURE_SIZE
NUM_JOINTS = canonical.NUM_JOINTS
ROOT_SLICE = slice(0, 4)
RIC_SLICE = slice(4, 4 + (NUM_JOINTS - 1) * 3)
ROT_SLICE = slice(RIC_SLICE.stop, RIC_SLICE.stop + (NUM_JOINTS - 1) * 6)
VEL_SLICE = slice(ROT_SLICE.stop, ROT_SLICE.stop + NUM_JOINTS * 3)
CONTACT_SLICE = slice(VEL_SLICE.stop, VEL_SLICE.stop + 4)
assert CONTACT_SLICE.stop == FEATURE_SIZE

# Std blocks and their bias (HumanML3D cal_mean_variance): root and contacts weigh 5x more.
FEATURE_BIAS = 5.0
STD_BLOCKS: list[tuple[slice, float]] = [
    (slice(0, 1), FEATURE_BIAS),
    (slice(1, 3), FEATURE_BIAS),
    (slice(3, 4), FEATURE_BIAS),
    (RIC_SLICE, 1.0),
    (ROT_SLICE, 1.0),
    (VEL_SLICE, 1.0),
    (CONTACT_SLICE, FEATURE_BIAS),
]
SMOOTHING_SIGMA = 20.0
_UP = np.array([0.0, 1.0, 0.0])
_FORWARD = np.array([0.0, 0.0, 1.0])


# ---------------------------------------------------------------- checks


def _check_joints(joints: np.ndarray, min_frames: int = 2) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (frames, {NUM_JOINTS}, 3); got {joints.shape}")
    if len(joints) < min_frames:
        raise ValueError(f"joints need at least {min_frames} frames; got {len(joints)}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joints contain NaN or infinite values")
    return joints


def _check_features(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != FEATURE_SIZE:
        raise ValueError(f"features must have shape (frames, {FEATURE_SIZE}); got {features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinite values")
    return features


# ---------------------------------------------------------------- skeleton (official Skeleton class)


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """1-D Gaussian filter along axis 0 with edge replication (scipy's mode='nearest', truncate 4)."""
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    smoothed = np.zeros_like(values)
    for tap, weight in zip(taps, kernel):
        smoothed += weight * padded[radius + tap : radius + tap + len(values)]
    return smoothed


def root_rotations(joints: np.ndarray, smooth: bool) -> np.ndarray:
    """(T, 4) rotations taking each frame's forward direction onto +Z (official IK's root).

    Official quirks kept on purpose, because the checkpoints expect them:
    - the across vector is (l_hip - r_hip) + (r_shoulder - l_shoulder), a hip vector pointing
      left plus a shoulder vector pointing right;
    - frame 0 keeps the identity whatever its facing: its features are not turned, and its yaw
      velocity is the whole rotation of frame 1.
    """
    r_hip, l_hip, r_shoulder, l_shoulder = canonical.FACE_JOINTS
    across = (joints[:, l_hip] - joints[:, r_hip]) + (joints[:, r_shoulder] - joints[:, l_shoulder])
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross(_UP, across)
    if smooth:
        forward = gaussian_smooth(forward, SMOOTHING_SIGMA)
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    root = rotations.between(forward, np.broadcast_to(_FORWARD, forward.shape))
    root[0] = rotations.identity()
    return root


def chain_ik(joints: np.ndarray, root_rotation: np.ndarray) -> np.ndarray:
    """(T, 22, 4) per-chain swing rotations (official inverse_kinematics_np).

    Entry j rotates the raw offset direction of joint j (the bone from its parent); every chain
    restarts from the root rotation, so the arm chains skip the spine's rotations.
    """
    directions = canonical.RAW_OFFSET_DIRECTIONS
    params = np.zeros(joints.shape[:-1] + (4,))
    params[:, 0] = root_rotation
    for chain in canonical.KINEMATIC_CHAINS:
        accumulated = root_rotation
        for parent, child in zip(chain[:-1], chain[1:]):
            bone = joints[:, child] - joints[:, parent]
            swing = rotations.between(np.broadcast_to(directions[child], bone.shape), bone)
            local = rotations.multiply(rotations.inverse(accumulated), swing)
            params[:, child] = local
            accumulated = rotations.multiply(accumulated, local)
    return params


def chain_fk(params: np.ndarray, root_position: np.ndarray, offsets: np.ndarray = canonical.OFFSETS) -> np.ndarray:
    """Joints (T, 22, 3) from per-chain rotations (official forward_kinematics_np).

    `params` may be quaternions (T, 22, 4) or rotation matrices (T, 22, 3, 3).
    """
    as_matrices = params if params.shape[-1] == 3 else rotations.to_matrix(params)
    joints = np.zeros(params.shape[:2] + (3,))
    joints[:, 0] = root_position
    for chain in canonical.KINEMATIC_CHAINS:
        accumulated = as_matrices[:, 0]
        for parent, child in zip(chain[:-1], chain[1:]):
            accumulated = accumulated @ as_matrices[:, child]
            joints[:, child] = accumulated @ offsets[child] + joints[:, parent]
    return joints


def uniform_skeleton(joints: np.ndarray) -> np.ndarray:
    """Retarget joints onto the canonical bone lengths (official uniform_skeleton).

    The root path is scaled by the ratio of right thigh + shin lengths at frame 0.
    """
    joints = _check_joints(joints, min_frames=1)
    knee, ankle = 5, 8  # official l_idx1, l_idx2 (right knee and ankle)
    parents = canonical.PARENTS
    source_leg = sum(np.linalg.norm(joints[0, j] - joints[0, parents[j]]) for j in (knee, ankle))
    target_leg = sum(np.linalg.norm(canonical.OFFSETS[j]) for j in (knee, ankle))
    params = chain_ik(joints, root_rotations(joints, smooth=False))
    return chain_fk(params, joints[:, 0] * (target_leg / source_leg))


# ---------------------------------------------------------------- joints -> features


def normalize_joints(joints: np.ndarray) -> np.ndarray:
    """Canonical bone lengths, on the floor, root XZ at the origin and facing +Z at frame 0."""
    positions = uniform_skeleton(joints)
    positions[:, :, 1] -= positions[:, :, 1].min()
    positions -= positions[0, 0] * np.array([1.0, 0.0, 1.0])
    r_hip, l_hip, r_shoulder, l_shoulder = canonical.FACE_JOINTS
    first = positions[0]
    across = (first[r_hip] - first[l_hip]) + (first[r_shoulder] - first[l_shoulder])
    forward = np.cross(_UP, across / np.linalg.norm(across))
    facing = rotations.between(forward / np.linalg.norm(forward), _FORWARD)
    return rotations.rotate(facing, positions)


def foot_contacts(positions: np.ndarray, threshold: float = canonical.CONTACT_VELOCITY_THRESHOLD) -> np.ndarray:
    """(T-1, 4) contacts, left ankle/toe then right: squared step length under the threshold."""
    feet = canonical.LEFT_FOOT + canonical.RIGHT_FOOT
    step = np.sum((positions[1:, feet] - positions[:-1, feet]) ** 2, axis=-1)
    return (step < threshold).astype(np.float64)


def joints_to_features(joints: np.ndarray) -> np.ndarray:
    """HumanML3D features (T-1, 263) float32 of joints (T, 22, 3) in metres, Y up."""
    positions = normalize_joints(_check_joints(joints))
    contacts = foot_contacts(positions)

    root_rotation = root_rotations(positions, smooth=True)
    params = chain_ik(positions, root_rotation)
    root_velocity = rotations.rotate(root_rotation[1:], positions[1:, 0] - positions[:-1, 0])
    relative_rotation = rotations.multiply(root_rotation[1:], rotations.inverse(root_rotation[:-1]))
    yaw_velocity = np.arcsin(relative_rotation[:, 2:3])

    ric = positions - positions[:, :1] * np.array([1.0, 0.0, 1.0])
    ric = rotations.rotate(root_rotation[:, None], ric)
    local_velocity = rotations.rotate(root_rotation[:-1, None], positions[1:] - positions[:-1])

    frames = len(positions) - 1
    features = np.concatenate(
        [
            yaw_velocity,
            root_velocity[:, [0, 2]],
            ric[:-1, 0, 1:2],
            ric[:-1, 1:].reshape(frames, -1),
            rotations.to_cont6d(params[:-1, 1:]).reshape(frames, -1),
            local_velocity.reshape(frames, -1),
            contacts,
        ],
        axis=-1,
    )
    return features.astype(np.float32)


# ---------------------------------------------------------------- features -> joints


def recover_root(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root rotation (N, 4) and position (N, 3) integrated from the root features."""
    features = _check_features(features)
    angle = np.zeros(len(features))
    angle[1:] = np.cumsum(features[:-1, 0])
    rotation = np.zeros((len(features), 4))
    rotation[:, 0] = np.cos(angle)
    rotation[:, 2] = np.sin(angle)
    steps = np.zeros((len(features), 3))
    steps[1:, [0, 2]] = features[:-1, 1:3]
    position = np.cumsum(rotations.rotate(rotations.inverse(rotation), steps), axis=0)
    position[:, 1] = features[:, 3]
    return rotation, position


def features_to_joints(features: np.ndarray) -> np.ndarray:
    """Joints (N, 22, 3) from the root and ric parts (official recover_from_ric)."""
    rotation, root = recover_root(features)
    ric = np.asarray(features, dtype=np.float64)[:, RIC_SLICE].reshape(len(features), NUM_JOINTS - 1, 3)
    body = rotations.rotate(rotations.inverse(rotation)[:, None], ric)
    body[..., [0, 2]] += root[:, None, [0, 2]]
    return np.concatenate([root[:, None], body], axis=1)


def features_to_rotation_joints(features: np.ndarray) -> np.ndarray:
    """Joints (N, 22, 3) by FK of the 6-D rotations on the canonical offsets (official recover_from_rot)."""
    rotation, root = recover_root(features)
    local = np.asarray(features, dtype=np.float64)[:, ROT_SLICE].reshape(len(features), NUM_JOINTS - 1, 6)
    matrices = np.concatenate([rotations.to_matrix(rotation)[:, None], rotations.cont6d_to_matrix(local)], axis=1)
    return chain_fk(matrices, root)


def features_to_motion(features: np.ndarray) -> CanonicalMotion:
    """The engine's result: positions from the ric part (features_to_joints), rotations by IK
    from those positions (see retarget.motion), the root's path, and the features themselves."""
    return CanonicalMotion.from_positions(features_to_joints(features), features=features)


def align_on_frames(
    positions: np.ndarray, targets: np.ndarray, frames: list[int], target_frames: list[int] | None = None
) -> np.ndarray:
    """Positions (T, 22, 3) turned about the vertical and moved so that their `frames` fit the
    targets' `target_frames` (default: the same frames) best."""
    moving, fixed = np.asarray(positions, np.float64), np.asarray(targets, np.float64)
    target_frames = frames if target_frames is None else target_frames
    here, there = moving[frames].reshape(-1, 3), fixed[target_frames].reshape(-1, 3)
    here, there = here - here.mean(0), there - there.mean(0)
    # The yaw that best maps one set of points' ground-plane spread onto the other's (2-D Procrustes on X, Z).
    cross = np.sum(here[:, 2] * there[:, 0] - here[:, 0] * there[:, 2])
    dot = np.sum(here[:, 0] * there[:, 0] + here[:, 2] * there[:, 2])
    angle = np.arctan2(cross, dot)
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])
    turned = moving @ turn.T
    return turned + (fixed[target_frames].reshape(-1, 3).mean(0) - turned[frames].reshape(-1, 3).mean(0))


# ---------------------------------------------------------------- normalisation


def feature_std_with_bias(std: np.ndarray) -> np.ndarray:
    """Std with the feature bias: root (0:4) and contacts (259:263) divided by 5."""
    std = np.array(std, dtype=np.float64)
    if std.shape != (FEATURE_SIZE,):
        raise ValueError(f"std must have shape ({FEATURE_SIZE},); got {std.shape}")
    for block, bias in STD_BLOCKS:
        std[block] /= bias
    return std


def mean_std(features_list: list[np.ndarray], min_std: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Dataset Mean and Std (263,) float32 as HumanML3D computes them: the Std is averaged
    within each block (root yaw, root XZ, height, ric, rot, vel, contacts), then biased.
    `min_std` keeps constant blocks (e.g. contacts of a clip that never lifts a foot) finite."""
    if not features_list:
        raise ValueError("mean_std needs at least one feature array")
    frames = np.concatenate([_check_features(f) for f in features_list], axis=0)
    spread = frames.std(axis=0)
    std = np.empty(FEATURE_SIZE)
    for block, _ in STD_BLOCKS:
        std[block] = max(float(spread[block].mean()), min_std)
    return frames.mean(axis=0).astype(np.float32), feature_std_with_bias(std).astype(np.float32)


def normalize(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Z-score features with the dataset (or checkpoint) Mean/Std."""
    return ((np.asarray(features) - mean) / std).astype(np.float32)


def denormalize(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (np.asarray(features) * std + mean).astype(np.float32)
