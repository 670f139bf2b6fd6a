"""Human rigs of every naming family the retargeting knows, built from one set of human
proportions (Blender axes: Z up, facing -Y, metres), in T-pose or A-pose with random rolls.

A rig is a list of bones (name, head point, tail point, parent name); points are named body
landmarks. The same list builds a retarget Skeleton (numpy tests) or a real armature (bpy tests).
"""
from __future__ import annotations

import numpy as np

from retarget.skeleton import Skeleton

# A 1.78 m human in T-pose; "l_" is the character's left (+X).
LANDMARKS = {
    "ground": (0, 0, 0), "pelvis": (0, 0.0, 0.98), "spine_a": (0, 0.01, 1.08), "spine_b": (0, 0.015, 1.18),
    "spine_c": (0, 0.01, 1.28), "spine_d": (0, 0.0, 1.36), "chest": (0, 0.0, 1.40), "neck": (0, 0.01, 1.52),
    "neck_mid": (0, 0.0, 1.57), "head": (0, 0.0, 1.62), "head_top": (0, 0.0, 1.78), "face": (0, -0.1, 1.68),
}
for side, sign in (("l", 1.0), ("r", -1.0)):
    LANDMARKS.update({
        f"{side}_hip": (sign * 0.09, 0.0, 0.93), f"{side}_thigh_mid": (sign * 0.092, -0.005, 0.72),
        f"{side}_knee": (sign * 0.095, -0.01, 0.51), f"{side}_shin_mid": (sign * 0.095, 0.0, 0.30),
        f"{side}_ankle": (sign * 0.095, 0.02, 0.085), f"{side}_ball": (sign * 0.1, -0.11, 0.02),
        f"{side}_toe_end": (sign * 0.1, -0.18, 0.02), f"{side}_heel": (sign * 0.095, 0.05, 0.0),
        f"{side}_collar": (sign * 0.03, -0.01, 1.45), f"{side}_shoulder": (sign * 0.18, 0.0, 1.46),
        f"{side}_upper_mid": (sign * 0.31, 0.0, 1.46), f"{side}_elbow": (sign * 0.45, 0.0, 1.46),
        f"{side}_fore_mid": (sign * 0.575, 0.0, 1.46), f"{side}_wrist": (sign * 0.70, 0.0, 1.46),
        f"{side}_hand_end": (sign * 0.80, 0.0, 1.46),
    })
    for finger, (dy, length) in enumerate([(-0.04, 0.05), (-0.015, 0.06), (0.01, 0.06), (0.03, 0.05)]):
        for k in range(3):
            LANDMARKS[f"{side}_finger{finger}_{k}"] = (sign * (0.74 + k * length / 2), dy, 1.46)
ARM_POINTS = ("shoulder", "upper_mid", "elbow", "fore_mid", "wrist", "hand_end", "finger")


def landmarks(pose: str = "T") -> dict[str, np.ndarray]:
    """T-pose, or A-pose: arms turned 45 degrees down about the shoulder, elbows bent 15 degrees forward."""
    points = {name: np.array(value, dtype=np.float64) for name, value in LANDMARKS.items()}
    if pose == "T":
        return points
    if pose != "A":
        raise ValueError(f"pose must be 'T' or 'A'; got {pose!r}")
    for side, sign in (("l", 1.0), ("r", -1.0)):
        down = _rotation([0.0, 1.0, 0.0], sign * np.pi / 4)
        bend = _rotation(np.array([0.0, 0.0, 1.0]), sign * np.radians(15))
        shoulder, elbow = points[f"{side}_shoulder"].copy(), points[f"{side}_elbow"].copy()
        for name in points:
            if name.startswith(side + "_") and name[2:].startswith(ARM_POINTS):
                point = points[name]
                if name[2:].startswith(("fore_mid", "wrist", "hand_end", "finger")):
                    point = elbow + bend @ (point - elbow)
                points[name] = shoulder + down @ (point - shoulder)
    return points


def _rotation(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _limb_bones(name, side: str, parent_of_thigh: str, parent_of_collar: str, twist=None, fingers=None):
    """Legs and arms of one side; name(part) gives the bone name of a part (None: no such bone)."""
    s = side
    bones = [
        (name("thigh"), f"{s}_hip", f"{s}_knee", parent_of_thigh), (name("shin"), f"{s}_knee", f"{s}_ankle", name("thigh")),
        (name("foot"), f"{s}_ankle", f"{s}_ball", name("shin")), (name("toe"), f"{s}_ball", f"{s}_toe_end", name("foot")),
        (name("collar"), f"{s}_collar", f"{s}_shoulder", parent_of_collar),
        (name("upper_arm"), f"{s}_shoulder", f"{s}_elbow", name("collar")),
        (name("forearm"), f"{s}_elbow", f"{s}_wrist", name("upper_arm")), (name("hand"), f"{s}_wrist", f"{s}_hand_end", name("forearm")),
    ]
    if twist:
        bones += [(twist("upper_arm"), f"{s}_upper_mid", f"{s}_elbow", name("upper_arm")),
                  (twist("thigh"), f"{s}_thigh_mid", f"{s}_knee", name("thigh"))]
    if fingers:
        for finger in range(4):
            for k in range(2):
                parent = name("hand") if k == 0 else fingers(finger, k - 1)
                bones.append((fingers(finger, k), f"{s}_finger{finger}_{k}", f"{s}_finger{finger}_{k + 1}", parent))
    return [bone for bone in bones if bone[0] is not None]


def _spine(names: list[str], points: list[str], parent: str | None):
    bones = []
    for k, (bone, point) in enumerate(zip(names, points)):
        tail = points[k + 1] if k + 1 < len(points) else "head_top"
        bones.append((bone, point, tail, parent if k == 0 else names[k - 1]))
    return bones


def mixamo(prefix: str = "mixamorig:"):
    parts = {"thigh": "UpLeg", "shin": "Leg", "foot": "Foot", "toe": "ToeBase", "collar": "Shoulder",
             "upper_arm": "Arm", "forearm": "ForeArm", "hand": "Hand"}
    bones = _spine([prefix + n for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End")],
                   ["pelvis", "spine_a", "spine_c", "chest", "neck", "head", "head_top"], None)
    bones[-1] = (prefix + "HeadTop_End", "head_top", "face", prefix + "Head")
    for side in ("Left", "Right"):
        bones += _limb_bones(lambda part, side=side: prefix + side + parts[part], side[0].lower(), prefix + "Hips", prefix + "Spine2",
                             fingers=lambda f, k, side=side: f"{prefix}{side}Hand{('Thumb', 'Index', 'Middle', 'Ring')[f]}{k + 1}")
    return bones


def unreal(version: int = 5):
    spine_names = ["spine_01", "spine_02", "spine_03", "spine_04", "spine_05"][: 3 if version == 4 else 5]
    spine_points = ["spine_a", "spine_b", "spine_c", "spine_d", "chest"][-len(spine_names):] if version == 5 else ["spine_a", "spine_c", "chest"]
    necks = ["neck_01"] if version == 4 else ["neck_01", "neck_02"]
    bones = [("root", "ground", "pelvis", None), ("pelvis", "pelvis", "spine_a", "root")]
    bones += _spine(spine_names + necks + ["head"], spine_points + ["neck", "neck_mid"][: len(necks)] + ["head"], "pelvis")
    parts = {"thigh": "thigh", "shin": "calf", "foot": "foot", "toe": "ball", "collar": "clavicle",
             "upper_arm": "upperarm", "forearm": "lowerarm", "hand": "hand"}
    for s in ("l", "r"):
        bones += _limb_bones(lambda part, s=s: f"{parts[part]}_{s}", s, "pelvis", spine_names[-1],
                             twist=lambda part, s=s: f"{parts[part]}_twist_01_{s}",
                             fingers=lambda f, k, s=s: f"{('thumb', 'index', 'middle', 'ring')[f]}_0{k + 1}_{s}")
    bones.append(("ik_foot_root", "ground", "l_heel", "root"))
    return bones


def _named_human(hips: str, spine: list[str], neck: str | None, head: str, part_name):
    """A plain human: hips, spine bones (up to the chest), neck, head and limbs named by part_name(side, part)."""
    spine_points = {1: ["chest"], 2: ["spine_b", "chest"], 3: ["spine_a", "spine_c", "chest"]}[len(spine)]
    chain = [hips] + spine + ([neck] if neck else []) + [head]
    bones = _spine(chain, ["pelvis"] + spine_points + (["neck"] if neck else []) + ["head"], None)
    for side in ("l", "r"):
        bones += _limb_bones(lambda part, side=side: part_name(side, part), side, hips, spine[-1])
    return bones


def unity():
    parts = {"thigh": "UpperLeg", "shin": "LowerLeg", "foot": "Foot", "toe": "Toes", "collar": "Shoulder",
             "upper_arm": "UpperArm", "forearm": "LowerArm", "hand": "Hand"}
    return _named_human("Hips", ["Spine", "Chest", "UpperChest"], "Neck", "Head",
                        lambda s, part: ("Left" if s == "l" else "Right") + parts[part])


def vrm():
    parts = {"thigh": "UpperLeg", "shin": "LowerLeg", "foot": "Foot", "toe": "ToeBase", "collar": "Shoulder",
             "upper_arm": "UpperArm", "forearm": "LowerArm", "hand": "Hand"}
    return _named_human("J_Bip_C_Hips", ["J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_UpperChest"], "J_Bip_C_Neck", "J_Bip_C_Head",
                        lambda s, part: f"J_Bip_{s.upper()}_{parts[part]}")


def smpl(style: str = "m_avg"):
    parts = {"thigh": "hip", "shin": "knee", "foot": "ankle", "toe": "foot", "collar": "collar",
             "upper_arm": "shoulder", "forearm": "elbow", "hand": "wrist"}
    if style == "m_avg":  # the SMPL Blender add-on: m_avg_Pelvis, m_avg_L_Hip, ...
        return _named_human("m_avg_Pelvis", ["m_avg_Spine1", "m_avg_Spine2", "m_avg_Spine3"], "m_avg_Neck", "m_avg_Head",
                            lambda s, part: f"m_avg_{s.upper()}_{parts[part].title()}")
    return _named_human("pelvis", ["spine1", "spine2", "spine3"], "neck", "head",  # SMPL-X: left_hip, ...
                        lambda s, part: f"{'left' if s == 'l' else 'right'}_{parts[part]}")


def cmu():
    bones = [("Hips", "pelvis", "spine_a", None)]
    bones += _spine(["LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head"],
                    ["pelvis", "spine_b", "chest", "neck", "neck_mid", "head"], "Hips")
    parts = {"thigh": "UpLeg", "shin": "Leg", "foot": "Foot", "toe": "ToeBase", "collar": "Shoulder",
             "upper_arm": "Arm", "forearm": "ForeArm", "hand": "Hand"}
    for side in ("Left", "Right"):
        s = side[0].lower()
        hip_joint = f"{side[0]}HipJoint"
        bones.append((hip_joint, "pelvis", f"{s}_hip", "Hips"))
        bones += _limb_bones(lambda part, side=side: side + parts[part], s, hip_joint, "Spine1")
    return bones


def humanml3d():
    from retarget import canonical

    parts = {"thigh": "UpLeg", "shin": "Leg", "foot": "Foot", "toe": "Toe", "collar": "Shoulder",
             "upper_arm": "Arm", "forearm": "ForeArm", "hand": "Hand"}
    bones = _named_human("Hips", ["Spine", "Spine1", "Spine2"], "Neck", "Head",
                         lambda s, part: ("Left" if s == "l" else "Right") + parts[part])
    assert {b[0] for b in bones} == set(canonical.JOINT_NAMES)
    return bones


def renamed(bones, seed: int = 7):
    """The same rig with every bone renamed to a meaningless word."""
    rng = np.random.default_rng(seed)
    rename = {name: "".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 6)) + str(i) for i, (name, *_rest) in enumerate(bones)}
    return [(rename[name], head, tail, rename[parent] if parent else None) for name, head, tail, parent in bones]


def random_names(seed: int = 7):
    """The Mixamo-like human with every bone renamed to a meaningless word."""
    return renamed(mixamo(prefix=""), seed)


FAMILIES = {"mixamo": mixamo, "mixamo1": lambda: mixamo("mixamorig1:"), "unreal4": lambda: unreal(4),
            "unreal5": lambda: unreal(5), "unity": unity, "vrm": vrm, "smpl": smpl, "smplx": lambda: smpl("smplx"),
            "cmu": cmu, "humanml3d": humanml3d}
# Every test rig: the families and one with meaningless names, with the family each must map by.
RIGS = {**FAMILIES, "unfamiliar": random_names}
MAPPED_AS = {"mixamo": "mixamo", "mixamo1": "mixamo", "unreal4": "unreal4", "unreal5": "unreal5", "unity": "unity",
             "vrm": "vrm", "smpl": "smpl", "smplx": "smpl", "cmu": "cmu", "humanml3d": "humanml3d", "unfamiliar": "structure"}


def rig_arrays(bones, pose: str = "T", roll_seed: int | None = 0, scale: float = 1.0):
    """(names, heads, tails, parent indices, rolls) with bones sorted parents first; `scale`
    grows or shrinks the whole human."""
    points = {name: scale * point for name, point in landmarks(pose).items()}
    order, placed = [], set()
    while len(order) < len(bones):
        for bone in bones:
            if bone[0] not in placed and (bone[3] is None or bone[3] in placed):
                order.append(bone)
                placed.add(bone[0])
    names = [bone[0] for bone in order]
    heads = np.array([points[bone[1]] for bone in order])
    tails = np.array([points[bone[2]] for bone in order])
    parents = np.array([names.index(bone[3]) if bone[3] else -1 for bone in order])
    rolls = np.zeros(len(order)) if roll_seed is None else np.random.default_rng(roll_seed).uniform(-np.pi, np.pi, len(order))
    return names, heads, tails, parents, rolls


def skeleton(bones, pose: str = "T", roll_seed: int | None = 0, scale: float = 1.0) -> Skeleton:
    names, heads, tails, parents, rolls = rig_arrays(bones, pose, roll_seed, scale)
    return Skeleton.from_bones(names, heads, tails, parents, rolls)
