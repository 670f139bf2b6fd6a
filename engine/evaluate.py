"""`python -m engine eval`: how good is a checkpoint, measured on real motion.

Three measurements:
1. Tokenizer: reconstruction MPJPE (mm) on held-out motions (the test split: clips the tokenizer
   never saw), comparing joints recovered from the reconstructed features with joints recovered
   from the original features; and codebook usage per scale (live codes after training).
2. Text to motion: for every kind of motion in the demo dataset (a clip, or the CMU segments
   showing one action: every walk is "walk"), prompts it was not trained on, in two sets: "new
   words" (no content word of the kind's captions) and "paraphrases" (the word naming the motion
   is new; body parts and directions may repeat). Each prompt is generated at fixed lengths (3, 6
   and 9 s: a user picks the length, so the words alone must decide the kind) and each motion is
   labelled with the kind of the nearest dataset sample (a distance on motion statistics, below),
   giving an accuracy per set and length and the list of confusions; two of each kind's own
   training captions are a third, seen set.
3. Prompt timelines (--timeline-shots N): N random shots of four rows of distinct kinds, 6-8 s
   each, made as one motion (engine.timeline); each row is labelled as above and compared with
   its prompt alone at the same length and seed, and each seam's step with the steps inside its
   shot (docs/timeline.md).

With --protocol humanml3d|motionx the command runs the paper's evaluation instead (FID,
R-precision, MM-Dist, diversity, multimodality with Guo et al.'s evaluator; engine.protocol).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine import protocol, representation
from engine.datasets import layout
from engine.datasets.captions import captions_of_kind, mirror_caption, tokens
from engine.datasets.layout import sample_kinds
from engine.generate import SamplingOptions
from engine.tokenizer import Tokenizer, usable_length
from retarget import canonical

if TYPE_CHECKING:
    from engine.checkpoint import Checkpoint
    from engine.pipeline import Pipeline

FIXED_SECONDS = (3, 6, 9)  # the lengths every prompt is generated at
# Prompts in new words for each kind of the demo dataset: no noun, verb, adjective, adverb or
# number of a prompt is one of its kind's caption words (engine/datasets/captions.py and
# cmu_segments.py, mirrored captions included; reused_caption_words checks it), so a hit means the
# text encoder generalised the wording. The prompts of the CMU kinds were written before any
# model learnt them, and were never tuned on a model's results.
NEW_WORD_PROMPTS: dict[str, list[str]] = {
    "deepmimic_backflip": ["a tumbler executes a rearward salto", "a stuntman inverts rearward in midair"],
    "deepmimic_cartwheel": [
        "a tumbler executes a lateral revolution",
        "a youngster flips laterally, fingers touching the lawn",
    ],
    "deepmimic_crawl": ["a toddler inches along the rug", "an infant scoots across the tiles on all limbs"],
    "deepmimic_dance_a": [
        "a showgirl revolves with her wrists aloft",
        "someone gyrates rightward with elevated wrists",
    ],
    "deepmimic_dance_b": [
        "someone jives, thrusting each palm skyward in sequence",
        "a partygoer shimmies rhythmically, palms thrust toward the ceiling",
    ],
    "deepmimic_getup_facedown": [
        "someone sprawled on the tummy regains an erect posture",
        "a fellow prostrate on his chest heaves himself vertical",
    ],
    "deepmimic_getup_faceup": [
        "someone resting supine recovers to an erect posture",
        "a sleeper sprawled belly upward climbs upright",
    ],
    "jump forward": ["an athlete hurtles onward with legs joined", "a youngster vaults into the air, ankles paired"],
    "deepmimic_punch": ["a pugilist advances and delivers a blow", "a brawler nears and smacks with the knuckles"],
    "deepmimic_roll": [
        "an acrobat tumbles skull first along the mattress",
        "a kid curls into a ball and tumbles onward",
    ],
    "deepmimic_run": ["a marathoner bolts onward at top velocity", "a racer hurries along the track"],
    "deepmimic_spin": [
        "a figure skater pivots rapidly, hurling the limbs skyward",
        "someone revolves repeatedly counterclockwise, flailing the limbs aloft",
    ],
    "deepmimic_spinkick": ["a karateka delivers a tornado blow", "a kickboxer executes a revolving shin blow"],
    "walk": ["a pedestrian ambles along unhurriedly", "someone wanders down the street leisurely"],
    "aistpp_gBR_sBM_cAll_d04_mBR0_ch01": [
        "a breakdancer shuffles to the tune",
        "someone jams rhythmically in a street style",
    ],
    "cmu_111_37": [
        "a lady salutes an acquaintance, flapping an upraised palm",
        "an individual signals farewell, wiggling the fingers aloft",
    ],
    "composed_walk_wave": [
        "a pedestrian ambles onward, pauses and salutes with an upraised palm",
        "an individual paces onward and afterwards flaps a lifted palm",
    ],
    "turn around": ["an individual pivots one hundred eighty degrees", "a guy rotates about to gaze rearward"],
    "jump up": [
        "an athlete bounces skyward without travelling",
        "a youngster hops aloft, returning to the identical location",
    ],
    "boxing": ["a pugilist spars against thin air", "a prizefighter shadowboxes, firing quick blows"],
    "scoop up": [
        "an individual gathers items off the deck and hoists them aloft",
        "a worker collects objects at his feet and heaves them skyward",
    ],
    "swordplay": ["a samurai duels with a katana", "a knight wields a saber against a foe"],
    "wash": ["an individual bathes, lathering from toes to scalp", "a guy cleans up in the tub"],
    "ballet": [
        "a classical danseuse twirls elegantly at the opera",
        "a performer from the royal academy glissades and soars with poise",
    ],
    "dribble": [
        "an athlete handles the rock while jogging down the court",
        "a point guard pats the orb against the hardwood as he advances",
    ],
    "basketball shot": ["an athlete launches a jumper at the rim", "a hooper lofts the rock into the net"],
    "reach up": [
        "a youngster strains skyward to snatch a dangling apple",
        "an individual extends on the balls of the feet attempting to seize a branch",
    ],
}
# Everyday paraphrases: the word naming the motion is new, but a body part, a side or a direction
# may be a caption's (GENERIC_WORDS), as a user would write; a looser test than NEW_WORD_PROMPTS.
PARAPHRASE_PROMPTS: dict[str, list[str]] = {
    "deepmimic_backflip": ["someone does a back handspring in place", "a tumbler goes over backwards through the air"],
    "deepmimic_cartwheel": [
        "a tumbler vaults sideways over the hands and back onto the feet",
        "someone topples sideways onto the hands and over onto the feet",
    ],
    "deepmimic_crawl": [
        "an infant scoots forward on hands and knees",
        "someone shuffles along the ground like an infant",
    ],
    "deepmimic_dance_a": [
        "a showgirl revolves with the arms above the head",
        "a performer revolves on the spot with the arms overhead",
    ],
    "deepmimic_dance_b": [
        "a person rocks from side to side, jerking the arms up alternately",
        "someone jives left and right with the arms up",
    ],
    "deepmimic_getup_facedown": [
        "someone sprawled on the tummy scrambles to their feet",
        "a person face down on the floor scrambles up",
    ],
    "deepmimic_getup_faceup": [
        "someone sprawled on their back climbs to their feet",
        "a person supine on the back springs up onto the feet",
    ],
    "jump forward": ["someone hurtles forward with both feet", "a youngster vaults ahead with the feet together"],
    "deepmimic_punch": [
        "a pugilist moves in and smacks with the right hand",
        "a brawler advances and clobbers with the right fist",
    ],
    "deepmimic_roll": [
        "a person tumbles forward, curled in a ball",
        "someone curls up and tumbles forward along the floor",
    ],
    "deepmimic_run": ["someone bolts forward", "a person hurries ahead flat out"],
    "deepmimic_spin": [
        "someone pivots around to the left, hurling the legs up",
        "a person revolves again and again to the left with the legs soaring high",
    ],
    "deepmimic_spinkick": [
        "a karateka rotates and lashes out with the right leg",
        "someone pivots and lashes out high with the right foot",
    ],
    "walk": ["a person ambles forward", "someone wanders ahead at a relaxed tempo"],
    "aistpp_gBR_sBM_cAll_d04_mBR0_ch01": [
        "a breakdancer shuffles to the tune with the arms outstretched",
        "someone jams to a street tune",
    ],
    "cmu_111_37": [
        "someone salutes with the right hand up by the head",
        "a person motions bye-bye with the right hand up",
    ],
    "composed_walk_wave": [
        "someone goes forward, pauses and says bye with the right hand",
        "a person marches ahead and afterwards salutes a friend with the right hand",
    ],
    "turn around": ["a person pivots around to look behind them", "someone spins about to face backwards"],
    "jump up": [
        "a person leaps up and comes back down where they started",
        "someone hops up, both feet leaving the ground",
    ],
    "boxing": ["someone spars, firing off blows with the right hand", "a fighter swings at an invisible foe"],
    "scoop up": [
        "a person gathers something off the floor and hoists it up with the right hand",
        "someone collects items from the ground and hoists them overhead",
    ],
    "swordplay": ["someone duels with a katana, lunging forward and back", "a person wields a saber against an enemy"],
    "wash": ["a person bathes, cleaning the legs and arms", "someone lathers the arms and the head"],
    "ballet": [
        "a person twirls elegantly, then bounds across the stage",
        "someone twirls around and bounds like a classical danseuse",
    ],
    "dribble": [
        "someone pats a hoops orb on the floor while advancing",
        "a person taps the rock against the court, heading forward",
    ],
    "basketball shot": [
        "a person pats the orb a few times and fires it at the rim",
        "someone sinks a jumper after patting the orb",
    ],
    "reach up": ["someone strains up to snatch something overhead", "a person leaps to seize a branch high above"],
}
GENERIC_WORDS = frozenset(
    "person persons do does move moves arm arms leg legs foot feet hand hands fist head knee knees face back side "
    "ground floor air left right forward backwards ahead sideways up down over around high overhead together".split()
)
# For comparison, two of each kind's own training captions: what the model does with known wording.
PROMPT_SETS: dict[str, dict[str, list[str]]] = {
    "new words": NEW_WORD_PROMPTS,
    "paraphrases": PARAPHRASE_PROMPTS,
    "training captions": {kind: captions_of_kind(kind)[:2] for kind in NEW_WORD_PROMPTS},
}
FUNCTION_TAGS = ("DET", "PRON", "ADP", "CCONJ", "SCONJ", "AUX", "PART")  # words any sentence needs


def reused_caption_words(prompt: str, kind: str) -> list[str]:
    """The prompt's content words whose lemma is a content word of the kind's captions (or their mirrors)."""
    captions = captions_of_kind(kind)
    taken = set()
    for caption in captions + [mirror_caption(c) for c in captions]:
        taken |= {lemma for lemma, tag in (t.split("/") for t in tokens(caption).split()) if tag not in FUNCTION_TAGS}
    reused = []
    for word in re.findall(r"[a-z]+", prompt.lower()):
        try:
            lemma, tag = tokens(word).split("/")
        except ValueError:  # not in the caption vocabulary at all: a new word
            continue
        if tag not in FUNCTION_TAGS and lemma in taken:
            reused.append(word)
    return reused


# --- 1. tokenizer reconstruction --------------------------------------------------------------------
@torch.no_grad()
def reconstruction_mpjpe(
    tokenizer: Tokenizer,
    motions: list[np.ndarray],
    mean: np.ndarray,
    std: np.ndarray,
    device: torch.device | str = "cpu",
) -> float:
    """Mean per-joint position error (mm) of the tokenizer's reconstructions of normalised motions.

    Each motion is used at its longest multiple of 4 frames up to 196; both sides go through
    features_to_joints, so the error is the tokenizer's alone, not the representation's.
    """
    errors = []
    for motion in motions:
        frames = usable_length(len(motion), tokenizer.config.max_frames)
        if frames == 0:
            continue
        original = motion[:frames]
        recon, _, _ = tokenizer(torch.from_numpy(original[None]).to(device))
        decoded = recon[0, :frames].float().cpu().numpy()
        joints = representation.features_to_joints(representation.denormalize(decoded, mean, std))
        target = representation.features_to_joints(representation.denormalize(original, mean, std))
        errors.append(np.linalg.norm(joints - target, axis=-1).reshape(-1))
    if not errors:
        raise ValueError("no motion of at least 4 frames to reconstruct")
    return float(np.concatenate(errors).mean() * 1000.0)


@torch.no_grad()
def codes_used(tokenizer: Tokenizer, motions: list[np.ndarray]) -> list[float]:
    """Per scale, the share of the codebook that appears in the token maps of the motions."""
    seen = [set() for _ in tokenizer.config.scales]
    for motion in motions:
        frames = usable_length(len(motion), tokenizer.config.max_frames)
        if frames == 0:
            continue
        for scale, codes in enumerate(tokenizer.encode_tokens(torch.from_numpy(motion[None, :frames]))):
            seen[scale].update(codes.flatten().tolist())
    return [len(codes) / size for codes, size in zip(seen, tokenizer.config.codebook_sizes())]


# --- 2. nearest kind ----------------------------------------------------------------------------------
def motion_descriptor(features: np.ndarray) -> np.ndarray:
    """Statistics of raw features (T, 263) that tell the demo's clips apart, whatever the length.

    Mean and spread of the root height and of the root-relative joint positions (the pose),
    mean root speed and turning rate, and mean speed of each joint.
    """
    if features.ndim != 2 or features.shape[1] != layout.FEATURE_SIZE:
        raise ValueError(f"expected features (frames, {layout.FEATURE_SIZE}), got {features.shape}")
    height, pose = features[:, 3], features[:, 4:67]
    root_speed = np.linalg.norm(features[:, 1:3], axis=1)
    turning = np.abs(features[:, 0])
    joint_speed = np.linalg.norm(features[:, 193:259].reshape(len(features), 22, 3), axis=2)
    return np.concatenate(
        [
            [height.mean(), height.std()],
            pose.mean(0),
            pose.std(0),
            [root_speed.mean(), turning.mean()],
            joint_speed.mean(0),
        ]
    )


@dataclass
class NearestClip:
    """Labels a motion with the kind of the nearest reference sample (descriptors z-scored)."""

    clips: list[str]  # the kind of each reference row
    descriptors: np.ndarray  # (N, D)
    scale: np.ndarray  # (D,) spread of each statistic over the references

    @classmethod
    def from_dataset(cls, data: Path) -> "NearestClip":
        clip_of = sample_kinds(data)
        clips, rows = [], []
        for name in layout.read_names(data, "all"):
            clips.append(clip_of[name])
            rows.append(motion_descriptor(np.load(Path(data) / "new_joint_vecs" / f"{name}.npy")))
        descriptors = np.stack(rows)
        return cls(clips, descriptors, descriptors.std(0) + 1e-6)

    def label(self, features: np.ndarray) -> str:
        distances = np.linalg.norm((self.descriptors - motion_descriptor(features)) / self.scale, axis=1)
        return self.clips[int(distances.argmin())]


def generated_features(
    pipeline: Pipeline, prompt: str, frames: int, samples: int, seed: int, sampling: SamplingOptions
) -> list[np.ndarray]:
    """Raw features (frames, 263) of `samples` generated motions."""
    from engine.pipeline import GenerateRequest

    motions = pipeline.generate(GenerateRequest(prompt, frames, seed=seed, samples=samples, sampling=sampling))
    return [representation.joints_to_features(np.asarray(m.positions)) for m in motions]


# --- prompt timelines ---------------------------------------------------------------------------
TIMELINE_ROWS = 4  # rows of each random shot, of distinct kinds
TIMELINE_ROW_SECONDS = (6, 7, 8)  # each row lasts one of these


@dataclass
class TimelineRow:
    """One row of a random shot: its kind and the nearest kind of the row and of its prompt alone."""

    kind: str
    place: int  # in the shot; the first row is a plain generation, the same motion as its prompt alone
    timeline: str
    alone: str
    timeline_after_first_second: str
    alone_after_first_second: str
    seam_jumps: bool  # the step into this row is larger than every step inside the shot's windows


def timeline_rows(
    pipeline: Pipeline,
    classifier: NearestClip,
    prompts: dict[str, str],
    shots: int,
    seed: int,
    sampling: SamplingOptions,
) -> list[TimelineRow]:
    """The rows of `shots` random prompt timelines, each judged against its prompt alone.

    A row begins with the change from the row before, which a prompt alone does not have, so
    both are also judged without their first second. Window i of a shot draws with the shot's
    seed + i, and each row here fits one window, so a row and its prompt alone share a seed.
    """
    from engine.pipeline import GenerateRequest
    from engine.timeline import LongRequest, Segment, frame_steps, generate_long, plan_windows

    def label(positions: np.ndarray) -> str:
        return classifier.label(representation.joints_to_features(positions))

    rng = np.random.default_rng(seed)
    kinds = sorted(prompts)
    rows = []
    for shot in range(shots):
        chosen = [kinds[i] for i in rng.choice(len(kinds), TIMELINE_ROWS, replace=False)]
        segments = [Segment(prompts[kind], int(rng.choice(TIMELINE_ROW_SECONDS)) * canonical.FPS) for kind in chosen]
        if len(plan_windows(segments, pipeline.max_frames, continuing=False)) != len(segments):
            raise ValueError("a timeline row must fit one window, or its window's seed is not its prompt's alone")
        shot_seed = seed + TIMELINE_ROWS * shot
        motion = generate_long(pipeline, LongRequest(segments, seed=shot_seed, sampling=sampling))
        steps = frame_steps(motion.positions)
        into_row = np.cumsum([segment.frames for segment in segments])[:-1] - 1  # the steps into rows 2, 3, ...
        largest_inside = np.delete(steps, into_row).max()
        start = 0
        for row, (kind, segment) in enumerate(zip(chosen, segments)):
            made = motion.positions[start : start + segment.frames]
            if row == 0:  # the shot's first window is a plain generation of its prompt with this seed
                alone = made
            else:
                request = GenerateRequest(segment.prompt, segment.frames, shot_seed + row, 1, sampling)
                alone = pipeline.generate(request)[0].positions
            jumps = row > 0 and bool(steps[start - 1] > largest_inside)
            labels = label(made), label(alone), label(made[canonical.FPS :]), label(alone[canonical.FPS :])
            rows.append(TimelineRow(kind, row, *labels, seam_jumps=jumps))
            start += segment.frames
    return rows


def timeline_counts(rows: list[TimelineRow]) -> dict[str, int]:
    """How many rows, how many of them each way of judging labels with their own kind, and how many
    seams jump more than any step inside their shot."""
    judged = [f.name for f in fields(TimelineRow) if f.name not in ("kind", "place", "seam_jumps")]
    counts = {"rows": len(rows)} | {name: sum(getattr(row, name) == row.kind for row in rows) for name in judged}
    return counts | {"seams": sum(row.place > 0 for row in rows), "seams_jumping": sum(row.seam_jumps for row in rows)}


# --- the report -------------------------------------------------------------------------------------
@dataclass
class Report:
    checkpoint: str
    reconstruction_mpjpe_mm: float
    reconstruction_split: str
    reconstruction_samples: int
    reconstruction_by_kind: dict[str, float]  # kind of motion -> MPJPE (mm): what the tokenizer has and has not learnt
    codebook_usage: list[float]  # live codes (EMA count >= 1) per scale
    codes_used: list[float]  # share of each scale's codebook that encoding the held-out motions uses
    guidance: float | None = None
    seconds_generated: list[int] = field(default_factory=list)  # the fixed lengths every prompt is generated at
    accuracy: dict[str, float] = field(default_factory=dict)  # prompt set -> nearest-kind accuracy, all lengths
    accuracy_by_length: dict[str, dict[str, float]] = field(default_factory=dict)  # prompt set -> "3 s" -> accuracy
    generated: dict[str, int] = field(default_factory=dict)  # prompt set -> motions judged
    per_kind: dict[str, dict[str, float]] = field(default_factory=dict)  # prompt set -> kind -> accuracy
    confusions: list[dict] = field(default_factory=list)
    timeline_shots: int = 0
    timeline: dict[str, dict[str, int]] = field(default_factory=dict)  # prompt set -> timeline_counts
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [
            f"checkpoint: {self.checkpoint}",
            "| measure | value |",
            "|---|---|",
            f"| reconstruction MPJPE ({self.reconstruction_split} split, {self.reconstruction_samples} motions) | {self.reconstruction_mpjpe_mm:.1f} mm |",
            f"| codebook usage per scale (live codes) | {', '.join(f'{u:.2f}' for u in self.codebook_usage)} |",
            f"| codes used by the {self.reconstruction_split} motions, per scale | {', '.join(f'{u:.2f}' for u in self.codes_used)} |",
        ]
        if self.reconstruction_by_kind:
            lines.append(
                "| reconstruction MPJPE by kind (mm) | "
                + ", ".join(f"{kind} {mm:.0f}" for kind, mm in self.reconstruction_by_kind.items())
                + " |"
            )
        for name, accuracy in self.accuracy.items():
            by_length = ", ".join(f"{length} {value:.3f}" for length, value in self.accuracy_by_length[name].items())
            lines.append(
                f"| nearest-kind accuracy, {name} ({self.generated[name]} motions at "
                f"{', '.join(map(str, self.seconds_generated))} s, guidance {self.guidance}) | {accuracy:.3f} ({by_length}) |"
            )
        for name, counts in self.timeline.items():
            lines.append(
                f"| timeline rows right, {name} ({counts['rows']} rows of {self.timeline_shots} random shots,"
                f" {TIMELINE_ROWS} rows of {min(TIMELINE_ROW_SECONDS)}-{max(TIMELINE_ROW_SECONDS)} s)"
                f" | {counts['timeline']}, the same prompts alone {counts['alone']}; after each row's first second"
                f" {counts['timeline_after_first_second']} and {counts['alone_after_first_second']};"
                f" seams that jump more than any step inside their shot {counts['seams_jumping']} of {counts['seams']} |"
            )
        if self.per_kind:
            names = list(self.per_kind)
            lines += ["", f"| kind | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
            for kind in self.per_kind[names[0]]:
                lines.append(f"| {kind} | {' | '.join(f'{self.per_kind[n][kind]:.2f}' for n in names)} |")
        if self.confusions:
            lines += ["", "confusions (prompt at a length -> nearest kind):"]
            lines += [
                f'- {c["set"]}, {c["kind"]}: "{c["prompt"]}" at {c["seconds"]} s -> {c["nearest"]}'
                for c in self.confusions
            ]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def evaluate(
    checkpoint_path: Path,
    data: Path,
    split: str = "test",
    samples_per_prompt: int = 2,
    seed: int = 0,
    text_to_motion: bool = True,
    guidance: float = SamplingOptions.guidance,
    seconds: tuple[int, ...] = FIXED_SECONDS,
    device: str = "cpu",
    text_encoder_path: Path | None = None,
    timeline_shots: int = 0,
    ckpt: Checkpoint | None = None,
) -> Report:
    """`ckpt`: the checkpoint at checkpoint_path when the caller has loaded it."""
    from engine import checkpoint as checkpoint_io

    started = time.perf_counter()
    if ckpt is None:
        ckpt = checkpoint_io.load(checkpoint_path, device="cpu")
    samples = layout.read_split(data, split)
    held_out = [((s.features - ckpt.mean) / ckpt.std).astype(np.float32) for s in samples]
    has_kinds = (Path(data) / "dataset.json").is_file()  # a build-dataset folder; HumanML3D itself has no kinds
    kind_of = sample_kinds(data) if has_kinds else {}
    by_kind: dict[str, list[np.ndarray]] = {}
    for sample, motion in zip(samples, held_out):
        if has_kinds:
            by_kind.setdefault(kind_of.get(sample.name, "unknown"), []).append(motion)
    report = Report(
        checkpoint=str(checkpoint_path),
        reconstruction_mpjpe_mm=reconstruction_mpjpe(ckpt.tokenizer, held_out, ckpt.mean, ckpt.std),
        reconstruction_split=split,
        reconstruction_samples=len(held_out),
        reconstruction_by_kind={
            kind: reconstruction_mpjpe(ckpt.tokenizer, motions, ckpt.mean, ckpt.std)
            for kind, motions in sorted(by_kind.items())
        },
        codebook_usage=ckpt.tokenizer.quantizer.usage(),
        codes_used=codes_used(ckpt.tokenizer, held_out),
        notes=[
            "the paper's FID / R-precision: --protocol humanml3d|motionx with Guo et al.'s evaluator (engine.protocol)"
        ],
    )
    if not has_kinds:
        report.notes.append(
            f"{data} has no dataset.json (not a build-dataset folder, e.g. HumanML3D): no kinds, so no "
            "reconstruction by kind" + (" and no text-to-motion part" if text_to_motion and ckpt.transformer else "")
        )
    if text_to_motion and ckpt.transformer is None:
        report.notes.append(
            "the checkpoint holds a tokenizer only (no transformer): no text-to-motion part "
            "(give a transformer checkpoint, or --tokenizer-only to ask for this part alone)"
        )
    if text_to_motion and ckpt.transformer is not None and has_kinds:
        from engine.pipeline import Pipeline

        pipeline = Pipeline.from_checkpoint(ckpt, device=device, text_encoder_path=text_encoder_path)
        classifier = NearestClip.from_dataset(data)
        kinds = set(classifier.clips)
        sampling = SamplingOptions(guidance=guidance)
        report.guidance, report.seconds_generated = guidance, list(seconds)
        for name, prompt_set in PROMPT_SETS.items():
            hits: dict[str, list[bool]] = {}
            by_length: dict[str, list[bool]] = {}
            for kind, prompts in prompt_set.items():
                if kind not in kinds:
                    continue
                for prompt in prompts:
                    for length in seconds:
                        frames = usable_length(round(length * canonical.FPS), canonical.MAX_FRAMES)
                        for features in generated_features(
                            pipeline, prompt, frames, samples_per_prompt, seed, sampling
                        ):
                            nearest = classifier.label(features)
                            hits.setdefault(kind, []).append(nearest == kind)
                            by_length.setdefault(f"{length} s", []).append(nearest == kind)
                            if nearest != kind:
                                report.confusions.append(
                                    {"set": name, "kind": kind, "prompt": prompt, "seconds": length, "nearest": nearest}
                                )
            if hits:
                report.per_kind[name] = {kind: float(np.mean(h)) for kind, h in hits.items()}
                report.generated[name] = sum(len(h) for h in hits.values())
                report.accuracy[name] = float(np.mean([x for h in hits.values() for x in h]))
                report.accuracy_by_length[name] = {length: float(np.mean(h)) for length, h in by_length.items()}
            first_prompts = {kind: prompts[0] for kind, prompts in prompt_set.items() if kind in kinds}
            if timeline_shots and len(first_prompts) >= TIMELINE_ROWS:
                rows = timeline_rows(pipeline, classifier, first_prompts, timeline_shots, seed, sampling)
                report.timeline[name] = timeline_counts(rows)
            elif timeline_shots:
                report.notes.append(f"no timelines for {name}: its prompts cover fewer than {TIMELINE_ROWS} kinds")
        report.timeline_shots = timeline_shots
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def shot_count(text: str) -> int:
    count = int(text)
    if count < 0:
        raise argparse.ArgumentTypeError(f"{count} shots; expected 0 or more")
    return count


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="the demo dataset (python -m engine build-dataset), or with --protocol the HumanML3D / Motion-X folder",
    )
    parser.add_argument("--split", default="test", help="held-out split for the reconstruction error")
    parser.add_argument("--samples", type=int, default=2, help="generated motions per prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--guidance", type=float, default=SamplingOptions.guidance, help="classifier-free guidance weight"
    )
    parser.add_argument(
        "--seconds", type=int, nargs="+", default=list(FIXED_SECONDS), help="lengths every prompt is generated at"
    )
    parser.add_argument(
        "--text-encoder-path",
        type=Path,
        help="the text encoder's folder (default: the installed one the checkpoint names)",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--tokenizer-only", action="store_true", help="skip the text-to-motion part")
    parser.add_argument(
        "--timeline-shots",
        type=shot_count,
        default=0,
        help="random four-row prompt timelines per prompt set, each row judged against its prompt alone"
        " (about 3 s a shot on a 2-core CPU)",
    )
    protocol.add_arguments(parser)


MAX_SECONDS = canonical.MAX_FRAMES / canonical.FPS  # the longest motion the model makes (9.8 s)


def input_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line or its files, as one line, before any work (the tokenizer
    part runs minutes before the text-to-motion part and the report is written last)."""
    from engine.cli import file_problem

    if not args.tokenizer_only:
        if args.samples < 1:
            return f"--samples {args.samples}: expected 1 or more generated motions per prompt"
        wrong = [length for length in args.seconds if not 1 <= length <= MAX_SECONDS]
        if wrong:
            return (
                f"--seconds {' '.join(map(str, wrong))}: the model makes motions of 1 to {MAX_SECONDS:g} s "
                f"({canonical.MAX_FRAMES} frames); give whole seconds from 1 to {int(MAX_SECONDS)}"
            )
    if args.json is not None and (problem := file_problem(args.json, "report.json")):
        return f"--json {args.json} {problem}"
    if not args.data.is_dir():
        return f"--data {args.data} is not a folder (a dataset in HumanML3D layout: build-dataset writes one)"
    try:
        names = layout.read_names(args.data, args.split)
    except ValueError as error:
        return str(error)
    for name in names:
        for part, suffix in (("new_joint_vecs", ".npy"), ("texts", ".txt")):
            if not (args.data / part / f"{name}{suffix}").is_file():
                return (
                    f"{args.data / f'{args.split}.txt'} names {name}, which has no {part}/{name}{suffix} in {args.data}"
                )
    return None


def run(args: argparse.Namespace) -> int:
    if args.protocol:
        return protocol.run(args)
    from engine import checkpoint as checkpoint_io

    problem = input_problem(args)
    if problem is None:
        try:
            ckpt = checkpoint_io.load(args.checkpoint, device="cpu")
        except (OSError, ValueError) as error:  # a missing, truncated or foreign file
            problem = str(error) if str(args.checkpoint) in str(error) else f"--checkpoint {args.checkpoint}: {error}"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    report = evaluate(
        args.checkpoint,
        args.data,
        args.split,
        args.samples,
        args.seed,
        not args.tokenizer_only,
        args.guidance,
        tuple(args.seconds),
        args.device,
        args.text_encoder_path,
        args.timeline_shots,
        ckpt,
    )
    print(report.table())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(report), indent=1))
    return 0
