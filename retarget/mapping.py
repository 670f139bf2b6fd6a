"""Which bone of a rig plays which canonical joint: by known naming families, else by structure.

A mapping is data: {canonical joint name (canonical.JOINT_NAMES): bone name or None} plus the
family it was found by and a confidence in [0, 1]. It round-trips through JSON so users can save,
edit and reload it. `auto_map` tries every naming family (families.py: bone names compared without
a namespace or model prefix, case-insensitively) and, when no family covers the essential joints,
reads the rig's structure: the hips are the lowest bone carrying both feet and the head top; the
spine climbs to the head; the arms leave the chest sideways; limbs are read past bend/twist
splits and helpers; the character's left is found from the direction the feet point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import canonical
from .families import FAMILIES, plain_name
from .skeleton import Skeleton

JOINTS = canonical.JOINT_NAMES
J = {name: index for index, name in enumerate(JOINTS)}
SPINE_CHAIN = [J["Hips"], J["Spine"], J["Spine1"], J["Spine2"], J["Neck"], J["Head"]]
# Without these a motion cannot be shown on the rig; "spine" means any one spine bone and
# "head" the head or the neck.
ESSENTIAL_GROUPS: dict[str, list[str]] = {
    "hips": ["Hips"],
    "spine": ["Spine", "Spine1", "Spine2"],
    "head": ["Head", "Neck"],
    **{
        name: [name]
        for name in [
            "LeftUpLeg",
            "RightUpLeg",
            "LeftLeg",
            "RightLeg",
            "LeftFoot",
            "RightFoot",
            "LeftArm",
            "RightArm",
            "LeftForeArm",
            "RightForeArm",
        ]
    },
}


@dataclass
class Mapping:
    """Canonical joint -> bone name (None: unmapped), with where it came from and how sure it is."""

    bones: dict[str, str | None]
    family: str = "user"
    confidence: float = 1.0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.bones) - set(JOINTS))
        if unknown:
            raise ValueError(
                f"the mapping names joints the canonical skeleton lacks: {unknown}; expected some of {JOINTS}"
            )
        self.bones = {joint: (self.bones.get(joint) or None) for joint in JOINTS}
        self.confidence = float(self.confidence)

    def unmapped(self) -> list[str]:
        return [joint for joint in JOINTS if self.bones[joint] is None]

    def missing_essentials(self) -> list[str]:
        return [group for group, joints in ESSENTIAL_GROUPS.items() if all(self.bones[j] is None for j in joints)]

    def check(self, skeleton: Skeleton) -> None:
        """Raise ValueError when a mapped bone is not in the rig or an essential joint is unmapped."""
        absent = sorted(bone for bone in self.bones.values() if bone is not None and bone not in skeleton.names)
        if absent:
            raise ValueError(f"the mapping names bones the rig lacks: {absent}")
        missing = self.missing_essentials()
        if missing:
            raise ValueError(essential_error(missing))

    def moving_part(self, skeleton: Skeleton) -> Skeleton:
        """The mapped bones and the bones above them: all that posing the mapped ones moves or
        reads (a control rig's hundreds of other bones never get a key)."""
        return skeleton.around([skeleton.index(bone) for bone in self.bones.values() if bone])

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "confidence": round(self.confidence, 3),
            "bones": dict(self.bones),
            "unmapped": self.unmapped(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Mapping:
        if not isinstance(data, dict) or not isinstance(data.get("bones"), dict):
            raise ValueError("a mapping needs a 'bones' object: {canonical joint name: bone name}")
        return cls(dict(data["bones"]), str(data.get("family", "user")), float(data.get("confidence", 1.0)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a mapping JSON file: {error}") from None
        return cls.from_dict(data)


def essential_error(missing: list[str]) -> str:
    wanted = ", ".join(f"{group} ({' or '.join(ESSENTIAL_GROUPS[group])})" for group in missing)
    return (
        f"the rig's bones do not map onto the human skeleton: no bone found for {wanted}. MoSa animates "
        "two-legged human rigs; if this is one, map them by hand in the MoSa panel's Mapping list (select the "
        "bone, then click the joint's fill button)"
    )


def map_by_names(skeleton: Skeleton) -> Mapping:
    """The naming family that matches the most joints (ties: the earlier family)."""
    by_plain: dict[str, str] = {}
    for name in skeleton.names:
        by_plain.setdefault(plain_name(name), name)
    best: Mapping | None = None
    for family, table in FAMILIES.items():
        bones = {
            joint: next((by_plain[plain_name(c)] for c in candidates if plain_name(c) in by_plain), None)
            for joint, candidates in table.items()
        }
        mapping = Mapping(bones, family, sum(b is not None for b in bones.values()) / len(table))
        if best is None or mapping.confidence > best.confidence:
            best = mapping
    return best


def auto_map(skeleton: Skeleton) -> Mapping:
    """Names first, then structure; ValueError listing the essential joints neither can find."""
    by_names = map_by_names(skeleton)
    if not by_names.missing_essentials():
        return by_names
    try:
        return map_by_structure(skeleton)
    except ValueError as structure_error:
        missing = by_names.missing_essentials()
        raise ValueError(f"{essential_error(missing)} (by structure: {structure_error})") from None


# ---------------------------------------------------------------- joints on a rig


def joint_positions(skeleton: Skeleton, mapping: Mapping, heads: np.ndarray, tails: np.ndarray) -> np.ndarray:
    """Positions (..., 22, 3) of the canonical joints on a rig posed with these bone heads and
    tails (..., B, 3): a mapped joint sits at its bone's head; an unmapped one is estimated
    (toe: the foot's tail, hand: the forearm's tail, spine joints: along the spine)."""
    bone = {j: skeleton.index(mapping.bones[name]) for name, j in J.items() if mapping.bones[name]}
    positions = np.zeros(heads.shape[:-2] + (canonical.NUM_JOINTS, 3))
    for j, b in bone.items():
        positions[..., j, :] = heads[..., b, :]
    for toe_or_hand, parent in (
        (J["LeftToe"], J["LeftFoot"]),
        (J["RightToe"], J["RightFoot"]),
        (J["LeftHand"], J["LeftForeArm"]),
        (J["RightHand"], J["RightForeArm"]),
    ):
        if toe_or_hand not in bone:
            positions[..., toe_or_hand, :] = tails[..., bone[parent], :]
    neck, head = J["Neck"], J["Head"]
    if neck not in bone:
        positions[..., neck, :] = positions[..., head, :]
    if head not in bone:
        positions[..., head, :] = tails[..., bone[neck], :]
    # Places along the spine (hips 0 ... neck 4) whose joint is known; the others lie between.
    known = [k for k, j in enumerate(SPINE_CHAIN[:5]) if j in bone or j == neck]
    for k, j in enumerate(SPINE_CHAIN[:5]):
        if k in known:
            continue
        lo, hi = max(i for i in known if i < k), min(i for i in known if i > k)
        t = (k - lo) / (hi - lo)
        positions[..., j, :] = (1 - t) * positions[..., SPINE_CHAIN[lo], :] + t * positions[..., SPINE_CHAIN[hi], :]
    for collar in (J["LeftShoulder"], J["RightShoulder"]):
        if collar not in bone:
            positions[..., collar, :] = positions[..., J["Spine2"], :]
    return positions


# ---------------------------------------------------------------- structure


class _Rig:
    """World-space geometry and subtree extents of a skeleton, for reading its structure."""

    def __init__(self, skeleton: Skeleton):
        self.skeleton = skeleton
        self.heads, self.tails = skeleton.world_heads(), skeleton.world_tails()
        points = np.concatenate([self.heads, self.tails])
        self.floor, self.top = points[:, 2].min(), points[:, 2].max()
        self.height = self.top - self.floor
        if self.height <= 0:
            raise ValueError("the rig has no height (all bones lie flat); expected a standing human, Z up")
        self.children = [skeleton.children(b) for b in range(len(skeleton))]
        count = len(skeleton)
        self.subtree_points: list[np.ndarray] = [np.empty((0, 3))] * count
        for bone in reversed(range(count)):
            own = np.stack([self.heads[bone], self.tails[bone]])
            self.subtree_points[bone] = np.concatenate([own] + [self.subtree_points[c] for c in self.children[bone]])

    def lowest(self, bone: int) -> float:
        return float(self.subtree_points[bone][:, 2].min())

    def highest(self, bone: int) -> float:
        return float(self.subtree_points[bone][:, 2].max())

    def reach(self, bone: int) -> float:
        """How far the bone's subtree extends from its head."""
        return float(np.linalg.norm(self.subtree_points[bone] - self.heads[bone], axis=-1).max())

    def chain(self, start: int, score) -> list[int]:
        """From `start` down the tree, always into the child whose subtree scores highest."""
        chain = [start]
        while self.children[chain[-1]]:
            chain.append(max(self.children[chain[-1]], key=score))
        return chain

    def path_lengths(self, chain: list[int]) -> np.ndarray:
        steps = np.linalg.norm(np.diff(self.heads[chain], axis=0), axis=-1)
        return np.concatenate([[0.0], np.cumsum(steps)])

    def ancestors_to(self, bone: int, top: int) -> list[int]:
        """The bones from just below `top` down to `bone` (top an ancestor of bone)."""
        path = [bone]
        while self.skeleton.parents[path[-1]] != top:
            path.append(int(self.skeleton.parents[path[-1]]))
        return path[::-1]

    def distinct(self, chain: list[int]) -> list[int]:
        """The chain without bones that start where the next one starts (helpers such as MMD's
        shoulder P/C or waist-cancel bones, zero-length twist roots): the last bone at each point stays."""
        apart = 0.01 * self.height
        return [
            b
            for b, after in zip(chain, chain[1:] + [None])
            if after is None or np.linalg.norm(self.heads[b] - self.heads[after]) > apart
        ]

    def horizontal(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm((a - b)[:2]))


def _common_ancestor(skeleton: Skeleton, bones: list[int]) -> int | None:
    shared = None
    for bone in bones:
        line = [bone, *skeleton.ancestors(bone)]
        shared = line if shared is None else [b for b in shared if b in line]
    return shared[0] if shared else None


def _find_hips(rig: _Rig) -> tuple[int, list[int], int]:
    """Hips, the two feet and the spine's first bone. A foot is the first bone of a chain that comes
    down from above to the floor (IK targets and extra roots sit on the floor with their parents;
    heels hang off a foot); the hips are the lowest bone carrying both feet and the head top."""
    floor_zone = rig.floor + 0.12 * rig.height
    parents = rig.skeleton.parents

    def is_foot(bone: int) -> bool:  # in the floor zone, under a shin above it and a thigh above that
        shin = parents[bone]
        thigh = parents[shin] if shin >= 0 else -1
        return bool(
            rig.heads[bone, 2] < floor_zone and thigh >= 0 and floor_zone <= rig.heads[shin, 2] < rig.heads[thigh, 2]
        )

    feet = [b for b in range(len(rig.skeleton)) if is_foot(b)]
    pair = feet[:1] + [f for f in feet[1:] if rig.horizontal(rig.heads[f], rig.heads[feet[0]]) > 0.05 * rig.height][:1]
    top = int(np.argmax(np.maximum(rig.heads[:, 2], rig.tails[:, 2])))
    hips = _common_ancestor(rig.skeleton, pair + [top]) if len(pair) == 2 else None
    if hips is None or hips in pair or rig.heads[hips, 2] < rig.floor + 0.3 * rig.height:
        raise ValueError("no bone has two legs going down and a spine going up")
    return hips, pair, rig.ancestors_to(top, hips)[0]


def _leg(rig: _Rig, hips: int, foot: int) -> dict[str, int | None]:
    chain = rig.distinct(rig.ancestors_to(foot, hips))
    thigh_at = next(
        (i for i, b in enumerate(chain) if rig.horizontal(rig.heads[b], rig.heads[hips]) > 0.025 * rig.height), 0
    )
    foot_at = len(chain) - 1
    if foot_at <= thigh_at + 1:
        raise ValueError(f"the leg to bone '{rig.skeleton.names[foot]}' has no thigh, shin and foot")
    path = rig.path_lengths(chain)
    middle = 0.5 * (path[thigh_at] + path[foot_at])
    knee_at = min(range(thigh_at + 1, foot_at), key=lambda i: abs(path[i] - middle))
    # The toes reach farthest along the ground from the ankle (a heel bone stays close behind
    # it); the toe joint is the ball, the lowest point that chain starts a bone at.
    ahead = max(
        rig.children[foot],
        key=lambda c: np.linalg.norm((rig.subtree_points[c] - rig.heads[foot])[:, :2], axis=-1).max(),
        default=None,
    )
    toe = None
    if ahead is not None:
        toes = rig.chain(ahead, rig.reach)
        lowest = min(rig.heads[b, 2] for b in toes)
        toe = next(b for b in toes if rig.heads[b, 2] < lowest + 0.005 * rig.height)
    return {"UpLeg": chain[thigh_at], "Leg": chain[knee_at], "Foot": foot, "Toe": toe}


def _arm(rig: _Rig, start: int, chest: int) -> dict[str, int | None]:
    chain = rig.chain(start, lambda c: np.linalg.norm(rig.subtree_points[c] - rig.heads[start], axis=-1).max())
    # The hand is the last bone with fingers (three children or more: twist bones beside a forearm
    # do not make it a hand when fingers come later).
    hand_at = max((i for i, b in enumerate(chain) if len(rig.children[b]) >= 3 and i >= 2), default=len(chain) - 1)
    before = rig.distinct(chain[: hand_at + 1])[:-1]
    collar = None
    if len(before) >= 3 or rig.horizontal(rig.heads[before[0]], rig.heads[chest]) < 0.06 * rig.height:
        collar, before = before[0], before[1:]
    if len(before) < 2:
        raise ValueError(f"the arm from bone '{rig.skeleton.names[start]}' has no upper arm and forearm")
    arm = before + [chain[hand_at]]
    path = rig.path_lengths(arm)
    elbow_at = min(range(1, len(arm) - 1), key=lambda i: abs(path[i] - 0.5 * path[-1]))
    return {"Shoulder": collar, "Arm": arm[0], "ForeArm": arm[elbow_at], "Hand": chain[hand_at]}


def map_by_structure(skeleton: Skeleton) -> Mapping:
    """Find the joints from hierarchy and rest geometry alone (names are ignored)."""
    rig = _Rig(skeleton)
    hips, feet, spine_start = _find_hips(rig)
    legs = [_leg(rig, hips, foot) for foot in feet]

    # Facing: the feet point forward (heel to toe); left is up x forward.
    feet = [(leg["Foot"], leg["Toe"]) for leg in legs]
    forward = sum((rig.heads[toe] if toe is not None else rig.tails[foot]) - rig.heads[foot] for foot, toe in feet)
    forward[2] = 0.0
    notes = []
    if np.linalg.norm(forward) < 0.02 * rig.height:
        forward = np.array([0.0, -1.0, 0.0])
        notes.append("the feet do not show which way the rig faces; assumed -Y")
    left = np.cross([0.0, 0.0, 1.0], forward / np.linalg.norm(forward))

    def side(points: np.ndarray) -> float:
        return float((points.mean(axis=0) - rig.heads[hips]) @ left)

    spine = rig.chain(spine_start, rig.highest)
    # Arms: long branches off the spine (sideways in a T-pose, down in an A-pose); the chest is
    # the highest spine bone two of them leave from, or the one below it where the collars start
    # lower than that bone (3ds Max Biped hangs the clavicles off the neck).
    arm_starts = [
        (i, c)
        for i, bone in enumerate(spine)
        for c in rig.children[bone]
        if c not in spine and rig.reach(c) > 0.25 * rig.height
    ]
    chest_at = max((i for i, _ in arm_starts if sum(k == i for k, _ in arm_starts) >= 2), default=None)
    if chest_at is None:
        raise ValueError("no two arms leave the spine")
    arm_roots = sorted((c for i, c in arm_starts if i == chest_at), key=rig.reach)[-2:]
    if chest_at > 0 and all(rig.heads[c, 2] < rig.heads[spine[chest_at], 2] - 0.02 * rig.height for c in arm_roots):
        chest_at -= 1
    arms = [_arm(rig, start, spine[chest_at]) for start in arm_roots]

    below_chest, above_chest = spine[: chest_at + 1], spine[chest_at + 1 :]
    bones: dict[str, int | None] = {"Hips": hips}
    if len(below_chest) <= 2:
        bones.update(zip(["Spine2"] if len(below_chest) == 1 else ["Spine", "Spine2"], below_chest))
    else:  # extra spine bones between these share the rotation of the one below them
        bones.update(Spine=below_chest[0], Spine1=below_chest[len(below_chest) // 2], Spine2=below_chest[-1])
    # A bone that starts at the top of the skull only marks its end (Mixamo's HeadTop_End); the
    # head bone is the first to reach the top, and bones beyond it belong to the face.
    near_top = rig.top - 0.06 * rig.height
    above_chest = [bone for bone in above_chest if rig.heads[bone, 2] < near_top] or above_chest
    reaching_top = [i for i, bone in enumerate(above_chest) if rig.tails[bone, 2] > near_top]
    if reaching_top:
        above_chest = above_chest[: reaching_top[0] + 1]
    if not above_chest:
        raise ValueError("nothing above the chest: no neck or head")
    bones["Head"] = above_chest[-1]
    bones["Neck"] = above_chest[0] if len(above_chest) > 1 else None

    for limbs in (legs, arms):
        ordered = sorted(limbs, key=lambda limb: side(rig.heads[[b for b in limb.values() if b is not None]]))
        for side_name, limb in zip(("Right", "Left"), ordered):
            for part, bone in limb.items():
                bones[side_name + part] = bone
    names = {joint: (skeleton.names[bone] if bone is not None else None) for joint, bone in bones.items()}
    mapping = Mapping(names, "structure", 0.0, notes)
    mapping.confidence = 0.7 * (1 - len(mapping.unmapped()) / len(JOINTS)) * (0.7 if notes else 1.0)
    return mapping
