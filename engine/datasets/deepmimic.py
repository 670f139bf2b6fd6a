"""DeepMimic humanoid clips (shipped in the pybullet wheel) as canonical joints at 20 fps.

A clip is JSON {"Loop", "Frames"}; each frame holds its duration, the root position (metres,
Y up), then local rotations in the order of FRAME_LAYOUT: quaternions (w, x, y, z) for ball
joints, one angle about the URDF joint axis for knees and elbows. The humanoid's rest offsets
come from pybullet's humanoid.urdf, which is drawn 4x larger than the clips (pybullet loads it
with globalScaling 0.25). The humanoid faces +X with its right side at +Z.

Rotations are interpolated (slerp) at the clip's own frame times before forward kinematics, so
bone lengths stay exact at 20 fps. The 11 joints the humanoid lacks (spine1/3, collars, head,
toes) are placed in the body frames that carry them; see CANONICAL_FROM_HUMANOID.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from retarget import canonical, rotations

from .placement import frame_times, interpolation_weights, place_on_floor_facing_z, yaw_rotation

URDF_SCALE = 0.25  # pybullet's globalScaling for humanoid.urdf, which matches the clip units

# The order of the per-joint values after duration (1), root position (3) and root rotation (4).
FRAME_LAYOUT: list[tuple[str, int]] = [
    ("chest", 4),
    ("neck", 4),
    ("right_hip", 4),
    ("right_knee", 1),
    ("right_ankle", 4),
    ("right_shoulder", 4),
    ("right_elbow", 1),
    ("left_hip", 4),
    ("left_knee", 1),
    ("left_ankle", 4),
    ("left_shoulder", 4),
    ("left_elbow", 1),
]
FRAME_WIDTH = 1 + 3 + 4 + sum(width for _, width in FRAME_LAYOUT)

# Humanoid clips only; the folder also holds a quadruped (laikago) and "walker" clips.
CLIP_PREFIX = "humanoid3d_"

# Humanoid axes -> canonical axes: forward +X -> +Z, right +Z -> -X (left at +X), up stays.
HUMANOID_TO_CANONICAL = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])

# Where the body parts the humanoid lacks sit, as fractions of its own geometry:
SPINE1_ALONG_ROOT_TO_CHEST = 0.5  # SMPL's spine1 sits about halfway up the lower back
SPINE3_ALONG_CHEST_TO_NECK = 0.2  # spine3 is just above spine2 (chest) in SMPL
HEAD_ALONG_NECK_TO_SKULL_CENTRE = 0.6  # SMPL's head joint is the base of the skull
COLLAR_SCALE_OF_SHOULDER_OFFSET = np.array([1.0, 0.9, 0.45])  # inboard and slightly below
TOE_FRACTION_OF_FOOT_FRONT = 0.8  # ball of the foot, short of the box's front face
TOE_ABOVE_SOLE_FRACTION = 0.25  # of the foot box's height


@dataclass(frozen=True)
class HumanoidGeometry:
    """Joint origins (in the parent link's frame) and body shapes, in clip units (metres)."""

    offsets: dict[str, np.ndarray]
    parents: dict[str, str]
    axes: dict[str, np.ndarray]  # rotation axis of each revolute joint
    foot_box_centre: np.ndarray
    foot_box_size: np.ndarray
    skull_centre: np.ndarray
    skull_radius: float


def data_folder() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def clip_path(name: str) -> Path:
    return data_folder() / "data" / "motions" / f"{CLIP_PREFIX}{name}.txt"


def clip_names() -> list[str]:
    """Names of the humanoid clips installed with pybullet (backflip, ..., walk)."""
    folder = data_folder() / "data" / "motions"
    return sorted(p.stem[len(CLIP_PREFIX) :] for p in folder.glob(f"{CLIP_PREFIX}*.txt"))


def _vector(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split()])


@lru_cache(maxsize=1)
def humanoid_geometry() -> HumanoidGeometry:
    """Read humanoid.urdf (it ends in a NUL byte that XML parsers refuse)."""
    text = (data_folder() / "humanoid" / "humanoid.urdf").read_bytes().rstrip(b"\0 \n\r\t").decode()
    robot = ElementTree.fromstring(text)
    offsets, parents, axes = {}, {}, {}
    for joint in robot.iter("joint"):
        name = joint.get("name")
        offsets[name] = _vector(joint.find("origin").get("xyz")) * URDF_SCALE
        parents[name] = joint.find("parent").get("link")
        if joint.get("type") == "revolute":
            axes[name] = _vector(joint.find("axis").get("xyz"))
    links = {link.get("name"): link for link in robot.iter("link")}

    def collision(link: str) -> tuple[np.ndarray, ElementTree.Element]:
        shape = links[link].find("collision")
        return _vector(shape.find("origin").get("xyz")) * URDF_SCALE, shape.find("geometry")[0]

    foot_centre, foot_box = collision("left_ankle")
    skull_centre, skull = collision("neck")
    return HumanoidGeometry(
        offsets=offsets,
        parents=parents,
        axes=axes,
        foot_box_centre=foot_centre,
        foot_box_size=_vector(foot_box.get("size")) * URDF_SCALE,
        skull_centre=skull_centre,
        skull_radius=float(skull.get("radius")) * URDF_SCALE,
    )


@dataclass
class ClipFrames:
    """A clip's raw samples: times (N,), root positions (N, 3), local rotations per joint."""

    times: np.ndarray
    root_positions: np.ndarray
    local_rotations: dict[str, np.ndarray]  # joint -> (N, 4); "root" is the root's world rotation
    loops: bool


def read_clip(path: Path) -> ClipFrames:
    data = json.loads(Path(path).read_text())
    frames = np.asarray(data.get("Frames", []), dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != FRAME_WIDTH or len(frames) < 2:
        raise ValueError(f"{path}: expected at least 2 frames of {FRAME_WIDTH} values, got shape {frames.shape}")
    geometry = humanoid_geometry()
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    rotations_by_joint = {"root": rotations.normalize(frames[:, 4:8])}
    column = 8
    for joint, width in FRAME_LAYOUT:
        values = frames[:, column : column + width]
        if width == 1:
            rotations_by_joint[joint] = rotations.from_axis_angle(values * geometry.axes[joint])
        else:
            rotations_by_joint[joint] = rotations.normalize(values)
        column += width
    return ClipFrames(times, frames[:, 1:4], rotations_by_joint, loops=data.get("Loop") == "wrap")


def _heading(root_rotation: np.ndarray) -> np.ndarray:
    """Yaw about +Y of the humanoid's forward axis (+X)."""
    forward = rotations.rotate(root_rotation, np.array([1.0, 0.0, 0.0]))
    return np.arctan2(-forward[..., 2], forward[..., 0])


def repeat_cycles(clip: ClipFrames, cycles: int) -> ClipFrames:
    """Chain a looping clip end to end: each cycle starts where and how the last one ended.

    The move from the first to the last frame (a yaw turn and an XZ shift) is applied again
    for every further cycle, so walking keeps walking forward and spinning keeps turning.
    """
    if cycles <= 1:
        return clip
    turn = _heading(clip.local_rotations["root"][-1]) - _heading(clip.local_rotations["root"][0])
    turn_q = yaw_rotation(turn)
    start, end = clip.root_positions[0], clip.root_positions[-1]
    times, positions = [clip.times], [clip.root_positions]
    local = {joint: [q] for joint, q in clip.local_rotations.items()}
    root_q, root_p = clip.local_rotations["root"], clip.root_positions
    for cycle in range(1, cycles):
        relative = root_p - start
        relative[:, 1] = 0.0
        root_p = rotations.rotate(turn_q, relative) + end * [1.0, 0.0, 1.0] + [0.0, 1.0, 0.0] * root_p
        root_q = rotations.multiply(turn_q, root_q)
        start, end = root_p[0], root_p[-1]
        times.append(clip.times[1:] + cycle * clip.times[-1])
        positions.append(root_p[1:])
        for joint, q in clip.local_rotations.items():
            local[joint].append((root_q if joint == "root" else q)[1:])
    return ClipFrames(
        np.concatenate(times),
        np.concatenate(positions),
        {joint: np.concatenate(parts) for joint, parts in local.items()},
        clip.loops,
    )


def resample(clip: ClipFrames, fps: float) -> ClipFrames:
    """Slerp the rotations and lerp the root onto a uniform grid at `fps`."""
    new_times = frame_times(fps, clip.times[-1])
    index, weight = interpolation_weights(clip.times, new_times)
    w = weight[:, None]
    root = clip.root_positions[index] * (1.0 - w) + clip.root_positions[index + 1] * w
    local = {joint: rotations.slerp(q[index], q[index + 1], w) for joint, q in clip.local_rotations.items()}
    return ClipFrames(new_times, root, local, clip.loops)


def forward_kinematics(clip: ClipFrames) -> np.ndarray:
    """Canonical joints (T, 22, 3) in the humanoid's axes, from its bodies' world frames."""
    g = humanoid_geometry()
    world_q: dict[str, np.ndarray] = {"root": clip.local_rotations["root"]}
    world_p: dict[str, np.ndarray] = {"root": clip.root_positions}
    # URDF joints in file order: each parent link comes before its children.
    for joint, parent in g.parents.items():
        if parent == "base":
            continue
        world_p[joint] = world_p[parent] + rotations.rotate(world_q[parent], g.offsets[joint])
        local = clip.local_rotations.get(joint)
        world_q[joint] = world_q[parent] if local is None else rotations.multiply(world_q[parent], local)

    def at(link: str, offset: np.ndarray) -> np.ndarray:
        return world_p[link] + rotations.rotate(world_q[link], offset)

    foot_front = g.foot_box_centre[0] + 0.5 * g.foot_box_size[0]
    sole = g.foot_box_centre[1] - 0.5 * g.foot_box_size[1]
    toe = np.array([TOE_FRACTION_OF_FOOT_FRONT * foot_front, sole + TOE_ABOVE_SOLE_FRACTION * g.foot_box_size[1], 0.0])
    by_name = {
        "pelvis": world_p["root"],
        "left_hip": world_p["left_hip"],
        "right_hip": world_p["right_hip"],
        "spine1": at("root", SPINE1_ALONG_ROOT_TO_CHEST * g.offsets["chest"]),
        "left_knee": world_p["left_knee"],
        "right_knee": world_p["right_knee"],
        "spine2": world_p["chest"],
        "left_ankle": world_p["left_ankle"],
        "right_ankle": world_p["right_ankle"],
        "spine3": at("chest", SPINE3_ALONG_CHEST_TO_NECK * g.offsets["neck"]),
        "left_foot": at("left_ankle", toe),
        "right_foot": at("right_ankle", toe),
        "neck": world_p["neck"],
        "left_collar": at("chest", COLLAR_SCALE_OF_SHOULDER_OFFSET * g.offsets["left_shoulder"]),
        "right_collar": at("chest", COLLAR_SCALE_OF_SHOULDER_OFFSET * g.offsets["right_shoulder"]),
        "head": at("neck", HEAD_ALONG_NECK_TO_SKULL_CENTRE * g.skull_centre),
        "left_shoulder": world_p["left_shoulder"],
        "right_shoulder": world_p["right_shoulder"],
        "left_elbow": world_p["left_elbow"],
        "right_elbow": world_p["right_elbow"],
        "left_wrist": world_p["left_wrist"],
        "right_wrist": world_p["right_wrist"],
    }
    return np.stack([by_name[name] for name in canonical.SMPL_NAMES], axis=1)


def load_joints(name: str, min_seconds: float = 0.0, fps: int = canonical.FPS) -> np.ndarray:
    """Joints (T, 22, 3) of clip `name` at `fps`, on the floor, starting at the origin facing +Z.

    A looping clip shorter than `min_seconds` is chained cycle after cycle until it is long
    enough; a clip that does not loop is returned as it is.
    """
    if name not in clip_names():
        raise ValueError(f"unknown DeepMimic clip {name!r}; installed: {', '.join(clip_names())}")
    clip = read_clip(clip_path(name))
    if clip.loops and clip.times[-1] < min_seconds:
        clip = repeat_cycles(clip, int(np.ceil(min_seconds / clip.times[-1])))
    joints = forward_kinematics(resample(clip, fps)) @ HUMANOID_TO_CANONICAL.T
    return place_on_floor_facing_z(joints)


def standing_height() -> float:
    """Height (m) of the humanoid standing straight: sole to the top of the skull."""
    g = humanoid_geometry()
    sole = g.foot_box_centre[1] - 0.5 * g.foot_box_size[1]
    leg = g.offsets["left_knee"][1] + g.offsets["left_ankle"][1] + sole
    trunk = g.offsets["chest"][1] + g.offsets["neck"][1] + g.skull_centre[1] + g.skull_radius
    return float(trunk - leg)
