"""`python -m engine train tokenizer|transformer`: train MoSa's two stages on a HumanML3D-layout folder.

One script for one process or many: under `python -m torch.distributed.run --nproc_per_node N`
the same code runs data-parallel (DDP; gloo on CPU, nccl on GPU), every process drawing its own
batches. Stage 1 trains the CAQ-VAE tokenizer on random crops of the motions; stage 2 freezes
that tokenizer and trains the SAR transformer on its token maps, conditioned on cached text
features of the captions. Both write checkpoints in the engine's own format (engine.checkpoint),
so `--out DIR/transformer.pt` is a model the engine can load directly.

Files in --out: <stage>.pt (the model, written every --save-every steps and at the end),
<stage>.state.pt (optimizer and step, for --resume), <stage>.log.jsonl (one JSON line per log).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from engine import checkpoint as checkpoint_io
from engine.datasets import layout
from engine.locks import Held, held_alone
from engine.tokenizer import FRAMES_PER_LATENT, Tokenizer, TokenizerConfig, usable_length
from engine.transformer import Transformer, TransformerConfig
from retarget import canonical

PRESET_TEXT_ENCODERS = {"demo": "all-minilm-l6-v2", "official": "clip-vit-b32"}
LOOP_BLEND_FRAMES = 8  # frames over which a looped sample fades into its next copy (0.4 s)


@dataclass
class TrainConfig:
    """Every setting of a run; the defaults are the paper's (mosa-spec.md sections 2 and 3)."""

    stage: str = "tokenizer"
    data: Path = Path("data/HumanML3D")
    out: Path = Path("runs/mosa")
    preset: str = "demo"  # model widths: "demo" (small, CPU) or "official" (the released shapes)
    model_overrides: dict = field(default_factory=dict)  # e.g. {"width": 32} for tiny test models
    tokenizer: Path | None = None  # stage 2: the trained tokenizer checkpoint
    text_encoder: str | None = None  # stage 2: default from the preset (demo MiniLM, official CLIP)
    text_encoder_path: Path | None = None  # stage 2: the encoder's folder where its package is not installed
    splits: tuple[str, ...] = ("train",)  # what the model learns from
    eval_split: str = "val"  # held out: reconstruction MPJPE (stage 1) or loss (stage 2)
    # optimisation
    steps: int = 100_000
    batch_size: int = 64  # over all processes together
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float | None = None  # None: 0 for the tokenizer, 1e-5 for the transformer
    warmup_steps: int = 2000
    decay_at: tuple[float, ...] = (0.8,)  # fractions of `steps` where the learning rate drops x0.1
    # motion crops: lengths are multiples of 4 in [min_frames, max_frames], within each motion
    min_frames: int = 40
    max_frames: int = canonical.MAX_FRAMES
    # Small datasets whose clips differ in length (the demo's): without these the crop length
    # alone tells the clips apart, and the model follows the length instead of the words.
    loop_to: int = 0  # crops up to this long of shorter samples too, running on into looped copies; 0: off
    balance_kinds: bool = False  # draw every kind of motion (dataset.json) equally often
    # bookkeeping
    log_every: int = 50
    eval_every: int = 500
    save_every: int = 1000
    seed: int = 0
    threads: int = 0  # CPU threads per process; 0: the machine's cores shared among processes
    resume: bool = False
    init: Path | None = None  # a checkpoint whose weights (and, stage 1, normalisation) the run starts from
    data_statistics: bool = False  # stage 1 with init: normalise by the dataset's Mean/Std (the features changed)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; expected one of {list(STAGES)}")
        if self.preset not in PRESET_TEXT_ENCODERS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {list(PRESET_TEXT_ENCODERS)}")
        if STAGES[self.stage].needs_tokenizer and self.tokenizer is None:
            raise ValueError(
                f"the {self.stage} stage needs --tokenizer FILE (a checkpoint written by the tokenizer stage)"
            )
        if not FRAMES_PER_LATENT <= self.min_frames <= self.max_frames:
            raise ValueError(f"crop lengths {self.min_frames}..{self.max_frames} must satisfy 4 <= min <= max")
        if self.weight_decay is None:
            self.weight_decay = STAGES[self.stage].weight_decay
        self.text_encoder = self.text_encoder or PRESET_TEXT_ENCODERS[self.preset]

    @property
    def model_path(self) -> Path:
        return Path(self.out) / f"{self.stage}.pt"

    @property
    def state_path(self) -> Path:
        return Path(self.out) / f"{self.stage}.state.pt"

    @property
    def log_path(self) -> Path:
        return Path(self.out) / f"{self.stage}.log.jsonl"


class TrainError(ValueError):
    """A refusal the command line shows as one line (exit code 2)."""


class TrainInterrupted(Exception):
    """Ctrl+C during training: the command line says where it stopped and what is saved (exit code 130)."""

    def __init__(self, step: int, saved: int | None) -> None:
        super().__init__(step, saved)
        self.step, self.saved = step, saved

    def __str__(self) -> str:
        if self.saved is None:
            return f"interrupted at step {self.step}, before the first save: nothing to resume"
        return f"interrupted at step {self.step}; the last save is step {self.saved}: --resume continues from there"


# --- processes ------------------------------------------------------------------------------------
@dataclass
class Processes:
    """Where this process sits in a (possibly single-process) run."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes() -> Processes:
    """Join the process group when launched by torch.distributed.run (it sets WORLD_SIZE etc.)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world == 1:
        return Processes(0, 1, torch.device("cuda" if cuda else "cpu"))
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cpu")
    if cuda:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    return Processes(dist.get_rank(), world, device)


class TrainingLoss(nn.Module):
    """Makes a model's training_loss its forward, so DDP averages gradients across processes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model.training_loss(*inputs)


# --- data -------------------------------------------------------------------------------------------
@dataclass
class MotionSet:
    """Normalised features (T, 263) and captions of the samples of some splits."""

    names: list[str]
    motions: list[np.ndarray]
    captions: list[list[str]]
    draw_weights: np.ndarray | None = None  # (N,) probability of drawing each sample; None: uniform


def load_motions(data: Path, splits: tuple[str, ...], mean: np.ndarray, std: np.ndarray, min_frames: int) -> MotionSet:
    """Samples of the splits, normalised; motions shorter than min_frames cannot be cropped and are left out."""
    names, motions, captions = [], [], []
    for split in splits:
        for sample in read_split(data, split):
            if sample.features.ndim != 2 or sample.features.shape[1:] != mean.shape:
                raise ValueError(
                    f"--data {data}: new_joint_vecs/{sample.name}.npy has shape {sample.features.shape}; "
                    f"expected (frames, {len(mean)})"
                )
            if len(sample.features) < min_frames:
                continue
            names.append(sample.name)
            motions.append(((sample.features - mean) / std).astype(np.float32))
            captions.append(sample.captions or [""])
    if not motions:
        raise ValueError(f"no motions of at least {min_frames} frames in the splits {list(splits)} of {data}")
    return MotionSet(names, motions, captions)


def read_split(data: Path, split: str) -> list:
    """layout.read_split, its errors (a missing or damaged file) as one line naming the dataset and split."""
    try:
        return layout.read_split(data, split)
    except (OSError, ValueError) as error:
        raise ValueError(f"--data {data}, split {split!r}: {file_error(error)}") from None


def read_statistics(data: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        mean, std = layout.read_statistics(data)
    except (OSError, ValueError) as error:
        raise ValueError(f"--data {data}: {file_error(error)}") from None
    if mean.shape != (layout.FEATURE_SIZE,) or std.shape != (layout.FEATURE_SIZE,):
        raise ValueError(f"--data {data}: Mean.npy and Std.npy must hold {layout.FEATURE_SIZE} numbers each")
    return mean, std


def file_error(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return " ".join(str(error).split())


def looped(features: np.ndarray, frames: int, blend: int = LOOP_BLEND_FRAMES) -> np.ndarray:
    """The motion followed by copies of itself, each cross-faded into the last over `blend` frames,
    until it has at least `frames` frames.

    The 263 features are root-relative and facing-invariant (root motion as velocities), so
    chaining them continues the root where the last copy left it; the fade hides the pose's jump
    from a copy's last frame to the next one's first.
    """
    blend = min(blend, len(features) // 2)
    weights = np.linspace(0.0, 1.0, blend + 2, dtype=features.dtype)[1:-1, None]
    chained = features
    while len(chained) < frames:
        seam = (1.0 - weights) * chained[len(chained) - blend :] + weights * features[:blend]
        chained = np.concatenate([chained[: len(chained) - blend], seam, features[blend:]])
    return chained


def kind_balanced_weights(data: Path, names: list[str]) -> np.ndarray:
    """Draw probabilities that give every kind of motion the same share, whatever its sample count."""
    kind_of = layout.sample_kinds(data)
    kinds = [kind_of[name] for name in names]
    counts = {kind: kinds.count(kind) for kind in set(kinds)}
    weights = np.array([1.0 / counts[kind] for kind in kinds])
    return weights / weights.sum()


def crop_batch(motions: MotionSet, batch: int, config: TrainConfig, rng: np.random.Generator):
    """Random crops of random samples: (x (B, L, 263) zero-padded, lengths (B,), sample indices (B,)).

    Each crop's length is a multiple of 4 drawn from [min_frames, the sample's usable length]
    (with loop_to, at least loop_to); L is the longest crop of the batch, and padding is zero as
    in normalised space. A crop longer than its sample starts at the sample's first frame and runs
    on into looped copies, so an action keeps its order (a get-up starts lying down).
    """
    if motions.draw_weights is None:
        picks = rng.integers(len(motions.motions), size=batch)
    else:
        picks = rng.choice(len(motions.motions), size=batch, p=motions.draw_weights)
    lengths = []
    for index in picks:
        longest = usable_length(max(len(motions.motions[index]), config.loop_to), config.max_frames)
        shortest = min(longest, math.ceil(config.min_frames / FRAMES_PER_LATENT) * FRAMES_PER_LATENT)
        lengths.append(
            FRAMES_PER_LATENT * int(rng.integers(shortest // FRAMES_PER_LATENT, longest // FRAMES_PER_LATENT + 1))
        )
    x = np.zeros((batch, max(lengths), layout.FEATURE_SIZE), np.float32)
    for row, (index, length) in enumerate(zip(picks, lengths)):
        motion = motions.motions[index]
        if length > len(motion):
            motion, start = looped(motion, length), 0
        else:
            start = int(rng.integers(len(motion) - length + 1))
        x[row, :length] = motion[start : start + length]
    return torch.from_numpy(x), torch.tensor(lengths), picks


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    return (torch.arange(frames)[None] < lengths[:, None]).float()


class CaptionFeatures:
    """Text features of every caption, computed once (the text encoder is frozen).

    Kept on the CPU in float16: HumanML3D's ~90 k captions as CLIP token features (77 x 512)
    take 7 GB so, 14 GB in float32.
    """

    def __init__(self, motions: MotionSet, text_encoder, batch: int = 64) -> None:
        self.offsets, captions = [], []
        for sample_captions in motions.captions:
            self.offsets.append((len(captions), len(sample_captions)))
            captions.extend(sample_captions)
        self.features = torch.cat(
            [text_encoder.encode(captions[i : i + batch]).half().cpu() for i in range(0, len(captions), batch)]
        )

    def pick(self, samples: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """One random caption's features per sample: (B, tokens, dim) float32."""
        rows = [start + int(rng.integers(count)) for start, count in (self.offsets[i] for i in samples)]
        return self.features[rows].float()


# --- models -----------------------------------------------------------------------------------------
def with_overrides(config, overrides: dict):
    """A model config with some fields replaced; an unknown field is a ValueError naming the known ones."""
    known = {f.name for f in fields(config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {type(config).__name__} settings {unknown}; expected some of {sorted(known)}")
    return replace(config, **overrides)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup, then x0.1 at each of the decay points."""
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    drops = sum(step >= fraction * config.steps for fraction in config.decay_at)
    return config.lr * warmup * 0.1**drops


# --- the two stages ------------------------------------------------------------------------------
class TokenizerStage:
    """Stage 1: the CAQ-VAE learns to rebuild motion crops; held out, its reconstruction MPJPE."""

    needs_tokenizer = False
    weight_decay = 0.0

    def __init__(
        self, config: TrainConfig, device: torch.device, previous: checkpoint_io.Checkpoint | None = None
    ) -> None:
        self.config, self.device = config, device
        # The spec's feature bias is already in the dataset's Std.npy, as in HumanML3D's own Mean/Std.
        # A resumed run keeps the normalisation it was trained with; so does a warm start, unless the
        # features changed.
        if previous is not None:
            self.mean, self.std = previous.mean, previous.std
        elif config.init is not None and not config.data_statistics:
            initial = checkpoint_io.load(config.init, device="cpu")
            self.mean, self.std = initial.mean, initial.std
        else:
            self.mean, self.std = read_statistics(Path(config.data))
        self.train_set, self.eval_set = load_sets(config, self.mean, self.std)

    def build(self) -> nn.Module:
        """A fresh model of the preset, with the run's overrides applied."""
        return Tokenizer(with_overrides(getattr(TokenizerConfig, self.config.preset)(), self.config.model_overrides))

    def resumed(self, previous: checkpoint_io.Checkpoint) -> nn.Module:
        return previous.tokenizer

    def loss(
        self, step_model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, picks: np.ndarray, rng: np.random.Generator
    ):
        return step_model(x, frame_mask(lengths, x.shape[1]).to(self.device))

    def evaluate(self, model: nn.Module) -> dict:
        from engine.evaluate import reconstruction_mpjpe

        return {"eval_mpjpe_mm": reconstruction_mpjpe(model, self.eval_set.motions, self.mean, self.std, self.device)}

    def checkpoint(self, model: nn.Module, meta: dict) -> checkpoint_io.Checkpoint:
        return checkpoint_io.Checkpoint(model, None, self.mean, self.std, self.config.text_encoder, meta)


class TransformerStage:
    """Stage 2: the SAR transformer learns the frozen tokenizer's token maps from cached text
    features of the captions; held out, its loss."""

    needs_tokenizer = True
    weight_decay = 1e-5

    def __init__(
        self, config: TrainConfig, device: torch.device, previous: checkpoint_io.Checkpoint | None = None
    ) -> None:
        from engine.text_encoders import load_text_encoder

        self.config, self.device = config, device
        self.tokenizer_checkpoint = checkpoint_io.load(config.tokenizer, device="cpu")
        if previous is not None and not same_weights(previous.tokenizer, self.tokenizer_checkpoint.tokenizer):
            started = previous.meta.get("train_config", {}).get("tokenizer")
            raise TrainError(
                f"--resume: --tokenizer {config.tokenizer} is not the tokenizer this run trains on "
                f"(its weights differ from those in {config.model_path.name}, which came from {started}): "
                "give the run's --tokenizer"
            )
        self.mean, self.std = self.tokenizer_checkpoint.mean, self.tokenizer_checkpoint.std
        self.train_set, self.eval_set = load_sets(config, self.mean, self.std)
        self.tokenizer = self.tokenizer_checkpoint.tokenizer.to(device).eval().requires_grad_(False)
        encoder = load_text_encoder(
            config.text_encoder, device, config.text_encoder_path
        )  # dropped once every caption is encoded
        self.train_text, self.eval_text = (
            CaptionFeatures(self.train_set, encoder),
            CaptionFeatures(self.eval_set, encoder),
        )
        self.text_dim = encoder.dim

    def build(self) -> nn.Module:
        """A fresh model of the preset on the tokenizer's scales, with the run's overrides applied."""
        transformer_config = getattr(TransformerConfig, self.config.preset)(self.tokenizer.config)
        return Transformer(
            with_overrides(replace(transformer_config, text_dim=self.text_dim), self.config.model_overrides)
        )

    def resumed(self, previous: checkpoint_io.Checkpoint) -> nn.Module:
        return previous.transformer

    def loss(
        self, step_model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, picks: np.ndarray, rng: np.random.Generator
    ):
        text = self.train_text.pick(picks, rng).to(self.device)
        return step_model(text, lengths, self.tokenizer.encode_tokens(x), self.tokenizer.quantizer)

    def evaluate(self, model: nn.Module) -> dict:
        return {
            "eval_loss": held_out_loss(model, self.tokenizer, self.eval_set, self.eval_text, self.config, self.device)
        }

    def checkpoint(self, model: nn.Module, meta: dict) -> checkpoint_io.Checkpoint:
        meta["tokenizer_meta"] = self.tokenizer_checkpoint.meta
        return checkpoint_io.Checkpoint(
            self.tokenizer_checkpoint.tokenizer, model, self.mean, self.std, self.config.text_encoder, meta
        )


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(
        first[key].shape == second[key].shape and torch.equal(first[key], second[key]) for key in first
    )


def check_same_model(config: TrainConfig, stage: "Stage", previous: checkpoint_io.Checkpoint, model: nn.Module) -> None:
    """--resume with other model settings (--preset, --set, --text-encoder) than the run's: refused, naming them."""
    with torch.device("meta"):
        asked = stage.build().config.to_dict()
    saved = model.config.to_dict()
    differ = [
        f"{key}={saved.get(key)!r} (asked {asked.get(key)!r})" for key in asked if asked.get(key) != saved.get(key)
    ]
    if previous.text_encoder != config.text_encoder:
        differ.append(f"text encoder {previous.text_encoder} (asked {config.text_encoder})")
    if differ:
        raise TrainError(
            f"--resume: the run's {config.stage} has {', '.join(differ)}: give the run's --preset and --set settings"
        )


Stage = TokenizerStage | TransformerStage
STAGES = {"tokenizer": TokenizerStage, "transformer": TransformerStage}


def load_sets(config: TrainConfig, mean: np.ndarray, std: np.ndarray) -> tuple[MotionSet, MotionSet]:
    """The training motions (crops of at least min_frames) and the held-out ones (any usable length)."""
    data = Path(config.data)
    training = load_motions(data, config.splits, mean, std, config.min_frames)
    if config.balance_kinds:
        training.draw_weights = kind_balanced_weights(data, training.names)
    return training, load_motions(data, (config.eval_split,), mean, std, FRAMES_PER_LATENT)


# --- the run ----------------------------------------------------------------------------------------
def saved_step(config: TrainConfig) -> int | None:
    """The step of the run's last save, from its state file; None where there is none (or it is unreadable)."""
    try:
        return int(torch.load(config.state_path, map_location="cpu", weights_only=True)["step"])
    except Exception:  # missing, damaged or foreign: the step is not known
        return None


def check_run_folder(config: TrainConfig) -> None:
    """A new run refuses a folder that holds a run of its stage; --resume refuses one that holds none."""
    files = [path for path in (config.model_path, config.state_path, config.log_path) if path.exists()]
    if files and not config.resume:
        step = saved_step(config)
        at = f"saved at step {step}" if step is not None else f"{', '.join(path.name for path in files)}"
        raise TrainError(
            f"{config.out} already holds a {config.stage} run ({at}): "
            "add --resume to continue it, or choose another --out"
        )
    if config.resume and not config.model_path.exists():
        left = f" (only {', '.join(path.name for path in files)}: delete it to start over)" if files else ""
        raise TrainError(
            f"--resume: {config.out} holds no saved {config.stage} run to continue, no {config.model_path.name}"
            f"{left}; drop --resume to start one"
        )


def check_settings(config: TrainConfig) -> None:
    """The numbers and names of a run, before anything is read or written."""
    at_least = {"batch_size": 1, "log_every": 1, "eval_every": 1, "save_every": 1}
    at_least.update(steps=0, warmup_steps=0, threads=0, loop_to=0, seed=0)
    for name, lowest in at_least.items():
        if getattr(config, name) < lowest:
            raise TrainError(f"--{name.replace('_', '-')} is {getattr(config, name)}; it must be at least {lowest}")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise TrainError(f"--lr is {config.lr}; it must be a positive number")
    if not config.splits or not config.eval_split:
        raise TrainError("--splits and --eval-split must name splits, e.g. --splits train --eval-split val")
    model_config = TokenizerConfig if config.stage == "tokenizer" else TransformerConfig
    known = {f.name for f in fields(model_config)}
    unknown = sorted(set(config.model_overrides) - known)
    if unknown:
        raise TrainError(f"--set: unknown {model_config.__name__} settings {unknown}; expected some of {sorted(known)}")
    if not Path(config.data).is_dir():
        raise TrainError(f"--data {config.data} is not a folder (a dataset in HumanML3D layout)")
    for name in ("init", "tokenizer"):
        path = getattr(config, name)
        if path is not None and not Path(path).is_file():
            raise TrainError(f"--{name} {path}: no such file")


@contextmanager
def only_run(config: TrainConfig, main: bool) -> Iterator[None]:
    """This training alone writes the stage's files in --out (a second one would overwrite the
    first's). Rank 0 holds the lock for all the processes of a run."""
    if not main:
        yield
        return
    try:
        with held_alone(Path(config.out) / f"{config.stage}.lock"):
            yield
    except Held as held:
        raise TrainError(
            f"another {config.stage} training is running in {config.out} (pid {held.holder}): "
            "let it finish or stop it, or choose another --out"
        ) from None


def train(config: TrainConfig) -> Path | None:
    """Run one stage; returns the path of the model checkpoint it wrote, None where it had nothing to train."""
    check_settings(config)
    processes = start_processes()
    if config.batch_size % processes.world:
        raise ValueError(f"batch size {config.batch_size} must divide evenly among {processes.world} processes")
    check_run_folder(config)
    previous = None
    if config.resume:
        previous = checkpoint_io.load(config.model_path, device="cpu")
        start_step = int(previous.meta.get("step", 0))
        state = (
            torch.load(config.state_path, map_location="cpu", weights_only=True) if config.state_path.exists() else None
        )
        # The state is renamed into place just before the model: a save interrupted between the two
        # leaves the state one save ahead. The model's step is where the run continues.
        if state is None and processes.main:
            print(f"note: no {config.state_path.name}: continuing from step {start_step} with a fresh optimizer")
        elif state is not None and int(state["step"]) != start_step and processes.main:
            print(
                f"note: {config.state_path.name} is from step {int(state['step'])}, {config.model_path.name} from "
                f"step {start_step} (a save was interrupted): continuing from step {start_step}"
            )
        started_from = previous.meta.get("train_config", {}).get("init")
        if config.init is not None and (
            started_from is None or Path(started_from).resolve() != Path(config.init).resolve()
        ):
            raise TrainError(
                f"--init {config.init}: the run in {config.out} started from {started_from or 'no --init'}; "
                "--resume continues it from its own checkpoint: drop --init (or give the run's own)"
            )
    else:
        state, start_step = None, 0
    if start_step >= config.steps:
        if processes.main:
            print(f"nothing trained: the run is at step {start_step} and --steps is {config.steps}; nothing written")
        return None
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // processes.world))
    device = processes.device
    stage = STAGES[config.stage](config, device, previous)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    with only_run(config, processes.main):
        if processes.main:  # again, now that no other training can write in the folder (rank 0's log is ours)
            check_run_folder(config)
        return fit(config, processes, device, stage, previous, state, start_step)


def fit(config: TrainConfig, processes: Processes, device, stage: "Stage", previous, state, start_step: int) -> Path:
    """The training steps of a checked run, in its locked folder."""
    torch.manual_seed(config.seed)  # the same initial weights in every process
    resumed = previous is not None
    if resumed:
        model = stage.resumed(previous)
        if model is None:
            raise TrainError(f"{config.model_path} holds no {config.stage} to continue")
        check_same_model(config, stage, previous, model)
    elif config.init is not None:
        model = stage.resumed(checkpoint_io.load(config.init, device="cpu"))
        if model is None:
            raise ValueError(f"{config.init} has no {config.stage} to start from")
    else:
        model = stage.build()
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])

    # DDP averages gradients; it also broadcasts buffers from rank 0 at every step, so the
    # tokenizer's EMA codebooks follow rank 0's batches in every process.
    step_model = TrainingLoss(model)
    if processes.world > 1:
        # find_unused_parameters: the release's tokenizer keeps an upsample on decoder.up.0 that never runs.
        step_model = DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    # Each step draws its batch from a generator seeded by (seed, rank, step), and seeds torch's
    # (dropout, codebook restarts) from it: each process has its own stream, and a resumed run
    # draws what a fresh one would (they seeded once, with the start step: a resumed run differed).
    per_process = config.batch_size // processes.world
    log = Log(config.log_path if processes.main else None, resumed)
    if processes.main:
        log.write(
            {
                "event": "start",
                "step": start_step,
                "processes": processes.world,
                "threads": torch.get_num_threads(),
                "device": str(device),
                "train_samples": len(stage.train_set.motions),
                "eval_samples": len(stage.eval_set.motions),
                "parameters": sum(p.numel() for p in model.parameters()),
                "config": config_dict(config),
            }
        )
    started = time.perf_counter()
    done, saved = start_step, start_step if resumed else None
    try:
        for step in range(done, config.steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            rng = np.random.default_rng([config.seed, processes.rank, step])
            torch.manual_seed(int(rng.integers(2**63)))
            x, lengths, picks = crop_batch(stage.train_set, per_process, config, rng)
            with autocast:
                loss, stats = stage.loss(step_model, x.to(device), lengths.to(device), picks, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            done = step + 1
            if processes.main and (done % config.log_every == 0 or done == config.steps):
                log.write(
                    {
                        "step": done,
                        "lr": learning_rate(step, config),
                        "seconds": round(time.perf_counter() - started, 1),
                        **stats,
                    }
                )
            if processes.main and (done % config.eval_every == 0 or done == config.steps):
                model.eval()
                held_out = stage.evaluate(model)
                model.train()
                log.write({"step": done, "split": config.eval_split, **held_out})
            if processes.main and (done % config.save_every == 0 or done == config.steps):
                save(config, stage, model, optimizer, done, time.perf_counter() - started, saved)
                saved = done
    except KeyboardInterrupt:
        raise TrainInterrupted(done, saved) from None
    if processes.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return config.model_path


@torch.no_grad()
def held_out_loss(model, tokenizer, motions: MotionSet, text: CaptionFeatures, config: TrainConfig, device) -> float:
    """The training loss on held-out motions (first caption, whole usable length), with a fixed seed."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        losses = []
        for index, motion in enumerate(motions.motions):
            length = usable_length(len(motion), config.max_frames)
            if length < config.min_frames:
                continue
            x = torch.from_numpy(motion[None, :length]).to(device)
            features = text.features[text.offsets[index][0]][None].float().to(device)
            loss, _ = model.training_loss(
                features, torch.tensor([length], device=device), tokenizer.encode_tokens(x), tokenizer.quantizer
            )
            losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def save(
    config: TrainConfig, stage: "Stage", model: nn.Module, optimizer, step: int, seconds: float, saved: int | None
) -> None:
    """The model in the engine's format (+ the optimizer state for --resume).

    Both are written whole beside their places first, then renamed there, the state just before
    the model: a full disk or Ctrl+C while writing leaves the last complete save as it was."""
    meta = {
        "name": f"mosa-{config.preset}",
        "preset": config.preset,
        "stage": config.stage,
        "step": step,
        "train_seconds": round(seconds, 1),
        "dataset": str(config.data),
        "train_config": config_dict(config),
    }
    checkpoint = stage.checkpoint(model, meta)
    state = {"step": step, "optimizer": optimizer.state_dict()}
    model_partial, state_partial = (
        path.with_name(path.name + ".partial") for path in (config.model_path, config.state_path)
    )
    writing = config.model_path
    try:
        checkpoint_io.save(model_partial, checkpoint)  # itself written beside (.partial.partial), then renamed
        writing = config.state_path
        torch.save(state, state_partial)
    except BaseException as error:  # a full disk, Ctrl+C: no partial file stays behind
        for partial in (model_partial, state_partial):
            partial.unlink(missing_ok=True)
        if not isinstance(error, (OSError, RuntimeError)):  # torch's writer reports a full disk as a RuntimeError
            raise
        free = shutil.disk_usage(config.out).free / 2**20
        reason = (
            error.strerror if isinstance(error, OSError) and error.strerror else checkpoint_io.unreadable_reason(error)
        )
        kept = f"the last complete save (step {saved}) is kept" if saved is not None else "nothing is saved yet"
        raise TrainError(
            f"cannot write {writing} at step {step}: {reason} ({free:.0f} MB free on its disk); {kept}"
        ) from None
    os.replace(state_partial, config.state_path)
    os.replace(model_partial, config.model_path)


def config_dict(config: TrainConfig) -> dict:
    return json.loads(json.dumps(asdict(config), default=str))


class Log:
    """Each record as a line on stdout and a JSON line in the log file."""

    def __init__(self, path: Path | None, append: bool) -> None:
        self.path = path
        if path is not None and not append:
            path.write_text("")

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items() if k != "config"}
        print(" ".join(f"{k}={v}" for k, v in shown.items()), flush=True)


# --- command line -----------------------------------------------------------------------------------
def parse_overrides(pairs: list[str]) -> dict:
    """["width=32", "scales=(3, 7)"] -> {"width": 32, "scales": (3, 7)}: values are Python literals."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"model setting {pair!r} must look like key=value, e.g. width=32")
        try:
            overrides[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ValueError(
                f"model setting {pair!r}: the value must be a Python literal (number, tuple, ...)"
            ) from None
    return overrides


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    defaults = TrainConfig()
    parser.add_argument("stage", choices=list(STAGES), help="tokenizer first, then transformer")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder in HumanML3D layout")
    parser.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    parser.add_argument("--preset", choices=sorted(PRESET_TEXT_ENCODERS), default=defaults.preset)
    parser.add_argument(
        "--set",
        dest="model_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model config field, e.g. --set width=32 (repeatable)",
    )
    parser.add_argument("--tokenizer", type=Path, help="stage 2: the tokenizer checkpoint of stage 1")
    parser.add_argument(
        "--text-encoder", choices=sorted(set(PRESET_TEXT_ENCODERS.values())), help="stage 2 (default: the preset's)"
    )
    parser.add_argument(
        "--text-encoder-path", type=Path, help="stage 2: the text encoder's model folder (default: its package)"
    )
    parser.add_argument("--splits", default=",".join(defaults.splits), help="comma-separated splits to train on")
    parser.add_argument("--eval-split", default=defaults.eval_split)
    for name in (
        "steps",
        "batch_size",
        "warmup_steps",
        "min_frames",
        "max_frames",
        "log_every",
        "eval_every",
        "save_every",
        "seed",
        "threads",
        "loop_to",
    ):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--weight-decay", type=float, help="default: 0 for the tokenizer, 1e-5 for the transformer")
    parser.add_argument(
        "--decay-at",
        type=float,
        nargs="*",
        default=list(defaults.decay_at),
        help="fractions of steps where lr drops x0.1",
    )
    parser.add_argument(
        "--data-statistics",
        action="store_true",
        help="tokenizer with --init: normalise by the dataset's Mean/Std, not the checkpoint's (features changed)",
    )
    parser.add_argument(
        "--balance-kinds", action="store_true", help="draw every kind of motion (dataset.json) equally often"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    parser.add_argument(
        "--init", type=Path, help="start from this checkpoint's weights (a new run: fresh optimizer, step 0)"
    )


def run(args: argparse.Namespace) -> int:
    main = int(os.environ.get("RANK", "0")) == 0
    try:
        path = train(configured(args))
    except (TrainError, ValueError, OSError) as error:  # a bad setting, file or dataset: one line
        if main:
            print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except TrainInterrupted as stop:
        if main:
            print(stop, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        if main:
            print("interrupted before training started; nothing written", file=sys.stderr)
        return 130
    if main and path is not None:
        print(f"checkpoint written to {path}")
    return 0


def configured(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        stage=args.stage,
        data=args.data,
        out=args.out,
        preset=args.preset,
        model_overrides=parse_overrides(args.model_overrides),
        tokenizer=args.tokenizer,
        text_encoder=args.text_encoder,
        text_encoder_path=args.text_encoder_path,
        splits=tuple(s for s in args.splits.split(",") if s),
        eval_split=args.eval_split,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        decay_at=tuple(args.decay_at),
        min_frames=args.min_frames,
        max_frames=args.max_frames,
        loop_to=args.loop_to,
        balance_kinds=args.balance_kinds,
        data_statistics=args.data_statistics,
        log_every=args.log_every,
        eval_every=args.eval_every,
        save_every=args.save_every,
        seed=args.seed,
        threads=args.threads,
        resume=args.resume,
        init=args.init,
    )
