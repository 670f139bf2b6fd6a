"""Training on the real demo dataset: both stages learn, checkpoint, resume, and run under DDP."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import checkpoint
from engine.train import (
    TokenizerStage,
    TrainConfig,
    TrainError,
    crop_batch,
    frame_mask,
    kind_balanced_weights,
    learning_rate,
    load_motions,
    looped,
    parse_overrides,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
TINY_TOKENIZER = {"width": 16, "code_dim": 16, "nb_code_st": 16, "nb_code_ed": 32}
TINY_TRANSFORMER = {"d_model": 32, "n_layers": 1, "n_heads": 2, "ff_size": 64}


def tiny_config(dataset: Path, out: Path, **changes) -> TrainConfig:
    settings = dict(
        stage="tokenizer",
        data=dataset,
        out=out,
        model_overrides=TINY_TOKENIZER,
        steps=30,
        batch_size=8,
        lr=1e-3,
        warmup_steps=5,
        decay_at=(),
        log_every=1,
        eval_every=30,
        save_every=15,
        threads=2,
    )
    settings.update(changes)
    return TrainConfig(**settings)


def losses(log: Path) -> list[float]:
    return [record["loss"] for record in map(json.loads, log.read_text().splitlines()) if "loss" in record]


def test_crops_are_multiples_of_four_within_each_motion(dataset) -> None:
    config = tiny_config(dataset, Path("unused"))
    mean, std = np.load(dataset / "Mean.npy"), np.load(dataset / "Std.npy")
    motions = load_motions(dataset, ("train",), mean, std, config.min_frames)
    x, lengths, picks = crop_batch(motions, 16, config, np.random.default_rng(0))
    assert x.shape[0] == 16 and x.shape[1] == int(lengths.max())
    for row, (length, index) in enumerate(zip(lengths.tolist(), picks)):
        assert length % 4 == 0 and config.min_frames <= length <= len(motions.motions[index])
        assert torch.all(x[row, length:] == 0)  # padding is zero in normalised space


def test_a_looped_motion_repeats_itself_through_cross_faded_seams(dataset) -> None:
    from engine.datasets import layout

    features = min((s.features for s in layout.read_split(dataset, "train")), key=len).astype(np.float32)
    chained = looped(features, 196, blend=8)
    assert len(chained) >= 196 and len(chained) - 8 < 196 + len(features)  # one copy too many at most
    np.testing.assert_array_equal(chained[: len(features) - 8], features[:-8])  # the motion itself, untouched
    # Between seams every copy is the motion's middle again, bit for bit.
    np.testing.assert_array_equal(chained[len(features) : 2 * len(features) - 16], features[8:-8])
    seam = chained[len(features) - 8 : len(features)]
    low, high = np.minimum(features[-8:], features[:8]), np.maximum(features[-8:], features[:8])
    assert np.all((seam >= low - 1e-6) & (seam <= high + 1e-6))  # each seam frame lies between the two it fades
    assert not np.array_equal(seam, features[-8:]) and not np.array_equal(seam, features[:8])


def test_looping_and_balance_make_every_kind_and_length_equally_likely(dataset) -> None:
    config = tiny_config(dataset, Path("unused"), loop_to=196, balance_kinds=True)
    mean, std = np.load(dataset / "Mean.npy"), np.load(dataset / "Std.npy")
    motions = load_motions(dataset, ("train",), mean, std, config.min_frames)
    weights = kind_balanced_weights(dataset, motions.names)
    from engine.datasets.layout import sample_kinds

    kind_of = sample_kinds(dataset)
    share: dict[str, float] = {}
    for name, weight in zip(motions.names, weights):
        share[kind_of[name]] = share.get(kind_of[name], 0.0) + weight
    assert len(share) > 20 and np.allclose(list(share.values()), 1.0 / len(share))
    shortest = int(np.argmin([len(m) for m in motions.motions]))
    assert len(motions.motions[shortest]) < 60  # some kinds exist only as clips under 3 s

    motions.draw_weights = weights
    x, lengths, picks = crop_batch(motions, 512, config, np.random.default_rng(0))
    drawn = [kind_of[motions.names[i]] for i in picks]
    walk_share = drawn.count("walk") / len(drawn)  # a quarter of the samples, a 27th of the draws
    assert walk_share < 0.1, walk_share
    long_crops = {kind_of[motions.names[i]] for i, n in zip(picks, lengths.tolist()) if n >= 180}
    assert {"deepmimic_punch", "deepmimic_run", "turn around"} <= long_crops  # 2-s clips now come at 9 s too
    for row, (length, index) in enumerate(zip(lengths.tolist(), picks)):
        motion = motions.motions[index]
        if length > len(motion):  # from the sample's first frame on, into its looped copies
            np.testing.assert_array_equal(x[row, :length].numpy(), looped(motion, length)[:length])


def test_schedule_warms_up_then_drops_tenfold() -> None:
    config = TrainConfig(steps=100, warmup_steps=10, decay_at=(0.5,))
    assert learning_rate(0, config) == pytest.approx(config.lr / 10)
    assert learning_rate(20, config) == pytest.approx(config.lr)
    assert learning_rate(60, config) == pytest.approx(config.lr / 10)


def test_bad_settings_are_refused_with_the_expected_values(dataset, tmp_path) -> None:
    with pytest.raises(ValueError, match="--tokenizer"):
        TrainConfig(stage="transformer")
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["width"])
    with pytest.raises(ValueError, match="unknown TokenizerConfig settings"):
        train(tiny_config(dataset, tmp_path, model_overrides={"widht": 16}))


def fixed_batch_loss(tokenizer, dataset: Path, config: TrainConfig) -> float:
    """The tokenizer's loss on one fixed batch of 64 crops: training batches vary too much to compare."""
    mean, std = np.load(dataset / "Mean.npy"), np.load(dataset / "Std.npy")
    motions = load_motions(dataset, ("train",), mean, std, config.min_frames)
    x, lengths, _ = crop_batch(motions, 64, config, np.random.default_rng(1))
    with torch.no_grad():
        return tokenizer.eval().training_loss(x, frame_mask(lengths, x.shape[1]))[0].item()


def test_tokenizer_learns_checkpoints_and_resumes(dataset, tmp_path) -> None:
    config = tiny_config(dataset, tmp_path, steps=30)
    path = train(config)
    saved = checkpoint.load(path)
    torch.manual_seed(config.seed)  # the initial weights train() started from
    untrained = TokenizerStage(config, torch.device("cpu")).build()
    assert fixed_batch_loss(saved.tokenizer, dataset, config) < 0.92 * fixed_batch_loss(untrained, dataset, config)
    assert saved.transformer is None and saved.meta["step"] == 30 and saved.text_encoder == "all-minilm-l6-v2"
    np.testing.assert_allclose(saved.std, np.load(dataset / "Std.npy"))  # the dataset's Std carries the feature bias
    assert saved.tokenizer.config.width == 16 and min(saved.tokenizer.quantizer.usage()) > 0
    held_out = [json.loads(line) for line in config.log_path.read_text().splitlines() if "eval_mpjpe_mm" in line]
    assert held_out and np.isfinite(held_out[-1]["eval_mpjpe_mm"])

    train(replace(config, steps=40, resume=True))
    resumed = checkpoint.load(path)
    assert resumed.meta["step"] == 40
    assert torch.load(config.state_path, weights_only=True)["step"] == 40
    steps = [json.loads(line).get("step") for line in config.log_path.read_text().splitlines()]
    assert steps.count(31) == 1 and 40 in steps  # the resumed run appended steps 31..40

    # A new run into the folder would empty its log and overwrite its checkpoint: refused.
    log = config.log_path.read_text()
    with pytest.raises(TrainError, match=r"already holds a tokenizer run \(saved at step 40\): add --resume"):
        train(replace(config, steps=50))
    assert config.log_path.read_text() == log and checkpoint.load(path).meta["step"] == 40
    assert train(replace(config, steps=40, resume=True)) is None  # nothing to train: nothing said to be written
    assert config.log_path.read_text() == log
    with pytest.raises(TrainError, match="holds no saved tokenizer run"):  # not a silent start from step 0
        train(replace(config, out=tmp_path / "elsewhere", resume=True))
    assert not (tmp_path / "elsewhere").exists()

    # A run warm-started from a checkpoint keeps that checkpoint's normalisation when resumed (it
    # took the dataset's), takes the same --init again, and refuses another one or other model settings.
    initial = checkpoint.load(path)
    initial.mean, initial.std = initial.mean + 1.0, initial.std * 2.0
    checkpoint.save(tmp_path / "init.pt", initial)
    warm = replace(config, out=tmp_path / "warm", init=tmp_path / "init.pt", steps=2, save_every=1, eval_every=2)
    train(warm)
    train(replace(warm, steps=3, resume=True))
    continued = checkpoint.load(warm.model_path)
    assert continued.meta["step"] == 3
    np.testing.assert_array_equal(continued.std, initial.std)
    np.testing.assert_array_equal(continued.mean, initial.mean)
    with pytest.raises(TrainError, match="started from .*init.pt; --resume continues it"):
        train(replace(warm, steps=4, resume=True, init=path))
    with pytest.raises(TrainError, match=r"has width=16 \(asked 32\)"):
        train(replace(warm, steps=4, resume=True, model_overrides={**TINY_TOKENIZER, "width": 32}))
    assert checkpoint.load(warm.model_path).meta["step"] == 3


def test_transformer_learns_on_the_frozen_tokenizer(dataset, tmp_path) -> None:
    tokenizer_path = train(tiny_config(dataset, tmp_path / "stage1", steps=20))
    config = tiny_config(
        dataset,
        tmp_path / "stage2",
        stage="transformer",
        tokenizer=tokenizer_path,
        model_overrides=TINY_TRANSFORMER,
        steps=40,
        lr=1e-3,
        eval_every=40,
        save_every=40,
    )
    path = train(config)
    first, last = losses(config.log_path)[:5], losses(config.log_path)[-5:]
    assert np.mean(last) < 0.9 * np.mean(first)
    combined = checkpoint.load(path)
    assert combined.transformer is not None and combined.transformer.config.text_dim == 384
    stage1 = checkpoint.load(tokenizer_path)
    for key, value in stage1.tokenizer.state_dict().items():  # the tokenizer stayed frozen
        assert torch.equal(value, combined.tokenizer.state_dict()[key]), key

    # Resumed with another tokenizer, the transformer would be paired with codes it never learnt.
    with torch.no_grad():
        next(stage1.tokenizer.parameters()).add_(1.0)
    checkpoint.save(tmp_path / "other.pt", stage1)
    with pytest.raises(TrainError, match="other.pt is not the tokenizer this run trains on"):
        train(replace(config, steps=41, resume=True, tokenizer=tmp_path / "other.pt"))


def test_two_processes_train_checkpoint_and_resume(dataset, tmp_path) -> None:
    """The same script under torch.distributed.run: two gloo processes on the CPU."""

    def launch(steps: int, *extra: str) -> str:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "engine",
            "train",
            "tokenizer",
            "--data",
            str(dataset),
            "--out",
            str(tmp_path),
            "--steps",
            str(steps),
            "--batch-size",
            "8",
            "--warmup-steps",
            "2",
            "--log-every",
            "1",
            "--eval-every",
            "100",
            "--save-every",
            "3",
            "--threads",
            "1",
            *extra,
        ]
        for key, value in TINY_TOKENIZER.items():
            command += ["--set", f"{key}={value}"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        return done.stdout

    output = launch(4)
    assert "processes=2" in output and output.count("checkpoint written") == 1  # rank 0 alone writes
    log = tmp_path / "tokenizer.log.jsonl"
    assert json.loads(log.read_text().splitlines()[0])["processes"] == 2
    launch(6, "--resume")
    assert checkpoint.load(tmp_path / "tokenizer.pt").meta["step"] == 6
    assert [json.loads(line).get("step") for line in log.read_text().splitlines()].count(5) == 1


def cli_args(dataset: Path, out: Path, *extra: str) -> list[str]:
    """`python -m engine train tokenizer ...` with tiny_config's settings, for engine.__main__.main in-process."""
    args = ["train", "tokenizer", "--data", str(dataset), "--out", str(out), "--batch-size", "8", "--lr", "1e-3"]
    args += ["--warmup-steps", "5", "--decay-at", "--log-every", "1", "--eval-every", "100", "--threads", "2"]
    for key, value in TINY_TOKENIZER.items():
        args += ["--set", f"{key}={value}"]
    return args + list(extra)


def test_a_failed_or_interrupted_save_keeps_the_last_complete_one(dataset, tmp_path, monkeypatch, capsys) -> None:
    from engine.__main__ import main

    config = tiny_config(dataset, tmp_path, steps=3, save_every=1, eval_every=100)
    real_save, calls = torch.save, []

    def full_disk(payload, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # step 2's model: torch's writer fails half way, as on a full disk
            Path(path).write_bytes(b"half")
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")
        return real_save(payload, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(TrainError, match=r"tokenizer.pt at step 2: unexpected pos 64 vs 0 \(\d+ MB free on its disk\)"):
        train(config)
    monkeypatch.setattr(torch, "save", real_save)
    names = sorted(path.name for path in tmp_path.iterdir() if path.suffix != ".lock")
    assert names == ["tokenizer.log.jsonl", "tokenizer.pt", "tokenizer.state.pt"]  # no partial files left
    assert checkpoint.load(config.model_path).meta["step"] == 1
    assert torch.load(config.state_path, weights_only=True)["step"] == 1

    # A save interrupted between its two renames leaves the state a save ahead of (here: behind) the
    # model: the run continues from the model's step, and says so.
    behind = config.state_path.read_bytes()
    train(replace(config, resume=True))
    config.state_path.write_bytes(behind)
    capsys.readouterr()
    train(replace(config, steps=4, resume=True))
    assert "tokenizer.state.pt is from step 1, tokenizer.pt from step 3" in capsys.readouterr().out
    starts = [json.loads(line) for line in config.log_path.read_text().splitlines() if '"start"' in line]
    assert starts[-1]["step"] == 3

    # Ctrl+C: one line, exit code 130, no traceback.
    import engine.train as train_module

    real_crop, crops = train_module.crop_batch, []

    def interrupted(*args, **kwargs):
        crops.append(1)
        if len(crops) == 3:
            raise KeyboardInterrupt
        return real_crop(*args, **kwargs)

    monkeypatch.setattr(train_module, "crop_batch", interrupted)
    assert main(cli_args(dataset, tmp_path, "--resume", "--steps", "9", "--save-every", "5")) == 130
    assert capsys.readouterr().err == (
        "interrupted at step 6; the last save is step 5: --resume continues from there\n"
    )
    assert checkpoint.load(config.model_path).meta["step"] == 5


def test_a_resumed_run_trains_what_an_uninterrupted_one_does(dataset, tmp_path) -> None:
    config = tiny_config(dataset, tmp_path / "whole", steps=4, save_every=2, eval_every=100, log_every=100)
    whole = checkpoint.load(train(config)).tokenizer.state_dict()
    halves = replace(config, out=tmp_path / "halves", steps=2)
    train(halves)
    resumed = checkpoint.load(train(replace(halves, steps=4, resume=True))).tokenizer.state_dict()
    for key, value in whole.items():
        assert torch.equal(value, resumed[key]), key


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--data", "{tmp}/missing"), "--data {tmp}/missing is not a folder"),
        (("--data", "{tmp}"), "--data {tmp}: No such file or directory: {tmp}/Mean.npy"),
        (("--splits", "bogus"), "no split file"),
        (("--batch-size", "0"), "--batch-size is 0; it must be at least 1"),
        (("--warmup-steps", "-5"), "--warmup-steps is -5"),
        (("--set", "nonsense=3"), "unknown TokenizerConfig settings ['nonsense']"),
        (("--init", "{tmp}/random.pt"), "random.pt is not a MoSa checkpoint"),
        (("--resume",), "holds no saved tokenizer run"),
    ],
)
def test_bad_inputs_are_one_line_and_create_no_run_folder(dataset, tmp_path, capsys, extra, message) -> None:
    from engine.__main__ import main

    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(256))
    args = cli_args(dataset, tmp_path / "run", "--steps", "2")
    args += [value.format(tmp=tmp_path) for value in extra]  # the last --data wins
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "run").exists()


def test_a_second_training_into_the_same_folder_is_refused(dataset, tmp_path) -> None:
    fcntl = pytest.importorskip("fcntl")
    config = tiny_config(dataset, tmp_path, steps=1)
    with open(tmp_path / "tokenizer.lock", "a+") as lock:  # as the first training holds it
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242")
        lock.flush()
        with pytest.raises(TrainError, match=f"another tokenizer training is running in {tmp_path} \\(pid 4242\\)"):
            train(config)
    assert not config.log_path.exists() and not config.model_path.exists()
    assert train(config) == config.model_path  # the first one gone, the folder is free
