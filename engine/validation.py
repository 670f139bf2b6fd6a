"""The API's request bodies: check every field against the limits and build pipeline requests.

Shared by the HTTP service and the CLI so both accept exactly the same inputs. Every rejection
is a RequestError naming the field, what it got and what it expects.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import representation
from retarget import canonical

if TYPE_CHECKING:
    from engine.pipeline import EditRequest, GenerateRequest, SamplingOptions
    from engine.timeline import InbetweenRequest, LongRequest

# engine.pipeline (torch) is imported inside the parse functions: the service answers health
# while torch still loads in the background, and this module is imported before that.

# The number types the sampling loop may run in (torch dtypes of these names; engine.pipeline).
PRECISIONS = ("float32", "bfloat16", "float16")


class RequestError(ValueError):
    """A request the engine will not run; `code` is a stable machine-readable name."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Lengths follow the training data (40..196 frames, 20 fps)."""

    max_body_bytes: int = 4 * 1024 * 1024  # a 196-frame source motion as JSON is under 1 MB
    # The deepest body the schema has: edit > source > positions > frame > joint.
    max_json_depth: int = 5
    max_prompt_chars: int = 500
    max_coordinate: float = 1e4  # metres (and feature values): beyond it the model only makes NaN
    min_frames: int = 40
    max_frames: int = canonical.MAX_FRAMES
    max_samples: int = 8
    max_seed: int = 2**31 - 1
    max_guidance: float = 20.0
    # Logits are divided by the temperature in float32: on the demo model 1e-37 overflowed them in 8
    # of 24 runs and 1e-38 in all (any precision, guidance 0-20), 1e-36 never. 1e-6 leaves logits a
    # factor 1e30 of headroom and already samples as a temperature near zero does (36 of 36 runs
    # identical to 1e-30), so a lower value would change nothing but the risk.
    min_temperature: float = 1e-6
    max_temperature: float = 5.0
    # Shots longer than one window (engine.timeline): a sanity bound, and prompts per timeline.
    max_shot_seconds: float = 600.0
    max_segments: int = 64

    @property
    def max_shot_frames(self) -> int:
        return int(self.max_shot_seconds * canonical.FPS)


def load_json(raw: bytes, limits: Limits, what: str = "the body") -> Any:
    """A request body (or a file the CLI reads, named by `what`) as JSON: its nesting counted on the
    raw bytes first, so that a deep body is a clear error rather than the parser's RecursionError;
    NaN and Infinity literals are refused."""
    depth = json_depth(raw)
    if depth > limits.max_json_depth:
        raise RequestError(
            "too_deep", f"{what} nests {depth} levels deep; the API needs {limits.max_json_depth} at most"
        )
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError("bad_json", f"{what} is not valid JSON: {_shorten(exc)}") from None


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects in a JSON text nest, strings aside; linear, no recursion."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_generate(body: Any, limits: Limits) -> "GenerateRequest":
    from engine.pipeline import GenerateRequest

    body = _object(body)
    _known_fields(body, _GENERATE_FIELDS)
    return GenerateRequest(
        prompt=_prompt(body, limits),
        frames=_frames(body, limits),
        seed=_seed(body, limits),
        samples=_int_in(body, "samples", 1, 1, limits.max_samples),
        sampling=_sampling(body, limits),
    )


def parse_edit(body: Any, limits: Limits) -> "EditRequest":
    from engine.pipeline import EditRequest

    body = _object(body)
    _known_fields(body, _EDIT_FIELDS)
    source_features, source_frames, source_positions = _source(body.get("source"), limits)
    return EditRequest(
        prompt=_prompt(body, limits),
        source_features=source_features,
        frame_mask=_frame_mask(body.get("frame_mask"), source_frames),
        seed=_seed(body, limits),
        samples=_int_in(body, "samples", 1, 1, limits.max_samples),
        sampling=_sampling(body, limits),
        source_positions=source_positions,
    )


def parse_timeline(body: Any, limits: Limits) -> "LongRequest":
    """A prompt timeline, or (with 'source' and 'side') an extension of a motion before or after it."""
    from engine.timeline import LongRequest

    body = _object(body)
    _known_fields(body, _TIMELINE_FIELDS)
    features = positions = None  # positions, when the source has them: the result is put where it is
    if body.get("source") is not None:
        features, frames, positions = _source(body["source"], limits, limits.max_shot_frames)
        if len(features) < frames:  # one row per frame: the last step repeated
            features = np.concatenate([features, features[-1:]])
    segments = timeline_segments(body.get("segments"), limits, 0 if features is None else len(features))
    side = body.get("side", "after")
    if side not in ("after", "before"):
        raise RequestError("bad_side", f"'side' is {_shorten(side)}; expected 'after' or 'before'")
    return LongRequest(segments, features, side, positions, seed=_seed(body, limits), sampling=_sampling(body, limits))


def timeline_segments(rows: Any, limits: Limits, source_frames: int = 0) -> list:
    """The Segment rows of a timeline from JSON-like rows {"prompt": ..., "seconds": ...}; with the
    source they extend, at most max_shot_seconds."""
    from engine.timeline import Segment

    if not isinstance(rows, list) or not 1 <= len(rows) <= limits.max_segments:
        raise RequestError(
            "bad_timeline",
            f'the timeline must be a list of 1..{limits.max_segments} {{"prompt": ..., "seconds": ...}} rows',
        )
    segments = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise RequestError(
                "bad_timeline", f'timeline row {number} is {_shorten(row)}; expected {{"prompt": ..., "seconds": ...}}'
            )
        try:
            _known_fields(row, {"prompt", "seconds"})
            prompt = _prompt(row, limits)
            if "seconds" not in row:
                raise RequestError("bad_seconds", "'seconds' is missing; give the row's length in seconds, e.g. 4")
            seconds = _float_in(row, "seconds", 0.0, 0.0, limits.max_shot_seconds, low_open=True)
        except RequestError as error:
            raise RequestError(error.code, f"timeline row {number}: {error}") from None
        segments.append(Segment(prompt, max(canonical.FRAMES_PER_LATENT, frames_for_seconds(seconds))))
    total = source_frames + sum(segment.frames for segment in segments)
    if total > limits.max_shot_frames:
        raise RequestError(
            "bad_length", f"the shot would be {total / canonical.FPS:g} s; at most {limits.max_shot_seconds:g} s"
        )
    return segments


def parse_inbetween(body: Any, limits: Limits) -> "InbetweenRequest":
    """In-betweening: the source motion's poses at 'key_frames' kept, the frames between made from the prompt."""
    from engine.timeline import InbetweenRequest, key_gap_problem
    from retarget.motion import CanonicalMotion

    body = _object(body)
    _known_fields(body, _INBETWEEN_FIELDS)
    source = body.get("source")
    if not isinstance(source, dict):
        raise RequestError("bad_source", "'source' must be a canonical motion object with 'positions' (frames, 22, 3)")
    _, frames, positions = _motion_object(source, limits, limits.max_shot_frames)
    keys = body.get("key_frames")
    if not isinstance(keys, list) or not all(isinstance(key, int) and not isinstance(key, bool) for key in keys):
        raise RequestError("bad_key_frames", "'key_frames' must be a list of frame numbers (integers)")
    keys = sorted(set(keys))
    if len(keys) < 2 or keys[0] < 0 or keys[-1] >= frames:
        raise RequestError("bad_key_frames", f"'key_frames' needs at least two distinct frames within 0..{frames - 1}")
    if keys[-1] - keys[0] + 1 > limits.max_frames:
        raise RequestError(
            "bad_key_frames",
            f"the key frames span {keys[-1] - keys[0] + 1} frames; one in-betweening covers at most {limits.max_frames}",
        )
    if problem := key_gap_problem(keys):
        raise RequestError("keys_too_close", f"'key_frames' {_shorten(keys)} {problem}")
    return InbetweenRequest(
        prompt=_prompt(body, limits),
        source=CanonicalMotion.from_positions(positions, fps=canonical.FPS),
        key_frames=keys,
        seed=_seed(body, limits),
        sampling=_sampling(body, limits),
    )


def frames_for_seconds(seconds: float) -> int:
    """Seconds to a frame count the model can make: the nearest whole token (4 frames, 0.2 s)."""
    return canonical.FRAMES_PER_LATENT * round(seconds * canonical.FPS / canonical.FRAMES_PER_LATENT)


# --- fields ---------------------------------------------------------------------------------------
_SAMPLING_FIELDS = {"guidance", "temperature", "top_k", "top_p", "smooth"}
_GENERATE_FIELDS = {"prompt", "seconds", "frames", "seed", "samples"} | _SAMPLING_FIELDS
_EDIT_FIELDS = {"prompt", "source", "frame_mask", "seed", "samples"} | _SAMPLING_FIELDS
_TIMELINE_FIELDS = {"segments", "source", "side", "seed"} | _SAMPLING_FIELDS
_INBETWEEN_FIELDS = {"prompt", "source", "key_frames", "seed"} | _SAMPLING_FIELDS


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise RequestError("bad_body", f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _known_fields(body: dict, allowed: set[str], where: str = "") -> None:
    """`where` names the object inside the body that holds the fields, e.g. "'source'"."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        inside = f" in {where}" if where else ""
        raise RequestError("unknown_field", f"unknown field(s) {unknown}{inside}; expected some of {sorted(allowed)}")


def _prompt(body: dict, limits: Limits) -> str:
    """The prompt with control and other invisible characters turned to spaces and runs of
    whitespace made one: what is left must say something, within the length limit."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise RequestError("bad_prompt", f"'prompt' must be a string, got {type(prompt).__name__}")
    if len(prompt) > limits.max_prompt_chars:
        raise RequestError(
            "bad_prompt", f"'prompt' has {len(prompt)} characters; at most {limits.max_prompt_chars} are allowed"
        )
    visible = "".join(" " if unicodedata.category(char).startswith("C") else char for char in prompt)
    prompt = " ".join(visible.split())
    if not prompt:
        raise RequestError(
            "bad_prompt",
            "'prompt' is empty once whitespace and control characters are removed; "
            "describe the motion, e.g. 'a person walks forward'",
        )
    return prompt


def _shorten(value: Any, limit: int = 40) -> str:
    """A value for an error message: a 400-digit number or a long string is cut."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(body: dict, name: str, default: float) -> float:
    """A finite float from a JSON number; an int too large for a float is out of range, not a crash."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"bad_{name}", f"'{name}' must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise RequestError(f"bad_{name}", f"'{name}' is {_shorten(value)}; far out of range") from None
    if not math.isfinite(number):
        raise RequestError(f"bad_{name}", f"'{name}' must be a finite number, got {_shorten(value)}")
    return number


def _integer(body: dict, name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"bad_{name}", f"'{name}' must be an integer, got {_shorten(value)}")
    return value


def _int_in(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = _integer(body, name, default)
    if not low <= value <= high:
        raise RequestError(f"bad_{name}", f"'{name}' is {_shorten(value)}; expected {low}..{high}")
    return value


def _float_in(body: dict, name: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = _number(body, name, default)
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise RequestError(f"bad_{name}", f"'{name}' is {_shorten(value)}; expected a value in {bracket}{low}, {high}]")
    return value


def _frames(body: dict, limits: Limits) -> int:
    if ("frames" in body) == ("seconds" in body):
        raise RequestError("bad_length", "give exactly one of 'frames' or 'seconds'")
    low, high = limits.min_frames, limits.max_frames
    if "seconds" in body:
        seconds = _number(body, "seconds", 0.0)
        # Bounded before the conversion: 1e308 seconds would overflow on the way to frames.
        frames = frames_for_seconds(seconds) if abs(seconds) <= 2 * high / canonical.FPS else None
        source = f"'seconds' ({_shorten(seconds)} s" + (
            ")" if frames is None else f" = {frames} frames at {canonical.FPS} fps)"
        )
    else:
        frames = _integer(body, "frames", 0)
        source = f"'frames' ({_shorten(frames)})"
        if frames % canonical.FRAMES_PER_LATENT:
            raise RequestError("bad_length", f"{source} must be a multiple of {canonical.FRAMES_PER_LATENT}")
    if frames is None or not low <= frames <= high:
        raise RequestError(
            "bad_length",
            f"{source} is out of range; expected {low}..{high} frames ({low / canonical.FPS:g}..{high / canonical.FPS:g} s)",
        )
    return frames


def _seed(body: dict, limits: Limits) -> int:
    return _int_in(body, "seed", 0, 0, limits.max_seed)


def _sampling(body: dict, limits: Limits) -> "SamplingOptions":
    from engine.pipeline import SamplingOptions

    defaults = SamplingOptions()
    smooth = body.get("smooth", defaults.smooth)
    if not isinstance(smooth, bool):
        raise RequestError("bad_smooth", f"'smooth' must be true or false, got {smooth!r:.40}")
    return SamplingOptions(
        guidance=_float_in(body, "guidance", defaults.guidance, 0.0, limits.max_guidance),
        temperature=_float_in(
            body, "temperature", defaults.temperature, limits.min_temperature, limits.max_temperature
        ),
        top_k=_float_in(body, "top_k", defaults.top_k, 0.0, 0.99),
        top_p=_float_in(body, "top_p", defaults.top_p, 0.0, 1.0, low_open=True),
        smooth=smooth,
    )


def _array(value: Any, name: str, trailing_shape: tuple[int, ...], limits: Limits) -> np.ndarray:
    """A nested list of JSON numbers (not strings, not booleans) as float32 with the given trailing
    shape, every value finite and within the coordinate limit."""
    expected = "(frames, " + ", ".join(map(str, trailing_shape)) + ")"
    level = [value]
    for size in (None, *trailing_shape):
        if not all(isinstance(item, list) and (size is None or len(item) == size) for item in level):
            raise RequestError("bad_source", f"'{name}' must be a nested list of numbers of shape {expected}")
        level = [leaf for item in level for leaf in item]
    if not level or not all(isinstance(leaf, (int, float)) and not isinstance(leaf, bool) for leaf in level):
        raise RequestError("bad_source", f"'{name}' must be a non-empty nested list of numbers of shape {expected}")
    try:
        array = np.asarray(level, dtype=np.float64)
    except OverflowError:
        raise RequestError("bad_source", f"'{name}' holds a number far out of range") from None
    if not np.isfinite(array).all() or np.abs(array).max() > limits.max_coordinate:
        raise RequestError("bad_source", f"'{name}' holds NaN, infinite or values beyond ±{limits.max_coordinate:g}")
    return array.astype(np.float32).reshape(-1, *trailing_shape)


def _source(source: Any, limits: Limits, max_frames: int | None = None) -> tuple[np.ndarray, int, np.ndarray | None]:
    """The motion to edit as (features, its frame count, its joint positions if it has them): a
    canonical motion dict or raw features."""
    if isinstance(source, list):
        features = _array(source, "source", (canonical.FEATURE_SIZE,), limits)
        frames = _frames_in_range(len(features) + 1, limits, max_frames)  # features describe the steps between frames
        return features, frames, None
    if isinstance(source, dict):
        return _motion_object(source, limits, max_frames)
    raise RequestError(
        "bad_source",
        "'source' must be a canonical motion object (with 'positions' (frames, 22, 3)) "
        f"or a list of {canonical.FEATURE_SIZE}-value feature rows",
    )


# The fields of a canonical motion dict (CanonicalMotion.to_dict). Rotations and root translation
# follow from the positions, which are what the engine reads; given, they are checked all the same.
_SOURCE_FIELDS = {"fps", "joint_names", "parents", "positions", "rotations", "root_translation", "features"}


def _motion_object(source: dict, limits: Limits, max_frames: int | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """A canonical motion dict as (features, frame count, positions): at the engine's frame rate, on
    its skeleton, and a body's motion (features from positions that stand still are not finite)."""
    _known_fields(source, _SOURCE_FIELDS, "'source'")
    fps = source.get("fps", canonical.FPS)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps != canonical.FPS:
        raise RequestError(
            "bad_source",
            f"'source.fps' is {_shorten(fps)}; the engine takes motion at {canonical.FPS} fps: resample the motion "
            f"to {canonical.FPS} fps first (frame masks and key frames count its frames at that rate)",
        )
    for name, expected in (("joint_names", canonical.JOINT_NAMES), ("parents", canonical.PARENTS.tolist())):
        if name in source and source[name] != expected:
            raise RequestError(
                "bad_source", f"'source.{name}' is {_shorten(source[name])}; expected the canonical {expected} or none"
            )
    positions = _array(source.get("positions"), "source.positions", (canonical.NUM_JOINTS, 3), limits)
    frames = _frames_in_range(len(positions), limits, max_frames)
    for name, trailing in (("rotations", (canonical.NUM_JOINTS, 4)), ("root_translation", (3,))):
        if source.get(name) is not None and len(_array(source[name], f"source.{name}", trailing, limits)) != frames:
            raise RequestError("bad_source", f"'source.{name}' does not have one row per frame of the positions")
    if source.get("features") is not None:
        features = _array(source["features"], "source.features", (canonical.FEATURE_SIZE,), limits)
        if len(features) not in (frames - 1, frames):
            raise RequestError(
                "bad_source",
                f"'source.features' has {len(features)} rows for {frames} frames; expected {frames - 1} or {frames}",
            )
    else:
        with np.errstate(all="ignore"):
            features = representation.joints_to_features(positions)
        if not np.isfinite(features).all():
            raise RequestError("bad_source", "'source.positions' is not a body's motion: its features are not finite")
    return features, frames, positions


def _frames_in_range(frames: int, limits: Limits, max_frames: int | None = None) -> int:
    """`frames` when a source may have it: one window (an edit) unless `max_frames` says more."""
    high = max_frames or limits.max_frames
    if not limits.min_frames <= frames <= high:
        raise RequestError("bad_source", f"the source motion has {frames} frames; expected {limits.min_frames}..{high}")
    return frames


def _frame_mask(mask: Any, frames: int) -> np.ndarray:
    if not isinstance(mask, list) or not all(isinstance(flag, bool) for flag in mask):
        raise RequestError("bad_frame_mask", "'frame_mask' must be a list of true/false, one per source frame")
    if len(mask) != frames:
        raise RequestError("bad_frame_mask", f"'frame_mask' has {len(mask)} entries; the source has {frames} frames")
    if not any(mask):
        raise RequestError("bad_frame_mask", "'frame_mask' selects no frame; mark the frames to regenerate with true")
    return np.asarray(mask, dtype=bool)
