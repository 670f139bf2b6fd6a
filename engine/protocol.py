"""`python -m engine eval --protocol humanml3d|motionx`: the paper's evaluation, as the release runs it.

MoSa's eval_t2m.py (generation) and eval_svq.py (reconstruction), after MoMask's:
- the test split, motions of 40 to 199 frames, each caption's own sub-span as a motion of its own;
- per repeat the items are shuffled into batches of 32 (the last partial batch dropped); each
  item takes one of its captions at random, a length rounded down to a multiple of 4 (one unit
  shorter one time in three) and a random crop of that length;
- generation with guidance (cond_scale) 4, top-k 0.8, top-p 0.95, temperature 1; the first 3
  batches are generated 30 times for multimodality (10 pairs), the last of those feeds the rest;
- reconstruction puts each crop through the tokenizer; also root-aligned MPJPE and the share of
  each codebook used, averaged over the scales;
- FID against the real crops of the same repeat, R-precision and MM-Dist per batch, diversity
  over 300 pairs (100 below 301 samples); 20 repeats, mean and 95 % interval.
The evaluator sees features in its own normalisation: the model's output is de-normalised with
the checkpoint's statistics and normalised with the evaluator's (the release feeds the model's
normalised output directly, which is the same where both use HumanML3D's statistics).

Each repeat's figures are written to OUT/<task>/repeat_NN.json as soon as it ends; running the
same command again continues from the first missing repeat. A different setup in the same OUT
is refused. Random draws come from numpy/torch generators seeded by (seed, repeat), not the
release's global state, so the figures match the release's in distribution, not digit for digit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine import metrics, representation
from engine.datasets import layout
from engine.evaluator import FEATURE_SIZE, Evaluator
from engine.generate import SamplingOptions, sample
from engine.word_vectors import SpacyTagger, WordVectors, caption_rows

FPS = 20
MIN_FRAMES, MAX_FRAMES = 40, 200  # the release keeps motions of 40 to 199 frames
MODEL_FRAMES = 196
UNIT = 4
TASKS = ("generation", "reconstruction")


@dataclass(frozen=True)
class Protocol:
    name: str
    words: str  # "humanml3d": the evaluator's GloVe subset; "glove_6b": GloVe 6B 300-d
    paper: dict[str, dict[str, float]]  # task -> measure -> the paper's figure (mosa-spec.md section 6)


HUMANML3D_PAPER = {"generation": {"fid": 0.085, "top1": 0.530, "mm_dist": 2.836}, "reconstruction": {"fid": 0.030}}
MOTIONX_PAPER = {"generation": {"fid": 0.061, "top1": 0.448, "mm_dist": 2.982}}
PROTOCOLS = {
    "humanml3d": Protocol("humanml3d", "humanml3d", HUMANML3D_PAPER),
    "motionx": Protocol("motionx", "glove_6b", MOTIONX_PAPER),
}


@dataclass
class Settings:
    """The release's values by default; smaller ones make a quick check (and the tests)."""

    repeats: int = 20
    batch_size: int = 32
    split: str = "test"
    mm_batches: int = 3  # batches generated mm_generations times for multimodality
    mm_generations: int = 30
    mm_pairs: int = 10
    diversity_pairs: int | None = None  # None: 300, or 100 when there are 300 samples or fewer
    seed: int = 0
    sampling: SamplingOptions = field(default_factory=SamplingOptions)  # guidance 4, top-k 0.8, top-p 0.95

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.batch_size < 2 or self.mm_batches < 0:
            raise ValueError(f"settings {self}: expected repeats >= 1, batch size >= 2, mm batches >= 0")
        if self.mm_batches and self.mm_generations <= self.mm_pairs:
            raise ValueError(
                f"multimodality needs more generations ({self.mm_generations}) than pairs ({self.mm_pairs})"
            )


# --- the test items -------------------------------------------------------------------------------
@dataclass
class Item:
    """One motion of the evaluation (a whole file or a caption's sub-span) and its captions."""

    name: str
    features: np.ndarray  # raw (T, 263), 40 <= T < 200
    captions: list[str]
    tokens: list[list[str]]  # `word/POS` tokens of each caption


def read_items(data: Path, split: str, tagger=None) -> tuple[list[Item], int]:
    """The split's evaluation items, as the release's Text2MotionDatasetEval builds them, and how
    many listed ids had no motion file (the release skips those silently)."""
    data = Path(data)
    tagger = tagger or SpacyTagger()
    items, absent = [], 0
    for name in layout.read_names(data, split):
        path = data / "new_joint_vecs" / f"{name}.npy"
        if not path.is_file():
            absent += 1
            continue
        motion = np.load(path)
        if np.isnan(motion).any() or not MIN_FRAMES <= len(motion) < MAX_FRAMES:
            continue
        whole = Item(name, motion, [], [])
        for index, line in enumerate((data / "texts" / f"{name}.txt").read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            caption, tokens, start, end = parse_text_line(line, tagger)
            if start == 0.0 and end == 0.0:
                whole.captions.append(caption)
                whole.tokens.append(tokens)
                continue
            span = motion[int(start * FPS) : int(end * FPS)]
            if MIN_FRAMES <= len(span) < MAX_FRAMES:
                items.append(Item(f"{name}#{index}", span, [caption], [tokens]))
        if whole.captions:
            items.append(whole)
    return items, absent


def parse_text_line(line: str, tagger) -> tuple[str, list[str], float, float]:
    """`caption#tokens#start#end` (HumanML3D; a NaN time is 0) or a plain caption (Motion-X), tagged by `tagger`."""
    parts = line.strip().split("#")
    if len(parts) < 4:
        return line.strip(), tagger(line.strip()), 0.0, 0.0
    start, end = (0.0 if math.isnan(t) else t for t in (float(parts[2] or 0), float(parts[3] or 0)))
    return parts[0], parts[1].split(" "), start, end


@dataclass
class Batch:
    captions: list[str]
    word_vectors: torch.Tensor  # (B, 22, 300)
    pos_one_hots: torch.Tensor  # (B, 22, 15)
    text_lengths: torch.Tensor  # (B,)
    crops: list[np.ndarray]  # raw (frames_i, 263)
    frames: torch.Tensor  # (B,) multiples of 4


def repeat_batches(items: list[Item], words: WordVectors, settings: Settings, rng: np.random.Generator) -> list[Batch]:
    """One repeat's batches: shuffled, the last partial batch dropped, each item drawn as the release does."""
    order = rng.permutation(len(items))
    batches = []
    for start in range(0, len(order) - settings.batch_size + 1, settings.batch_size):
        rows = []
        for index in order[start : start + settings.batch_size]:
            item = items[index]
            caption = int(rng.integers(len(item.captions)))
            units = len(item.features) // UNIT - (1 if rng.integers(3) == 2 else 0)  # 'double' one time in three
            frames = units * UNIT
            offset = int(rng.integers(0, len(item.features) - frames + 1))
            rows.append(
                (
                    item.captions[caption],
                    caption_rows(item.tokens[caption], words),
                    item.features[offset : offset + frames],
                )
            )
        batches.append(
            Batch(
                captions=[r[0] for r in rows],
                word_vectors=torch.from_numpy(np.stack([r[1][0] for r in rows])),
                pos_one_hots=torch.from_numpy(np.stack([r[1][1] for r in rows])),
                text_lengths=torch.tensor([r[1][2] for r in rows]),
                crops=[r[2] for r in rows],
                frames=torch.tensor([len(r[2]) for r in rows]),
            )
        )
    if not batches:
        raise ValueError(f"{len(items)} evaluation items make no batch of {settings.batch_size}")
    return batches


def padded(rows: list[np.ndarray], frames: int = MODEL_FRAMES) -> np.ndarray:
    """(B, frames, 263) float32, each row zero-padded after its own length."""
    out = np.zeros((len(rows), frames, FEATURE_SIZE), np.float32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


# --- the two tasks ----------------------------------------------------------------------------------
class Generation:
    """Text to motion with a checkpoint's text encoder, transformer and tokenizer."""

    def __init__(self, pipeline, sampling: SamplingOptions) -> None:
        self.pipeline, self.sampling = pipeline, sampling

    @torch.no_grad()
    def __call__(self, batch: Batch, seeds: np.ndarray) -> np.ndarray:
        """Raw features (B, 196, 263): the whole decode, past each motion's length too, as the release."""
        p = self.pipeline
        text = p.text_encoder.encode(batch.captions).to(p.device)
        generators = [torch.Generator(device=p.device).manual_seed(int(s)) for s in seeds]
        _, z_hat = sample(
            p.transformer, p.tokenizer.quantizer, text, batch.frames.to(p.device), generators, self.sampling
        )
        decoded = p.tokenizer.decode_latent(z_hat).float().cpu().numpy()
        return representation.denormalize(decoded, p.mean, p.std)


class Reconstruction:
    """Each real crop through the tokenizer; keeps the codes used per scale and the joint error."""

    def __init__(self, tokenizer, mean: np.ndarray, std: np.ndarray, device: torch.device) -> None:
        self.tokenizer, self.mean, self.std, self.device = tokenizer.to(device).eval(), mean, std, device
        self.used = [torch.zeros(size, dtype=torch.bool) for size in tokenizer.config.codebook_sizes()]
        self.error_sum, self.poses = 0.0, 0

    @torch.no_grad()
    def __call__(self, batch: Batch, seeds: np.ndarray) -> np.ndarray:
        normalized = padded([representation.normalize(c, self.mean, self.std) for c in batch.crops])
        recon, codes, _ = self.tokenizer(torch.from_numpy(normalized).to(self.device))
        for used, scale_codes in zip(self.used, codes):
            used[scale_codes.flatten().cpu()] = True
        raw = representation.denormalize(recon.float().cpu().numpy(), self.mean, self.std)
        for crop, decoded in zip(batch.crops, raw):
            self.error_sum += root_aligned_error_sum(crop, decoded[: len(crop)])
            self.poses += len(crop)
        return raw

    def figures(self) -> dict[str, float]:
        return {
            "mpjpe_mm": 1000.0 * self.error_sum / max(self.poses, 1),
            "codebook_usage": float(np.mean([used.float().mean().item() for used in self.used])),
        }


def root_aligned_error_sum(real: np.ndarray, decoded: np.ndarray) -> float:
    """Sum over frames of the mean joint distance with both skeletons' roots at the origin (metres)."""
    real_joints = representation.features_to_joints(real)
    decoded_joints = representation.features_to_joints(decoded)
    real_joints = real_joints - real_joints[:, :1]
    decoded_joints = decoded_joints - decoded_joints[:, :1]
    return float(np.linalg.norm(real_joints - decoded_joints, axis=-1).mean(axis=1).sum())


# --- one repeat ---------------------------------------------------------------------------------------
def run_repeat(
    task: str,
    model,
    evaluator: Evaluator,
    items: list[Item],
    words: WordVectors,
    settings: Settings,
    repeat: int,
    progress=print,
) -> dict[str, float]:
    """The figures of one repeat: the model's motion and the real crops, side by side."""
    draw = np.random.default_rng([settings.seed, repeat, TASKS.index(task)])
    batches = repeat_batches(items, words, settings, draw)
    real, predicted, multimodal = [], [], []
    hits_real, hits, distance_real, distance = np.zeros(3), np.zeros(3), 0.0, 0.0
    started = time.perf_counter()
    for index, batch in enumerate(batches):
        text = evaluator.embed_texts(batch.word_vectors, batch.pos_one_hots, batch.text_lengths).cpu().numpy()
        real_rows = torch.from_numpy(padded([evaluator.normalize(c) for c in batch.crops]))
        motion = evaluator.embed_motions(real_rows, batch.frames).cpu().numpy()
        generations = settings.mm_generations if task == "generation" and index < settings.mm_batches else 1
        seeds = draw.integers(0, 2**31 - 1, size=(generations, len(batch.captions)))
        per_generation = [
            evaluator.embed_motions(torch.from_numpy(evaluator.normalize(model(batch, s))), batch.frames).cpu().numpy()
            for s in seeds
        ]
        if generations > 1:
            multimodal.append(np.stack(per_generation, axis=1))
        generated = per_generation[-1]
        real.append(motion)
        predicted.append(generated)
        hits_real += metrics.r_precision_hits(text, motion)
        hits += metrics.r_precision_hits(text, generated)
        distance_real += metrics.matching_distance_sum(text, motion)
        distance += metrics.matching_distance_sum(text, generated)
        if (index + 1) % 10 == 0 or index + 1 == len(batches):
            progress(
                f"  {task} repeat {repeat + 1}/{settings.repeats}: batch {index + 1}/{len(batches)}, "
                f"{time.perf_counter() - started:.0f} s"
            )
    real_all, predicted_all = np.concatenate(real), np.concatenate(predicted)
    samples = len(real_all)
    pairs = settings.diversity_pairs or metrics.diversity_pairs(samples)
    pick = np.random.default_rng([settings.seed, repeat, TASKS.index(task), 1])
    figures = {
        "fid": metrics.fid(real_all, predicted_all),
        "diversity": metrics.diversity(predicted_all, pairs, pick),
        "diversity_real": metrics.diversity(real_all, pairs, pick),
        **{f"top{k + 1}": hits[k] / samples for k in range(3)},
        **{f"top{k + 1}_real": hits_real[k] / samples for k in range(3)},
        "mm_dist": distance / samples,
        "mm_dist_real": distance_real / samples,
        "samples": samples,
    }
    if multimodal:
        figures["multimodality"] = metrics.multimodality(np.concatenate(multimodal), settings.mm_pairs, pick)
    if isinstance(model, Reconstruction):
        figures.update(model.figures())
    return {key: float(value) for key, value in figures.items()}


# --- the run: repeats on disk, the table --------------------------------------------------------------
MEASURES = [  # key, label, the real motion's key
    ("fid", "FID ↓", None),
    ("top1", "R-precision top-1 ↑", "top1_real"),
    ("top2", "R-precision top-2 ↑", "top2_real"),
    ("top3", "R-precision top-3 ↑", "top3_real"),
    ("mm_dist", "MM-Dist ↓", "mm_dist_real"),
    ("diversity", "Diversity →", "diversity_real"),
    ("multimodality", "MultiModality ↑", None),
    ("mpjpe_mm", "MPJPE, root-aligned (mm) ↓", None),
    ("codebook_usage", "codebook usage (mean over scales)", None),
]


def summary(repeats: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """measure -> (mean, 95 % half-width) over the repeats."""
    return {key: metrics.confidence_interval([r[key] for r in repeats]) for key in repeats[0]}


def table(protocol: Protocol, task: str, repeats: list[dict[str, float]]) -> str:
    """Markdown: this run's mean +- interval (the value alone from one repeat), the real motion's, and the
    paper's figure."""
    figures, paper = summary(repeats), protocol.paper.get(task, {})
    lines = [
        f"{protocol.name}, {task}: {len(repeats)} repeat{'s' if len(repeats) > 1 else ''}, "
        f"{int(figures['samples'][0])} samples each" + ("" if len(repeats) > 1 else " (no interval from one repeat)"),
        "",
        "| measure | this run | real motion | paper (MoSa) |",
        "|---|---|---|---|",
    ]
    for key, label, real_key in MEASURES:
        if key not in figures:
            continue
        mean, half = figures[key]
        real = f"{figures[real_key][0]:.3f}" if real_key else "-"
        value = f"{mean:.3f} ± {half:.3f}" if len(repeats) > 1 else f"{mean:.3f}"  # one repeat: no spread to give
        lines.append(f"| {label} | {value} | {real} | {f'{paper[key]:.3f}' if key in paper else '-'} |")
    return "\n".join(lines)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_task(
    task: str,
    model,
    evaluator: Evaluator,
    items: list[Item],
    words: WordVectors,
    settings: Settings,
    folder: Path,
    setup: dict,
    progress=print,
) -> list[dict[str, float]]:
    """Every repeat of one task, skipping those already on disk under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    setup_file = folder / "setup.json"
    if setup_file.exists():
        previous = json.loads(setup_file.read_text())
        changed = sorted(key for key in set(previous) | set(setup) if previous.get(key) != setup.get(key))
        if changed == ["checkpoint_sha256"] and "checkpoint_sha256" not in previous:
            raise ValueError(
                f"{folder} holds repeats from before the checkpoint's content was recorded, so they cannot be "
                "matched to this model; give another --out or delete it"
            )
        if changed == ["checkpoint_sha256"]:  # the same path, another model: its repeats would mix into one mean
            raise ValueError(
                f"{folder} holds repeats of another model: {setup.get('checkpoint')} is not the file they "
                "measured (its content changed since); give another --out or delete it"
            )
        if changed:
            raise ValueError(
                f"{folder} holds repeats of another setup (differs in {', '.join(changed)}); "
                "give another --out or delete it"
            )
    else:
        setup_file.write_text(json.dumps(setup, indent=1))
    repeats = []
    for repeat in range(settings.repeats):
        path = folder / f"repeat_{repeat:02d}.json"
        if path.exists():
            repeats.append(json.loads(path.read_text()))
            progress(f"  {task} repeat {repeat + 1}/{settings.repeats}: on disk")
            continue
        if isinstance(model, Reconstruction):  # codebook usage and MPJPE are per repeat
            model.used = [torch.zeros_like(used) for used in model.used]
            model.error_sum, model.poses = 0.0, 0
        figures = run_repeat(task, model, evaluator, items, words, settings, repeat, progress)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(figures, indent=1))
        temporary.replace(path)
        repeats.append(figures)
        progress(
            f"  {task} repeat {repeat + 1}/{settings.repeats}: FID {figures['fid']:.4f}, top-1 {figures['top1']:.4f}, "
            f"MM-Dist {figures['mm_dist']:.4f}"
        )
    return repeats


def load_words(protocol: Protocol, glove: Path, items: list[Item]) -> WordVectors:
    if protocol.words == "humanml3d":
        return WordVectors.humanml3d(glove)
    needed = {token.rpartition("/")[0] for item in items for tokens in item.tokens for token in tokens} | {
        "sos",
        "eos",
        "unk",
    }
    return WordVectors.glove_6b(glove, needed)


# --- the command ---------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the paper's protocol (--protocol)")
    group.add_argument(
        "--protocol", choices=sorted(PROTOCOLS), help="run the paper's evaluation on HumanML3D or Motion-X"
    )
    group.add_argument(
        "--evaluator",
        type=Path,
        help="the folder holding text_mot_match/ and Comp_v6_KLD005/ (checkpoints/t2m or checkpoints/motionx)",
    )
    group.add_argument(
        "--glove", type=Path, help="humanml3d: the glove/ folder (our_vab_*); motionx: glove.6B.300d.txt or its folder"
    )
    group.add_argument(
        "--task", choices=TASKS + ("both",), default="both", help="generation, tokenizer reconstruction, or both"
    )
    group.add_argument(
        "--out", type=Path, help="where each repeat's figures and the table go (default runs/eval-PROTOCOL)"
    )
    group.add_argument("--repeats", type=int, default=Settings.repeats)
    group.add_argument("--batch-size", type=int, default=Settings.batch_size)
    group.add_argument(
        "--mm-batches", type=int, default=Settings.mm_batches, help="batches generated repeatedly for multimodality"
    )
    group.add_argument("--mm-generations", type=int, default=Settings.mm_generations)
    group.add_argument("--mm-pairs", type=int, default=Settings.mm_pairs)
    group.add_argument("--diversity-pairs", type=int, help="default: 300, or 100 with 300 samples or fewer")
    group.add_argument("--top-k", type=float, default=SamplingOptions.top_k)
    group.add_argument("--top-p", type=float, default=SamplingOptions.top_p)
    group.add_argument("--temperature", type=float, default=SamplingOptions.temperature)
    group.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> int:
    from engine import checkpoint as checkpoint_io
    from engine.pipeline import Pipeline, resolve_device

    protocol = PROTOCOLS[args.protocol]
    try:
        if args.evaluator is None or args.glove is None:
            raise ValueError(
                "--protocol needs --evaluator (the folder with text_mot_match/) and --glove (the word vectors)"
            )
        settings = Settings(
            repeats=args.repeats,
            batch_size=args.batch_size,
            split=args.split,
            mm_batches=args.mm_batches,
            mm_generations=args.mm_generations,
            mm_pairs=args.mm_pairs,
            diversity_pairs=args.diversity_pairs,
            seed=args.seed,
            sampling=SamplingOptions(
                guidance=args.guidance, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p
            ),
        )
        device = resolve_device(args.device)
        evaluator = Evaluator.load(args.evaluator, device)
        items, absent = read_items(args.data, settings.split)
        words = load_words(protocol, args.glove, items)
        ckpt = checkpoint_io.load(args.checkpoint, device="cpu")
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    tasks = TASKS if args.task == "both" else (args.task,)
    if ckpt.transformer is None and "generation" in tasks:
        if args.task == "generation":
            print(f"error: {args.checkpoint} holds only a tokenizer; generation needs a transformer", file=sys.stderr)
            return 2
        tasks = ("reconstruction",)
    out = args.out or Path("runs") / f"eval-{protocol.name}"
    print(
        f"{protocol.name}: {len(items)} test motions from {args.data} ({absent} listed ids without a motion file), "
        f"evaluator epoch {evaluator.epoch}, {len(words.vectors)} word vectors, {device}",
        flush=True,
    )
    # What the repeats on disk must share; more repeats may be asked for later.
    drawn = {key: value for key, value in asdict(settings).items() if key != "repeats"}
    setup = {
        "protocol": protocol.name,
        "checkpoint": str(Path(args.checkpoint).resolve()),
        "checkpoint_sha256": file_sha256(Path(args.checkpoint)),  # a resume keeps to the model, not only its path
        "data": str(Path(args.data).resolve()),
        "settings": json.loads(json.dumps(drawn)),
    }
    tables = []
    for task in tasks:
        try:
            if task == "generation":  # loads the checkpoint's text encoder, which may be absent here
                model = Generation(Pipeline.from_checkpoint(ckpt, device=str(device)), settings.sampling)
            else:
                model = Reconstruction(ckpt.tokenizer, ckpt.mean, ckpt.std, device)
            repeats = run_task(
                task,
                model,
                evaluator,
                items,
                words,
                settings,
                out / task,
                {**setup, "task": task},
                lambda line: print(line, flush=True),
            )
        except (OSError, ValueError) as error:  # no text encoder, another setup in --out, too few items for a batch
            print(f"error: {error}", file=sys.stderr)
            return 2
        tables.append(table(protocol, task, repeats))
        (out / task / "summary.json").write_text(
            json.dumps({k: list(v) for k, v in summary(repeats).items()}, indent=1)
        )
    report = f"checkpoint: {args.checkpoint}\n\n" + "\n\n".join(tables) + "\n"
    (out / "table.md").write_text(report)
    print(report)
    print(f"wrote {out / 'table.md'}")
    return 0
