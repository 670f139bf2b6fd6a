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
    "ground": (0, 0, 0),
    "pelvis": (0, 0.0, 0.98),
    "spine_a": (0, 0.01, 1.08),
    "spine_b": (0, 0.015, 1.18),
    "spine_c": (0, 0.01, 1.28),
    "spine_d": (0, 0.0, 1.36),
    "chest": (0, 0.0, 1.40),
    "neck": (0, 0.01, 1.52),
    "neck_mid": (0, 0.0, 1.57),
    "head": (0, 0.0, 1.62),
    "head_top": (0, 0.0, 1.78),
    "face": (0, -0.1, 1.68),
    "waist": (0, 0.005, 1.03),
    "pelvis_low": (0, 0.0, 0.90),
    "center": (0, 0.0, 0.75),
    "center_low": (0, 0.0, 0.65),
    "groove": (0, 0.0, 0.80),
    "groove_top": (0, 0.0, 0.86),
    "ground_up": (0, 0.0, 0.10),
    "ground_back": (0, 0.15, 0.0),
}
for side, sign in (("l", 1.0), ("r", -1.0)):
    LANDMARKS.update(
        {
            f"{side}_hip": (sign * 0.09, 0.0, 0.93),
            f"{side}_thigh_mid": (sign * 0.092, -0.005, 0.72),
            f"{side}_knee": (sign * 0.095, -0.01, 0.51),
            f"{side}_shin_mid": (sign * 0.095, 0.0, 0.30),
            f"{side}_ankle": (sign * 0.095, 0.02, 0.085),
            f"{side}_ball": (sign * 0.1, -0.11, 0.02),
            f"{side}_toe_end": (sign * 0.1, -0.18, 0.02),
            f"{side}_heel": (sign * 0.095, 0.05, 0.0),
            f"{side}_collar": (sign * 0.03, -0.01, 1.45),
            f"{side}_shoulder": (sign * 0.18, 0.0, 1.46),
            f"{side}_upper_mid": (sign * 0.31, 0.0, 1.46),
            f"{side}_elbow": (sign * 0.45, 0.0, 1.46),
            f"{side}_fore_mid": (sign * 0.575, 0.0, 1.46),
            f"{side}_wrist": (sign * 0.70, 0.0, 1.46),
            f"{side}_hand_end": (sign * 0.80, 0.0, 1.46),
            # Helper points: short bones at a joint (MMD's shoulder P/C, waist cancel), mid-foot, IK targets.
            f"{side}_midfoot": (sign * 0.097, -0.045, 0.05),
            f"{side}_collar_tip": (sign * 0.06, -0.01, 1.45),
            f"{side}_shoulder_tip": (sign * 0.21, 0.0, 1.46),
            f"{side}_hip_tip": (sign * 0.09, 0.0, 0.90),
            f"{side}_ankle_floor": (sign * 0.095, 0.02, 0.0),
            f"{side}_ik_tip": (sign * 0.095, -0.08, 0.085),
            f"{side}_toe_floor": (sign * 0.1, -0.11, -0.05),
            f"{side}_chest_front": (sign * 0.09, -0.1, 1.32),
            f"{side}_chest_side": (sign * 0.12, 0.0, 1.25),
        }
    )
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
        (name("thigh"), f"{s}_hip", f"{s}_knee", parent_of_thigh),
        (name("shin"), f"{s}_knee", f"{s}_ankle", name("thigh")),
        (name("foot"), f"{s}_ankle", f"{s}_ball", name("shin")),
        (name("toe"), f"{s}_ball", f"{s}_toe_end", name("foot")),
        (name("collar"), f"{s}_collar", f"{s}_shoulder", parent_of_collar),
        (name("upper_arm"), f"{s}_shoulder", f"{s}_elbow", name("collar")),
        (name("forearm"), f"{s}_elbow", f"{s}_wrist", name("upper_arm")),
        (name("hand"), f"{s}_wrist", f"{s}_hand_end", name("forearm")),
    ]
    if twist:
        bones += [
            (twist("upper_arm"), f"{s}_upper_mid", f"{s}_elbow", name("upper_arm")),
            (twist("thigh"), f"{s}_thigh_mid", f"{s}_knee", name("thigh")),
        ]
    if fingers:
        bones += _fingers(name("hand"), s, fingers)
    return [bone for bone in bones if bone[0] is not None]


def _fingers(hand: str, s: str, name) -> list:
    """Four two-bone fingers on a hand; name(finger, k) gives each bone's name."""
    return [
        (
            name(finger, k),
            f"{s}_finger{finger}_{k}",
            f"{s}_finger{finger}_{k + 1}",
            hand if k == 0 else name(finger, k - 1),
        )
        for finger in range(4)
        for k in range(2)
    ]


def _chain(parent: str | None, steps) -> list:
    """Bones one under the other: steps are (name, head point, tail point); the first hangs off `parent`."""
    bones = []
    for name, head, tail in steps:
        bones.append((name, head, tail, parent))
        parent = name
    return bones


def _spine(names: list[str], points: list[str], parent: str | None):
    bones = []
    for k, (bone, point) in enumerate(zip(names, points)):
        tail = points[k + 1] if k + 1 < len(points) else "head_top"
        bones.append((bone, point, tail, parent if k == 0 else names[k - 1]))
    return bones


def mixamo(prefix: str = "mixamorig:"):
    parts = {
        "thigh": "UpLeg",
        "shin": "Leg",
        "foot": "Foot",
        "toe": "ToeBase",
        "collar": "Shoulder",
        "upper_arm": "Arm",
        "forearm": "ForeArm",
        "hand": "Hand",
    }
    bones = _spine(
        [prefix + n for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End")],
        ["pelvis", "spine_a", "spine_c", "chest", "neck", "head", "head_top"],
        None,
    )
    bones[-1] = (prefix + "HeadTop_End", "head_top", "face", prefix + "Head")
    for side in ("Left", "Right"):
        bones += _limb_bones(
            lambda part, side=side: prefix + side + parts[part],
            side[0].lower(),
            prefix + "Hips",
            prefix + "Spine2",
            fingers=lambda f, k, side=side: f"{prefix}{side}Hand{('Thumb', 'Index', 'Middle', 'Ring')[f]}{k + 1}",
        )
    return bones


def unreal(version: int = 5):
    spine_names = ["spine_01", "spine_02", "spine_03", "spine_04", "spine_05"][: 3 if version == 4 else 5]
    spine_points = (
        ["spine_a", "spine_b", "spine_c", "spine_d", "chest"][-len(spine_names) :]
        if version == 5
        else ["spine_a", "spine_c", "chest"]
    )
    necks = ["neck_01"] if version == 4 else ["neck_01", "neck_02"]
    bones = [("root", "ground", "pelvis", None), ("pelvis", "pelvis", "spine_a", "root")]
    bones += _spine(
        spine_names + necks + ["head"], spine_points + ["neck", "neck_mid"][: len(necks)] + ["head"], "pelvis"
    )
    parts = {
        "thigh": "thigh",
        "shin": "calf",
        "foot": "foot",
        "toe": "ball",
        "collar": "clavicle",
        "upper_arm": "upperarm",
        "forearm": "lowerarm",
        "hand": "hand",
    }
    for s in ("l", "r"):
        bones += _limb_bones(
            lambda part, s=s: f"{parts[part]}_{s}",
            s,
            "pelvis",
            spine_names[-1],
            twist=lambda part, s=s: f"{parts[part]}_twist_01_{s}",
            fingers=lambda f, k, s=s: f"{('thumb', 'index', 'middle', 'ring')[f]}_0{k + 1}_{s}",
        )
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
    parts = {
        "thigh": "UpperLeg",
        "shin": "LowerLeg",
        "foot": "Foot",
        "toe": "Toes",
        "collar": "Shoulder",
        "upper_arm": "UpperArm",
        "forearm": "LowerArm",
        "hand": "Hand",
    }
    return _named_human(
        "Hips",
        ["Spine", "Chest", "UpperChest"],
        "Neck",
        "Head",
        lambda s, part: ("Left" if s == "l" else "Right") + parts[part],
    )


def vrm():
    parts = {
        "thigh": "UpperLeg",
        "shin": "LowerLeg",
        "foot": "Foot",
        "toe": "ToeBase",
        "collar": "Shoulder",
        "upper_arm": "UpperArm",
        "forearm": "LowerArm",
        "hand": "Hand",
    }
    return _named_human(
        "J_Bip_C_Hips",
        ["J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_UpperChest"],
        "J_Bip_C_Neck",
        "J_Bip_C_Head",
        lambda s, part: f"J_Bip_{s.upper()}_{parts[part]}",
    )


def smpl(style: str = "m_avg"):
    parts = {
        "thigh": "hip",
        "shin": "knee",
        "foot": "ankle",
        "toe": "foot",
        "collar": "collar",
        "upper_arm": "shoulder",
        "forearm": "elbow",
        "hand": "wrist",
    }
    if style == "m_avg":  # the SMPL Blender add-on: m_avg_Pelvis, m_avg_L_Hip, ...
        return _named_human(
            "m_avg_Pelvis",
            ["m_avg_Spine1", "m_avg_Spine2", "m_avg_Spine3"],
            "m_avg_Neck",
            "m_avg_Head",
            lambda s, part: f"m_avg_{s.upper()}_{parts[part].title()}",
        )
    return _named_human(
        "pelvis",
        ["spine1", "spine2", "spine3"],
        "neck",
        "head",  # SMPL-X: left_hip, ...
        lambda s, part: f"{'left' if s == 'l' else 'right'}_{parts[part]}",
    )


def cmu():
    bones = [("Hips", "pelvis", "spine_a", None)]
    bones += _spine(
        ["LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head"],
        ["pelvis", "spine_b", "chest", "neck", "neck_mid", "head"],
        "Hips",
    )
    parts = {
        "thigh": "UpLeg",
        "shin": "Leg",
        "foot": "Foot",
        "toe": "ToeBase",
        "collar": "Shoulder",
        "upper_arm": "Arm",
        "forearm": "ForeArm",
        "hand": "Hand",
    }
    for side in ("Left", "Right"):
        s = side[0].lower()
        hip_joint = f"{side[0]}HipJoint"
        bones.append((hip_joint, "pelvis", f"{s}_hip", "Hips"))
        bones += _limb_bones(lambda part, side=side: side + parts[part], s, hip_joint, "Spine1")
    return bones


def humanml3d():
    from retarget import canonical

    parts = {
        "thigh": "UpLeg",
        "shin": "Leg",
        "foot": "Foot",
        "toe": "Toe",
        "collar": "Shoulder",
        "upper_arm": "Arm",
        "forearm": "ForeArm",
        "hand": "Hand",
    }
    bones = _named_human(
        "Hips",
        ["Spine", "Spine1", "Spine2"],
        "Neck",
        "Head",
        lambda s, part: ("Left" if s == "l" else "Right") + parts[part],
    )
    assert {b[0] for b in bones} == set(canonical.JOINT_NAMES)
    return bones


def auto_rig_pro():
    """Auto-Rig Pro's deform bones as its game export keeps them: root.x at the hips, bend/twist-split
    limbs (thigh_twist, thigh_stretch, leg_stretch, leg_twist; c_arm_twist_offset, arm_stretch,
    forearm_stretch, forearm_twist), ".l"/".r"/".x" suffixes."""
    bones = _chain(
        None,
        [
            ("root.x", "pelvis", "spine_a"),
            ("spine_01.x", "spine_a", "spine_c"),
            ("spine_02.x", "spine_c", "neck"),
            ("neck.x", "neck", "head"),
            ("head.x", "head", "head_top"),
        ],
    )
    for s in ("l", "r"):
        bones += _chain(
            "root.x",
            [
                (f"thigh_twist.{s}", f"{s}_hip", f"{s}_thigh_mid"),
                (f"thigh_stretch.{s}", f"{s}_thigh_mid", f"{s}_knee"),
                (f"leg_stretch.{s}", f"{s}_knee", f"{s}_shin_mid"),
                (f"leg_twist.{s}", f"{s}_shin_mid", f"{s}_ankle"),
                (f"foot.{s}", f"{s}_ankle", f"{s}_ball"),
                (f"toes_01.{s}", f"{s}_ball", f"{s}_toe_end"),
            ],
        )
        bones += _chain(
            "spine_02.x",
            [
                (f"shoulder.{s}", f"{s}_collar", f"{s}_shoulder"),
                (f"c_arm_twist_offset.{s}", f"{s}_shoulder", f"{s}_upper_mid"),
                (f"arm_stretch.{s}", f"{s}_upper_mid", f"{s}_elbow"),
                (f"forearm_stretch.{s}", f"{s}_elbow", f"{s}_fore_mid"),
                (f"forearm_twist.{s}", f"{s}_fore_mid", f"{s}_wrist"),
                (f"hand.{s}", f"{s}_wrist", f"{s}_hand_end"),
            ],
        )
        bones += _fingers(f"hand.{s}", s, lambda f, k, s=s: f"{('thumb', 'index', 'middle', 'ring')[f]}{k + 1}.{s}")
    return bones


def auto_rig_pro_controls():
    """Auto-Rig Pro's control rig over its deform bones: c_traj on the floor, c_root_master.x
    carrying c_root.x (hips) and the spine controls, the thigh controls under c_thigh_b.l off the
    first deform spine bone (as ARP hangs them), FK controls down the limbs; the deform bones of
    auto_rig_pro() under c_root.x (Blender drives them by constraints; not here)."""
    bones = _chain(None, [("c_traj", "ground", "ground_back"), ("c_root_master.x", "pelvis", "spine_a")])
    bones += _chain("c_root_master.x", [("c_root.x", "pelvis", "pelvis_low")])
    bones += _chain(
        "c_root_master.x",
        [
            ("c_spine_01.x", "spine_a", "spine_b"),
            ("c_spine_02.x", "spine_b", "spine_c"),
            ("c_spine_03.x", "spine_c", "neck"),
            ("c_neck.x", "neck", "head"),
            ("c_head.x", "head", "head_top"),
        ],
    )
    bones += _chain("c_spine_01.x", [("spine_01.x", "spine_a", "spine_b")])
    for s in ("l", "r"):
        bones += _chain(
            "spine_01.x",
            [
                (f"c_thigh_b.{s}", f"{s}_hip", f"{s}_hip_tip"),
                (f"c_thigh_fk.{s}", f"{s}_hip", f"{s}_knee"),
                (f"c_leg_fk.{s}", f"{s}_knee", f"{s}_ankle"),
                (f"c_foot_fk.{s}", f"{s}_ankle", f"{s}_ball"),
                (f"c_toes_fk.{s}", f"{s}_ball", f"{s}_toe_end"),
            ],
        )
        bones += _chain(
            "c_spine_03.x",
            [
                (f"c_shoulder.{s}", f"{s}_collar", f"{s}_shoulder"),
                (f"c_arm_fk.{s}", f"{s}_shoulder", f"{s}_elbow"),
                (f"c_forearm_fk.{s}", f"{s}_elbow", f"{s}_wrist"),
                (f"c_hand_fk.{s}", f"{s}_wrist", f"{s}_hand_end"),
            ],
        )
        bones += _fingers(
            f"c_hand_fk.{s}", s, lambda f, k, s=s: f"c_{('thumb', 'index', 'middle', 'ring')[f]}{k + 1}.{s}"
        )
        bones += [
            (f"c_foot_ik.{s}", f"{s}_ankle_floor", f"{s}_ik_tip", "c_traj"),
            (f"c_leg_pole.{s}", f"{s}_knee", f"{s}_shin_mid", "c_traj"),
        ]
    deform = [bone for bone in auto_rig_pro() if bone[0] not in ("spine_01.x",)]
    return bones + [(name, head, tail, parent or "c_root.x") for name, head, tail, parent in deform]


def unreal_manny(metahuman: bool = False):
    """Unreal 5's Manny/Quinn: root, five spine and two neck bones, two twist bones per limb segment,
    the IK helper bones (ik_foot_root, ik_hand_root, ik_hand_gun ...), interaction and
    center_of_mass; a MetaHuman body adds its corrective bones (correctiveRoot, clavicle_pec ...)."""
    bones = unreal(5) + [
        ("center_of_mass", "pelvis", "spine_a", "root"),
        ("interaction", "ground", "ground_up", "root"),
        ("ik_foot_r", "r_ankle_floor", "r_ik_tip", "ik_foot_root"),
        ("ik_hand_root", "ground", "ground_back", "root"),
        ("ik_hand_gun", "r_wrist", "r_hand_end", "ik_hand_root"),
        ("ik_hand_r", "r_wrist", "r_hand_end", "ik_hand_gun"),
        ("ik_hand_l", "l_wrist", "l_hand_end", "ik_hand_gun"),
    ]
    bones.append(("ik_foot_l", "l_ankle_floor", "l_ik_tip", "ik_foot_root"))
    for s in ("l", "r"):
        bones += [
            (f"upperarm_twist_02_{s}", f"{s}_upper_mid", f"{s}_elbow", f"upperarm_{s}"),
            (f"lowerarm_twist_01_{s}", f"{s}_fore_mid", f"{s}_wrist", f"lowerarm_{s}"),
            (f"lowerarm_twist_02_{s}", f"{s}_fore_mid", f"{s}_wrist", f"lowerarm_{s}"),
            (f"thigh_twist_02_{s}", f"{s}_thigh_mid", f"{s}_knee", f"thigh_{s}"),
            (f"calf_twist_01_{s}", f"{s}_shin_mid", f"{s}_ankle", f"calf_{s}"),
            (f"calf_twist_02_{s}", f"{s}_shin_mid", f"{s}_ankle", f"calf_{s}"),
        ]
        if metahuman:
            bones += [
                (f"upperarm_correctiveRoot_{s}", f"{s}_shoulder", f"{s}_shoulder_tip", f"upperarm_{s}"),
                (f"upperarm_bck_{s}", f"{s}_shoulder", f"{s}_shoulder_tip", f"upperarm_correctiveRoot_{s}"),
                (f"clavicle_pec_{s}", f"{s}_collar", f"{s}_chest_front", f"clavicle_{s}"),
                (f"spine_04_latissimus_{s}", "spine_d", f"{s}_chest_side", "spine_04"),
                (f"thigh_correctiveRoot_{s}", f"{s}_hip", f"{s}_hip_tip", f"thigh_{s}"),
                (f"calf_correctiveRoot_{s}", f"{s}_knee", f"{s}_shin_mid", f"calf_{s}"),
            ]
    return bones


def daz_genesis8():
    """Daz Genesis 8: hip with the pelvis (legs) and abdomen (spine) under it, bend/twist-split
    thighs, shoulders and forearms in one chain, metatarsals between foot and toes."""
    bones = _chain(None, [("hip", "pelvis", "spine_a")])
    bones += _chain("hip", [("pelvis", "pelvis", "pelvis_low")])
    bones += _chain(
        "hip",
        [
            ("abdomenLower", "spine_a", "spine_b"),
            ("abdomenUpper", "spine_b", "spine_c"),
            ("chestLower", "spine_c", "chest"),
            ("chestUpper", "chest", "neck"),
            ("neckLower", "neck", "neck_mid"),
            ("neckUpper", "neck_mid", "head"),
            ("head", "head", "head_top"),
        ],
    )
    for s in ("l", "r"):
        bones += _chain(
            "pelvis",
            [
                (f"{s}ThighBend", f"{s}_hip", f"{s}_thigh_mid"),
                (f"{s}ThighTwist", f"{s}_thigh_mid", f"{s}_knee"),
                (f"{s}Shin", f"{s}_knee", f"{s}_ankle"),
                (f"{s}Foot", f"{s}_ankle", f"{s}_midfoot"),
                (f"{s}Metatarsals", f"{s}_midfoot", f"{s}_ball"),
                (f"{s}Toe", f"{s}_ball", f"{s}_toe_end"),
            ],
        )
        bones += _chain(
            "chestUpper",
            [
                (f"{s}Collar", f"{s}_collar", f"{s}_shoulder"),
                (f"{s}ShldrBend", f"{s}_shoulder", f"{s}_upper_mid"),
                (f"{s}ShldrTwist", f"{s}_upper_mid", f"{s}_elbow"),
                (f"{s}ForearmBend", f"{s}_elbow", f"{s}_fore_mid"),
                (f"{s}ForearmTwist", f"{s}_fore_mid", f"{s}_wrist"),
                (f"{s}Hand", f"{s}_wrist", f"{s}_hand_end"),
            ],
        )
        bones += _fingers(f"{s}Hand", s, lambda f, k, s=s: f"{s}{('Thumb', 'Index', 'Mid', 'Ring')[f]}{k + 1}")
        bones.append((f"{s}Pectoral", "chest", f"{s}_chest_front", "chestUpper"))
    return bones


def daz_genesis9():
    """Daz Genesis 9: hip, pelvis and spine1-4, neck1-2; twist bones hang off the limb bones."""
    bones = _chain(None, [("hip", "pelvis", "spine_a")])
    bones += _chain("hip", [("pelvis", "pelvis", "pelvis_low")])
    bones += _chain(
        "hip",
        [
            ("spine1", "spine_a", "spine_b"),
            ("spine2", "spine_b", "spine_c"),
            ("spine3", "spine_c", "chest"),
            ("spine4", "chest", "neck"),
            ("neck1", "neck", "neck_mid"),
            ("neck2", "neck_mid", "head"),
            ("head", "head", "head_top"),
        ],
    )
    for s in ("l", "r"):
        bones += _chain(
            "pelvis",
            [
                (f"{s}_thigh", f"{s}_hip", f"{s}_knee"),
                (f"{s}_shin", f"{s}_knee", f"{s}_ankle"),
                (f"{s}_foot", f"{s}_ankle", f"{s}_midfoot"),
                (f"{s}_metatarsal", f"{s}_midfoot", f"{s}_ball"),
                (f"{s}_toes", f"{s}_ball", f"{s}_toe_end"),
            ],
        )
        bones += _chain(
            "spine4",
            [
                (f"{s}_shoulder", f"{s}_collar", f"{s}_shoulder"),
                (f"{s}_upperarm", f"{s}_shoulder", f"{s}_elbow"),
                (f"{s}_forearm", f"{s}_elbow", f"{s}_wrist"),
                (f"{s}_hand", f"{s}_wrist", f"{s}_hand_end"),
            ],
        )
        for limb, (start, middle, end) in (
            ("thigh", ("hip", "thigh_mid", "knee")),
            ("upperarm", ("shoulder", "upper_mid", "elbow")),
            ("forearm", ("elbow", "fore_mid", "wrist")),
        ):
            bones += _chain(
                f"{s}_{limb}",
                [
                    (f"{s}_{limb}twist1", f"{s}_{start}", f"{s}_{middle}"),
                    (f"{s}_{limb}twist2", f"{s}_{middle}", f"{s}_{end}"),
                ],
            )
        bones += _fingers(f"{s}_hand", s, lambda f, k, s=s: f"{s}_{('thumb', 'index', 'mid', 'ring')[f]}{k + 1}")
    return bones


def character_creator():
    """Reallusion Character Creator (CC3/CC4, iClone, ActorCore): CC_Base_BoneRoot on the floor, the
    hip carrying the pelvis (legs) and the waist (spine), two-bone twist chains beside each limb
    bone, share bones at the knees and elbows."""
    bones = _chain(None, [("CC_Base_BoneRoot", "ground", "ground_up"), ("CC_Base_Hip", "pelvis", "spine_a")])
    bones += _chain("CC_Base_Hip", [("CC_Base_Pelvis", "pelvis", "pelvis_low")])
    bones += _chain(
        "CC_Base_Hip",
        [
            ("CC_Base_Waist", "spine_a", "spine_b"),
            ("CC_Base_Spine01", "spine_b", "chest"),
            ("CC_Base_Spine02", "chest", "neck"),
            ("CC_Base_NeckTwist01", "neck", "neck_mid"),
            ("CC_Base_NeckTwist02", "neck_mid", "head"),
            ("CC_Base_Head", "head", "head_top"),
        ],
    )
    for side in ("L", "R"):
        s, p = side.lower(), f"CC_Base_{side}_"
        bones += _chain(
            "CC_Base_Pelvis",
            [
                (p + "Thigh", f"{s}_hip", f"{s}_knee"),
                (p + "Calf", f"{s}_knee", f"{s}_ankle"),
                (p + "Foot", f"{s}_ankle", f"{s}_ball"),
                (p + "ToeBase", f"{s}_ball", f"{s}_toe_end"),
            ],
        )
        bones += _chain(
            "CC_Base_Spine02",
            [
                (p + "Clavicle", f"{s}_collar", f"{s}_shoulder"),
                (p + "Upperarm", f"{s}_shoulder", f"{s}_elbow"),
                (p + "Forearm", f"{s}_elbow", f"{s}_wrist"),
                (p + "Hand", f"{s}_wrist", f"{s}_hand_end"),
            ],
        )
        for limb, (start, middle, end) in (
            ("Thigh", ("hip", "thigh_mid", "knee")),
            ("Calf", ("knee", "shin_mid", "ankle")),
            ("Upperarm", ("shoulder", "upper_mid", "elbow")),
            ("Forearm", ("elbow", "fore_mid", "wrist")),
        ):
            bones += _chain(
                p + limb,
                [
                    (f"{p}{limb}Twist01", f"{s}_{start}", f"{s}_{middle}"),
                    (f"{p}{limb}Twist02", f"{s}_{middle}", f"{s}_{end}"),
                ],
            )
        bones += [
            (p + "KneeShareBone", f"{s}_knee", f"{s}_shin_mid", p + "Calf"),
            (p + "ElbowShareBone", f"{s}_elbow", f"{s}_fore_mid", p + "Forearm"),
            (p + "RibsTwist", "chest", f"{s}_chest_side", "CC_Base_Spine02"),
            (p + "Breast", "chest", f"{s}_chest_front", "CC_Base_Spine02"),
        ]
        bones += _fingers(p + "Hand", s, lambda f, k, p=p: f"{p}{('Thumb', 'Index', 'Mid', 'Ring')[f]}{k + 1}")
    return bones


def biped(root: str = "Bip01"):
    """3ds Max Biped as its default figure links it: the centre of mass (Bip01) with the footsteps and
    the pelvis under it, the thighs under the first spine link, the clavicles under the neck,
    twist links beside upper arms and forearms, and the nub bones at the ends."""
    b = f"{root} "
    bones = _chain(None, [(root, "pelvis", "spine_a")])
    bones.append((b + "Footsteps", "ground", "ground_back", root))
    bones += _chain(
        root,
        [
            (b + "Pelvis", "pelvis", "spine_a"),
            (b + "Spine", "spine_a", "spine_b"),
            (b + "Spine1", "spine_b", "spine_c"),
            (b + "Spine2", "spine_c", "neck"),
            (b + "Neck", "neck", "head"),
            (b + "Head", "head", "head_top"),
            (b + "HeadNub", "head_top", "face"),
        ],
    )
    for side in ("L", "R"):
        s, p = side.lower(), f"{b}{side} "
        bones += _chain(
            b + "Spine",
            [
                (p + "Thigh", f"{s}_hip", f"{s}_knee"),
                (p + "Calf", f"{s}_knee", f"{s}_ankle"),
                (p + "Foot", f"{s}_ankle", f"{s}_ball"),
                (p + "Toe0", f"{s}_ball", f"{s}_toe_end"),
                (p + "Toe0Nub", f"{s}_toe_end", f"{s}_toe_floor"),
            ],
        )
        bones += _chain(
            b + "Neck",
            [
                (p + "Clavicle", f"{s}_collar", f"{s}_shoulder"),
                (p + "UpperArm", f"{s}_shoulder", f"{s}_elbow"),
                (p + "Forearm", f"{s}_elbow", f"{s}_wrist"),
                (p + "Hand", f"{s}_wrist", f"{s}_hand_end"),
            ],
        )
        bones += [
            (p + "UpArmTwist", f"{s}_upper_mid", f"{s}_elbow", p + "UpperArm"),
            (p + "ForeTwist", f"{s}_fore_mid", f"{s}_wrist", p + "Forearm"),
        ]
        bones += _fingers(p + "Hand", s, lambda f, k, p=p: f"{p}Finger{f}{k if k else ''}")
    return bones


def rokoko(newton: bool = False):
    """Rokoko Studio's character: Hips, Spine1-4, Thigh/Shin legs; the Newton skeleton adds a root."""
    root = ["root"] if newton else []
    bones = _chain(None, [(name, "ground", "ground_up") for name in root] + [("Hips", "pelvis", "spine_a")])
    bones += _chain(
        "Hips",
        [
            ("Spine1", "spine_a", "spine_b"),
            ("Spine2", "spine_b", "spine_c"),
            ("Spine3", "spine_c", "spine_d"),
            ("Spine4", "spine_d", "neck"),
            ("Neck", "neck", "head"),
            ("Head", "head", "head_top"),
        ],
    )
    parts = {
        "thigh": "Thigh",
        "shin": "Shin",
        "foot": "Foot",
        "toe": "Toe",
        "collar": "Shoulder",
        "upper_arm": "Arm",
        "forearm": "ForeArm",
        "hand": "Hand",
    }
    for side in ("Left", "Right"):
        bones += _limb_bones(
            lambda part, side=side: side + parts[part],
            side[0].lower(),
            "Hips",
            "Spine4",
            fingers=lambda f, k, side=side: f"{side}{('Thumb', 'Index', 'Middle', 'Ring')[f]}{k + 1}",
        )
    return bones


def mmd(mirrored_names: bool = False):
    """A MikuMikuDance model (PMX through mmd_tools) with the semi-standard bones: all-parent and
    centre roots, groove and waist, upper and lower body from one point, shoulder P/C helpers,
    arm and wrist twist bones in the arm chain, waist-cancel bones, the D leg chains beside the
    legs and the leg IK bones on the floor. mirrored_names: "足.L" instead of "左足"."""

    def name(side: str, part: str) -> str:
        return f"{part}.{side}" if mirrored_names else ("左" if side == "L" else "右") + part

    bones = _chain(
        None,
        [
            ("全ての親", "ground", "ground_up"),
            ("センター", "center", "center_low"),
            ("グルーブ", "groove", "groove_top"),
            ("腰", "groove_top", "waist"),
        ],
    )
    bones += _chain(
        "腰",
        [
            ("上半身", "waist", "spine_c"),
            ("上半身2", "spine_c", "neck"),
            ("首", "neck", "head"),
            ("頭", "head", "head_top"),
        ],
    )
    bones += _chain("腰", [("下半身", "waist", "pelvis_low")])
    for side in ("L", "R"):
        s = side.lower()
        bones += _chain("下半身", [(name(side, "腰キャンセル"), f"{s}_hip", f"{s}_hip_tip")])
        for suffix, toe in (("", "つま先"), ("D", "足先EX")):
            bones += _chain(
                name(side, "腰キャンセル"),
                [
                    (name(side, "足" + suffix), f"{s}_hip", f"{s}_knee"),
                    (name(side, "ひざ" + suffix), f"{s}_knee", f"{s}_ankle"),
                    (name(side, "足首" + suffix), f"{s}_ankle", f"{s}_ball"),
                    (name(side, toe), f"{s}_ball", f"{s}_toe_end"),
                ],
            )
        bones += _chain(
            "全ての親",
            [
                (name(side, "足IK親"), f"{s}_ankle_floor", f"{s}_ankle"),
                (name(side, "足ＩＫ"), f"{s}_ankle", f"{s}_ik_tip"),
                (name(side, "つま先ＩＫ"), f"{s}_ball", f"{s}_toe_floor"),
            ],
        )
        bones += _chain(
            "上半身2",
            [
                (name(side, "肩P"), f"{s}_collar", f"{s}_collar_tip"),
                (name(side, "肩"), f"{s}_collar", f"{s}_shoulder"),
                (name(side, "肩C"), f"{s}_shoulder", f"{s}_shoulder_tip"),
                (name(side, "腕"), f"{s}_shoulder", f"{s}_upper_mid"),
                (name(side, "腕捩"), f"{s}_upper_mid", f"{s}_elbow"),
                (name(side, "ひじ"), f"{s}_elbow", f"{s}_fore_mid"),
                (name(side, "手捩"), f"{s}_fore_mid", f"{s}_wrist"),
                (name(side, "手首"), f"{s}_wrist", f"{s}_hand_end"),
            ],
        )
        bones += _fingers(
            name(side, "手首"), s, lambda f, k, side=side: name(side, ("親指", "人指", "中指", "薬指")[f] + "１２３"[k])
        )
    bones.append(("両目", "head", "face", "頭"))
    return bones


def renamed(bones, seed: int = 7):
    """The same rig with every bone renamed to a meaningless word."""
    rng = np.random.default_rng(seed)
    rename = {
        name: "".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 6)) + str(i) for i, (name, *_rest) in enumerate(bones)
    }
    return [(rename[name], head, tail, rename[parent] if parent else None) for name, head, tail, parent in bones]


def random_names(seed: int = 7):
    """The Mixamo-like human with every bone renamed to a meaningless word."""
    return renamed(mixamo(prefix=""), seed)


FAMILIES = {
    "mixamo": mixamo,
    "mixamo1": lambda: mixamo("mixamorig1:"),
    "unreal4": lambda: unreal(4),
    "unreal5": lambda: unreal(5),
    "unity": unity,
    "vrm": vrm,
    "smpl": smpl,
    "smplx": lambda: smpl("smplx"),
    "cmu": cmu,
    "humanml3d": humanml3d,
    "auto_rig_pro": auto_rig_pro,
    "auto_rig_pro_controls": auto_rig_pro_controls,
    "unreal_manny": unreal_manny,
    "metahuman": lambda: unreal_manny(metahuman=True),
    "daz_genesis8": daz_genesis8,
    "daz_genesis9": daz_genesis9,
    "character_creator": character_creator,
    "biped": biped,
    "biped_2012": lambda: biped("Bip001"),
    "rokoko": rokoko,
    "rokoko_newton": lambda: rokoko(newton=True),
    "mmd": mmd,
    "mmd_mirrored": lambda: mmd(mirrored_names=True),
}
# Every test rig: the families and one with meaningless names, with the family each must map by.
RIGS = {**FAMILIES, "unfamiliar": random_names}
MAPPED_AS = {
    "mixamo": "mixamo",
    "mixamo1": "mixamo",
    "unreal4": "unreal4",
    "unreal5": "unreal5",
    "unity": "unity",
    "vrm": "vrm",
    "smpl": "smpl",
    "smplx": "smpl",
    "cmu": "cmu",
    "humanml3d": "humanml3d",
    "unfamiliar": "structure",
    "auto_rig_pro": "auto_rig_pro",
    "auto_rig_pro_controls": "auto_rig_pro_controls",
    "unreal_manny": "unreal5",
    "metahuman": "unreal5",
    "daz_genesis8": "daz_genesis8",
    "daz_genesis9": "daz_genesis9",
    "character_creator": "character_creator",
    "biped": "biped",
    "biped_2012": "biped",
    "rokoko": "rokoko",
    "rokoko_newton": "rokoko",
    "mmd": "mmd",
    "mmd_mirrored": "mmd",
}
# Rigs whose structure reads differently from their names, both workable: Biped's thighs hang off
# the first spine link (so structure takes that link for the hips), MMD's centre bone is the hips
# by name while structure takes the waist that both body halves hang from; a control rig holds its
# deform chain beside the controls.
STRUCTURE_DIFFERS = {"biped", "biped_2012", "mmd", "mmd_mirrored", "auto_rig_pro_controls"}


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
    rolls = (
        np.zeros(len(order))
        if roll_seed is None
        else np.random.default_rng(roll_seed).uniform(-np.pi, np.pi, len(order))
    )
    return names, heads, tails, parents, rolls


def skeleton(bones, pose: str = "T", roll_seed: int | None = 0, scale: float = 1.0) -> Skeleton:
    names, heads, tails, parents, rolls = rig_arrays(bones, pose, roll_seed, scale)
    return Skeleton.from_bones(names, heads, tails, parents, rolls)
