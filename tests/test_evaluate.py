"""The evaluation: its prompts really use new words, its clip classifier knows the clips, and the command measures a real model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.__main__ import main
from engine.cli import DEFAULT_CHECKPOINT
from engine.datasets import layout
from engine.datasets.captions import captions_of_kind
from engine.evaluate import (
    GENERIC_WORDS,
    NEW_WORD_PROMPTS,
    PARAPHRASE_PROMPTS,
    TIMELINE_ROWS,
    NearestClip,
    Report,
    reused_caption_words,
    sample_kinds,
    timeline_counts,
    timeline_rows,
)
from engine.generate import SamplingOptions
from engine.pipeline import Pipeline
from tests.model_fixtures import one_thread  # noqa: F401  (autouse)


def test_every_kind_has_prompts_in_words_its_captions_do_not_use(dataset) -> None:
    clips = set(sample_kinds(dataset).values())
    assert {"walk", "ballet", "dribble", "deepmimic_backflip"} <= clips
    assert clips == set(NEW_WORD_PROMPTS)
    for clip, prompts in NEW_WORD_PROMPTS.items():
        assert len(prompts) >= 2, clip
        for prompt in prompts:
            assert reused_caption_words(prompt, clip) == [], (clip, prompt)
    assert set(PARAPHRASE_PROMPTS) == clips
    for clip, prompts in PARAPHRASE_PROMPTS.items():  # only body parts, sides and directions repeat
        for prompt in prompts:
            assert set(reused_caption_words(prompt, clip)) <= GENERIC_WORDS, (clip, prompt)
    # the check itself catches caption words, in any inflection, and the mirrored side
    assert reused_caption_words("Someone walked ahead", "walk") == ["walked", "ahead"]
    assert reused_caption_words("a player dribbles", "dribble") == ["player", "dribbles"]  # a CMU kind's captions
    assert reused_caption_words("a cartwheel to the right", "deepmimic_cartwheel") == ["cartwheel", "right"]


def test_nearest_clip_labels_the_middle_of_every_sample_with_its_kind(dataset) -> None:
    """A generated motion is never a whole training sample: 60 % of one must still be recognised."""
    classifier = NearestClip.from_dataset(dataset)
    clip_of = sample_kinds(dataset)
    wrong = []
    for name in layout.read_names(dataset, "all"):
        features = np.load(dataset / "new_joint_vecs" / f"{name}.npy")
        frames = len(features)
        middle = features[frames // 5 : frames - frames // 5]
        if classifier.label(middle) != clip_of[name]:
            wrong.append(name)
    # One CMU forward jump (1.2 m, 13_13) and its mirror: their middle is the take-off and landing, nearer a jump up.
    print(f"\nmiddles labelled with another kind: {wrong}")
    assert len(wrong) <= 2


def test_eval_command_measures_the_trained_demo_tokenizer(dataset, tmp_path, capsys) -> None:
    """`python -m engine eval --tokenizer-only` on the shipped demo model, which learnt all 27 kinds:
    the report gives every kind its reconstruction error. Frame 0's yaw velocity (the official
    features' whole turn of frame 1, up to 100 standard deviations) is the one value it does not
    rebuild, and as the recovery integrates it a whole motion can turn (docs/training.md)."""
    report_path = tmp_path / "report.json"
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(DEFAULT_CHECKPOINT),
                "--data",
                str(dataset),
                "--split",
                "all",
                "--tokenizer-only",
                "--json",
                str(report_path),
            ]
        )
        == 0
    )
    report = json.loads(report_path.read_text())
    assert report["reconstruction_samples"] == len(layout.read_names(dataset, "all"))
    assert report["reconstruction_mpjpe_mm"] > 0
    by_kind = report["reconstruction_by_kind"]
    assert set(by_kind) == set(sample_kinds(dataset).values())
    assert all(0 < mm < 600 for mm in by_kind.values()), by_kind  # measured 33-523 mm
    assert sum(mm < 200 for mm in by_kind.values()) >= 20, by_kind  # measured 21 of 27
    assert len(report["codes_used"]) == 10 and all(0 < share <= 1 for share in report["codes_used"])
    assert report["accuracy"] == {}  # --tokenizer-only generates nothing
    assert (
        f"| reconstruction MPJPE (all split, {report['reconstruction_samples']} motions) |" in capsys.readouterr().out
    )


def recording(run, name: str, seeds: list[tuple[str, int]]):
    """`run` (a pipeline's generate or edit) as it is, noting each request's seed."""

    def recorded(request, *args, **kwargs):
        seeds.append((name, request.seed))
        return run(request, *args, **kwargs)

    return recorded


def test_timeline_rows_are_judged_against_their_prompts_alone(dataset) -> None:
    """Random shots of distinct kinds, each row labelled beside its prompt alone, drawn with the
    seed of the row's own window; the first row is a plain generation (the same call as its prompt
    alone: the recorded calls show it), so it is not made a second time."""
    classifier = NearestClip.from_dataset(dataset)
    prompts = {kind: captions_of_kind(kind)[0] for kind in set(classifier.clips)}
    pipeline = Pipeline.load(DEFAULT_CHECKPOINT, device="cpu")
    seeds: list[tuple[str, int]] = []  # (what ran, its seed), in order: the shot's windows, then the prompts alone
    for name in ("generate", "edit"):
        setattr(pipeline, name, recording(getattr(pipeline, name), name, seeds))
    rows = timeline_rows(pipeline, classifier, prompts, shots=2, seed=3, sampling=SamplingOptions())
    calls = 2 * TIMELINE_ROWS - 1  # a shot's windows, then its rows' prompts alone after the first
    for shot, shot_seed in enumerate((3, 3 + TIMELINE_ROWS)):
        windows = [("generate", shot_seed)] + [("edit", shot_seed + place) for place in range(1, TIMELINE_ROWS)]
        alone = [("generate", shot_seed + place) for place in range(1, TIMELINE_ROWS)]
        assert seeds[calls * shot : calls * (shot + 1)] == windows + alone
        shot_rows = rows[TIMELINE_ROWS * shot : TIMELINE_ROWS * (shot + 1)]
        assert [row.place for row in shot_rows] == list(range(TIMELINE_ROWS))
        assert len({row.kind for row in shot_rows}) == TIMELINE_ROWS
        first = shot_rows[0]
        assert (first.timeline, first.timeline_after_first_second) == (first.alone, first.alone_after_first_second)
    counts = timeline_counts(rows)
    print(counts)
    assert counts["rows"] == 2 * TIMELINE_ROWS
    # Training captions, which the demo model follows: on 40 shots 92 % of rows and 96 % alone were right.
    assert counts["timeline"] >= counts["rows"] - 3 and counts["alone"] >= counts["rows"] - 3, counts
    assert not any(row.seam_jumps for row in rows if row.place == 0)
    assert counts["seams"] == 2 * (TIMELINE_ROWS - 1) and counts["seams_jumping"] == 0, counts
    report = Report("demo.pt", 0.0, "all", 0, {}, [], [], timeline_shots=2, timeline={"training captions": counts})
    assert (
        f"| timeline rows right, training captions (8 rows of 2 random shots, 4 rows of 6-8 s) | {counts['timeline']}, "
        f"the same prompts alone {counts['alone']};" in report.table()
    )
    assert "seams that jump more than any step inside their shot 0 of 6 |" in report.table()


def test_eval_refuses_a_negative_number_of_timeline_shots(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--checkpoint", str(DEFAULT_CHECKPOINT), "--data", ".", "--timeline-shots", "-1"])
    assert "--timeline-shots: -1 shots; expected 0 or more" in capsys.readouterr().err


def humanml3d_like(dataset, folder, count: int = 4):
    """A few samples of the demo dataset in a folder as HumanML3D's: its layout, no dataset.json."""
    import shutil

    names = layout.read_names(dataset, "all")[:count]
    for part in ("new_joint_vecs", "texts"):
        (folder / part).mkdir(parents=True)
        for name in names:
            shutil.copy(next((dataset / part).glob(f"{name}.*")), folder / part)
    for name in ("Mean.npy", "Std.npy"):
        shutil.copy(dataset / name, folder / name)
    (folder / "test.txt").write_text("\n".join(names) + "\n")
    return folder


def test_eval_tokenizer_only_on_a_humanml3d_folder_without_dataset_json(dataset, tmp_path, capsys) -> None:
    """docs/training.md checks a HumanML3D model with `eval --data HumanML3D --tokenizer-only`: HumanML3D
    has no kinds (no dataset.json), so the report has no per-kind part and says why."""
    data = humanml3d_like(dataset, tmp_path / "HumanML3D")
    report_path = tmp_path / "report.json"
    code = main(
        ["eval", "--checkpoint", str(DEFAULT_CHECKPOINT), "--data", str(data), "--tokenizer-only", "--json"]
        + [str(report_path)]
    )
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads(report_path.read_text())
    assert report["reconstruction_samples"] == 4 and report["reconstruction_mpjpe_mm"] > 0
    assert report["reconstruction_by_kind"] == {} and "by kind" not in printed.split("note:")[0]
    assert f"note: {data} has no dataset.json (not a build-dataset folder, e.g. HumanML3D): no kinds" in printed


def test_eval_refuses_bad_input_in_one_line_before_any_work(dataset, tmp_path, capsys, monkeypatch) -> None:
    import engine.evaluate

    def no_work(*args, **kwargs):
        raise AssertionError("evaluate ran")

    monkeypatch.setattr(engine.evaluate, "evaluate", no_work)
    data = humanml3d_like(dataset, tmp_path / "data", count=2)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(DEFAULT_CHECKPOINT.read_bytes()[:5000])
    random = tmp_path / "random.pt"
    random.write_bytes(np.random.default_rng(0).bytes(5000))
    ghost = humanml3d_like(dataset, tmp_path / "ghost", count=2)
    (ghost / "test.txt").write_text((ghost / "test.txt").read_text() + "ghost_clip\n")

    def evaluates(*extra: str, checkpoint=DEFAULT_CHECKPOINT, data=data) -> str:
        assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
        return err

    assert evaluates("--samples", "0") == "error: --samples 0: expected 1 or more generated motions per prompt"
    assert evaluates("--seconds", "0").startswith("error: --seconds 0: the model makes motions of 1 to 9.8 s")
    assert evaluates("--seconds", "3", "30").endswith("(196 frames); give whole seconds from 1 to 9")
    assert evaluates("--tokenizer-only", "--json", str(tmp_path)).startswith(f"error: --json {tmp_path} is a folder")
    for path in (truncated, random, tmp_path / "nope.pt"):
        print(evaluates("--tokenizer-only", checkpoint=path))
        assert str(path) in evaluates("--tokenizer-only", checkpoint=path)
    assert evaluates("--tokenizer-only", data=tmp_path / "nope") == (
        f"error: --data {tmp_path / 'nope'} is not a folder (a dataset in HumanML3D layout: build-dataset writes one)"
    )
    assert evaluates("--tokenizer-only", "--split", "bogus").startswith(f"error: no split file {data / 'bogus.txt'}")
    assert evaluates("--tokenizer-only", data=ghost) == (
        f"error: {ghost / 'test.txt'} names ghost_clip, which has no new_joint_vecs/ghost_clip.npy in {ghost}"
    )
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "text-cache" not in capsys.readouterr().out  # no such command


def test_eval_says_a_tokenizer_checkpoint_has_no_text_to_motion_part(dataset, tmp_path, capsys) -> None:
    from engine import checkpoint

    demo = checkpoint.load(DEFAULT_CHECKPOINT)
    tokenizer_only = tmp_path / "tokenizer.pt"
    checkpoint.save(
        tokenizer_only, checkpoint.Checkpoint(demo.tokenizer, None, demo.mean, demo.std, demo.text_encoder, {})
    )
    data = humanml3d_like(dataset, tmp_path / "data", count=2)
    assert main(["eval", "--checkpoint", str(tokenizer_only), "--data", str(data)]) == 0
    assert "note: the checkpoint holds a tokenizer only (no transformer): no text-to-motion part" in (
        capsys.readouterr().out
    )
