"""A target skeleton as retargeting sees it: bones, hierarchy and rest pose, no bpy.

Everything is in armature space, the frame Blender's `bone.matrix_local` lives in: a bone's rest
matrix holds its head as translation and its axes as columns, Y pointing along the bone towards
its tail (X and Z set by the roll). `object_matrix` takes armature space to world space (the
armature object's `matrix_world`), so a rig imported with a 90 degree X rotation or a 0.01 scale
(FBX from Mixamo) still faces and measures right in the world.

Canonical motion is Y up and faces +Z; Blender is Z up and characters face -Y. The one matrix
CANONICAL_TO_BLENDER converts canonical vectors into Blender world vectors everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from . import canonical, rotations

# (x, y, z) canonical -> (x, -z, y) Blender: up Y -> Z, forward +Z -> -Y, the character's left stays +X.
CANONICAL_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
WORLD_UP = np.array([0.0, 0.0, 1.0])


def bone_matrix(head: np.ndarray, tail: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """A rest matrix (4, 4) from head, tail and roll: Y along the bone, the shortest turn from +Y
    (Blender's own construction away from the -Y pole), then the roll about the bone."""
    head, tail = np.asarray(head, dtype=np.float64), np.asarray(tail, dtype=np.float64)
    direction = tail - head
    if np.linalg.norm(direction) < 1e-9:
        raise ValueError(f"a bone needs a tail apart from its head; both are at {head.tolist()}")
    swing = rotations.between(np.array([0.0, 1.0, 0.0]), direction)
    roll_turn = rotations.from_axis_angle(np.array([0.0, roll, 0.0]))
    matrix = np.eye(4)
    matrix[:3, :3] = rotations.to_matrix(rotations.multiply(swing, roll_turn))
    matrix[:3, 3] = head
    return matrix


@dataclass
class Skeleton:
    """Bones of one armature in rest pose; parents come before their children."""

    names: list[str]
    parents: np.ndarray  # (B,) int, -1 for a root bone
    rest_matrices: np.ndarray  # (B, 4, 4) armature space
    tails: np.ndarray  # (B, 3) armature space
    connected: np.ndarray | None = (
        None  # (B,) bool: a connected bone's head follows its parent's tail (location is ignored)
    )
    object_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))  # armature space -> world

    def __post_init__(self) -> None:
        self.names = [str(name) for name in self.names]
        count = len(self.names)
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.rest_matrices = np.asarray(self.rest_matrices, dtype=np.float64)
        self.tails = np.asarray(self.tails, dtype=np.float64)
        self.connected = np.zeros(count, bool) if self.connected is None else np.asarray(self.connected, dtype=bool)
        self.object_matrix = np.asarray(self.object_matrix, dtype=np.float64)
        if count == 0:
            raise ValueError("a skeleton needs at least one bone")
        if len(set(self.names)) != count:
            raise ValueError("bone names must be unique")
        for name, value, shape in (
            ("parents", self.parents, (count,)),
            ("rest_matrices", self.rest_matrices, (count, 4, 4)),
            ("tails", self.tails, (count, 3)),
            ("connected", self.connected, (count,)),
            ("object_matrix", self.object_matrix, (4, 4)),
        ):
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape} for {count} bones; got {value.shape}")
        if any(not -1 <= parent < bone for bone, parent in enumerate(self.parents)):
            raise ValueError(f"every parent must come before its bone (or be -1); got {self.parents.tolist()}")
        if not np.all(np.isfinite(self.rest_matrices)) or not np.all(np.isfinite(self.tails)):
            raise ValueError("rest matrices and tails must be finite numbers")

    @classmethod
    def from_bones(
        cls,
        names: list[str],
        heads: np.ndarray,
        tails: np.ndarray,
        parents: list[int] | np.ndarray,
        rolls: np.ndarray | None = None,
        connected: np.ndarray | None = None,
        object_matrix: np.ndarray | None = None,
    ) -> Skeleton:
        """Build from edit-bone data (head, tail, roll per bone, armature space)."""
        heads, tails = np.asarray(heads, dtype=np.float64), np.asarray(tails, dtype=np.float64)
        rolls = np.zeros(len(names)) if rolls is None else np.asarray(rolls, dtype=np.float64)
        matrices = np.stack([bone_matrix(h, t, r) for h, t, r in zip(heads, tails, rolls)])
        return cls(
            names,
            np.asarray(parents),
            matrices,
            tails,
            connected,
            np.eye(4) if object_matrix is None else object_matrix,
        )

    @classmethod
    def from_canonical(cls, offsets: np.ndarray = canonical.OFFSETS, hip_height: float | None = None) -> Skeleton:
        """The canonical skeleton as an armature (Z up, facing -Y), feet on the floor: one bone
        per joint, named as in the BVH template, each pointing at its chain child."""
        positions = canonical.rest_positions(offsets)
        positions[:, 1] += canonical.floor_height(offsets) if hip_height is None else hip_height
        return cls.from_joints(canonical.JOINT_NAMES, positions, canonical.PARENTS)

    @classmethod
    def from_joints(cls, names: list[str], positions: np.ndarray, parents: np.ndarray) -> Skeleton:
        """Bones from joint positions in canonical space (Y up), e.g. a BVH skeleton's rest pose:
        a joint's tail is its first child's head; a leaf continues its parent's direction."""
        heads = np.asarray(positions, dtype=np.float64) @ CANONICAL_TO_BLENDER.T
        parents = np.asarray(parents, dtype=np.int64)
        tails = np.empty_like(heads)
        for joint in range(len(names)):
            children = [c for c in np.flatnonzero(parents == joint) if np.linalg.norm(heads[c] - heads[joint]) > 1e-6]
            # Prefer the child the bone points at in a chain: the one farthest along (e.g. spine over hips).
            if children:
                tails[joint] = heads[max(children, key=lambda c: np.linalg.norm(heads[c] - heads[joint]))]
            else:
                parent = parents[joint]
                along = heads[joint] - heads[parent] if parent >= 0 else np.array([0.0, 0.0, 0.1])
                if np.linalg.norm(along) < 1e-6:
                    along = np.array([0.0, 0.0, 0.05])
                tails[joint] = heads[joint] + 0.5 * along
        return cls.from_bones(names, heads, tails, parents)

    def around(self, bones: list[int]) -> Skeleton:
        """Only these bones and the bones above them, in this order (parents first still): all
        that posing them needs, e.g. the mapped bones of a control rig with hundreds of others."""
        kept = sorted({bone for b in bones for bone in [b, *self.ancestors(b)]})
        if len(kept) == len(self):  # already cut (transfer cuts what its callers may have cut)
            return self
        index = {bone: i for i, bone in enumerate(kept)}
        return Skeleton(
            [self.names[b] for b in kept],
            [index.get(int(self.parents[b]), -1) for b in kept],
            self.rest_matrices[kept],
            self.tails[kept],
            self.connected[kept],
            self.object_matrix,
        )

    # ------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"the skeleton has no bone named {name!r}") from None

    @property
    def heads(self) -> np.ndarray:
        return self.rest_matrices[:, :3, 3]

    @property
    def rest_rotations(self) -> np.ndarray:
        """(B, 3, 3) bone axes in armature space."""
        return self.rest_matrices[:, :3, :3]

    @property
    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.tails - self.heads, axis=-1)

    def children(self, bone: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == bone)]

    def ancestors(self, bone: int) -> list[int]:
        """Parent, grandparent, ... up to the root."""
        chain = []
        while self.parents[bone] >= 0:
            bone = int(self.parents[bone])
            chain.append(bone)
        return chain

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Armature-space points (..., 3) in world space."""
        return points @ self.object_matrix[:3, :3].T + self.object_matrix[:3, 3]

    def to_armature(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in armature space."""
        inverse = np.linalg.inv(self.object_matrix)
        return points @ inverse[:3, :3].T + inverse[:3, 3]

    @property
    def object_rotation(self) -> np.ndarray:
        """The object's rotation (3, 3) without scale: turns armature-space directions into world ones."""
        u, _, vt = np.linalg.svd(self.object_matrix[:3, :3])
        return u @ vt

    @property
    def up(self) -> np.ndarray:
        """The world's up (Blender's +Z) as a direction (3,) in armature space."""
        return self.object_rotation.T @ WORLD_UP

    @property
    def object_scale(self) -> float:
        return float(np.cbrt(abs(np.linalg.det(self.object_matrix[:3, :3]))))

    def world_heads(self) -> np.ndarray:
        return self.to_world(self.heads)

    def world_tails(self) -> np.ndarray:
        return self.to_world(self.tails)

    # ------------------------------------------------------------ posing (armature space)

    @cached_property
    def levels(self) -> list[np.ndarray]:
        """Bone indices by depth in the hierarchy, roots first: the bones of one level are posed
        together (a control rig has hundreds of bones but a dozen or so levels)."""
        depth = np.zeros(len(self), dtype=np.int64)
        for b, parent in enumerate(self.parents):
            depth[b] = depth[parent] + 1 if parent >= 0 else 0
        return [np.flatnonzero(depth == level) for level in range(depth.max() + 1)]

    @cached_property
    def _offsets(self) -> np.ndarray:
        """(B, 3, 3) each bone's rest orientation relative to its parent's (a root's own rest)."""
        rest, offsets, inner = self.rest_rotations, self.rest_rotations.copy(), self.parents >= 0
        offsets[inner] = np.swapaxes(rest[self.parents[inner]], -1, -2) @ rest[inner]
        return offsets

    @cached_property
    def _head_offsets(self) -> np.ndarray:
        """(B, 3) each bone's rest head in its parent's rest frame (a root's: its rest head)."""
        heads, offsets, inner = self.heads, self.heads.copy(), self.parents >= 0
        above = self.parents[inner]
        steps = (heads[inner] - heads[above])[..., None]
        offsets[inner] = (np.swapaxes(self.rest_rotations[above], -1, -2) @ steps)[..., 0]
        return offsets

    def _unposed(self, world: np.ndarray, bones: np.ndarray) -> np.ndarray:
        """The orientations (T, len(bones), 3, 3) of these bones with an identity pose basis under
        their posed parents (world: (T, B, 3, 3)): parent world @ (parent rest^-1 @ rest), as
        Blender composes it; a root keeps its rest orientation."""
        parents = self.parents[bones]
        inner = parents >= 0
        unposed = np.empty((len(world), len(bones), 3, 3))
        unposed[:, ~inner] = self._offsets[bones[~inner]]
        unposed[:, inner] = rotations.times_fixed(world[:, parents[inner]], self._offsets[bones[inner]])
        return unposed

    def world_rotations(self, deltas: dict[int, np.ndarray], frames: int) -> np.ndarray:
        """Posed bone rotations (T, B, 3, 3): a bone with a delta (bone index -> (T, 3, 3), a turn
        of its rest orientation) gets delta @ rest; any other keeps an identity basis under its parent."""
        world = np.empty((frames, len(self), 3, 3))
        turned = np.array(list(deltas), dtype=np.int64)
        if deltas:
            turns = np.stack(list(deltas.values()), axis=1)
            world[:, turned] = rotations.times_fixed(turns, self.rest_rotations[turned])
        free = np.ones(len(self), dtype=bool)
        free[turned] = False
        for level in self.levels:
            bones = level[free[level]]
            if len(bones):
                world[:, bones] = self._unposed(world, bones)
        return world

    def world_from_basis(self, basis: np.ndarray) -> np.ndarray:
        """Posed bone rotations (T, B, 3, 3) from pose-basis rotations (T, B, 3, 3), as Blender
        composes them: world = parent world @ (parent rest^-1 @ rest) @ basis."""
        # Every bone's (parent rest^-1 @ rest) @ basis at once (times_fixed on the transposes):
        # a root's world rotation; the levels below turn theirs by their parent's, in place.
        transposed = rotations.times_fixed(np.swapaxes(basis, -1, -2), np.swapaxes(self._offsets, -1, -2))
        world = np.ascontiguousarray(np.swapaxes(transposed, -1, -2))
        for level in self.levels[1:]:
            world[:, level] = world[:, self.parents[level]] @ world[:, level]
        return world

    def basis_from_world(self, world: np.ndarray, bones: list[int]) -> dict[str, np.ndarray]:
        """pose_bone.rotation_quaternion (T, 4) of these bones; the inverse of world_from_basis."""
        bones = np.asarray(bones, dtype=np.int64)
        basis = np.swapaxes(self._unposed(world, bones), -1, -2) @ world[:, bones]
        quaternions = rotations.make_continuous(rotations.from_matrix(basis))
        return dict(zip([self.names[b] for b in bones], np.ascontiguousarray(np.moveaxis(quaternions, 1, 0))))

    def posed_heads_tails(
        self, world: np.ndarray, root_bone: int, root_head: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bone heads and tails (T, B, 3) in armature space; root_bone's head follows root_head
        (T, 3) and every other bone hangs off its parent as in the rest pose."""
        parents = self.parents
        hangs = parents >= 0
        hangs[root_bone] = False
        heads = np.empty(world.shape[:2] + (3,))
        heads[:, ~hangs] = self.heads[~hangs]
        heads[:, root_bone] = root_head
        # Every hanging bone's step from its parent's head at once; the levels below the roots
        # then add their parent's head, in place.
        local = self._head_offsets[hangs, :, None]
        heads[:, hangs] = rotations.times_fixed(world[:, parents[hangs]], local)[..., 0]
        for level in self.levels[1:]:
            bones = level[hangs[level]]
            heads[:, bones] += heads[:, parents[bones]]
        tails = heads + world[..., :, 1] * self.lengths[:, None]
        return heads, tails
