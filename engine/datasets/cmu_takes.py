"""More CMU takes: BVH conversions of the CMU database, cut into segments, stored compactly.

Two public repositories carry BVH conversions of CMU trials (mocap.cs.cmu.edu):
DragonForgedTheArtist/IClone-CMU-Mocap (Reallusion CC_Base skeleton, 60 fps, centimetres) and
Przestr/motion-capture (the Daz-friendly release: "hip", "lThigh", 120 fps). Each take is read by
the project's own BVH reader and bone mapping (retarget.inverse.motion_from_bvh, which finds the
rig family), scaled so its legs have the canonical length, resampled to 20 fps and rebuilt on the
canonical skeleton. `check_take` refuses exploding joints, feet off the floor and bones whose
length wanders. The segments (one action each, cmu_segments.SEGMENTS) are stored in
cmu_takes/segments.npz: per segment the root path (float32) and the joints relative to the root
(float16, under 1 mm of rounding), so the demo dataset builds from the repository alone.

`python -m engine.datasets.cmu_takes --bvh FOLDER...` rebuilds the archive from the BVH files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from retarget import canonical, inverse, resample

from .placement import on_canonical_skeleton, place_on_floor_facing_z

ARCHIVE = Path(__file__).parent / "cmu_takes" / "segments.npz"
MAX_JOINT_SPEED = 12.0  # m/s: faster than a punch's fist means a joint jumped
MAX_BONE_LENGTH_SPREAD = 0.15  # of a bone's median length, 1st to 99th percentile, before the refit
REFERENCE_FRAME_JUMP = 0.15  # m between two source frames: the T-pose both releases put before the take
MAX_LOWEST_FOOT = 0.08  # m: the lower foot touches the floor in at least a tenth of the frames
LEG = [
    (canonical.JOINT_NAMES.index(a), canonical.JOINT_NAMES.index(b))
    for a, b in (
        ("LeftUpLeg", "LeftLeg"),
        ("LeftLeg", "LeftFoot"),
        ("RightUpLeg", "RightLeg"),
        ("RightLeg", "RightFoot"),
    )
]
FEET = canonical.LEFT_FOOT + canonical.RIGHT_FOOT
MIN_ROOT_RISE = 0.01  # m: a take whose pelvis never rises or falls this much had its root height locked
# Takes whose file states the wrong frame rate: Przestr's copies of subject 16 say 30 fps for
# CMU's 120 fps frames (their jump hangs 1.5 s in the air for a 20 cm rise).
SOURCE_FPS: dict[str, float] = {"16_01": 120.0, "16_02": 120.0}


def take_id(path: Path) -> str:
    """'02_05' from 002_05.bvh or 02_05.bvh."""
    subject, trial = path.stem.split("_")[:2]
    return f"{int(subject):02d}_{int(trial):02d}"


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(T, 21) distances of every joint from its parent."""
    return np.linalg.norm(joints[:, 1:] - joints[:, canonical.PARENTS[1:]], axis=-1)


def convert_take(path: Path, fps: int = canonical.FPS) -> tuple[np.ndarray, list[str]]:
    """Joints (T, 22, 3) of a BVH take on the canonical skeleton at `fps`, and what is wrong with
    it (empty when the take passes `check_take`)."""
    motion = inverse.motion_from_bvh(path)
    source_fps = SOURCE_FPS.get(take_id(path), motion.fps)
    raw = motion.positions.astype(np.float64)
    leg = np.median(sum(np.linalg.norm(raw[:, a] - raw[:, b], axis=-1) for a, b in LEG) / 2)
    raw = _without_reference_pose(raw * (canonical.LEG_LENGTH / leg))
    problems = [
        f"bone {canonical.JOINT_NAMES[j + 1]} length spreads {spread:.0%}"
        for j, spread in enumerate(_length_spread(raw))
        if spread > MAX_BONE_LENGTH_SPREAD
    ]
    at_fps = resample.linear(raw, resample.sample_points(len(raw), source_fps, fps))
    joints = place_on_floor_facing_z(on_canonical_skeleton(at_fps))
    return joints, problems + check_take(joints, fps)


def _without_reference_pose(joints: np.ndarray) -> np.ndarray:
    """The take without its leading reference frames: a rest pose the body leaves in one frame."""
    local = joints - joints[:, :1]
    jumps = np.linalg.norm(np.diff(local, axis=0), axis=-1).max(axis=1)
    first = 0
    while first < len(jumps) and jumps[first] > REFERENCE_FRAME_JUMP:
        first += 1
    return joints[first:]


def _length_spread(joints: np.ndarray) -> np.ndarray:
    lengths = bone_lengths(joints)
    low, median, high = np.percentile(lengths, [1, 50, 99], axis=0)
    return (high - low) / np.maximum(median, 1e-6)


def check_take(joints: np.ndarray, fps: int = canonical.FPS) -> list[str]:
    """Reasons a converted take cannot be used: NaNs, joints moving implausibly fast, feet that
    never reach the floor, a pelvis that never rises or falls."""
    if not np.all(np.isfinite(joints)):
        return ["non-finite joints"]
    problems = []
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max() * fps
    if speed > MAX_JOINT_SPEED:
        problems.append(f"a joint moves at {speed:.1f} m/s")
    if np.ptp(joints[:, 0, 1]) < MIN_ROOT_RISE:
        problems.append("the pelvis keeps one height all through: the root's height was locked")
    lowest_foot = joints[:, FEET, 1].min(axis=1)
    if np.percentile(lowest_foot, 10) > MAX_LOWEST_FOOT:
        problems.append(f"the feet stay {np.percentile(lowest_foot, 10):.2f} m above the floor")
    return problems


def pack(segments: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Archive arrays: <name>/root (T, 3) float32 and <name>/local (T, 22, 3) float16."""
    arrays = {}
    for name, joints in segments.items():
        arrays[f"{name}/root"] = joints[:, 0].astype(np.float32)
        arrays[f"{name}/local"] = (joints - joints[:, :1]).astype(np.float16)
    return arrays


def load_segments(archive: Path = ARCHIVE) -> dict[str, np.ndarray]:
    """Segment name -> joints (T, 22, 3) float64, rebuilt rigid on the canonical skeleton."""
    with np.load(archive) as data:
        names = sorted({key.split("/")[0] for key in data.files})
        return {
            name: on_canonical_skeleton(
                data[f"{name}/root"][:, None].astype(np.float64) + data[f"{name}/local"].astype(np.float64)
            )
            for name in names
        }


def find_takes(folders: list[Path]) -> dict[str, list[Path]]:
    """Take id -> its BVH files, in the order of the folders (a take may be in several)."""
    takes: dict[str, list[Path]] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.bvh")):
            takes.setdefault(take_id(path), []).append(path)
    return takes


def first_sound_conversion(paths: list[Path]) -> tuple[np.ndarray, Path, list[str]]:
    """The conversion of the first file of a take that passes the checks (else the last one's
    joints, with every file's problems)."""
    problems = []
    for path in paths:
        joints, found = convert_take(path)
        if not found:
            return joints, path, []
        problems.append(f"{path}: {'; '.join(found)}")
    return joints, path, problems


def build_archive(folders: list[Path], archive: Path = ARCHIVE) -> list[str]:
    """Convert the takes the segments need and write the archive; returns a report line per take."""
    from .cmu_segments import SEGMENTS

    takes = find_takes(folders)
    needed = sorted({segment.take for segment in SEGMENTS})
    missing = [take for take in needed if take not in takes]
    if missing:
        raise FileNotFoundError(f"no BVH file for the CMU takes {missing} in {[str(f) for f in folders]}")
    report, segments = [], {}
    for take in needed:
        joints, path, problems = first_sound_conversion(takes[take])
        if problems:
            raise ValueError(f"take {take} fails its checks: {' | '.join(problems)}")
        for segment in (s for s in SEGMENTS if s.take == take):
            end = len(joints) if segment.end is None else segment.end
            if end > len(joints) or segment.start >= end:
                raise ValueError(f"{segment.name} spans frames {segment.start}..{end}; take {take} has {len(joints)}")
            segments[segment.name] = place_on_floor_facing_z(joints[segment.start : end])
        report.append(f"{take}: {len(joints)} frames from {path}")
    archive.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(archive, **pack(segments))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bvh", type=Path, nargs="+", required=True, help="folders with the CMU BVH files (searched recursively)"
    )
    parser.add_argument("--out", type=Path, default=ARCHIVE)
    args = parser.parse_args(argv)
    for line in build_archive(args.bvh, args.out):
        print(line)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
