"""Synthetic files in the layout of Guo et al.'s released evaluator and GloVe vectors, and a tiny
dataset in HumanML3D's layout, for the protocol tests.

RELEASE_SHAPES is written out from the release's network definitions (MovementConvEncoder(259,
512, 512), MotionEncoderBiGRUCo(512, 1024, 512), TextEncoderBiGRUCo(300, 15, 512, 512)), not
from engine.evaluator, so a drift in our networks shows as a failed strict load.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from engine import representation
from engine.datasets import layout


def _gru(prefix: str, hidden: int) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for suffix in ("l0", "l0_reverse"):
        shapes |= {
            f"{prefix}.weight_ih_{suffix}": (3 * hidden, hidden),
            f"{prefix}.weight_hh_{suffix}": (3 * hidden, hidden),
            f"{prefix}.bias_ih_{suffix}": (3 * hidden,),
            f"{prefix}.bias_hh_{suffix}": (3 * hidden,),
        }
    return shapes


def _head(hidden: int) -> dict[str, tuple[int, ...]]:
    return {
        "output_net.0.weight": (hidden, 2 * hidden),
        "output_net.0.bias": (hidden,),
        "output_net.1.weight": (hidden,),
        "output_net.1.bias": (hidden,),
        "output_net.3.weight": (512, hidden),
        "output_net.3.bias": (512,),
    }


RELEASE_SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "movement_encoder": {
        "main.0.weight": (512, 259, 4),
        "main.0.bias": (512,),
        "main.3.weight": (512, 512, 4),
        "main.3.bias": (512,),
        "out_net.weight": (512, 512),
        "out_net.bias": (512,),
    },
    "motion_encoder": {
        "hidden": (2, 1, 1024),
        "input_emb.weight": (1024, 512),
        "input_emb.bias": (1024,),
        **_gru("gru", 1024),
        **_head(1024),
    },
    "text_encoder": {
        "hidden": (2, 1, 512),
        "pos_emb.weight": (300, 15),
        "pos_emb.bias": (300,),
        "input_emb.weight": (512, 300),
        "input_emb.bias": (512,),
        **_gru("gru", 512),
        **_head(512),
    },
}


def random_states(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    states = {}
    for network, shapes in RELEASE_SHAPES.items():
        states[network] = {}
        for key, shape in shapes.items():  # small weights keep the GRUs out of saturation
            states[network][key] = torch.randn(shape, generator=generator) * 0.03
    return states


def write_evaluator(folder: Path, states: dict | None = None, seed: int = 0) -> Path:
    """folder/text_mot_match/model/finest.tar (the three networks, optimizer states, epoch, iter) and
    folder/Comp_v6_KLD005/meta/{mean,std}.npy, as the evaluator archive holds them."""
    states = states or random_states(seed)
    model = folder / "text_mot_match" / "model"
    model.mkdir(parents=True, exist_ok=True)
    adam = {
        "state": {},
        "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "params": [0, 1]}],
    }
    torch.save(
        {**states, "opt_motion_encoder": adam, "opt_text_encoder": adam, "epoch": 96, "iter": 12345},
        model / "finest.tar",
    )
    meta = folder / "Comp_v6_KLD005" / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    np.save(meta / "mean.npy", rng.normal(0, 0.1, 263).astype(np.float32))
    np.save(meta / "std.npy", rng.uniform(0.5, 1.5, 263).astype(np.float32))
    return folder


VOCABULARY = [
    "unk",
    "sos",
    "eos",
    "a",
    "person",
    "walk",
    "forward",
    "turn",
    "left",
    "jump",
    "wave",
    "hand",
    "the",
    "and",
    "then",
]


def write_glove(folder: Path, seed: int = 0) -> Path:
    """The evaluator's GloVe subset: our_vab_data.npy (words, 300) and the two pickles (a list and a dict)."""
    folder.mkdir(parents=True, exist_ok=True)
    vectors = np.random.default_rng(seed).normal(size=(len(VOCABULARY) + 2, 300)).astype(np.float32)
    order = VOCABULARY[::-1]  # rows in another order than the word list, as the index maps them
    np.save(folder / "our_vab_data.npy", vectors)
    (folder / "our_vab_words.pkl").write_bytes(pickle.dumps(VOCABULARY))
    (folder / "our_vab_idx.pkl").write_bytes(pickle.dumps({word: order.index(word) + 2 for word in VOCABULARY}))
    return folder


def write_glove_6b(path: Path, seed: int = 0) -> Path:
    """glove.6B.300d.txt: `word v1 ... v300` a line."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(f"{word} {' '.join(f'{v:.5f}' for v in rng.normal(size=300))}\n" for word in VOCABULARY + ["person's"])
    )
    return path


CAPTIONS = [
    ("a person walks forward", "a/DET person/NOUN walk/VERB forward/ADV"),
    ("a person turns left and jumps", "a/DET person/NOUN turn/VERB left/ADV and/CCONJ jump/VERB"),
    ("the person waves a hand", "the/DET person/NOUN wave/VERB a/DET hand/NOUN"),
]


def write_dataset(root: Path, samples: int = 10, seed: int = 0, plain_captions: bool = False) -> Path:
    """A tiny dataset in HumanML3D's layout: random walks of 40 to 199 frames, three captions each,
    one with a sub-span of its own; plus a motion too short and one too long, which the protocol skips.
    With plain_captions the texts are bare caption lines, as Motion-X's."""
    rng = np.random.default_rng(seed)
    names = []
    lengths = list(rng.integers(60, 200, samples)) + [30, 230]
    for index, frames in enumerate(lengths):
        joints = np.cumsum(rng.normal(0, 0.01, (int(frames) + 1, 22, 3)), axis=0) + rng.normal(0, 0.3, (1, 22, 3))
        joints[..., 1] += 1.0
        features = representation.joints_to_features(joints)
        texts = [layout.TextLine(caption, tokens) for caption, tokens in CAPTIONS]
        if index == 0:
            texts.append(layout.TextLine("a person jumps", "a/DET person/NOUN jump/VERB", 0.0, 2.5))  # frames 0..49
        name = f"{index:06d}"
        layout.write_sample(root, name, joints, features, texts)
        if plain_captions:
            (root / "texts" / f"{name}.txt").write_text("".join(f"{caption}\n" for caption, _ in CAPTIONS))
        names.append(name)
    names.append("999999")  # listed without a motion file
    for split in ("train", "val", "test"):
        layout.write_split(root, split, names)
    mean, std = representation.mean_std([np.load(root / "new_joint_vecs" / f"{n}.npy") for n in names[:-1]])
    layout.write_statistics(root, mean, std)
    return root
