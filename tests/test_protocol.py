"""`python -m engine eval --protocol`: the paper's evaluation end to end on a tiny synthetic dataset,
a synthetic evaluator of the released layout and a random demo-size model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import checkpoint, protocol
from engine.__main__ import main
from engine.word_vectors import WordVectors
from tests.evaluator_files import write_dataset, write_evaluator, write_glove, write_glove_6b
from tests.model_fixtures import one_thread  # noqa: F401  (autouse: one torch thread)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("protocol")
    return {
        "data": write_dataset(root / "HumanML3D"),
        "evaluator": write_evaluator(root / "checkpoints" / "t2m"),
        "glove": write_glove(root / "glove"),
        "checkpoint": checkpoint.create_random(root / "random-demo.pt", preset="demo"),
        "root": root,
    }


def quick(files, out, *extra: str) -> list[str]:
    """The command with tiny sizes: 2 repeats, batches of 4, one multimodality batch of 3 generations."""
    return [
        "eval",
        "--protocol",
        "humanml3d",
        "--checkpoint",
        str(files["checkpoint"]),
        "--data",
        str(files["data"]),
        "--evaluator",
        str(files["evaluator"]),
        "--glove",
        str(files["glove"]),
        "--out",
        str(out),
        "--repeats",
        "2",
        "--batch-size",
        "4",
        "--mm-batches",
        "1",
        "--mm-generations",
        "3",
        "--mm-pairs",
        "2",
        "--diversity-pairs",
        "3",
        "--device",
        "cpu",
        *extra,
    ]


def test_the_release_items_crops_and_batches(files) -> None:
    items, absent = protocol.read_items(files["data"], "test")
    assert absent == 1  # 999999 is listed without a motion file
    lengths = sorted(len(item.features) for item in items)
    assert len(items) == 11 and all(
        40 <= n < 200 for n in lengths
    )  # 10 motions (not the 30 or 230 frame ones) + 1 sub-span
    span = next(item for item in items if item.name.endswith("#3"))
    assert len(span.features) == 50 and span.tokens == [["a/DET", "person/NOUN", "jump/VERB"]]
    words = WordVectors.humanml3d(files["glove"])
    settings = protocol.Settings(batch_size=4)
    batches = protocol.repeat_batches(items, words, settings, np.random.default_rng(0))
    assert len(batches) == 2  # 11 items: the last partial batch is dropped
    shorter = 0
    for batch in batches:
        assert batch.word_vectors.shape == (4, 22, 300) and batch.pos_one_hots.shape == (4, 22, 15)
        for crop, frames in zip(batch.crops, batch.frames.tolist()):
            assert frames % 4 == 0 and len(crop) == frames
    for seed in range(30):  # one unit shorter one time in three, never longer than the motion
        for batch in protocol.repeat_batches(items, words, settings, np.random.default_rng(seed)):
            for crop in batch.crops:
                source = next(item for item in items if any(np.array_equal(crop[0], row) for row in item.features))
                shorter += len(crop) < len(source.features) // 4 * 4
    assert 0.2 < shorter / (30 * 8) < 0.47, shorter


def test_eval_protocol_measures_writes_the_table_and_resumes(files, tmp_path, capsys) -> None:
    out = tmp_path / "eval"
    assert main(quick(files, out)) == 0
    printed = capsys.readouterr().out
    for task in ("generation", "reconstruction"):
        repeats = [json.loads((out / task / f"repeat_{r:02d}.json").read_text()) for r in range(2)]
        for figures in repeats:
            assert figures["samples"] == 8
            assert figures["fid"] >= 0 and 0 <= figures["top1"] <= figures["top2"] <= figures["top3"] <= 1
            assert figures["mm_dist"] > 0 and figures["diversity"] > 0
        assert repeats[0] != repeats[1]  # each repeat draws its own crops and samples
    generation = json.loads((out / "generation" / "repeat_00.json").read_text())
    reconstruction = json.loads((out / "reconstruction" / "repeat_00.json").read_text())
    assert generation["multimodality"] > 0 and "mpjpe_mm" not in generation
    assert reconstruction["mpjpe_mm"] > 0 and 0 < reconstruction["codebook_usage"] <= 1
    table = (out / "table.md").read_text()
    assert "| FID ↓ |" in table and "| 0.085 |" in table and "| 0.530 |" in table and "| 2.836 |" in table
    assert "humanml3d, generation: 2 repeats, 8 samples each" in table and table in printed
    mean, half = protocol.summary(
        [json.loads((out / "generation" / f"repeat_{r:02d}.json").read_text()) for r in range(2)]
    )["fid"]
    assert f"| FID ↓ | {mean:.3f} ± {half:.3f} |" in table
    # resumed: a repeat on disk is not measured again, a missing one is
    (out / "generation" / "repeat_01.json").unlink()
    kept = (out / "generation" / "repeat_00.json").read_text()
    assert main(quick(files, out, "--task", "generation")) == 0
    printed = capsys.readouterr().out
    assert "generation repeat 1/2: on disk" in printed and "generation repeat 2/2: batch 2/2" in printed
    assert (out / "generation" / "repeat_00.json").read_text() == kept
    assert json.loads((out / "generation" / "repeat_01.json").read_text())["samples"] == 8
    # another setup in the same folder is refused
    assert main(quick(files, out, "--task", "generation", "--top-p", "0.9")) == 2
    assert "holds repeats of another setup (differs in settings)" in capsys.readouterr().err


def test_a_resume_keeps_to_the_model_not_only_its_path(files, tmp_path, capsys) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(files["checkpoint"].read_bytes())
    command = quick(files, tmp_path / "eval", "--task", "reconstruction", "--repeats", "1")
    command[command.index("--checkpoint") + 1] = str(model)
    assert main(command) == 0
    checkpoint.create_random(model, preset="demo", seed=1)  # another model written to the same path
    capsys.readouterr()
    assert main(command) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'eval' / 'reconstruction'} holds repeats of another model: {model.resolve()} is not "
        "the file they measured (its content changed since); give another --out or delete it"
    )
    setup_file = tmp_path / "eval" / "reconstruction" / "setup.json"
    setup = json.loads(setup_file.read_text())
    del setup["checkpoint_sha256"]  # a folder written before the content was recorded
    setup_file.write_text(json.dumps(setup))
    assert main(command) == 2
    assert "holds repeats from before the checkpoint's content was recorded" in capsys.readouterr().err


def test_motionx_reads_glove_6b_and_plain_captions_need_spacy(files, tmp_path, capsys) -> None:
    glove = write_glove_6b(tmp_path / "glove.6B.300d.txt")
    command = quick(files, tmp_path / "mx", "--task", "reconstruction", "--repeats", "1")
    command[command.index("--protocol") + 1] = "motionx"
    command[command.index("--glove") + 1] = str(glove)
    assert main(command) == 0
    one_repeat = (tmp_path / "mx" / "table.md").read_text()
    assert "motionx, reconstruction: 1 repeat, 8 samples each (no interval from one repeat)" in one_repeat
    assert "±" not in one_repeat  # not "± 0.000": one repeat gives no interval
    rows = [line for line in one_repeat.splitlines() if line.startswith("| ") and "| measure |" not in line]
    assert rows and all(row.endswith("| - |") for row in rows)  # the paper gives Motion-X generation figures only
    plain = write_dataset(tmp_path / "MotionX", plain_captions=True)
    command[command.index("--data") + 1] = str(plain)
    try:
        import spacy  # noqa: F401
    except ImportError:
        assert main(command) == 2
        assert "spaCy is not installed" in capsys.readouterr().err
    else:
        pytest.skip("spaCy is installed here, so its absence cannot be shown")


def test_missing_evaluator_or_vectors_are_clear_errors(files, tmp_path, capsys) -> None:
    command = quick(files, tmp_path / "x")
    command[command.index("--glove") + 1] = str(tmp_path)
    assert main(command) == 2
    assert "GloVe vectors not found" in capsys.readouterr().err
    command[command.index("--evaluator") + 1] = str(tmp_path)
    assert main(command) == 2
    assert "no evaluator at" in capsys.readouterr().err


def test_one_repeat_gives_the_value_without_an_interval() -> None:
    figures = {"samples": 8.0, "fid": 1.25, "top1": 0.5, "top1_real": 0.75}
    one = protocol.table(protocol.PROTOCOLS["humanml3d"], "generation", [figures])
    assert "| FID ↓ | 1.250 | - | 0.085 |" in one and "±" not in one and ": 1 repeat, 8 samples each" in one
    two = protocol.table(protocol.PROTOCOLS["humanml3d"], "generation", [figures, {**figures, "fid": 1.75}])
    assert "| FID ↓ | 1.500 ± 0.346 | - | 0.085 |" in two and ": 2 repeats, 8 samples each" in two
