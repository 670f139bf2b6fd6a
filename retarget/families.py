"""The naming families of the rigs animators bring: canonical joint -> the bone names each uses.

A family lists, per canonical joint (canonical.JOINT_NAMES), candidate bone names; the first one
a rig has wins. Names are compared by `plain_name`: without a namespace ("mixamorig:",
"Armature|"), a model prefix (SMPL's "m_avg_", 3ds Max Biped's "Bip01 " or "Bip001 ") and case.
Joints a family has no bone for are left out (a two-bone spine leaves Spine1 to the bones
around it). A family scores the share of its own joints found in a rig; ties go to the earlier
family, so a more specific one (a generated Rigify rig's controls over its DEF bones) comes first.

Where a limb is split into bend and twist bones (Daz, Auto-Rig Pro, Character Creator), the
joint takes the bone that starts at the joint; the twist bones after it follow its rotation.
"""

from __future__ import annotations

import re

from . import canonical

JOINTS = canonical.JOINT_NAMES
SIDES = ("Left", "Right")
# The limb joints by part; a family names a part per side with fmt(side, part), or by a dict part -> name.
LIMB_PARTS = {
    "UpLeg": "thigh",
    "Leg": "shin",
    "Foot": "foot",
    "Toe": "toe",
    "Shoulder": "collar",
    "Arm": "upper_arm",
    "ForeArm": "forearm",
    "Hand": "hand",
}


def _family(**bones: str | list[str]) -> dict[str, list[str]]:
    """A naming family: canonical joint -> candidate bone names (first match wins)."""
    unknown = set(bones) - set(JOINTS)
    assert not unknown, unknown
    return {joint: [names] if isinstance(names, str) else list(names) for joint, names in bones.items()}


def _limbs(fmt) -> dict[str, str | list[str]]:
    """Left and right names from one pattern: fmt(side, part) for each limb part."""
    return {f"{side}{joint}": fmt(side, part) for side in SIDES for joint, part in LIMB_PARTS.items()}


_MIXAMO_LIMBS = {
    f"{side}{part}": f"{side}{part}"
    for side in SIDES
    for part in ("UpLeg", "Leg", "Foot", "Shoulder", "Arm", "ForeArm", "Hand")
}
_UNREAL = {
    "thigh": "thigh",
    "shin": "calf",
    "foot": "foot",
    "toe": "ball",
    "collar": "clavicle",
    "upper_arm": "upperarm",
    "forearm": "lowerarm",
    "hand": "hand",
}
_UNITY = {
    "thigh": "UpperLeg",
    "shin": "LowerLeg",
    "foot": "Foot",
    "toe": "Toes",
    "collar": "Shoulder",
    "upper_arm": "UpperArm",
    "forearm": "LowerArm",
    "hand": "Hand",
}
_RIGIFY = {
    "thigh": "thigh",
    "shin": "shin",
    "foot": "foot",
    "toe": "toe",
    "collar": "shoulder",
    "upper_arm": "upper_arm",
    "forearm": "forearm",
    "hand": "hand",
}
_RIGIFY_METARIG_SPINE = {
    "Hips": "spine",
    "Spine": "spine.001",
    "Spine1": "spine.002",
    "Spine2": "spine.003",
    "Neck": "spine.004",
    "Head": "spine.006",
}
# Auto-Rig Pro's deform (and game export) bones: bend/twist-split limbs, ".l"/".r"/".x" suffixes.
_AUTO_RIG_PRO = {
    "thigh": ["thigh_twist", "thigh_stretch"],
    "shin": ["leg_stretch", "leg_twist"],
    "foot": ["foot"],
    "toe": ["toes_01"],
    "collar": ["shoulder"],
    "upper_arm": ["arm_twist", "c_arm_twist_offset", "arm_stretch"],
    "forearm": ["forearm_stretch", "forearm_twist"],
    "hand": ["hand"],
}
_AUTO_RIG_PRO_FK = {
    "thigh": "thigh_fk",
    "shin": "leg_fk",
    "foot": "foot_fk",
    "toe": "toes_fk",
    "collar": "shoulder",
    "upper_arm": "arm_fk",
    "forearm": "forearm_fk",
    "hand": "hand_fk",
}
# Daz Genesis 1 and 2 and Poser figures (and the Daz-friendly BVH release of CMU's data):
# "lThigh", "lShldr"; Genesis 3 and 8: "lThighBend", Genesis 9: "l_thigh".
_GENESIS2 = {
    "thigh": "Thigh",
    "shin": "Shin",
    "foot": "Foot",
    "toe": "Toe",
    "collar": "Collar",
    "upper_arm": "Shldr",
    "forearm": "ForeArm",
    "hand": "Hand",
}
_GENESIS8 = {
    "thigh": "ThighBend",
    "shin": "Shin",
    "foot": "Foot",
    "toe": "Toe",
    "collar": "Collar",
    "upper_arm": "ShldrBend",
    "forearm": "ForearmBend",
    "hand": "Hand",
}
_GENESIS9 = {
    "thigh": "thigh",
    "shin": "shin",
    "foot": "foot",
    "toe": "toes",
    "collar": "shoulder",
    "upper_arm": "upperarm",
    "forearm": "forearm",
    "hand": "hand",
}
_CHARACTER_CREATOR = {
    "thigh": "Thigh",
    "shin": "Calf",
    "foot": "Foot",
    "toe": "ToeBase",
    "collar": "Clavicle",
    "upper_arm": "Upperarm",
    "forearm": "Forearm",
    "hand": "Hand",
}
_BIPED = {
    "thigh": "Thigh",
    "shin": "Calf",
    "foot": "Foot",
    "toe": "Toe0",
    "collar": "Clavicle",
    "upper_arm": "UpperArm",
    "forearm": "Forearm",
    "hand": "Hand",
}
_ROKOKO = {
    "thigh": "Thigh",
    "shin": "Shin",
    "foot": "Foot",
    "toe": "Toe",
    "collar": "Shoulder",
    "upper_arm": "Arm",
    "forearm": "ForeArm",
    "hand": "Hand",
}
# MikuMikuDance (PMX through mmd_tools): Japanese names with the side first ("左足"), or renamed
# for Blender's mirroring with the side last ("足.L").
_MMD = {
    "thigh": "足",
    "shin": "ひざ",
    "foot": "足首",
    "toe": "つま先",
    "collar": "肩",
    "upper_arm": "腕",
    "forearm": "ひじ",
    "hand": "手首",
}


def _rigify(prefix: str) -> dict[str, list[str]]:
    bones = {joint: prefix + name for joint, name in _RIGIFY_METARIG_SPINE.items()}
    bones.update(_limbs(lambda side, part: f"{prefix}{_RIGIFY[part]}.{side[0]}"))
    return _family(**bones)


FAMILIES: dict[str, dict[str, list[str]]] = {
    "humanml3d": _family(**{name: name for name in JOINTS}),
    "mixamo": _family(
        Hips="Hips",
        Spine="Spine",
        Spine1="Spine1",
        Spine2="Spine2",
        Neck="Neck",
        Head="Head",
        LeftToe="LeftToeBase",
        RightToe="RightToeBase",
        **_MIXAMO_LIMBS,
    ),
    "cmu": _family(
        Hips="Hips",
        Spine="LowerBack",
        Spine1="Spine",
        Spine2="Spine1",
        Neck="Neck",
        Head="Head",
        LeftToe="LeftToeBase",
        RightToe="RightToeBase",
        **_MIXAMO_LIMBS,
    ),
    # A generated Rigify rig: the torso control carries the body, the upper FK spine controls the
    # chest (its hips and chest controls stay put), the FK controls the limbs (IK/FK set to FK).
    "rigify_controls": _family(
        Hips="torso",
        Spine1="spine_fk.002",
        Spine2="spine_fk.003",
        Neck="neck",
        Head="head",
        **_limbs(
            lambda side, part: {"toe": f"toe_fk.{side[0]}", "collar": f"shoulder.{side[0]}"}.get(
                part, f"{_RIGIFY[part]}_fk.{side[0]}"
            )
        ),
    ),
    "rigify_metarig": _rigify(""),
    "rigify_def": _rigify("DEF-"),
    "rigify_org": _rigify("ORG-"),
    # Unreal 5's Manny and Quinn, and MetaHuman bodies, which share their skeleton.
    "unreal5": _family(
        Hips="pelvis",
        Spine="spine_01",
        Spine1="spine_03",
        Spine2="spine_05",
        Neck="neck_01",
        Head="head",
        **_limbs(lambda side, part: f"{_UNREAL[part]}_{side[0].lower()}"),
    ),
    "unreal4": _family(
        Hips="pelvis",
        Spine="spine_01",
        Spine1="spine_02",
        Spine2="spine_03",
        Neck="neck_01",
        Head="head",
        **_limbs(lambda side, part: f"{_UNREAL[part]}_{side[0].lower()}"),
    ),
    # Auto-Rig Pro's control rig: the master root carries the body (the legs hang off the spine
    # controls), the FK controls the limbs; its deform bones, driven by these, come next.
    "auto_rig_pro_controls": _family(
        Hips="c_root_master.x",
        Spine="c_spine_01.x",
        Spine1="c_spine_02.x",
        Spine2="c_spine_03.x",
        Neck="c_neck.x",
        Head="c_head.x",
        **_limbs(lambda side, part: f"c_{_AUTO_RIG_PRO_FK[part]}.{side[0].lower()}"),
    ),
    "auto_rig_pro": _family(
        Hips="root.x",
        Spine="spine_01.x",
        Spine2=["spine_03.x", "spine_02.x"],
        Neck="neck.x",
        Head="head.x",
        **_limbs(lambda side, part: [f"{name}.{side[0].lower()}" for name in _AUTO_RIG_PRO[part]]),
    ),
    "daz_genesis2": _family(
        Hips="hip",
        Spine="abdomen",
        Spine1="abdomen2",
        Spine2="chest",
        Neck="neck",
        Head="head",
        **_limbs(lambda side, part: side[0].lower() + _GENESIS2[part]),
    ),
    "daz_genesis8": _family(
        Hips="hip",
        Spine="abdomenLower",
        Spine1="chestLower",
        Spine2="chestUpper",
        Neck="neckLower",
        Head="head",
        **_limbs(lambda side, part: side[0].lower() + _GENESIS8[part]),
    ),
    "daz_genesis9": _family(
        Hips="hip",
        Spine="spine1",
        Spine1="spine3",
        Spine2="spine4",
        Neck="neck1",
        Head="head",
        **_limbs(lambda side, part: f"{side[0].lower()}_{_GENESIS9[part]}"),
    ),
    "character_creator": _family(
        Hips="CC_Base_Hip",
        Spine="CC_Base_Waist",
        Spine1="CC_Base_Spine01",
        Spine2="CC_Base_Spine02",
        Neck="CC_Base_NeckTwist01",
        Head="CC_Base_Head",
        **_limbs(lambda side, part: f"CC_Base_{side[0]}_{_CHARACTER_CREATOR[part]}"),
    ),
    # 3ds Max Biped, compared without its "Bip01 " prefix; FBX exports may swap the spaces for "_".
    "biped": _family(
        Hips="Pelvis",
        Spine="Spine",
        Spine1="Spine1",
        Spine2=["Spine3", "Spine2"],
        Neck="Neck",
        Head="Head",
        **_limbs(lambda side, part: [f"{side[0]} {_BIPED[part]}", f"{side[0]}_{_BIPED[part]}"]),
    ),
    # Rokoko Studio's Smartsuit/Newton skeleton: four spine bones and Thigh/Shin legs.
    "rokoko": _family(
        Hips="Hips",
        Spine="Spine1",
        Spine1="Spine3",
        Spine2="Spine4",
        Neck="Neck",
        Head="Head",
        **_limbs(lambda side, part: side + _ROKOKO[part]),
    ),
    "mmd": _family(
        Hips="センター",
        Spine="上半身",
        Spine2="上半身2",
        Neck="首",
        Head="頭",
        **_limbs(lambda side, part: [("左" if side == "Left" else "右") + _MMD[part], f"{_MMD[part]}.{side[0]}"]),
    ),
    "vrm": _family(
        Hips="J_Bip_C_Hips",
        Spine="J_Bip_C_Spine",
        Spine1="J_Bip_C_Chest",
        Spine2="J_Bip_C_UpperChest",
        Neck="J_Bip_C_Neck",
        Head="J_Bip_C_Head",
        **_limbs(lambda side, part: f"J_Bip_{side[0]}_" + {"toe": "ToeBase"}.get(part, _UNITY[part])),
    ),
    "unity": _family(
        Hips="Hips",
        Spine="Spine",
        Spine1="Chest",
        Spine2="UpperChest",
        Neck="Neck",
        Head="Head",
        **_limbs(lambda side, part: side + _UNITY[part]),
    ),
    # SMPL/SMPL-X: "left_hip", and the "L_Hip" of the SMPL Blender add-on (m_avg_/f_avg_ prefixes dropped).
    "smpl": _family(
        **{
            joint: [smpl, smpl.replace("left_", "l_").replace("right_", "r_")]
            for joint, smpl in zip(JOINTS, canonical.SMPL_NAMES)
        }
    ),
}
_PREFIX = re.compile(r"^(?:.*[:|])|^(?:[mf]_avg_)|^(?:smplx?[_-])|^(?:bip0*\d+[ _](?=\S))", re.IGNORECASE)


def plain_name(bone: str) -> str:
    """A bone name without namespace or model prefix, lower case ("mixamorig1:LeftArm" -> "leftarm")."""
    previous = None
    while previous != bone:
        previous, bone = bone, _PREFIX.sub("", bone)
    return bone.lower()
