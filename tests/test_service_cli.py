"""`python -m engine generate` and `edit` as a user runs them, on the trained demo model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from service_engine import ENGINE_PYTHON, ROOT, engine_env

from engine.cli import DEFAULT_CHECKPOINT


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return DEFAULT_CHECKPOINT


def engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ENGINE_PYTHON, "-m", "engine", *args], capture_output=True, text=True, env=engine_env(), cwd=ROOT, timeout=300
    )


def test_generate_numbered_bvh_files_with_progress(checkpoint, tmp_path):
    from retarget import bvh

    run = engine(
        "generate",
        "--prompt",
        "a person walks forward",
        "--frames",
        "40",
        "--seed",
        "1",
        "--samples",
        "2",
        "--out",
        str(tmp_path / "walk.bvh"),
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
    )
    assert run.returncode == 0, run.stderr
    assert [f"scale {step}/10" in run.stdout for step in range(1, 11)] == [True] * 10
    for index in (1, 2):
        motion = bvh.read_bvh(tmp_path / f"walk_{index}.bvh")
        assert motion.positions.shape == (40, 22, 3) and np.isfinite(motion.positions).all()
    assert not (tmp_path / "walk.bvh").exists()


def test_generate_json_then_edit_npz(checkpoint, tmp_path):
    from retarget import motion as motion_module

    source = tmp_path / "source.json"
    run = engine(
        "generate",
        "--prompt",
        "a person jumps",
        "--seconds",
        "3",
        "--out",
        str(source),
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
    )
    assert run.returncode == 0, run.stderr
    assert len(json.loads(source.read_text())["positions"]) == 60
    edited = tmp_path / "edited.npz"
    run = engine(
        "edit",
        "--source",
        str(source),
        "--frames",
        "20:40",
        "--prompt",
        "a person kicks",
        "--out",
        str(edited),
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
    )
    assert run.returncode == 0, run.stderr
    assert "scale 10/10" in run.stdout
    assert motion_module.CanonicalMotion.load(edited).positions.shape[1:] == (22, 3)


@pytest.mark.parametrize(
    "args, words",
    [
        (["generate", "--prompt", "walk", "--frames", "42", "--out", "x.npz"], "multiple of 4"),
        (["generate", "--prompt", "walk", "--seconds", "-1", "--out", "x.npz"], "out of range"),
        (["generate", "--prompt", "walk", "--seconds", "700", "--out", "x.npz"], "(0.0, 600.0]"),
        (
            ["generate", "--prompt", "walk", "--seconds", "3", "--prompt", "run", "--out", "x.npz"],
            "one length per prompt",
        ),
        (
            ["inbetween", "--prompt", "walk", "--source", "missing.npz", "--keys", "0,8", "--out", "x.npz"],
            "missing.npz",
        ),
        (["generate", "--prompt", "", "--out", "x.npz"], "'prompt' is empty"),
        (["generate", "--prompt", "walk", "--out", "x.fbx"], "must end in one of .npz, .bvh, .json"),
        (["edit", "--prompt", "walk", "--source", "missing.npz", "--frames", "1:2", "--out", "x.npz"], "missing.npz"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, words):
    run = engine(*args)
    assert run.returncode == 2 and words in run.stderr, run.stderr


def test_frame_span_mask():
    from engine.cli import frame_span_mask
    from engine.validation import RequestError

    assert frame_span_mask("2:4", 6) == [False, False, True, True, False, False]
    assert frame_span_mask(":2", 3) == [True, True, False]
    for bad in ("4:2", "0:7", "a:b", "3"):
        with pytest.raises(RequestError):
            frame_span_mask(bad, 6)
