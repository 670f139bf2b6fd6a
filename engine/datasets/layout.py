"""The public HumanML3D folder layout: write it, and read it back (numpy only) for training.

    new_joints/<id>.npy       (T, 22, 3) joints, metres, Y up
    new_joint_vecs/<id>.npy   (T-1, 263) features (engine.representation.joints_to_features)
    texts/<id>.txt            one `caption#tokens#start#end` line per caption (0.0 = whole clip)
    Mean.npy, Std.npy         (263,) statistics of the training features
    train.txt val.txt test.txt all.txt   one id a line

Mirrored copies carry the id of their source prefixed with "M", as in HumanML3D.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
FEATURE_SIZE = 263
MIRROR_PREFIX = "M"


@dataclass(frozen=True)
class TextLine:
    caption: str
    tokens: str
    start: float = 0.0
    end: float = 0.0

    def to_line(self) -> str:
        for field in (self.caption, self.tokens):
            if "#" in field or "\n" in field:
                raise ValueError(f"caption fields may not contain '#' or newlines: {field!r}")
        return f"{self.caption}#{self.tokens}#{self.start}#{self.end}"

    @classmethod
    def from_line(cls, line: str) -> "TextLine":
        parts = line.rstrip("\n").split("#")
        if len(parts) != 4:
            raise ValueError(f"expected `caption#tokens#start#end`, got {line!r}")
        caption, tokens, start, end = parts
        return cls(caption, tokens, float(start or 0.0), float(end or 0.0))


@dataclass
class Sample:
    """One training sample: its id, features (T-1, 263) and captions."""

    name: str
    features: np.ndarray
    captions: list[str]


def write_sample(root: Path, name: str, joints: np.ndarray, features: np.ndarray, texts: list[TextLine]) -> None:
    root = Path(root)
    for folder in ("new_joints", "new_joint_vecs", "texts"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    np.save(root / "new_joints" / f"{name}.npy", np.asarray(joints, dtype=np.float32))
    np.save(root / "new_joint_vecs" / f"{name}.npy", np.asarray(features, dtype=np.float32))
    (root / "texts" / f"{name}.txt").write_text("".join(t.to_line() + "\n" for t in texts))


def write_split(root: Path, split: str, names: list[str]) -> None:
    (Path(root) / f"{split}.txt").write_text("".join(n + "\n" for n in names))


def write_statistics(root: Path, mean: np.ndarray, std: np.ndarray) -> None:
    np.save(Path(root) / "Mean.npy", mean)
    np.save(Path(root) / "Std.npy", std)


def read_names(root: Path, split: str) -> list[str]:
    path = Path(root) / f"{split}.txt"
    if not path.exists():
        raise ValueError(f"no split file {path}; expected one of {', '.join(SPLITS + ('all',))}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_texts(root: Path, name: str) -> list[TextLine]:
    lines = (Path(root) / "texts" / f"{name}.txt").read_text().splitlines()
    return [TextLine.from_line(line) for line in lines if line.strip()]


def read_joints(root: Path, name: str) -> np.ndarray:
    return np.load(Path(root) / "new_joints" / f"{name}.npy")


def read_statistics(root: Path) -> tuple[np.ndarray, np.ndarray]:
    return np.load(Path(root) / "Mean.npy"), np.load(Path(root) / "Std.npy")


def read_split(root: Path, split: str) -> list[Sample]:
    """Every sample of a split with its raw (not normalised) features and its captions."""
    samples = []
    for name in read_names(root, split):
        features = np.load(Path(root) / "new_joint_vecs" / f"{name}.npy")
        samples.append(Sample(name, features, [t.caption for t in read_texts(root, name)]))
    return samples


def sample_kinds(root: Path) -> dict[str, str]:
    """Sample id -> kind of motion, from the dataset.json that build-dataset writes (mirrors
    included; a dataset built before kinds: the source clip). HumanML3D itself has no kinds."""
    description = json.loads((Path(root) / "dataset.json").read_text())
    kind_of = {}
    for sample_id, source in description["samples_by_id"].items():
        kind_of[sample_id] = source.get("kind", source["clip"])
        if source.get("mirrored_id"):
            kind_of[source["mirrored_id"]] = kind_of[sample_id]
    return kind_of
