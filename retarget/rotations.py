"""Rotation math in numpy, shared by every part of the product.

Quaternions are (w, x, y, z), unit length, and act on column vectors: ``rotate(q, v)`` is
``R(q) @ v``. Every function broadcasts over leading dimensions, so a whole motion
(frames, joints, 4) goes through one call.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8


def normalize(q: np.ndarray) -> np.ndarray:
    """Scale quaternions (or vectors) to unit length; zero stays zero instead of NaN."""
    q = np.asarray(q, dtype=np.float64)
    squared = q[..., 0] * q[..., 0]
    for i in range(1, q.shape[-1]):  # term by term, as dot: numpy's norm costs more on so short an axis
        squared = squared + q[..., i] * q[..., i]
    return q / np.maximum(np.sqrt(squared), EPS)[..., None]


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross products over the last axis (..., 3), as np.cross but without its overhead on small arrays."""
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products of 3-vectors (..., 3), term by term: numpy's sums over so short an axis cost more."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    q = np.zeros(tuple(shape) + (4,))
    q[..., 0] = 1.0
    return q


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b: first rotate by b, then by a."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def inverse(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate)."""
    q = np.array(q, dtype=np.float64)
    q[..., 1:] *= -1.0
    return q


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by quaternions q (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * cross(u, v)
    return v + w * t + cross(u, t)


def to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) to rotation matrices (..., 3, 3)."""
    w, x, y, z = np.moveaxis(normalize(q), -1, 0)
    return np.stack(
        [
            *(1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
            *(2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
            *(2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
        ],
        axis=-1,
    ).reshape(w.shape + (3, 3))


def times_fixed(matrices: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """matrices (T, n, 3, 3) @ fixed (n, 3, k), where each of the n fixed factors holds for every
    frame: one product per n over all frames, several times faster than numpy's 3x3 products one
    by one."""
    frames, count = matrices.shape[:2]
    rows = np.moveaxis(matrices, 1, 0).reshape(count, 3 * frames, 3)
    return np.moveaxis((rows @ fixed).reshape(count, frames, 3, fixed.shape[-1]), 0, 1)


def from_matrix(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to quaternions with w >= 0 (numerically stable branch)."""
    m = np.asarray(m, dtype=np.float64)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = np.moveaxis(m.reshape(m.shape[:-2] + (9,)), -1, 0)
    # Four candidate forms, the rows of a symmetric 4x4 matrix; each is accurate where its
    # squared component, on the diagonal, is the largest.
    diagonal = [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22]
    wx, wy, wz = m21 - m12, m02 - m20, m10 - m01
    xy, xz, yz = m01 + m10, m02 + m20, m12 + m21
    candidates = np.stack(
        [diagonal[0], wx, wy, wz, wx, diagonal[1], xy, xz, wy, xy, diagonal[2], yz, wz, xz, yz, diagonal[3]], -1
    ).reshape(m.shape[:-2] + (4, 4))
    best = np.argmax(np.stack(diagonal, -1), axis=-1)
    q = normalize(np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :])
    return np.where(q[..., :1] < 0, -q, q)


def from_axis_angle(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vectors (axis * angle in radians, ..., 3) to quaternions."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle tends to 0.5 at zero; the series keeps tiny angles exact.
    scale = np.where(angle < 1e-6, 0.5 - angle**2 / 48.0, np.sin(half) / np.maximum(angle, EPS))
    return np.concatenate([np.cos(half), rotvec * scale], axis=-1)


def to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Quaternions to rotation vectors with angle in [0, pi]."""
    q = normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    scale = np.where(sin_half < 1e-8, 2.0, angle / np.maximum(sin_half, EPS))
    return q[..., 1:] * scale


def between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction u onto direction v."""
    u = normalize(u)
    v = normalize(v)
    dot = np.sum(u * v, axis=-1, keepdims=True)
    axis = cross(u, v)
    q = np.concatenate([1.0 + dot, axis], axis=-1)
    # Opposite vectors: any axis perpendicular to u works; pick one that is not parallel to u.
    opposite = dot[..., 0] < -1.0 + 1e-9
    if np.any(opposite):
        helper = np.where(np.abs(u[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        perp = normalize(cross(u, helper))
        q = np.where(opposite[..., None], np.concatenate([np.zeros_like(dot), perp], -1), q)
    return normalize(q)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation from a (t=0) to b (t=1) along the shorter arc."""
    a = normalize(a)
    b = normalize(b)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim and t.shape[-1] != 1:
        t = t[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    close = sin_theta < 1e-6
    wa = np.where(close, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(close, 1.0, sin_theta))
    wb = np.where(close, t, np.sin(t * theta) / np.where(close, 1.0, sin_theta))
    return normalize(wa * a + wb * b)


def make_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along a time axis so neighbouring quaternions lie in the same hemisphere.

    q and -q are the same rotation; interpolation and finite differences need one sign.
    """
    q = np.moveaxis(np.array(q, dtype=np.float64), axis, 0)
    if len(q) < 2:
        return np.moveaxis(q, 0, axis)
    # Each frame keeps its sign or flips relative to the one before: a running product of +-1.
    steps = np.where(np.sum(q[1:] * q[:-1], axis=-1) < 0, -1.0, 1.0)
    signs = np.concatenate([np.ones((1,) + steps.shape[1:]), np.cumprod(steps, axis=0)])
    return np.moveaxis(q * signs[..., None], 0, axis)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in radians of the rotation a^-1 b."""
    dot = np.abs(np.sum(normalize(a) * normalize(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


_AXES = {"X": 0, "Y": 1, "Z": 2}


def from_euler(angles: np.ndarray, order: str, degrees: bool = True) -> np.ndarray:
    """Intrinsic Euler angles as BVH writes them: channel order "ZYX" means R = Rz @ Ry @ Rx."""
    angles = np.asarray(angles, dtype=np.float64)
    if degrees:
        angles = np.deg2rad(angles)
    q = identity(angles.shape[:-1])
    for i, axis_name in enumerate(order):
        rotvec = np.zeros(angles.shape[:-1] + (3,))
        rotvec[..., _AXES[axis_name]] = angles[..., i]
        q = multiply(q, from_axis_angle(rotvec))
    return q


def to_euler(q: np.ndarray, order: str, degrees: bool = True) -> np.ndarray:
    """Inverse of from_euler for any of the six Tait-Bryan orders (e.g. "ZYX", "XYZ")."""
    m = to_matrix(q)
    i, j, k = (_AXES[c] for c in order)
    # Sign of the permutation decides the signs in the decomposition.
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    # R = R_i(a) R_j(b) R_k(c): the middle angle comes from element (i, k).
    b = np.arcsin(np.clip(sign * m[..., i, k], -1.0, 1.0))
    gimbal = np.abs(m[..., i, k]) > 1.0 - 1e-9
    a = np.where(gimbal, np.arctan2(sign * m[..., k, j], m[..., j, j]), np.arctan2(-sign * m[..., j, k], m[..., k, k]))
    c = np.where(gimbal, 0.0, np.arctan2(-sign * m[..., i, j], m[..., i, i]))
    out = np.stack([a, b, c], axis=-1)
    return np.rad2deg(out) if degrees else out


def to_cont6d(q: np.ndarray) -> np.ndarray:
    """The continuous 6-D form HumanML3D uses: the first two matrix columns, concatenated."""
    m = to_matrix(q)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt back to a rotation matrix, in the same order HumanML3D uses."""
    d6 = np.asarray(d6, dtype=np.float64)
    x = normalize(d6[..., 0:3])
    z = normalize(cross(x, d6[..., 3:6]))
    y = cross(z, x)
    return np.stack([x, y, z], axis=-1)


def from_cont6d(d6: np.ndarray) -> np.ndarray:
    return from_matrix(cont6d_to_matrix(d6))


# Blender's rotation modes. An Euler mode names the axes in the order they apply: "XYZ" turns
# about X first, so R = Rz @ Ry @ Rx; the three values are always stored as (x, y, z).
# Axis-angle is stored as (angle, x, y, z).
BLENDER_EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def from_blender_euler(angles: np.ndarray, order: str) -> np.ndarray:
    """Blender Euler values (..., 3), radians, stored (x, y, z), applied in `order`, to quaternions."""
    angles = np.asarray(angles, dtype=np.float64)
    applied_last_first = order[::-1]
    return from_euler(
        np.stack([angles[..., _AXES[axis]] for axis in applied_last_first], axis=-1), applied_last_first, degrees=False
    )


def _nearest_turn(angles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each angle moved by whole turns to lie within half a turn of its reference."""
    return angles + 2.0 * np.pi * np.round((reference - angles) / (2.0 * np.pi))


def to_blender_euler(q: np.ndarray, order: str, previous: np.ndarray | None = None) -> np.ndarray:
    """Quaternions (T, ..., 4) over time to Blender Euler values (T, ..., 3), continuous frame to
    frame: of the two Euler triples of each rotation, every angle moved by whole turns, the one
    closest to the frame before is kept (so an arm turning past 180 degrees keeps turning instead
    of flipping). `previous` (..., 3): the value keyed just before the first frame, if any."""
    applied_last_first = order[::-1]
    a, b, c = np.moveaxis(to_euler(q, applied_last_first, degrees=False), -1, 0)
    # R_i(a) R_j(b) R_k(c) is also R_i(a + pi) R_j(pi - b) R_k(c + pi).
    triples = np.stack([np.stack([a, b, c], -1), np.stack([a + np.pi, np.pi - b, c + np.pi], -1)])  # (2, T, ..., 3)
    stored = np.empty_like(triples)
    for slot, axis in enumerate(applied_last_first):
        stored[..., _AXES[axis]] = triples[..., slot]
    out = np.empty(stored.shape[1:])
    reference = None if previous is None else np.asarray(previous, dtype=np.float64)
    for t in range(out.shape[0]):
        if reference is None:
            out[t] = stored[0, t]  # the principal triple: the middle angle within +-90 degrees
        else:
            candidates = _nearest_turn(stored[:, t], reference)
            closer = np.abs(candidates[1] - reference).sum(-1) < np.abs(candidates[0] - reference).sum(-1)
            out[t] = np.where(closer[..., None], candidates[1], candidates[0])
        reference = out[t]
    return out


def from_blender_axis_angle(values: np.ndarray) -> np.ndarray:
    """Blender axis-angle values (..., 4) as (angle, x, y, z) to quaternions (the axis need not be unit)."""
    values = np.asarray(values, dtype=np.float64)
    return from_axis_angle(normalize(values[..., 1:]) * values[..., :1])


def to_blender_axis_angle(q: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Quaternions (T, ..., 4) over time to Blender axis-angle values (T, ..., 4), continuous frame
    to frame: the axis keeps the side it had the frame before (the angle going negative rather
    than the axis flipping when the rotation passes through rest) and the angle takes no whole-turn
    jumps. `previous` (..., 4): the value keyed just before the first frame, if any."""
    q = make_continuous(q)
    sin_half = np.linalg.norm(q[..., 1:], axis=-1)
    angles = 2.0 * np.arctan2(sin_half, q[..., 0])
    axes = q[..., 1:] / np.maximum(sin_half, EPS)[..., None]
    out = np.empty(q.shape[:-1] + (4,))
    reference = None if previous is None else np.asarray(previous, dtype=np.float64)
    for t in range(q.shape[0]):
        angle, axis = angles[t], axes[t]
        if reference is None:
            reference = np.concatenate([np.zeros(angle.shape + (1,)), np.broadcast_to([0.0, 1.0, 0.0], axis.shape)], -1)
        flip = np.sum(axis * reference[..., 1:], axis=-1) < 0
        angle, axis = np.where(flip, -angle, angle), np.where(flip[..., None], -axis, axis)
        resting = sin_half[t] < 1e-9  # no axis of its own: keep the one before
        axis = np.where(resting[..., None], normalize(reference[..., 1:]), axis)
        out[t, ..., 0] = _nearest_turn(angle, reference[..., 0])
        out[t, ..., 1:] = axis
        reference = out[t]
    return out
