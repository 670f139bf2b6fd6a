"""The API's request bodies: check every field against the limits and build pipeline requests.

Shared by the HTTP service and the CLI so both accept exactly the same inputs. Every rejection
is a RequestError naming the field, what it got and what it expects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import representation
from retarget import canonical

# engine.pipeline (torch) is imported inside the parse functions: the service answers health
# while torch still loads in the background, and this module is imported before that.



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
    max_prompt_chars: int = 500
    min_frames: int = 40
    max_frames: int = canonical.MAX_FRAMES
    max_samples: int = 8
    max_seed: int = 2**31 - 1
    max_guidance: float = 20.0
    max_temperature: float = 5.0


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
    source_features, source_frames = _source(body.get("source"), limits)
    return EditRequest(
        prompt=_prompt(body, limits),
        source_features=source_features,
        frame_mask=_frame_mask(body.get("frame_mask"), source_frames),
        seed=_seed(body, limits),
        samples=_int_in(body, "samples", 1, 1, limits.max_samples),
        sampling=_sampling(body, limits),
    )


def frames_for_seconds(seconds: float) -> int:
    """Seconds to a frame count the model can make: the nearest whole token (4 frames, 0.2 s)."""
    return canonical.FRAMES_PER_LATENT * round(seconds * canonical.FPS / canonical.FRAMES_PER_LATENT)


# --- fields ---------------------------------------------------------------------------------------
_SAMPLING_FIELDS = {"guidance", "temperature", "top_k", "top_p", "smooth"}
_GENERATE_FIELDS = {"prompt", "seconds", "frames", "seed", "samples"} | _SAMPLING_FIELDS
_EDIT_FIELDS = {"prompt", "source", "frame_mask", "seed", "samples"} | _SAMPLING_FIELDS


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise RequestError("bad_body", f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _known_fields(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError("unknown_field", f"unknown field(s) {unknown}; expected some of {sorted(allowed)}")


def _prompt(body: dict, limits: Limits) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise RequestError("bad_prompt", f"'prompt' must be a string, got {type(prompt).__name__}")
    prompt = prompt.strip()
    if not prompt:
        raise RequestError("bad_prompt", "'prompt' is empty; describe the motion, e.g. 'a person walks forward'")
    if len(prompt) > limits.max_prompt_chars:
        raise RequestError(
            "bad_prompt", f"'prompt' has {len(prompt)} characters; at most {limits.max_prompt_chars} are allowed"
        )
    return prompt


def _number(body: dict, name: str, default: float | None) -> float | None:
    value = body.get(name, default)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is None and default is None:
            return None
        raise RequestError(f"bad_{name}", f"'{name}' must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise RequestError(f"bad_{name}", f"'{name}' must be a finite number, got {value}")
    return float(value)


def _integer(body: dict, name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"bad_{name}", f"'{name}' must be an integer, got {value!r:.40}")
    return value


def _int_in(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = _integer(body, name, default)
    if not low <= value <= high:
        raise RequestError(f"bad_{name}", f"'{name}' is {value}; expected {low}..{high}")
    return value


def _float_in(body: dict, name: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = _number(body, name, default)
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise RequestError(f"bad_{name}", f"'{name}' is {value}; expected a value in {bracket}{low}, {high}]")
    return value


def _frames(body: dict, limits: Limits) -> int:
    if ("frames" in body) == ("seconds" in body):
        raise RequestError("bad_length", "give exactly one of 'frames' or 'seconds'")
    if "seconds" in body:
        frames = frames_for_seconds(_number(body, "seconds", None))
        source = f"'seconds' ({body['seconds']} s = {frames} frames at {canonical.FPS} fps)"
    else:
        frames = _integer(body, "frames", 0)
        source = f"'frames' ({frames})"
        if frames % canonical.FRAMES_PER_LATENT:
            raise RequestError("bad_length", f"{source} must be a multiple of {canonical.FRAMES_PER_LATENT}")
    if not limits.min_frames <= frames <= limits.max_frames:
        low, high = limits.min_frames, limits.max_frames
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
        temperature=_float_in(body, "temperature", defaults.temperature, 0.0, limits.max_temperature, low_open=True),
        top_k=_float_in(body, "top_k", defaults.top_k, 0.0, 0.99),
        top_p=_float_in(body, "top_p", defaults.top_p, 0.0, 1.0, low_open=True),
        smooth=smooth,
    )


def _array(value: Any, name: str, trailing_shape: tuple[int, ...]) -> np.ndarray:
    """A nested list as float32 with the given trailing shape and only finite values."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise RequestError("bad_source", f"'{name}' must be a nested list of numbers") from None
    if array.ndim != 1 + len(trailing_shape) or array.shape[1:] != trailing_shape:
        expected = "(frames, " + ", ".join(map(str, trailing_shape)) + ")"
        raise RequestError("bad_source", f"'{name}' has shape {array.shape}; expected {expected}")
    if not np.isfinite(array).all():
        raise RequestError("bad_source", f"'{name}' contains NaN or infinite values")
    return array


def _source(source: Any, limits: Limits) -> tuple[np.ndarray, int]:
    """The motion to edit as (features, its frame count): a canonical motion dict or raw features."""
    if isinstance(source, list):
        features = _array(source, "source", (canonical.FEATURE_SIZE,))
        frames = len(features) + 1  # features describe the steps between frames
    elif isinstance(source, dict):
        positions = _array(source.get("positions"), "source.positions", (canonical.NUM_JOINTS, 3))
        frames = len(positions)
        if source.get("features") is not None:
            features = _array(source["features"], "source.features", (canonical.FEATURE_SIZE,))
            if len(features) not in (frames - 1, frames):
                raise RequestError(
                    "bad_source", f"'source.features' has {len(features)} rows for {frames} frames; expected {frames - 1} or {frames}"
                )
        else:
            features = representation.joints_to_features(positions)
    else:
        raise RequestError(
            "bad_source",
            "'source' must be a canonical motion object (with 'positions' (frames, 22, 3)) "
            f"or a list of {canonical.FEATURE_SIZE}-value feature rows",
        )
    if not limits.min_frames <= frames <= limits.max_frames:
        raise RequestError(
            "bad_source", f"the source motion has {frames} frames; expected {limits.min_frames}..{limits.max_frames}"
        )
    return features, frames


def _frame_mask(mask: Any, frames: int) -> np.ndarray:
    if not isinstance(mask, list) or not all(isinstance(flag, bool) for flag in mask):
        raise RequestError("bad_frame_mask", "'frame_mask' must be a list of true/false, one per source frame")
    if len(mask) != frames:
        raise RequestError("bad_frame_mask", f"'frame_mask' has {len(mask)} entries; the source has {frames} frames")
    if not any(mask):
        raise RequestError("bad_frame_mask", "'frame_mask' selects no frame; mark the frames to regenerate with true")
    return np.asarray(mask, dtype=bool)
