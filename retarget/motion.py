"""The canonical motion: what the engine returns, the add-on stores and BVH files carry.

Rotation convention (the BVH/Blender one): ``rotations[t, j]`` is joint j's rotation relative
to its parent, a unit quaternion (w, x, y, z), applied to a rest pose given by per-joint
offsets (by default ``canonical.OFFSETS``, the HumanML3D stick T-pose). Forward kinematics is

    global[j] = global[parent[j]] * rotations[t, j]            (global[root] = rotations[t, root])
    position[j] = position[parent[j]] + rotate(global[parent[j]], offsets[j])
    position[root] = root_translation[t]

so ``forward_kinematics(rotations, root_translation)`` rebuilds the positions.

HumanML3D motion is defined by joint positions, and its rest pose cannot match every clip: a
joint with several children (pelvis: hips and spine; spine3: neck and collars) turns all its
children with one rotation, so when the clip's angle between siblings differs from the rest
pose's, no rotation reproduces them all. `rotations_from_positions` therefore solves IK joint by
joint from the root down: a one-child joint gets the shortest-arc swing from the child's rest
direction to its actual direction (in the parent's frame), a multi-child joint the best-fit
(Kabsch) rotation of all child offsets, a leaf the identity. Positions stay the source of
truth; `fitted_rest_offsets` gives rest offsets with the clip's own bone lengths and sibling
configuration, with which FK reproduces a rigid clip exactly (the BVH writer uses them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import canonical, rotations

_UNIT_TOLERANCE = 1e-3


# ---------------------------------------------------------------- kinematics


def forward_kinematics(
    local_rotations: np.ndarray,
    root_translation: np.ndarray,
    offsets: np.ndarray = canonical.OFFSETS,
    parents: np.ndarray = canonical.PARENTS,
) -> np.ndarray:
    """World positions (T, J, 3) from local rotations (T, J, 4) on rest offsets (J, 3), or on
    per-frame offsets (T, J, 3) for skeletons whose joints also translate (BVH position channels).

    Parents must come before their children (true for the canonical order and for BVH files).
    """
    local_rotations = np.asarray(local_rotations, dtype=np.float64)
    frames, joints = local_rotations.shape[:2]
    world_rotations = np.empty_like(local_rotations)
    positions = np.empty((frames, joints, 3))
    for j, parent in enumerate(parents):
        if parent < 0:
            world_rotations[:, j] = local_rotations[:, j]
            positions[:, j] = root_translation
        else:
            world_rotations[:, j] = rotations.multiply(world_rotations[:, parent], local_rotations[:, j])
            positions[:, j] = positions[:, parent] + rotations.rotate(world_rotations[:, parent], offsets[..., j, :])
    return positions


def _children(parents: np.ndarray) -> list[list[int]]:
    children: list[list[int]] = [[] for _ in parents]
    for j, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(j)
    return children


def _best_fit_rotation(rest: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Rotations (T, 4) that best turn the rest vectors (K, 3) onto actual vectors (T, K, 3) (Kabsch)."""
    covariance = np.einsum("ki,tkj->tij", rest, actual)
    u, _, vt = np.linalg.svd(covariance)
    reflection = np.sign(np.linalg.det(np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)))
    correction = np.eye(3) * np.ones((len(actual), 1, 1))
    correction[:, 2, 2] = reflection
    return rotations.from_matrix(np.swapaxes(vt, 1, 2) @ correction @ np.swapaxes(u, 1, 2))


def _solve_rotations(positions: np.ndarray, offsets: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local and world rotations (T, J, 4) by IK, root first (see the module docstring)."""
    frames, joints = positions.shape[:2]
    local = rotations.identity((frames, joints))
    world = rotations.identity((frames, joints))
    for j, children in enumerate(_children(parents)):
        parent_world = world[:, parents[j]] if parents[j] >= 0 else rotations.identity((frames,))
        children = [c for c in children if np.linalg.norm(offsets[c]) > 1e-9]
        if children:
            actual = rotations.rotate(
                rotations.inverse(parent_world)[:, None], positions[:, children] - positions[:, j : j + 1]
            )
            if len(children) == 1:
                local[:, j] = rotations.between(np.broadcast_to(offsets[children[0]], actual[:, 0].shape), actual[:, 0])
            else:
                local[:, j] = _best_fit_rotation(offsets[children], actual)
        world[:, j] = rotations.multiply(parent_world, local[:, j])
    return local, world


def rotations_from_positions(
    positions: np.ndarray, offsets: np.ndarray = canonical.OFFSETS, parents: np.ndarray = canonical.PARENTS
) -> np.ndarray:
    """Local rotations (T, J, 4) whose FK on `offsets` best reproduces positions (T, J, 3)."""
    return _solve_rotations(np.asarray(positions, dtype=np.float64), offsets, parents)[0]


def fitted_rest_offsets(
    positions: np.ndarray, template: np.ndarray = canonical.OFFSETS, parents: np.ndarray = canonical.PARENTS
) -> np.ndarray:
    """Rest offsets (J, 3) for a clip: bone lengths averaged over the clip, one-child bones along
    the template's directions, and the children of a multi-child joint in the clip's own average
    configuration (exact for rigid clips, so FK then reproduces every position)."""
    positions = np.asarray(positions, dtype=np.float64)
    lengths = np.zeros(len(parents))
    for j, parent in enumerate(parents):
        if parent >= 0:
            lengths[j] = np.linalg.norm(positions[:, j] - positions[:, parent], axis=-1).mean()
    offsets = rotations.normalize(template) * lengths[:, None]
    _, world = _solve_rotations(positions, offsets, parents)
    for j, children in enumerate(_children(parents)):
        if len(children) > 1:
            in_joint_frame = rotations.rotate(
                rotations.inverse(world[:, j])[:, None], positions[:, children] - positions[:, j : j + 1]
            )
            offsets[children] = rotations.normalize(in_joint_frame.mean(axis=0)) * lengths[children, None]
    return offsets


# ---------------------------------------------------------------- the motion


def _array(value: Any, name: str, shape_tail: tuple[int, ...]) -> np.ndarray:
    if np.iscomplexobj(value):
        raise ValueError(f"{name} must be real numbers; got complex ones")
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be numbers of shape (frames, {', '.join(map(str, shape_tail))})") from None
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        raise ValueError(f"{name} must have shape (frames, {', '.join(map(str, shape_tail))}); got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _parents(value: Any) -> np.ndarray:
    """Parent indices as int64; anything but whole numbers is refused rather than cast (a cast
    would turn 0.5 into 0 and drop a complex part)."""
    parents = np.asarray(value)
    whole = parents.dtype.kind in "iu" or (parents.dtype.kind == "f" and np.array_equal(parents, np.round(parents)))
    if not whole:
        raise ValueError(f"parents must be whole numbers; got {parents.dtype} values")
    return parents.astype(np.int64)


def _names(value: Any) -> list[str]:
    """Joint names as a list of strings; a number or a single string is refused rather than iterated."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, np.ndarray)):
        raise ValueError(f"joint_names must be a list of {canonical.NUM_JOINTS} names; got {type(value).__name__}")
    return [str(name) for name in value]


def _rate(value: Any) -> float:
    """The frame rate as a float; text, a list or a boolean is refused rather than converted."""
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError(value)
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"fps must be a positive number; got {type(value).__name__}") from None


@dataclass
class CanonicalMotion:
    """A motion on the canonical 22-joint skeleton: positions are the truth, rotations follow
    the convention in the module docstring, features are the raw HumanML3D rows if known."""

    positions: np.ndarray  # (T, 22, 3) float32, metres, Y up
    rotations: np.ndarray  # (T, 22, 4) float32 local quaternions (w, x, y, z) on canonical.OFFSETS
    root_translation: np.ndarray  # (T, 3) float32
    fps: float = float(canonical.FPS)
    joint_names: list[str] = field(default_factory=lambda: list(canonical.JOINT_NAMES))
    parents: np.ndarray = field(default_factory=lambda: canonical.PARENTS.copy())
    features: np.ndarray | None = None  # (T-1 or T, 263) float32

    def __post_init__(self) -> None:
        self.positions = _array(self.positions, "positions", (canonical.NUM_JOINTS, 3))
        self.rotations = _array(self.rotations, "rotations", (canonical.NUM_JOINTS, 4))
        self.root_translation = _array(self.root_translation, "root_translation", (3,))
        if self.features is not None:
            self.features = _array(self.features, "features", (canonical.FEATURE_SIZE,))
        self.parents = _parents(self.parents)
        self.joint_names = _names(self.joint_names)
        self.fps = _rate(self.fps)
        self.validate()

    @classmethod
    def from_positions(
        cls, positions: np.ndarray, fps: float = canonical.FPS, features: np.ndarray | None = None
    ) -> CanonicalMotion:
        """Rotations by IK on the canonical offsets; the root joint's path is the root translation."""
        positions = _array(positions, "positions", (canonical.NUM_JOINTS, 3))
        return cls(positions, rotations_from_positions(positions), positions[:, 0], fps=fps, features=features)

    @property
    def frames(self) -> int:
        return len(self.positions)

    def __len__(self) -> int:
        return self.frames

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency: frame counts, skeleton, unit quaternions."""
        frames = self.frames
        if frames < 1:
            raise ValueError("a motion needs at least one frame")
        for name in ("rotations", "root_translation"):
            if len(getattr(self, name)) != frames:
                raise ValueError(f"{name} has {len(getattr(self, name))} frames; positions have {frames}")
        if self.features is not None and len(self.features) not in (frames - 1, frames):
            raise ValueError(
                f"features have {len(self.features)} rows; expected {frames - 1} or {frames} for {frames} frames"
            )
        if self.joint_names != list(canonical.JOINT_NAMES):
            raise ValueError(f"joint_names must be the canonical {canonical.JOINT_NAMES}; got {self.joint_names}")
        if not np.array_equal(self.parents, canonical.PARENTS):
            raise ValueError(f"parents must be the canonical {canonical.PARENTS.tolist()}; got {self.parents.tolist()}")
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be a positive number; got {self.fps}")
        norms = np.linalg.norm(self.rotations, axis=-1)
        if np.abs(norms - 1.0).max() > _UNIT_TOLERANCE:
            raise ValueError(f"rotations must be unit quaternions; lengths range {norms.min():.4f}..{norms.max():.4f}")

    def slice(self, start: int, stop: int) -> CanonicalMotion:
        """Frames start..stop-1 (features cut to match: one row per frame, or one per step)."""
        if not 0 <= start < stop <= self.frames:
            raise ValueError(f"slice {start}:{stop} must lie within 0:{self.frames} with start < stop")
        features = None
        if self.features is not None:
            per_step = len(self.features) == self.frames - 1
            features = self.features[start : stop - 1] if per_step else self.features[start:stop]
        return CanonicalMotion(
            self.positions[start:stop],
            self.rotations[start:stop],
            self.root_translation[start:stop],
            self.fps,
            self.joint_names,
            self.parents,
            features,
        )

    def forward_kinematics(self) -> np.ndarray:
        """Positions rebuilt from the rotations on the canonical offsets (close to, not always equal
        to, `positions`; see the module docstring)."""
        return forward_kinematics(self.rotations, self.root_translation)

    def to_arrays(self) -> dict[str, Any]:
        """The motion's fields by name: arrays as stored, fps and joint names as plain values."""
        data: dict[str, Any] = {
            "fps": self.fps,
            "joint_names": list(self.joint_names),
            "parents": self.parents,
            "positions": self.positions,
            "rotations": self.rotations,
            "root_translation": self.root_translation,
        }
        if self.features is not None:
            data["features"] = self.features
        return data

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lists of floats), the shape used on the wire and in the add-on."""
        return {
            key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in self.to_arrays().items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanonicalMotion:
        """Inverse of to_dict; rotations and root translation are derived from positions when absent."""
        if not isinstance(data, dict) or data.get("positions") is None:
            raise ValueError("a canonical motion needs 'positions' of shape (frames, 22, 3)")
        positions = _array(data["positions"], "positions", (canonical.NUM_JOINTS, 3))
        rotations_value = data.get("rotations")
        root_value = data.get("root_translation")
        return cls(
            positions,
            rotations_from_positions(positions) if rotations_value is None else rotations_value,
            positions[:, 0] if root_value is None else root_value,
            fps=data.get("fps", canonical.FPS),
            joint_names=data.get("joint_names", canonical.JOINT_NAMES),
            parents=data.get("parents", canonical.PARENTS),
            features=data.get("features"),
        )

    def save(self, path: str | Path) -> None:
        """Write a .npz file (arrays as stored, float32)."""
        arrays = self.to_arrays()
        arrays.update(fps=np.float64(self.fps), joint_names=np.array(self.joint_names))
        with open(path, "wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> CanonicalMotion:
        """Read a file written by save; a missing file raises FileNotFoundError, a foreign one ValueError."""
        with open(path, "rb") as file:  # a missing or unreadable path raises OSError here ...
            try:
                with np.load(file, allow_pickle=False) as data:
                    stored = {key: data[key] for key in data.files}
            except Exception as error:  # ... while a damaged file fails numpy and zipfile in many ways
                raise ValueError(
                    f"{path} is not a canonical motion .npz file ({type(error).__name__}: {error})"
                ) from None
        missing = [k for k in ("positions", "rotations", "root_translation", "fps") if k not in stored]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}; expected a file written by CanonicalMotion.save")
        if stored["fps"].size != 1:
            raise ValueError(f"{path}: 'fps' holds {stored['fps'].size} values; expected one")
        try:
            return cls(
                stored["positions"],
                stored["rotations"],
                stored["root_translation"],
                fps=float(stored["fps"].reshape(())),  # one value, whatever its shape: (), (1,), (1, 1)
                joint_names=[str(n) for n in np.atleast_1d(stored.get("joint_names", canonical.JOINT_NAMES))],
                parents=stored.get("parents", canonical.PARENTS),
                features=stored.get("features"),
            )
        except (TypeError, IndexError) as error:  # an array of the wrong kind: a string fps, a record array
            raise ValueError(
                f"{path} holds arrays of the wrong kind ({error}); expected a file written by CanonicalMotion.save"
            ) from None
