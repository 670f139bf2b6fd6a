"""Which bone of a rig plays which canonical joint: by known naming families, else by structure.

A mapping is data: {canonical joint name (canonical.JOINT_NAMES): bone name or None} plus the
family it was found by and a confidence in [0, 1]. It round-trips through JSON so users can save,
edit and reload it. `auto_map` tries every naming family below (bone names compared without a
namespace prefix such as "mixamorig:" or "Armature|", case-insensitively) and, when no family
covers the essential joints, reads the rig's structure: the hips are where two legs go down and a
spine goes up; the spine climbs to the head; the arms leave the chest sideways; the character's
left is found from the direction the feet point.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import canonical
from .skeleton import Skeleton

JOINTS = canonical.JOINT_NAMES
J = {name: index for index, name in enumerate(JOINTS)}
SPINE_CHAIN = [J["Hips"], J["Spine"], J["Spine1"], J["Spine2"], J["Neck"], J["Head"]]
# Without these a motion cannot be shown on the rig; "spine" means any one spine bone and
# "head" the head or the neck.
ESSENTIAL_GROUPS: dict[str, list[str]] = {
    "hips": ["Hips"], "spine": ["Spine", "Spine1", "Spine2"], "head": ["Head", "Neck"],
    **{name: [name] for name in ["LeftUpLeg", "RightUpLeg", "LeftLeg", "RightLeg", "LeftFoot", "RightFoot",
                                  "LeftArm", "RightArm", "LeftForeArm", "RightForeArm"]},
}


def _family(**bones: str | list[str]) -> dict[str, list[str]]:
    """A naming family: canonical joint -> candidate bone names (first match wins)."""
    unknown = set(bones) - set(JOINTS)
    assert not unknown, unknown
    return {joint: [names] if isinstance(names, str) else list(names) for joint, names in bones.items()}


def _limbs(fmt) -> dict[str, str | list[str]]:
    """Left and right names from one pattern: fmt(side, part) for each limb part."""
    parts = {"UpLeg": "thigh", "Leg": "shin", "Foot": "foot", "Toe": "toe", "Shoulder": "collar",
             "Arm": "upper_arm", "ForeArm": "forearm", "Hand": "hand"}
    return {f"{side}{joint}": fmt(side, part) for side in ("Left", "Right") for joint, part in parts.items()}


_MIXAMO_LIMBS = {f"{side}{part}": f"{side}{part}" for side in ("Left", "Right")
                 for part in ("UpLeg", "Leg", "Foot", "Shoulder", "Arm", "ForeArm", "Hand")}
_UNREAL_PARTS = {"thigh": "thigh", "shin": "calf", "foot": "foot", "toe": "ball", "collar": "clavicle",
                 "upper_arm": "upperarm", "forearm": "lowerarm", "hand": "hand"}
_UNITY_PARTS = {"thigh": "UpperLeg", "shin": "LowerLeg", "foot": "Foot", "toe": "Toes", "collar": "Shoulder",
                "upper_arm": "UpperArm", "forearm": "LowerArm", "hand": "Hand"}
_RIGIFY_PARTS = {"thigh": "thigh", "shin": "shin", "foot": "foot", "toe": "toe", "collar": "shoulder",
                 "upper_arm": "upper_arm", "forearm": "forearm", "hand": "hand"}
_RIGIFY_METARIG_SPINE = dict(Hips="spine", Spine="spine.001", Spine1="spine.002", Spine2="spine.003",
                             Neck="spine.004", Head="spine.006")


def _rigify(prefix: str) -> dict[str, list[str]]:
    bones = {joint: prefix + name for joint, name in _RIGIFY_METARIG_SPINE.items()}
    bones.update(_limbs(lambda side, part: f"{prefix}{_RIGIFY_PARTS[part]}.{side[0]}"))
    return _family(**bones)


# A family scores the share of its own names found in the rig; ties go to the earlier family, so a
# more specific one (a generated Rigify rig's controls over its DEF bones) comes first.
FAMILIES: dict[str, dict[str, list[str]]] = {
    "humanml3d": _family(**{name: name for name in JOINTS}),
    "mixamo": _family(Hips="Hips", Spine="Spine", Spine1="Spine1", Spine2="Spine2", Neck="Neck", Head="Head",
                      LeftToe="LeftToeBase", RightToe="RightToeBase", **_MIXAMO_LIMBS),
    "cmu": _family(Hips="Hips", Spine="LowerBack", Spine1="Spine", Spine2="Spine1", Neck="Neck", Head="Head",
                   LeftToe="LeftToeBase", RightToe="RightToeBase", **_MIXAMO_LIMBS),
    # A generated Rigify rig: the torso control carries the body, the upper FK spine controls the
    # chest (its hips and chest controls stay put), the FK controls the limbs (IK/FK set to FK).
    "rigify_controls": _family(Hips="torso", Spine1="spine_fk.002", Spine2="spine_fk.003", Neck="neck", Head="head",
                               **_limbs(lambda side, part: {"toe": f"toe_fk.{side[0]}", "collar": f"shoulder.{side[0]}"}.get(
                                   part, f"{_RIGIFY_PARTS[part]}_fk.{side[0]}"))),
    "rigify_metarig": _rigify(""),
    "rigify_def": _rigify("DEF-"),
    "rigify_org": _rigify("ORG-"),
    "unreal5": _family(Hips="pelvis", Spine="spine_01", Spine1="spine_03", Spine2="spine_05", Neck="neck_01", Head="head",
                       **_limbs(lambda side, part: f"{_UNREAL_PARTS[part]}_{side[0].lower()}")),
    "unreal4": _family(Hips="pelvis", Spine="spine_01", Spine1="spine_02", Spine2="spine_03", Neck="neck_01", Head="head",
                       **_limbs(lambda side, part: f"{_UNREAL_PARTS[part]}_{side[0].lower()}")),
    "vrm": _family(Hips="J_Bip_C_Hips", Spine="J_Bip_C_Spine", Spine1="J_Bip_C_Chest", Spine2="J_Bip_C_UpperChest",
                   Neck="J_Bip_C_Neck", Head="J_Bip_C_Head",
                   **_limbs(lambda side, part: f"J_Bip_{side[0]}_" + {"toe": "ToeBase"}.get(part, _UNITY_PARTS[part]))),
    "unity": _family(Hips="Hips", Spine="Spine", Spine1="Chest", Spine2="UpperChest", Neck="Neck", Head="Head",
                     **_limbs(lambda side, part: side + _UNITY_PARTS[part])),
    # SMPL/SMPL-X: "left_hip", and the "L_Hip" of the SMPL Blender add-on (m_avg_/f_avg_ prefixes dropped).
    "smpl": _family(**{joint: [smpl, smpl.replace("left_", "l_").replace("right_", "r_")]
                       for joint, smpl in zip(JOINTS, canonical.SMPL_NAMES)}),
}
_PREFIX = re.compile(r"^(?:.*[:|])|^(?:[mf]_avg_)|^(?:smplx?[_-])", re.IGNORECASE)


def plain_name(bone: str) -> str:
    """A bone name without namespace or model prefix, lower case ("mixamorig1:LeftArm" -> "leftarm")."""
    previous = None
    while previous != bone:
        previous, bone = bone, _PREFIX.sub("", bone)
    return bone.lower()


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
            raise ValueError(f"the mapping names joints the canonical skeleton lacks: {unknown}; expected some of {JOINTS}")
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

    def to_dict(self) -> dict:
        return {"family": self.family, "confidence": round(self.confidence, 3), "bones": dict(self.bones),
                "unmapped": self.unmapped()}

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
    return (f"the rig's bones do not map onto the human skeleton: no bone found for {wanted}; "
            "map them by hand in the MoSa panel")


def map_by_names(skeleton: Skeleton) -> Mapping:
    """The naming family that matches the most joints (ties: the earlier family)."""
    by_plain: dict[str, str] = {}
    for name in skeleton.names:
        by_plain.setdefault(plain_name(name), name)
    best: Mapping | None = None
    for family, table in FAMILIES.items():
        bones = {joint: next((by_plain[plain_name(c)] for c in candidates if plain_name(c) in by_plain), None)
                 for joint, candidates in table.items()}
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
    for toe_or_hand, parent in ((J["LeftToe"], J["LeftFoot"]), (J["RightToe"], J["RightFoot"]),
                                (J["LeftHand"], J["LeftForeArm"]), (J["RightHand"], J["RightForeArm"])):
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


def _find_hips(rig: _Rig) -> tuple[int, list[int], int]:
    """The deepest bone with two child subtrees reaching the floor and one reaching the head top."""
    near = 0.2 * rig.height
    found = None
    for bone in range(len(rig.skeleton)):
        kids = rig.children[bone]
        legs = [c for c in kids if rig.lowest(c) < rig.floor + near and rig.highest(c) < rig.heads[bone][2] + near]
        spines = [c for c in kids if rig.highest(c) > rig.top - near and c not in legs]
        if len(legs) >= 2 and spines:
            depth = len(rig.skeleton.ancestors(bone))
            if found is None or depth > found[0]:
                legs = sorted(legs, key=rig.lowest)[:2]
                found = (depth, bone, legs, max(spines, key=rig.highest))
    if found is None:
        raise ValueError("no bone has two legs going down and a spine going up")
    return found[1], found[2], found[3]


def _leg(rig: _Rig, hips: int, start: int) -> dict[str, int | None]:
    chain = rig.chain(start, lambda c: -rig.lowest(c))
    lateral = np.abs(rig.heads[chain, 0] - rig.heads[hips, 0]) + np.abs(rig.heads[chain, 1] - rig.heads[hips, 1])
    thigh_at = next((i for i, offset in enumerate(lateral) if offset > 0.025 * rig.height), 0)
    low = [i for i in range(thigh_at + 1, len(chain)) if rig.heads[chain[i], 2] < rig.floor + 0.12 * rig.height]
    if not low or low[0] <= thigh_at + 1:
        raise ValueError(f"the leg from bone '{rig.skeleton.names[start]}' has no thigh, shin and foot")
    foot_at = low[0]
    path = rig.path_lengths(chain)
    middle = 0.5 * (path[thigh_at] + path[foot_at])
    knee_at = min(range(thigh_at + 1, foot_at), key=lambda i: abs(path[i] - middle))
    foot = chain[foot_at]
    # The toes reach farthest along the ground from the ankle (a heel bone stays close behind it).
    toe = max(rig.children[foot], key=lambda c: np.linalg.norm((rig.subtree_points[c] - rig.heads[foot])[:, :2], axis=-1).max(),
              default=None)
    return {"UpLeg": chain[thigh_at], "Leg": chain[knee_at], "Foot": foot, "Toe": toe}


def _arm(rig: _Rig, start: int, center_x: float) -> dict[str, int | None]:
    chain = rig.chain(start, lambda c: np.linalg.norm(rig.subtree_points[c] - rig.heads[start], axis=-1).max())
    hand_at = next((i for i, b in enumerate(chain) if len(rig.children[b]) >= 3 and i >= 2), len(chain) - 1)
    before = chain[:hand_at]
    if len(before) < 2:
        raise ValueError(f"the arm from bone '{rig.skeleton.names[start]}' has no upper arm and forearm")
    collar = None
    if len(before) >= 3 or abs(rig.heads[before[0], 0] - center_x) < 0.05 * rig.height:
        collar, before = before[0], before[1:]
    if len(before) < 2:
        raise ValueError(f"the arm from bone '{rig.skeleton.names[start]}' has no upper arm and forearm")
    arm = [before[0]] + before[1:] + [chain[hand_at]]
    path = rig.path_lengths(arm)
    elbow_at = min(range(1, len(arm) - 1), key=lambda i: abs(path[i] - 0.5 * path[-1]))
    return {"Shoulder": collar, "Arm": arm[0], "ForeArm": arm[elbow_at], "Hand": chain[hand_at]}


def map_by_structure(skeleton: Skeleton) -> Mapping:
    """Find the joints from hierarchy and rest geometry alone (names are ignored)."""
    rig = _Rig(skeleton)
    hips, leg_starts, spine_start = _find_hips(rig)
    legs = [_leg(rig, hips, start) for start in leg_starts]

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
    center_x = rig.heads[hips, 0]
    # Arms: long branches off the spine (sideways in a T-pose, down in an A-pose); the chest is
    # the highest spine bone two of them leave from.
    arm_starts = [(i, c) for i, bone in enumerate(spine) for c in rig.children[bone]
                  if c not in spine and rig.reach(c) > 0.25 * rig.height]
    chest_at = max((i for i, _ in arm_starts if sum(k == i for k, _ in arm_starts) >= 2), default=None)
    if chest_at is None:
        raise ValueError("no two arms leave the spine")
    arm_roots = sorted((c for i, c in arm_starts if i == chest_at), key=rig.reach)[-2:]
    arms = [_arm(rig, start, center_x) for start in arm_roots]

    below_chest, above_chest = spine[:chest_at + 1], spine[chest_at + 1:]
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
        above_chest = above_chest[:reaching_top[0] + 1]
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
