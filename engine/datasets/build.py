"""`python -m engine build-dataset`: the demo dataset, in HumanML3D layout, from real motion.

Sources are the clips available offline (DeepMimic clips from the pybullet wheel, AIST++ takes
in ../shared/data, the CMU take committed in engine/datasets/cmu, the walk-then-wave clip
composed of two of them, and the segments of 84 CMU trials in engine/datasets/cmu_takes, one
action each). Each clip or segment is cut into windows of at most 196 frames (evenly spaced, covering
the whole clip), every window is placed at the origin facing +Z and stored with a mirrored copy
(left and right swapped in motion and captions). Clips shorter than 40 frames are dropped,
unless they loop: looping clips are chained to at least 40 frames when loaded. Splits are by
source clip (a CMU trial for its segments), so windows, mirrors and segments of one take never
straddle train and test. Every sample records its kind (captions.kind_of), which the evaluation
asks for.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import representation
from retarget import canonical

from . import AISTPP_PATTERN, cmu_segments, default_shared_data, layout, real_clips
from . import captions as captions_module
from .placement import place_on_floor_facing_z

MIN_FRAMES = 40
MARKER = ".mosa-build-dataset"  # written first into the folder, so a build cut short is still known as one


@dataclass
class BuildConfig:
    out: Path
    shared_data: Path = field(default_factory=default_shared_data)
    max_frames: int = canonical.MAX_FRAMES
    min_frames: int = MIN_FRAMES
    val_clips: int = 1
    test_clips: int = 1
    mirror: bool = True


@dataclass
class BuildReport:
    clips: int = 0  # source takes
    segments: int = 0  # clips and CMU segments, one action each
    kinds: set[str] = field(default_factory=set)
    samples: int = 0
    frames: int = 0
    captions: int = 0
    dropped: list[str] = field(default_factory=list)
    split_sizes: dict[str, int] = field(default_factory=dict)
    seconds_to_build: float = 0.0

    def summary(self) -> str:
        seconds = self.frames / canonical.FPS
        splits = ", ".join(f"{k} {v}" for k, v in self.split_sizes.items())
        lines = [
            (
                f"clips {self.clips}, segments {self.segments}, samples {self.samples} (windows and mirrors), "
                f"frames {self.frames} ({seconds:.1f} s, {seconds / 60:.1f} min of motion), captions {self.captions}, "
                f"distinct kinds {len(self.kinds)}"
            ),
            f"splits: {splits}",
            f"built in {self.seconds_to_build:.1f} s",
        ]
        lines += [f"dropped {reason}" for reason in self.dropped]
        return "\n".join(lines)


def window_starts(frames: int, max_frames: int) -> list[int]:
    """Starts of evenly spaced windows of max_frames that cover a clip (one if it fits)."""
    if frames <= max_frames:
        return [0]
    count = int(np.ceil(frames / max_frames))
    return [int(round(s)) for s in np.linspace(0, frames - max_frames, count)]


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Left-right mirror image: swap each joint with its partner and negate X."""
    return joints[:, canonical.MIRROR] * np.array([-1.0, 1.0, 1.0])


def assign_splits(clips: list[str], val_clips: int, test_clips: int) -> dict[str, str]:
    """A fixed, name-hashed choice of held-out clips, so rebuilding gives the same splits."""
    if val_clips + test_clips >= len(clips):
        raise ValueError(
            f"{len(clips)} clips cannot hold out {val_clips} val + {test_clips} test clips and still train"
        )
    order = sorted(clips, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
    split = {name: "train" for name in clips}
    for name in order[:test_clips]:
        split[name] = "test"
    for name in order[test_clips : test_clips + val_clips]:
        split[name] = "val"
    return split


def source_clip(clip: str) -> str:
    """The take a clip comes from: a CMU segment's trial ("cmu_02_05"), else the clip itself."""
    segment = cmu_segments.BY_NAME.get(clip)
    return f"cmu_{segment.take}" if segment else clip


def caption_lines(captions: list[str]) -> list[layout.TextLine]:
    return [layout.TextLine(c, captions_module.tokens(c)) for c in captions]


def build_dataset(config: BuildConfig) -> BuildReport:
    started = time.perf_counter()
    report = BuildReport()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by python -m engine build-dataset\n")

    kept: list[tuple[str, np.ndarray, list[str]]] = []
    for clip, joints in real_clips(config.shared_data, min_seconds=(config.min_frames - 1) / canonical.FPS):
        if len(joints) < config.min_frames:
            report.dropped.append(f"{clip}: {len(joints)} frames < {config.min_frames} and it does not loop")
            continue
        kept.append((clip, joints, captions_module.captions_for(clip)))
    take_split = assign_splits(sorted({source_clip(clip) for clip, _, _ in kept}), config.val_clips, config.test_clips)
    split_of = {clip: take_split[source_clip(clip)] for clip, _, _ in kept}

    names: dict[str, list[str]] = {split: [] for split in layout.SPLITS}
    train_features: list[np.ndarray] = []
    sources: dict[str, dict] = {}
    for clip, joints, captions in kept:
        for start in window_starts(len(joints), config.max_frames):
            sample_id = f"{len(sources):06d}"
            window = place_on_floor_facing_z(joints[start : start + config.max_frames])
            variants = [(sample_id, window, captions)]
            if config.mirror:
                mirrored_captions = [captions_module.mirror_caption(c) for c in captions]
                variants.append((layout.MIRROR_PREFIX + sample_id, mirror_joints(window), mirrored_captions))
            for name, motion, texts in variants:
                features = representation.joints_to_features(motion)
                layout.write_sample(out, name, motion, features, caption_lines(texts))
                names[split_of[clip]].append(name)
                if split_of[clip] == "train":
                    train_features.append(features)
                report.samples += 1
                report.frames += len(motion)
                report.captions += len(texts)
            sources[sample_id] = {
                "clip": clip,
                "kind": captions_module.kind_of(clip),
                "take": source_clip(clip),
                "split": split_of[clip],
                "start_frame": start,
                "end_frame": start + len(window),
                "mirrored_id": layout.MIRROR_PREFIX + sample_id if config.mirror else None,
            }
        report.segments += 1
        report.kinds.add(captions_module.kind_of(clip))
    report.clips = len({source_clip(clip) for clip, _, _ in kept})

    for split, split_names in names.items():
        layout.write_split(out, split, split_names)
        report.split_sizes[split] = len(split_names)
    layout.write_split(out, "all", [n for split in layout.SPLITS for n in names[split]])
    if train_features:
        layout.write_statistics(out, *representation.mean_std(train_features))
    report.seconds_to_build = time.perf_counter() - started
    _write_description(out, config, report, sources)
    return report


def _write_description(out: Path, config: BuildConfig, report: BuildReport, sources: dict[str, dict]) -> None:
    description = {
        "format": "HumanML3D layout (new_joints, new_joint_vecs, texts, Mean/Std, split files)",
        "fps": canonical.FPS,
        "max_frames": config.max_frames,
        "min_frames": config.min_frames,
        "mirrored": config.mirror,
        "clips": report.clips,
        "segments": report.segments,
        "kinds": sorted(report.kinds),
        "samples": report.samples,
        "frames": report.frames,
        "captions": report.captions,
        "dropped": report.dropped,
        "sources": {
            "deepmimic": "humanoid clips from the pybullet wheel (pybullet_data/data/motions), zlib licence",
            "aistpp": "AIST++ takes (Li et al. 2021), SMPL poses through forward kinematics, CC-BY 4.0",
            "cmu": "CMU Graphics Lab motion capture (mocap.cs.cmu.edu), BVH, free for all uses, no resale of the data itself",
            "cmu_takes": "segments of 84 CMU trials from the BVH conversions in github.com/Przestr/motion-capture and "
            "github.com/DragonForgedTheArtist/IClone-CMU-Mocap (engine/datasets/cmu_takes/README.md)",
            "composed": "composed_walk_wave: the DeepMimic walk, a 0.5 s blend, then the CMU wave (engine/datasets/compose.py)",
        },
        "samples_by_id": sources,
    }
    (out / "dataset.json").write_text(json.dumps(description, indent=1))
    (out / "README.md").write_text(
        "# MoSa demo dataset\n\n"
        "Built by `python -m engine build-dataset` from real motion available offline: DeepMimic\n"
        "humanoid clips (pybullet), AIST++ takes and CMU takes (and the DeepMimic walk followed by the\n"
        "CMU wave, and segments of 84 more CMU trials), converted to the 22-joint HumanML3D skeleton at 20 fps, with hand-written\n"
        "captions. Layout as HumanML3D; ids starting with M are mirrored copies. dataset.json lists\n"
        "where every sample comes from.\n\n" + report.summary() + "\n"
    )


def out_problem(out: Path, overwrite: bool) -> str | None:
    """Why the dataset cannot be written into `out`, checked before the build: a file is there, or a
    folder that holds files and is not an earlier build of this command (no dataset.json nor MARKER), whose files
    (train.txt, Mean.npy, texts/...) the build would replace, unless `overwrite`."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; give a folder (it is made if missing)"
    built = (out / "dataset.json").is_file() or (out / MARKER).is_file()
    if out.is_dir() and any(out.iterdir()) and not built and not overwrite:
        return (
            f"--out {out} holds files and is not a dataset this command built (no dataset.json); the build "
            "would replace its split files, Mean.npy, Std.npy and samples: choose an empty or new folder, "
            "or add --overwrite to write into it"
        )
    return None


def missing_sources(shared_data: Path) -> list[str]:
    """The captioned AIST++ takes that the shared data folder lacks, as lines for the user: the build
    goes on without them (a smaller dataset, with fewer kinds)."""
    takes = {take.stem for take in Path(shared_data).glob(AISTPP_PATTERN)}
    return [
        f"{shared_data} has no {genre}_*.pkl (an AIST++ take); the dataset is built without the kind {genre}"
        for genre in sorted(captions_module.CAPTIONS)
        if genre.startswith("aistpp_") and not any(take.startswith(genre + "_") for take in takes)
    ]


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write the dataset into")
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a --out folder that holds other files (not a build)"
    )
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=None,
        help="folder with the AIST++ takes (default: ../shared/data beside the clone, or $MOSA_SHARED_DATA)",
    )
    parser.add_argument("--val-clips", type=int, default=1, help="source clips held out for validation")
    parser.add_argument("--test-clips", type=int, default=1, help="source clips held out for testing")
    parser.add_argument("--no-mirror", action="store_true", help="do not add left-right mirrored copies")


def run(args: argparse.Namespace) -> int:
    if args.shared_data is not None and not args.shared_data.is_dir():
        print(
            f"error: --shared-data {args.shared_data} is not a folder; give the folder that holds the AIST++ "
            f"takes ({AISTPP_PATTERN})",
            file=sys.stderr,
        )
        return 2
    if problem := out_problem(args.out, args.overwrite):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    shared_data = default_shared_data() if args.shared_data is None else args.shared_data
    for line in missing_sources(shared_data):
        print(f"warning: {line}", file=sys.stderr)
    config = BuildConfig(
        out=args.out,
        shared_data=shared_data,
        val_clips=args.val_clips,
        test_clips=args.test_clips,
        mirror=not args.no_mirror,
    )
    report = build_dataset(config)
    print(f"dataset written to {config.out}")
    print(report.summary())
    return 0
