"""BVH files: a generic reader and writer, and the canonical motion on the template skeleton.

Conventions, the ones Blender's importer uses:
- Rotation channels in any order; channel order "Zrotation Yrotation Xrotation" means the local
  rotation R = Rz @ Ry @ Rx (`rotations.from_euler(angles, "ZYX")`).
- Position channels give the joint's translation from its parent in that frame and replace its
  OFFSET (for the root: its absolute position). A joint without them sits at its OFFSET.
- Units are whatever the file uses; files written here are in metres, Y up, facing +Z.

Writing a canonical motion: names, hierarchy and channel order (ZYX) come from the HumanML3D
template (`canonical.JOINT_NAMES`, `canonical.BVH_ORDER`). The rest offsets are not the
template's visualisation offsets: they are `motion.fitted_rest_offsets` of the clip's positions
(bone lengths measured from the clip; multi-child joints, the pelvis and spine3, get their
children in the clip's own configuration), and the rotations are solved by IK against those
offsets. For a rigid clip (every real clip, and every clip normalised onto the canonical
skeleton), FK of the file then reproduces the positions to float precision. The root OFFSET is
zero so that readers that add position channels to the OFFSET agree with those that do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import canonical, rotations
from .motion import CanonicalMotion, fitted_rest_offsets, forward_kinematics, rotations_from_positions

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
TEMPLATE_CHANNELS = ("Zrotation", "Yrotation", "Xrotation")
END_SITE_FRACTION = 0.5  # a leaf bone's End Site continues it by half its length
MAX_DEPTH = 200  # joints nested deeper than any real skeleton (the parser recurses once per level)
MAX_FPS = 10_000.0  # frame times below 0.1 ms are damage, not capture


@dataclass
class BvhClip:
    """A BVH file's content; joints in file (depth-first) order, so parents come first."""

    names: list[str]
    parents: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) rest offsets from the parent
    channels: list[tuple[str, ...]]  # per joint, in file order
    end_sites: dict[int, np.ndarray]  # joint index -> End Site offset
    frame_time: float
    rotations: np.ndarray  # (T, J, 4) local quaternions (w, x, y, z)
    translations: np.ndarray  # (T, J, 3) offset, or the position channels where a joint has them

    @property
    def frames(self) -> int:
        return len(self.rotations)

    @property
    def fps(self) -> float:
        """1 / frame time, snapped to a whole number when the file rounded the frame time."""
        rate = 1.0 / self.frame_time
        return float(round(rate)) if abs(rate - round(rate)) < 1e-2 else rate

    def positions(self) -> np.ndarray:
        """World joint positions (T, J, 3) by forward kinematics."""
        return forward_kinematics(self.rotations, self.translations[:, 0], self.translations, self.parents)


# ---------------------------------------------------------------- reading


class _Lines:
    """The file's non-blank lines as token lists, with line numbers for error messages."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.items = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        self.index = 0

    def error(self, message: str, number: int | None = None) -> ValueError:
        if number is None:
            number = self.items[min(self.index, len(self.items) - 1)][0] if self.items else 1
        return ValueError(f"{self.source}:{number}: {message}")

    def next(self, what: str) -> tuple[int, list[str]]:
        if self.index >= len(self.items):
            raise self.error(f"the file ends where {what} was expected")
        item = self.items[self.index]
        self.index += 1
        return item

    def expect(self, keyword: str, count: int | None = None) -> tuple[int, list[str]]:
        number, tokens = self.next(keyword)
        if tokens[0] != keyword or (count is not None and len(tokens) != count):
            raise self.error(
                f"expected '{keyword}'"
                + (f" with {count - 1} values" if count else "")
                + f", got '{' '.join(tokens)}'",
                number,
            )
        return number, tokens

    def floats(self, number: int, tokens: list[str]) -> np.ndarray:
        try:
            return np.array([float(t) for t in tokens], dtype=np.float64)
        except ValueError:
            raise self.error(f"expected numbers, got '{' '.join(tokens)}'", number) from None


def _read_joint(lines: _Lines, name: str, parent: int, clip: dict, depth: int = 0) -> None:
    if depth >= MAX_DEPTH:
        raise lines.error(f"joints nest more than {MAX_DEPTH} levels deep at {name}")
    index = len(clip["names"])
    clip["names"].append(name)
    clip["parents"].append(parent)
    lines.expect("{", 1)
    number, tokens = lines.expect("OFFSET", 4)
    clip["offsets"].append(lines.floats(number, tokens[1:]))
    number, tokens = lines.expect("CHANNELS")
    channels = tuple(tokens[2:])
    if len(tokens) < 2 or not tokens[1].isdigit() or int(tokens[1]) != len(channels):
        raise lines.error(f"CHANNELS must give a count and that many names, got '{' '.join(tokens)}'", number)
    unknown = [c for c in channels if c not in POSITION_CHANNELS + ROTATION_CHANNELS]
    if unknown or len(set(channels)) != len(channels):
        raise lines.error(
            f"unknown or repeated channels {unknown or channels}; expected names from {POSITION_CHANNELS + ROTATION_CHANNELS}",
            number,
        )
    clip["channels"].append(channels)
    while True:
        number, tokens = lines.next(f"JOINT, End Site or '}}' in {name}")
        if tokens[0] == "}":
            return
        if tokens[0] == "JOINT" and len(tokens) == 2:
            _read_joint(lines, tokens[1], index, clip, depth + 1)
        elif tokens[:2] == ["End", "Site"]:
            lines.expect("{", 1)
            number, tokens = lines.expect("OFFSET", 4)
            clip["end_sites"][index] = lines.floats(number, tokens[1:])
            lines.expect("}", 1)
        else:
            raise lines.error(f"expected JOINT <name>, End Site or '}}' in {name}, got '{' '.join(tokens)}'", number)


def parse_bvh(text: str, source: str = "<bvh>") -> BvhClip:
    """Parse BVH text; a malformed file raises ValueError naming the line and what was expected."""
    lines = _Lines(text, source)
    lines.expect("HIERARCHY", 1)
    number, tokens = lines.expect("ROOT", 2)
    clip: dict = {"names": [], "parents": [], "offsets": [], "channels": [], "end_sites": {}}
    _read_joint(lines, tokens[1], -1, clip)
    number, tokens = lines.next("MOTION")
    if tokens != ["MOTION"]:
        raise lines.error(f"expected MOTION after the hierarchy (one ROOT per file), got '{' '.join(tokens)}'", number)
    number, tokens = lines.next("Frames:")
    if tokens[0] != "Frames:" or len(tokens) != 2 or not tokens[1].isdigit():
        raise lines.error(f"expected 'Frames: <count>', got '{' '.join(tokens)}'", number)
    frames = int(tokens[1])
    number, tokens = lines.next("Frame Time:")
    if tokens[:2] != ["Frame", "Time:"] or len(tokens) != 3:
        raise lines.error(f"expected 'Frame Time: <seconds>', got '{' '.join(tokens)}'", number)
    frame_time = float(lines.floats(number, tokens[2:])[0])
    if not 1 / MAX_FPS <= frame_time < float("inf"):
        raise lines.error(
            f"the frame time must be a positive number of seconds from {1 / MAX_FPS:g}, got {frame_time}", number
        )

    width = sum(len(c) for c in clip["channels"])
    rows = []
    for _ in range(frames):
        number, tokens = lines.next(f"frame {len(rows) + 1} of {frames}")
        if len(tokens) != width:
            raise lines.error(
                f"frame {len(rows) + 1} has {len(tokens)} values; the hierarchy has {width} channels", number
            )
        rows.append(lines.floats(number, tokens))
    if lines.index < len(lines.items):
        raise lines.error(f"more frame lines than the {frames} that 'Frames:' announces")
    values = np.array(rows).reshape(frames, width)

    offsets = np.array(clip["offsets"])
    joints = len(offsets)
    local_rotations = rotations.identity((frames, joints))
    translations = np.repeat(offsets[None], frames, axis=0)
    column = 0
    for j, channels in enumerate(clip["channels"]):
        block = values[:, column : column + len(channels)]
        column += len(channels)
        rotation_names = [c for c in channels if c in ROTATION_CHANNELS]
        if rotation_names:
            angles = block[:, [channels.index(c) for c in rotation_names]]
            local_rotations[:, j] = rotations.from_euler(angles, "".join(c[0] for c in rotation_names))
        for axis, name in enumerate(POSITION_CHANNELS):
            if name in channels:
                translations[:, j, axis] = block[:, channels.index(name)]
    return BvhClip(
        clip["names"],
        np.array(clip["parents"]),
        offsets,
        clip["channels"],
        clip["end_sites"],
        frame_time,
        local_rotations,
        translations,
    )


def read_clip(path: str | Path) -> BvhClip:
    return parse_bvh(Path(path).read_text(), str(path))


def read_bvh(path: str | Path) -> CanonicalMotion:
    """A canonical motion from a BVH file whose joint names include the template's 22 (extra
    joints are ignored); positions by FK of the file, rotations by IK on the canonical offsets.
    The frame rate stays the file's."""
    clip = read_clip(path)
    missing = [name for name in canonical.JOINT_NAMES if name not in clip.names]
    if missing:
        raise ValueError(
            f"{path} lacks the canonical joints {missing}; expected the HumanML3D template names {canonical.JOINT_NAMES}"
        )
    columns = [clip.names.index(name) for name in canonical.JOINT_NAMES]
    return CanonicalMotion.from_positions(clip.positions()[:, columns], fps=clip.fps)


# ---------------------------------------------------------------- writing


def _depth_first(parents: np.ndarray) -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for child in np.flatnonzero(parents == j):
            visit(int(child))

    roots = np.flatnonzero(parents < 0)
    if len(roots) != 1:
        raise ValueError(f"a BVH skeleton needs exactly one root; parents {parents.tolist()} have {len(roots)}")
    visit(int(roots[0]))
    return order


def format_bvh(clip: BvhClip) -> str:
    """BVH text of a clip: the hierarchy depth first, then one line of channel values per frame."""
    order = _depth_first(clip.parents)
    lines = ["HIERARCHY"]

    def write_joint(j: int, depth: int) -> None:
        pad = "\t" * depth
        keyword = "ROOT" if clip.parents[j] < 0 else "JOINT"
        lines.extend(
            [
                f"{pad}{keyword} {clip.names[j]}",
                f"{pad}{{",
                f"{pad}\tOFFSET {_numbers(clip.offsets[j])}",
                f"{pad}\tCHANNELS {len(clip.channels[j])} {' '.join(clip.channels[j])}",
            ]
        )
        for child in np.flatnonzero(clip.parents == j):
            write_joint(int(child), depth + 1)
        if j in clip.end_sites:
            lines.extend(
                [f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {_numbers(clip.end_sites[j])}", f"{pad}\t}}"]
            )
        lines.append(f"{pad}}}")

    write_joint(order[0], 0)
    lines += ["MOTION", f"Frames: {clip.frames}", f"Frame Time: {clip.frame_time:.8f}"]
    columns = []
    for j in order:
        rotation_names = [c for c in clip.channels[j] if c in ROTATION_CHANNELS]
        angles = (
            rotations.to_euler(clip.rotations[:, j], "".join(c[0] for c in rotation_names)) if rotation_names else None
        )
        for channel in clip.channels[j]:
            if channel in POSITION_CHANNELS:
                columns.append(clip.translations[:, j, POSITION_CHANNELS.index(channel)])
            else:
                columns.append(angles[:, rotation_names.index(channel)])
    values = np.stack(columns, axis=1)
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def _numbers(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def write_clip(path: str | Path, clip: BvhClip) -> None:
    Path(path).write_text(format_bvh(clip))


def canonical_clip(motion: CanonicalMotion) -> BvhClip:
    """The motion on the template skeleton, with rest offsets fitted to its positions (see top)."""
    positions = motion.positions.astype(np.float64)
    offsets = fitted_rest_offsets(positions)
    offsets[0] = 0.0
    local_rotations = rotations_from_positions(positions, offsets)
    order = canonical.BVH_ORDER
    file_index = {joint: i for i, joint in enumerate(order)}
    parents = np.array([file_index[canonical.PARENTS[j]] if canonical.PARENTS[j] >= 0 else -1 for j in order])
    translations = np.repeat(offsets[order][None], motion.frames, axis=0)
    translations[:, 0] = positions[:, 0]
    leaves = [j for j in order if j not in canonical.PARENTS]
    return BvhClip(
        names=[canonical.JOINT_NAMES[j] for j in order],
        parents=parents,
        offsets=offsets[order],
        channels=[POSITION_CHANNELS + TEMPLATE_CHANNELS if j == 0 else TEMPLATE_CHANNELS for j in order],
        end_sites={file_index[j]: offsets[j] * END_SITE_FRACTION for j in leaves},
        frame_time=1.0 / motion.fps,
        rotations=local_rotations[:, order],
        translations=translations,
    )


def write_bvh(path: str | Path, motion: CanonicalMotion) -> None:
    """Write a canonical motion as a BVH on the template skeleton, metres, Y up."""
    write_clip(path, canonical_clip(motion))
