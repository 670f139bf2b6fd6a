"""Real motion and the measurements the retargeting tests assert on, shared by the numpy tests
and the Blender ones: direction error of a posed rig against its source, drift of planted
feet, and the demo dataset's clips as source motion."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.datasets import layout
from engine.datasets.build import BuildConfig, build_dataset
from retarget import rotations
from retarget.footlock import FOOT_JOINTS
from retarget.mapping import Mapping, joint_positions
from retarget.skeleton import Skeleton
from retarget.transfer import placement, primary_pairs


@dataclass
class Clip:
    name: str  # the source clip (deepmimic_walk, aistpp_...)
    joints: np.ndarray  # (T, 22, 3) canonical joints
    features: np.ndarray  # (T - 1, 263) raw HumanML3D features (contacts in 259:263)

    def motion(self, frames: slice = slice(None)) -> dict:
        """The dict form of a canonical motion that transfer accepts; features cut to match."""
        joints = self.joints[frames]
        return {"positions": joints, "features": self.features[frames][: len(joints) - 1], "fps": 20.0}


def demo_clips(out: Path, shared_data: Path) -> list[Clip]:
    """The first window of every source clip of the demo dataset (no mirrored copies)."""
    build_dataset(BuildConfig(out=out, shared_data=shared_data))
    samples = json.loads((out / "dataset.json").read_text())["samples_by_id"]
    first = {}
    for sample in sorted(layout.read_names(out, "all")):
        if not sample.startswith("M"):
            first.setdefault(samples[sample]["clip"], sample)
    return [
        Clip(clip, layout.read_joints(out, sample), np.load(out / "new_joint_vecs" / f"{sample}.npy"))
        for clip, sample in first.items()
    ]


def direction_errors(skeleton: Skeleton, mapping: Mapping, rig_joints: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Degrees (T, segments) between each mapped bone's world direction on the posed rig (its
    joint to the next mapped joint; rig_joints (T, 22, 3) in world space) and the same direction
    in the source (canonical joints (T, 22, 3)), with the source turned to face the rig's way."""
    rest_joints = joint_positions(skeleton, mapping, skeleton.heads, skeleton.tails)
    place = placement(skeleton, rest_joints, source)
    to_world = skeleton.object_rotation
    # One pair per segment of the rig: where two mapped joints start at the same rest point (CMU's
    # Hips and LowerBack), the segment turns with the lower one, the later in canonical order.
    segments = {}
    for _joint, (a, b) in sorted(primary_pairs(mapping, rest_joints).items()):
        segments[tuple(np.round(rest_joints[a], 6)), b] = (a, b)
    starts, ends = np.array(list(segments.values())).T
    on_rig = rotations.normalize(rig_joints[:, ends] - rig_joints[:, starts])
    wanted = rotations.normalize(place.directions(source[:, ends] - source[:, starts]) @ to_world.T)
    return np.degrees(np.arccos(np.clip(np.sum(on_rig * wanted, axis=-1), -1.0, 1.0)))


def contact_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every run of set flags (T,)."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def planted_height(rig_joints: np.ndarray, contacts: np.ndarray, floor: float) -> float:
    """The median height (metres, world Z) above `floor` of each planted foot's lowest joint (its
    ankle or its toe), over the frames where either of that foot's contact flags is set."""
    heights = [
        np.minimum(rig_joints[:, FOOT_JOINTS[ankle], 2], rig_joints[:, FOOT_JOINTS[ankle + 1], 2])[
            contacts[:, ankle] | contacts[:, ankle + 1]
        ]
        for ankle in (0, 2)
    ]
    return float(np.median(np.concatenate(heights))) - floor


def contact_sink(free_joints: np.ndarray, locked_joints: np.ndarray, contacts: np.ndarray) -> float:
    """How far (metres, world Z; negative: lower) the locked rig puts a foot joint below the lowest
    the free motion puts it, over the frames its contact flag is set."""
    sinks = [
        locked_joints[contacts[:, k], joint, 2].min() - free_joints[contacts[:, k], joint, 2].min()
        for k, joint in enumerate(FOOT_JOINTS)
        if contacts[:, k].any()
    ]
    return float(min(sinks, default=0.0))


def planted_drift(rig_joints: np.ndarray, contacts: np.ndarray) -> float:
    """The farthest (metres) any foot joint moves from where it stood when its contact flag
    (contacts (T, 4)) was set, while it stays set."""
    drift = [
        np.linalg.norm(rig_joints[start:stop, joint] - rig_joints[start, joint], axis=-1).max()
        for k, joint in enumerate(FOOT_JOINTS)
        for start, stop in contact_runs(contacts[:, k])
    ]
    return float(max(drift, default=0.0))
