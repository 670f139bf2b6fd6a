"""Motions longer than the model's window, and motions that pass through an animator's key poses.

The model makes at most 196 frames (9.8 s). A longer shot is built window by window with MoSa's
prefix completion (mosa-spec.md section 4): each window starts with the last frames of the motion
so far, kept (the edit mask is off there), and generates the rest from its own prompt. A row's
first window keeps only ROW_OVERLAP_FRAMES (two of the finest scale's tokens: the pose and how it
moves), so that the new prompt takes over at once; a long row's next window keeps
WINDOW_OVERLAP_FRAMES, so that it goes on the same way.
Extending a motion is the same loop from the motion's end (suffix) or, mirrored, from its start.

HumanML3D features are relative (root yaw and ground velocity in the body's frame, root height,
root-relative joints), so windows join by concatenating feature rows: integrating the root over
the whole sequence carries position and facing across every seam. The window's decode of the kept
frames differs a little from the frames themselves (the tokenizer's reconstruction error), so the
first generated rows take that difference, fading out over SEAM_BLEND_FRAMES: the motion so far is
never changed, and the seam has no jump. The decode can still turn from the kept pose to the new
motion in one fast step, so the first SEAM_EASE_FRAMES steps are in-betweened from the last frame.

In-betweening edits the frames between the key frames with the keys' tokens kept, then warps the
result (Witkin and Popovic's motion warping) so that every key frame is the keyed pose exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine import representation
from engine.generate import SamplingOptions
from engine.pipeline import EditRequest, GenerateRequest, Pipeline, Progress
from engine.tokenizer import FRAMES_PER_LATENT
from retarget.motion import CanonicalMotion

# Frames of the motion so far that a window keeps. With 2 s, a new row's first second went on with
# the row before. On 40 random four-row shots (seeds 200-239, not the tests'), 0.4 s made rows the
# right kind more often: 146 against 136 of 160 on training captions, 53 against 48 on paraphrases.
ROW_OVERLAP_FRAMES = 8  # a new row (or an extension): 0.4 s, two tokens
WINDOW_OVERLAP_FRAMES = 40  # the next window of a row longer than one window: 2 s
SEAM_BLEND_FRAMES = 16  # generated rows over which the kept frames' reconstruction error fades out
SEAM_EASE_FRAMES = 4  # steps over which a new window's first step is spread
KEY_HOLD_FRAMES = 2  # frames each side of a key frame whose tokens the in-betweening edit keeps
# Neighbouring keys this far apart leave one frame between their held frames for the model to make
# (keys 5 apart left none: the edit had nothing to regenerate and failed).
MIN_KEY_GAP = 2 * KEY_HOLD_FRAMES + 2

ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Segment:
    """One row of a prompt timeline."""

    prompt: str
    frames: int  # a positive multiple of 4


@dataclass(frozen=True)
class Window:
    """One run of the model: `kept` frames of the motion so far, then `new` generated ones."""

    prompt: str
    kept: int
    new: int
    segment: int  # index of the segment the new frames belong to


@dataclass
class LongRequest:
    """A timeline, or an extension of `source_features` before or after it."""

    segments: list[Segment]
    source_features: np.ndarray | None = None  # (frames, 263) raw features to continue
    side: str = "after"  # "after": suffix completion; "before": prefix completion
    source_positions: np.ndarray | None = None  # (frames, 22, 3): where the source is; the result is put there too
    seed: int | None = None  # window i uses seed + i
    sampling: SamplingOptions = field(default_factory=SamplingOptions)


@dataclass
class InbetweenRequest:
    """Key poses to pass through: the source's poses at `key_frames`, the frames between from the prompt."""

    prompt: str
    source: CanonicalMotion
    key_frames: list[int]
    seed: int | None = None
    sampling: SamplingOptions = field(default_factory=SamplingOptions)


def plan_windows(
    segments: list[Segment],
    max_frames: int,
    continuing: bool,
    row_overlap: int = ROW_OVERLAP_FRAMES,
    window_overlap: int = WINDOW_OVERLAP_FRAMES,
) -> list[Window]:
    """The model runs that make the segments, in order; a segment longer than one window takes several."""
    if not segments:
        raise ValueError("a timeline needs at least one segment (a prompt and a length)")
    for overlap in (row_overlap, window_overlap):
        if overlap % FRAMES_PER_LATENT or not 0 < overlap < max_frames:
            raise ValueError(f"overlap {overlap} must be a multiple of {FRAMES_PER_LATENT} between 0 and {max_frames}")
    windows: list[Window] = []
    for index, segment in enumerate(segments):
        if not isinstance(segment.frames, int) or segment.frames <= 0 or segment.frames % FRAMES_PER_LATENT:
            raise ValueError(f"segment {index + 1} has {segment.frames!r} frames; expected a positive multiple of 4")
        remaining = segment.frames
        while remaining:
            if remaining < segment.frames:  # the row's next window
                kept = window_overlap
            elif windows or continuing:  # the row's first, after motion already made
                kept = row_overlap
            else:  # the very first window: a plain generation
                kept = 0
            new = min(remaining, max_frames - kept)
            windows.append(Window(segment.prompt, kept, new, index))
            remaining -= new
    return windows


def generate_long(
    pipeline: Pipeline,
    request: LongRequest,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> CanonicalMotion:
    """One motion over all segments (after or before the source, if there is one).

    The source's own rows come back unchanged in the result's features; progress counts the
    scales of all windows together.
    """
    if request.side not in ("after", "before"):
        raise ValueError(f"side is {request.side!r}; expected 'after' or 'before'")
    features = _source_rows(request.source_features)
    # Prefix completion is suffix completion of the time-reversed order of windows: each window
    # keeps the start of the motion so far and generates what comes before it.
    windows = plan_windows(request.segments, pipeline.max_frames, continuing=len(features) > 0)
    if len(features) and len(features) < windows[0].kept:
        raise ValueError(f"the motion to extend has {len(features)} frames; at least {windows[0].kept} are needed")
    seed = secrets.randbits(31) if request.seed is None else request.seed
    scales = len(pipeline.transformer.config.scales)
    for index, window in enumerate(windows):
        report = None
        if on_progress is not None:

            def report(progress: Progress, done: int = index * scales) -> None:
                on_progress(Progress(done + progress.step, len(windows) * scales, progress.preview_joints))

        features = _run_window(
            pipeline, features, window, request.side, seed + index, request.sampling, report, should_cancel
        )
    motion = representation.features_to_motion(features)
    if request.source_positions is None:
        return motion
    # Decoded features start at the origin facing +Z; the source was somewhere else. The seam frame
    # (the source's last frame after it, its first before it) goes where it was in the source.
    source_frames = len(request.source_positions)
    seam, seam_in_result = (
        (source_frames - 1, source_frames - 1) if request.side == "after" else (0, len(features) - source_frames)
    )
    positions = representation.align_on_frames(motion.positions, request.source_positions, [seam_in_result], [seam])
    return CanonicalMotion.from_positions(positions.astype(np.float32), fps=motion.fps, features=motion.features)


def _run_window(
    pipeline: Pipeline,
    features: np.ndarray,
    window: Window,
    side: str,
    seed: int,
    sampling: SamplingOptions,
    on_progress,
    should_cancel,
) -> np.ndarray:
    """The motion so far with one window's new frames joined at `side`."""
    if window.kept == 0:
        request = GenerateRequest(window.prompt, window.new, seed, 1, sampling)
        return _rows(pipeline.generate(request, on_progress, should_cancel)[0])
    kept = features[-window.kept :] if side == "after" else features[: window.kept]
    # The frames to generate start as the nearest kept pose held still; the model replaces them.
    filler = np.repeat(kept[-1:] if side == "after" else kept[:1], window.new, axis=0)
    generated = np.ones(window.kept + window.new, dtype=bool)
    if side == "after":
        source, generated[: window.kept] = np.concatenate([kept, filler]), False
    else:
        source, generated[window.new :] = np.concatenate([filler, kept]), False
    request = EditRequest(window.prompt, source, generated, seed, 1, sampling)
    decoded = _rows(pipeline.edit(request, on_progress, should_cancel)[0])
    if side == "after":
        new = decoded[window.kept :] + fade(features[-1] - decoded[window.kept - 1], window.new)
        return np.concatenate([features, ease_in(features[-1], new)])
    new = decoded[: window.new] + fade(features[0] - decoded[window.new], window.new)[::-1]
    return np.concatenate([ease_in(features[0], new[::-1])[::-1], features])


def ease_in(last: np.ndarray, new: np.ndarray, rows: int = SEAM_EASE_FRAMES) -> np.ndarray:
    """`new` (the frames after `last`, in order) with its first `rows - 1` frames replaced by a linear
    in-between from `last` to its frame number `rows`: a fast first step is spread over `rows` steps."""
    rows = min(rows, len(new))
    weight = (np.arange(1, rows) / rows)[:, None]
    eased = new.copy()
    eased[: rows - 1] = (1 - weight) * last[None] + weight * new[rows - 1][None]
    return eased


def frame_steps(positions: np.ndarray) -> np.ndarray:
    """(T - 1,) per frame-to-frame step of joint positions (T, J, 3), the largest joint displacement:
    the measure a seam's step is held to against the steps inside the windows."""
    return np.linalg.norm(np.diff(positions, axis=0), axis=-1).max(axis=1)


def fade(offset: np.ndarray, rows: int, blend: int = SEAM_BLEND_FRAMES) -> np.ndarray:
    """(rows, 263): `offset` on the first row, falling linearly to zero after `blend` rows."""
    weight = np.clip(1.0 - np.arange(rows) / blend, 0.0, 1.0)
    return (weight[:, None] * offset[None]).astype(np.float32)


def _rows(motion: CanonicalMotion) -> np.ndarray:
    """The raw feature rows of a pipeline result, one per frame."""
    return np.asarray(motion.features, dtype=np.float32)


def _source_rows(source_features: np.ndarray | None) -> np.ndarray:
    if source_features is None:
        return np.zeros((0, representation.FEATURE_SIZE), np.float32)
    features = np.asarray(source_features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != representation.FEATURE_SIZE or not np.isfinite(features).all():
        raise ValueError(f"source features have shape {features.shape}; expected finite (frames, 263)")
    return features


# --- in-betweening to key poses -------------------------------------------------------------------------------------
def inbetween(
    pipeline: Pipeline,
    source: CanonicalMotion,
    key_frames: list[int],
    prompt: str,
    seed: int | None = None,
    sampling: SamplingOptions | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> CanonicalMotion:
    """A motion that passes through the source's poses at `key_frames` and follows the prompt between them.

    Frames outside the first and last key are the source's own. The edit keeps the tokens around
    each key, so the model moves towards the keyed poses; the warp then makes each key exact.
    """
    keys = sorted(set(int(k) for k in key_frames))
    frames, window = source.frames, pipeline.max_frames
    if len(keys) < 2 or keys[0] < 0 or keys[-1] >= frames:
        raise ValueError(f"in-betweening needs at least two key frames within 0..{frames - 1}; got {key_frames}")
    if keys[-1] - keys[0] + 1 > window:
        raise ValueError(f"the keys span {keys[-1] - keys[0] + 1} frames; in-betweening handles up to {window} at once")
    if problem := key_gap_problem(keys):
        raise ValueError(f"key frames {keys} {problem}")
    # One window around the keys, the source's frames on both sides as context.
    start = max(0, min(keys[0] - (window - (keys[-1] - keys[0] + 1)) // 2, frames - window))
    end = min(frames, start + window)
    targets = np.asarray(source.positions[start:end], dtype=np.float64)
    local_keys = [key - start for key in keys]
    features = representation.joints_to_features(targets)  # one row short; the edit repeats the last
    regenerate = np.zeros(end - start, dtype=bool)
    regenerate[local_keys[0] : local_keys[-1] + 1] = True
    for key in local_keys:
        regenerate[max(0, key - KEY_HOLD_FRAMES) : key + KEY_HOLD_FRAMES + 1] = False
    request = EditRequest(prompt, features, regenerate, seed, 1, sampling or SamplingOptions())
    generated = pipeline.edit(request, on_progress, should_cancel)[0]
    # The generated motion starts at the origin facing +Z, as every decode does; the source's key
    # frames are where the animator put them, so warp in the source's space.
    aligned = representation.align_on_frames(generated.positions, targets, [local_keys[0]])
    positions = np.array(source.positions, dtype=np.float32)
    first, last = keys[0], keys[-1] + 1
    positions[first:last] = warp_to_keys(aligned, targets, local_keys)[local_keys[0] : local_keys[-1] + 1]
    return CanonicalMotion.from_positions(positions, fps=source.fps)


def key_gap_problem(keys: list[int]) -> str | None:
    """Why sorted key frames leave the in-betweening nothing to generate (words that follow the keys), or None."""
    if any(after - before >= MIN_KEY_GAP for before, after in zip(keys, keys[1:])):
        return None
    return (
        f"leave no frame to generate: each key keeps its pose {KEY_HOLD_FRAMES} frames either side, "
        f"so at least two neighbouring keys must be {MIN_KEY_GAP} or more frames apart"
    )


def warp_to_keys(positions: np.ndarray, targets: np.ndarray, keys: list[int]) -> np.ndarray:
    """Positions (T, 22, 3) plus a smooth per-joint offset that is exactly targets - positions at each key.

    Between two keys the offset eases from one key's to the next (smoothstep), so the warp adds
    no velocity at the keys themselves; the root-relative pose and the root path are warped alike.
    """
    positions = np.asarray(positions, dtype=np.float64)
    offsets = np.asarray(targets, dtype=np.float64)[keys] - positions[keys]
    warped = positions.copy()
    for (start, end), (before, after) in zip(zip(keys, keys[1:]), zip(offsets, offsets[1:])):
        t = np.linspace(0.0, 1.0, end - start + 1)
        ease = (t * t * (3.0 - 2.0 * t))[:, None, None]
        warped[start : end + 1] = positions[start : end + 1] + (1.0 - ease) * before + ease * after
    return warped.astype(np.float32)
