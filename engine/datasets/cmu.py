"""CMU Graphics Lab motion capture takes (BVH, 120 fps) as canonical joints at 20 fps.

The takes committed in cmu/ are from the CMU database (mocap.cs.cmu.edu), in its 31-joint BVH
skeleton: units of 1/0.45 inch, Y up. The canonical joints are the BVH joints that match them;
the pelvis, spine and collar joints CMU lacks are placed between their neighbours (see
`canonical_joints`), and the result is rebuilt on the canonical skeleton, because the derived
joints do not keep constant distances to their neighbours. Resampling picks every sixth frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retarget import bvh, canonical, rotations

from .placement import on_canonical_skeleton, place_on_floor_facing_z

METRES_PER_UNIT = 0.0254 / 0.45  # the CMU skeleton files' length unit
SPINE3_ALONG_CHEST_TO_NECK = 0.3  # canonical spine3 sits a little above the chest joint
COLLAR_FRACTION_OF_HALF_SHOULDER_WIDTH = 0.45

# Canonical joint -> the CMU joint at the same place.
CMU_JOINT: dict[str, str] = {
    "left_hip": "LeftUpLeg",
    "right_hip": "RightUpLeg",
    "spine1": "Spine",
    "left_knee": "LeftLeg",
    "right_knee": "RightLeg",
    "spine2": "Spine1",
    "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot",
    "left_foot": "LeftToeBase",
    "right_foot": "RightToeBase",
    "neck": "Neck1",
    "head": "Head",
    "left_shoulder": "LeftArm",
    "right_shoulder": "RightArm",
    "left_elbow": "LeftForeArm",
    "right_elbow": "RightForeArm",
    "left_wrist": "LeftHand",
    "right_wrist": "RightHand",
}


def data_folder() -> Path:
    return Path(__file__).parent / "cmu"


def take_names() -> list[str]:
    """The committed takes, by CMU trial id (subject_trial)."""
    return sorted(path.stem for path in data_folder().glob("*.bvh"))


def canonical_joints(clip: bvh.BvhClip) -> np.ndarray:
    """Canonical joints (T, 22, 3) in metres from a CMU skeleton clip at its own frame rate."""
    missing = sorted(set(CMU_JOINT.values()) - set(clip.names))
    if missing:
        raise ValueError(f"not a CMU skeleton: it lacks the joints {missing}")
    positions = clip.positions() * METRES_PER_UNIT
    by_name = {name: positions[:, clip.names.index(cmu)] for name, cmu in CMU_JOINT.items()}
    # A joint's children must keep their canonical rest layout for one rotation of the joint to
    # place them all: the pelvis halfway between the hips (CMU's Hips sits 8 cm above them) with
    # spine1 square to the hip line; the collars level with spine3, square to the neck.
    pelvis = by_name["pelvis"] = 0.5 * (by_name["left_hip"] + by_name["right_hip"])
    by_name["spine1"] = pelvis + _square_to(
        by_name["spine1"] - pelvis, rotations.normalize(by_name["left_hip"] - pelvis)
    )
    chest, neck = by_name["spine2"], by_name["neck"]
    spine3 = by_name["spine3"] = chest + SPINE3_ALONG_CHEST_TO_NECK * (neck - chest)
    up = rotations.normalize(neck - spine3)
    across = _square_to(by_name["left_shoulder"] - by_name["right_shoulder"], up)
    half_width = 0.5 * np.linalg.norm(across, axis=-1, keepdims=True)
    collar = COLLAR_FRACTION_OF_HALF_SHOULDER_WIDTH * half_width * rotations.normalize(across)
    by_name["left_collar"], by_name["right_collar"] = spine3 + collar, spine3 - collar
    return np.stack([by_name[name] for name in canonical.SMPL_NAMES], axis=1)


def _square_to(vectors: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """`vectors` less their components along the unit `axis`."""
    return vectors - np.sum(vectors * axis, axis=-1, keepdims=True) * axis


def load_joints(name: str, fps: int = canonical.FPS) -> np.ndarray:
    """Joints (T, 22, 3) of take `name` at `fps` on the canonical skeleton, on the floor, starting
    at the origin facing +Z."""
    if name not in take_names():
        raise ValueError(f"unknown CMU take {name!r}; committed: {', '.join(take_names())}")
    clip = bvh.read_clip(data_folder() / f"{name}.bvh")
    step = clip.fps / fps
    if abs(step - round(step)) > 1e-6:
        raise ValueError(f"{name} is {clip.fps} fps; choose an fps that divides it, got {fps}")
    return place_on_floor_facing_z(on_canonical_skeleton(canonical_joints(clip)[:: int(round(step))]))
