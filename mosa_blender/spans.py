"""The frame span to regenerate and the seams around it. Plain numpy (no bpy).

Scene frames run at the scene's fps from the action's first frame; the engine edits canonical
frames at 20 fps. The mask says which canonical frames the engine may regenerate.
"""

from __future__ import annotations

import numpy as np

from .vendored import rotations  # the vendored copy inside the extension


def default_span(preview_range: tuple[int, int] | None, selected_key_frames: list[float]) -> tuple[int, int] | None:
    """The span the user most likely means: the preview range if set, else the selected keys' span."""
    if preview_range is not None:
        return preview_range
    if selected_key_frames:
        return int(np.floor(min(selected_key_frames))), int(np.ceil(max(selected_key_frames)))
    return None


def canonical_mask(
    span: tuple[float, float], action_start: float, scene_fps: float, canonical_frames: int, canonical_fps: float = 20.0
) -> np.ndarray:
    """Boolean mask over the canonical frames whose time falls inside the scene-frame span."""
    start, end = span
    if end < start:
        raise ValueError(f"the span {span} ends before it starts; expected (first frame, last frame)")
    times = np.arange(canonical_frames) / canonical_fps
    first, last = (start - action_start) / scene_fps, (end - action_start) / scene_fps
    mask = (times >= first - 1e-6) & (times <= last + 1e-6)
    if not mask.any():
        raise ValueError(
            f"frames {start}..{end} lie outside the motion (frames {action_start}.."
            f"{action_start + (canonical_frames - 1) / canonical_fps * scene_fps:.0f}); pick a span inside it"
        )
    return mask


def seam_weights(inside: np.ndarray, blend_frames: int) -> np.ndarray:
    """Per-frame weight of the new motion: 0 outside, easing up over `blend_frames` inside each seam."""
    inside = np.asarray(inside, dtype=bool)
    weights = inside.astype(np.float64)
    indices = np.flatnonzero(inside)
    if len(indices) == 0 or blend_frames <= 0:
        return weights
    # Distance (in frames) from each inside frame to the nearest outside frame, counting from 1.
    outside = np.flatnonzero(~inside)
    if len(outside):
        distance = np.min(np.abs(indices[:, None] - outside[None, :]), axis=1)
        ramp = np.clip(distance / (blend_frames + 1), 0.0, 1.0)
        weights[indices] = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no kink where the blend starts or ends
    return weights


def seam_width(seam_gap: float, step_budget: float, minimum: int, maximum: int) -> int:
    """Frames to blend over so the ramp adds at most `step_budget` per frame to the motion's own
    movement (the budget: the source's largest step minus how fast things move at the seam)."""
    if step_budget <= 0:
        return max(minimum, maximum)
    needed = int(np.ceil(1.5 * seam_gap / step_budget)) - 1  # smoothstep's steepest step is 1.5x the mean
    return int(np.clip(needed, minimum, max(minimum, maximum)))


def blend_rotations(source: np.ndarray, generated: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Slerp per frame from the source (weight 0) to the generated quaternions (weight 1)."""
    return rotations.slerp(source, generated, np.asarray(weights)[:, None])


def blend_locations(source: np.ndarray, generated: np.ndarray, weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights)[:, None]
    return (1.0 - weights) * source + weights * generated
