"""Foot locking: a foot in contact with the ground stays where it was planted.

Contacts come from the motion's HumanML3D features ([259:263]: left ankle, left toe, right ankle,
right toe) or, without features, from the joints (slow and near the floor). While a foot's ankle
flag is set its ankle is pinned, while its toe flag is set its toe is pinned; with both the foot
stays still, with the toe alone the heel lifts around it. The leg reaches the pinned ankle by
two-bone IK (hip, knee, ankle) that keeps the knee's bend plane, the foot turns to reach the
pinned toe, and where a leg would have to stretch past its length the whole body moves just
enough. The lock fades in and out over a few frames around each contact.
"""

from __future__ import annotations

import numpy as np

from . import canonical, rotations
from .mapping import J, Mapping, joint_positions
from .skeleton import Skeleton

FEATURE_CONTACTS = slice(259, 263)
FOOT_JOINTS = [J["LeftFoot"], J["LeftToe"], J["RightFoot"], J["RightToe"]]
LEGS = [(J[f"{side}UpLeg"], J[f"{side}Leg"], J[f"{side}Foot"], J[f"{side}Toe"]) for side in ("Left", "Right")]
LEG_JOINTS = [joint for leg in LEGS for joint in leg]
CONTACT_HEIGHT = 0.12  # metres above the clip's floor (canonical scale) a foot joint may be in contact
BLEND_FRAMES = 3
REACH_LIMIT = 0.999  # share of a leg's length a locked leg may stretch to


def floor_height(foot_heights: np.ndarray) -> float:
    """A clip's floor from its foot joints' heights (T, 4): the lowest joint of each frame, at the
    5th percentile over the frames, so a few frames below the rest do not decide it."""
    return float(np.percentile(foot_heights.min(axis=1), 5))


def contacts(positions: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """(T, 4) bool: left ankle, left toe, right ankle, right toe in contact, per frame.

    A feature row describes the step from frame t to t+1, so the last frame repeats the last row.
    Without features: a joint moving less than the HumanML3D contact threshold per frame (squared
    step) and within CONTACT_HEIGHT of the clip's floor."""
    frames = len(positions)
    if features is not None and len(features):
        flags = np.asarray(features)[:, FEATURE_CONTACTS] > 0.5
    else:
        feet = positions[:, FOOT_JOINTS]
        step = np.sum(np.diff(feet, axis=0) ** 2, axis=-1)
        floor = floor_height(feet[..., 1])
        flags = (step < canonical.CONTACT_VELOCITY_THRESHOLD) & (feet[:-1, :, 1] < floor + CONTACT_HEIGHT)
    if len(flags) == 0:
        return np.zeros((frames, 4), dtype=bool)
    return np.concatenate([flags, np.repeat(flags[-1:], frames - len(flags), axis=0)])[:frames]


def _lowest_in_run(path: np.ndarray, flag: np.ndarray, start: int, up: np.ndarray) -> float:
    """The lowest height (along `up`) the joint's path reaches over its contact run from `start`:
    a contact flag is often set while the foot still comes down."""
    end = start + int(np.argmin(flag[start:])) if not flag[start:].all() else len(flag)
    return float((path[start:end] @ up).min())


def _lowered(point: np.ndarray, height: float, up: np.ndarray) -> np.ndarray:
    """`point` moved down (never up) along `up` to `height`."""
    return point - max(float(point @ up) - height, 0.0) * up


def _turned_to_height(pin: np.ndarray, offset: np.ndarray, height: float, up: np.ndarray) -> np.ndarray:
    """`pin + offset`, the offset turned up or down about the pin (its length and its horizontal
    direction kept) to put the point at `height`, as near as its length allows: the other joint
    of a foot whose joints are both pinned, where the motion puts that joint lowest in its run."""
    length, rise = float(np.linalg.norm(offset)), float(offset @ up)
    new_rise = np.clip(height - float(pin @ up), -length, length)
    flat = offset - rise * up
    flat_length = float(np.linalg.norm(flat))
    if flat_length < 1e-9:
        return pin + offset
    return pin + new_rise * up + np.sqrt(length**2 - new_rise**2) * flat / flat_length


def foot_goals(
    ankle: np.ndarray,
    toe: np.ndarray,
    ankle_flag: np.ndarray,
    toe_flag: np.ndarray,
    up: np.ndarray,
    blend: int = BLEND_FRAMES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the ankle and the toe should be (T, 3 each) and how much the lock counts (T,).

    Frames run in order. A contact run pins its joint where the foot is when the run starts: on
    the other joint's pin when that one is already planted (the foot stays rigid), else where
    the locked foot was a frame before, else where the motion puts it. A pin not carried on from
    the frame before is at the height where the motion puts its joint lowest during the run
    (`up`: the up direction), not where the flag catches it coming down. A joint without its flag
    follows the pinned one at the motion's foot offset. Free frames near a run keep a fading
    share of the neighbouring run's correction, so the lock eases in and out."""
    foot = toe - ankle
    ankle_goal, toe_goal = ankle.copy(), toe.copy()
    locked = ankle_flag | toe_flag
    ankle_pin = toe_pin = ankle[0]
    for t in np.flatnonzero(locked):
        previous_locked = t > 0 and locked[t - 1]
        if ankle_flag[t] and not (t > 0 and ankle_flag[t - 1]):
            if toe_flag[t] and t > 0 and toe_flag[t - 1]:
                ankle_pin = _turned_to_height(toe_pin, -foot[t], _lowest_in_run(ankle, ankle_flag, t, up), up)
            elif previous_locked:
                ankle_pin = ankle_goal[t - 1]
            else:
                ankle_pin = _lowered(ankle[t], _lowest_in_run(ankle, ankle_flag, t, up), up)
        if toe_flag[t] and not (t > 0 and toe_flag[t - 1]):
            if ankle_flag[t]:
                toe_pin = _turned_to_height(ankle_pin, foot[t], _lowest_in_run(toe, toe_flag, t, up), up)
            elif previous_locked:
                toe_pin = toe_goal[t - 1]
            else:
                toe_pin = _lowered(toe[t], _lowest_in_run(toe, toe_flag, t, up), up)
        ankle_goal[t] = ankle_pin if ankle_flag[t] else toe_pin - foot[t]
        toe_goal[t] = toe_pin if toe_flag[t] else ankle_pin + foot[t]
    weight = locked.astype(float)
    ankle_shift, toe_shift = ankle_goal - ankle, toe_goal - toe
    locked_frames = np.flatnonzero(locked)
    if len(locked_frames):
        for t in np.flatnonzero(~locked):
            nearest = locked_frames[np.argmin(np.abs(locked_frames - t))]
            distance = abs(int(nearest) - int(t))
            if distance <= blend:
                weight[t] = 1.0 - distance / (blend + 1)
                ankle_goal[t] = ankle[t] + weight[t] * ankle_shift[nearest]
                toe_goal[t] = toe[t] + weight[t] * toe_shift[nearest]
    return ankle_goal, toe_goal, weight


def reach_shift(
    hips: np.ndarray, goals: np.ndarray, weights: np.ndarray, reach: np.ndarray, rounds: int = 4
) -> np.ndarray:
    """A shift (T, 3) of the whole body that brings every locked ankle goal within its leg's reach
    (hips, goals: (legs, T, 3); weights (legs, T); reach (legs,)); zero where the legs reach."""
    shift = np.zeros(hips.shape[1:])
    for _ in range(rounds):
        for hip, goal, weight, length in zip(hips, goals, weights, reach):
            to_goal = goal - (hip + shift)
            distance = np.linalg.norm(to_goal, axis=-1)
            excess = np.where(weight > 0, np.maximum(distance - REACH_LIMIT * length, 0.0), 0.0)
            shift += (excess / np.maximum(distance, 1e-9))[:, None] * to_goal
    return shift


def two_bone_reach(
    hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, goal: np.ndarray, bend_hint: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """New knee and ankle positions (T, 3) of a leg reaching for the goal (T, 3) with its own
    bone lengths, the knee staying in its current bend plane (a straight leg's: towards
    bend_hint); an unreachable goal is approached as far as the leg goes."""
    upper, lower = np.linalg.norm(knee - hip, axis=-1), np.linalg.norm(ankle - knee, axis=-1)
    to_goal = goal - hip
    reach = np.clip(np.linalg.norm(to_goal, axis=-1), np.abs(upper - lower) + 1e-6, (upper + lower) * (1 - 1e-6))
    along = rotations.normalize(to_goal)
    leg_axis = rotations.normalize(ankle - hip)
    bend = knee - hip
    bend = bend - np.sum(bend * leg_axis, axis=-1, keepdims=True) * leg_axis
    straight = np.linalg.norm(bend, axis=-1) < 1e-4 * upper
    bend = np.where(straight[:, None], bend_hint, bend)
    bend = rotations.normalize(bend - np.sum(bend * along, axis=-1, keepdims=True) * along)
    cos_hip = np.clip((upper**2 + reach**2 - lower**2) / (2 * upper * reach), -1.0, 1.0)
    new_knee = hip + upper[:, None] * (cos_hip[:, None] * along + np.sqrt(1 - cos_hip**2)[:, None] * bend)
    return new_knee, hip + reach[:, None] * along


def lock_feet(
    skeleton: Skeleton,
    mapping: Mapping,
    world: np.ndarray,
    root: int,
    root_head: np.ndarray,
    contact_flags: np.ndarray,
    blend: int = BLEND_FRAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """The canonical joints (T, 22, 3) of the rig posed with these bone rotations (world:
    (T, B, 3, 3), Skeleton.world_rotations) with the feet locked, and the root head (T, 3) that
    goes with them: knees and ankles move so the ankles reach their pins, the toes point at
    theirs, and the body moves just enough that a stretched leg still reaches. The transfer turns
    the leg bones to these joints."""
    heads, tails = skeleton.posed_heads_tails(world, root, root_head)
    joints = joint_positions(skeleton, mapping, heads, tails)
    goals = [
        foot_goals(
            joints[:, ankle],
            joints[:, toe],
            contact_flags[:, 2 * side],
            contact_flags[:, 2 * side + 1],
            skeleton.up,
            blend,
        )
        for side, (_, _, ankle, toe) in enumerate(LEGS)
    ]
    reach = [
        np.linalg.norm(joints[0, knee] - joints[0, hip]) + np.linalg.norm(joints[0, ankle] - joints[0, knee])
        for hip, knee, ankle, _ in LEGS
    ]
    shift = reach_shift(
        np.stack([joints[:, hip] for hip, *_ in LEGS]),
        np.stack([g[0] for g in goals]),
        np.stack([g[2] for g in goals]),
        np.array(reach),
    )
    joints = joints + shift[:, None]
    for (hip, knee, ankle, toe), (ankle_goal, toe_goal, weight) in zip(LEGS, goals):
        if not weight.any():
            continue
        foot_length = np.linalg.norm(joints[:, toe] - joints[:, ankle], axis=-1, keepdims=True)
        joints[:, knee], joints[:, ankle] = two_bone_reach(
            joints[:, hip], joints[:, knee], joints[:, ankle], ankle_goal, joints[:, toe] - joints[:, ankle]
        )
        joints[:, toe] = joints[:, ankle] + foot_length * rotations.normalize(toe_goal - ankle_goal)
    return joints, root_head + shift
