"""Property-based fuzzing of the files a user hands the engine: BVH, motion .npz and checkpoints.

Each reader gets real files damaged by Hypothesis (bytes flipped, cut, inserted; tokens, arrays
and entries replaced). It must return a valid result or raise ValueError, the readers' documented
error that the CLI and the add-on report: never a traceback of another type.

MOSA_FUZZ_EXAMPLES sets the examples per reader (`python3 build.py fuzz` runs a longer fuzz).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import checkpoint
from engine.datasets import deepmimic
from engine.tokenizer import Tokenizer, TokenizerConfig
from retarget import bvh
from retarget.motion import CanonicalMotion

EXAMPLES = int(os.environ.get("MOSA_FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FOLDER = Path(tempfile.mkdtemp(prefix="mosa-file-fuzz-"))


def read_or_value_error(read, data: bytes, suffix: str):
    """The reader's answer for a file holding `data`: its result, or None when it raised ValueError."""
    path = FOLDER / f"fuzzed{suffix}"
    path.write_bytes(data)
    try:
        return read(path)
    except ValueError as error:
        assert str(error), "a ValueError must say what is wrong"
        return None


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """The bytes with a few flips, a cut or an insertion."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "cut", "insert", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[at : at + draw(st.integers(1, 64))] = b"\0" * len(data[at : at + 64])
    return bytes(data)


# --- BVH ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def walk() -> CanonicalMotion:
    return CanonicalMotion.from_positions(deepmimic.load_joints("walk", min_seconds=5)[:40])


@pytest.fixture(scope="module")
def walk_bvh(walk) -> str:
    path = FOLDER / "walk.bvh"
    bvh.write_bvh(path, walk)
    return path.read_text()


TOKENS = st.one_of(
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e-320",
            "1e309",
            "0",
            "-1",
            "99999999999",
            "²",
            "x",
            "{",
            "}",
            "JOINT",
            "End",
            "Site",
            "ROOT",
            "MOTION",
            "CHANNELS",
            "OFFSET",
            "Frames:",
            "Xrotation",
            "Xposition",
        ]
    ),
    st.text(max_size=8),
)


@st.composite
def bvh_texts(draw, text: str) -> str:
    """The file with lines dropped, repeated or swapped, tokens replaced, or a deep hierarchy."""
    lines = text.splitlines()
    if draw(st.integers(0, 9)) == 0:  # a chain of joints nested deeper than any parser recursion
        depth = draw(st.integers(1, 5000))
        joint = "JOINT j\n{\nOFFSET 0 0 1\nCHANNELS 3 Zrotation Yrotation Xrotation\n"
        return "HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 0\n" + joint * depth + "}\n" * (depth + 1) + "MOTION\n"
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["token", "token", "drop", "repeat", "swap", "frames"]))
        if kind == "token":
            tokens = lines[at].split() or [""]
            tokens[draw(st.integers(0, len(tokens) - 1))] = draw(TOKENS)
            lines[at] = " ".join(tokens)
        elif kind == "drop":
            del lines[at]
        elif kind == "repeat":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines = [
                f"Frames: {draw(st.sampled_from(['0', '1', '39', '41', '10000000']))}"
                if line.startswith("Frames:")
                else line
                for line in lines
            ]
        if not lines:
            break
    return "\n".join(lines)


@FUZZ
@given(data=st.data())
def test_fuzzed_bvh_is_read_or_a_value_error(walk_bvh, data):
    text = data.draw(st.one_of(bvh_texts(walk_bvh), st.text(max_size=200)))
    raw = data.draw(st.one_of(st.just(text.encode()), damaged(text.encode())))
    motion = read_or_value_error(bvh.read_bvh, raw, ".bvh")
    if motion is not None:
        assert np.isfinite(motion.positions).all() and motion.fps > 0


# --- motion .npz -------------------------------------------------------------------------------
ARRAYS = st.one_of(
    st.sampled_from(
        [
            np.zeros(0),
            np.float64(np.nan),
            np.array(["a", "b"]),
            np.ones((2, 3), np.complex64),
            np.ones((40, 22, 3)) * np.inf,
            np.ones((40, 22, 4), np.int8),
            np.ones((40, 21, 3)),
            np.zeros((3,), [("a", "f4")]),
            np.array([2**63], dtype=np.uint64),
            np.ones((40,)),
            np.float32(-20.0),
            np.array(b"bytes"),
        ]
    ),
    st.integers(-1000, 1000).map(np.int64),
)


@st.composite
def npz_files(draw, walk: CanonicalMotion) -> bytes:
    """The motion saved with arrays replaced, dropped or added, or its bytes damaged."""
    buffer = io.BytesIO()
    arrays = {
        "positions": walk.positions,
        "rotations": walk.rotations,
        "root_translation": walk.root_translation,
        "parents": walk.parents,
        "fps": np.float64(walk.fps),
        "joint_names": np.array(walk.joint_names),
    }
    for name in draw(st.lists(st.sampled_from([*arrays, "features"]), max_size=3)):
        if draw(st.booleans()):
            arrays.pop(name, None)
        else:
            arrays[name] = draw(ARRAYS)
    np.savez(buffer, **arrays)
    return draw(st.one_of(st.just(buffer.getvalue()), damaged(buffer.getvalue())))


@FUZZ
@given(data=st.data())
def test_fuzzed_npz_is_read_or_a_value_error(walk, data):
    raw = data.draw(st.one_of(npz_files(walk), st.binary(max_size=300)))
    motion = read_or_value_error(CanonicalMotion.load, raw, ".npz")
    if motion is not None:
        motion.validate()


# --- checkpoints -------------------------------------------------------------------------------
TINY = TokenizerConfig(
    width=8,
    code_dim=8,
    nb_code_st=4,
    nb_code_ed=8,
    slot_group=1,
    max_frames=16,
    scales=(1, 2, 4),
)


@pytest.fixture(scope="module")
def tiny_checkpoint() -> tuple[bytes, dict]:
    """A tokenizer-only checkpoint of a tiny tokenizer: its bytes and its payload."""
    torch.manual_seed(0)
    tokenizer = Tokenizer(TINY)
    path = FOLDER / "tiny.pt"
    checkpoint.save(
        path,
        checkpoint.Checkpoint(tokenizer, None, np.zeros(263), np.ones(263), "all-minilm-l6-v2"),
    )
    assert checkpoint.load(path).tokenizer.config == TINY
    return path.read_bytes(), torch.load(path, weights_only=True)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(
        [
            [],
            {},
            [1, 2, 3],
            {"config": {}},
            torch.zeros(3),
            torch.zeros(263),
            torch.zeros(0, 8),
        ]
    ),
)


@st.composite
def checkpoint_payloads(draw, payload: dict) -> dict:
    """The payload with entries, config values or weights replaced."""
    payload = {
        **payload,
        "tokenizer": {
            **payload["tokenizer"],
            "config": dict(payload["tokenizer"]["config"]),
            "state_dict": dict(payload["tokenizer"]["state_dict"]),
        },
    }
    tokenizer = payload["tokenizer"]  # damaged inside first: an entry replaced below may be this one
    for where in sorted(
        draw(st.lists(st.sampled_from(["config", "entry", "weight"]), min_size=1, max_size=3)), reverse=True
    ):
        if where == "entry":
            payload[draw(st.sampled_from([*payload, "extra"]))] = draw(VALUES)
        elif where == "config":
            config = tokenizer["config"]
            config[draw(st.sampled_from([*config, "extra"]))] = draw(VALUES)
        else:
            weights = tokenizer["state_dict"]
            name = draw(st.sampled_from(sorted(weights)))
            weight = weights[name]  # an earlier round may have replaced it already
            damaged = [st.just(weight.double()), st.just(weight[:1])] if isinstance(weight, torch.Tensor) else []
            weights[name] = draw(st.one_of(VALUES, *damaged))
    return payload


# torch's own warnings on damaged input, before the loader's ValueError: its weights-only
# unpickler looking up a damaged global, and the meta-device build of a config with a zero size.
@pytest.mark.filterwarnings("ignore:Defining your `__torch_function__` as a plain method:UserWarning")
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op:UserWarning")
@FUZZ
@given(data=st.data())
def test_fuzzed_checkpoint_is_read_or_a_value_error(tiny_checkpoint, data):
    raw, payload = tiny_checkpoint
    if data.draw(st.booleans()):
        buffer = io.BytesIO()
        torch.save(data.draw(checkpoint_payloads(payload)), buffer)
        raw = buffer.getvalue()
    else:
        raw = data.draw(damaged(raw))
    loaded = read_or_value_error(checkpoint.load, raw, ".pt")
    if loaded is not None:
        assert loaded.mean.shape == loaded.std.shape == (loaded.tokenizer.config.feature_dim,)
