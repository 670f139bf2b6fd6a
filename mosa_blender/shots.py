"""Shots longer than one window, in scene terms: a prompt timeline's segments, the frames an
extension adds, and key frames for in-betweening. Plain Python and numpy (no bpy).

The engine works in canonical frames (20 fps) from the motion's first frame; the scene has its
own fps and the action its own first frame.
"""

from __future__ import annotations

import numpy as np


def segments_from_rows(rows: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The Prompt Timeline's rows as (prompt, seconds) segments; a row without a prompt is an error."""
    if not rows:
        raise ValueError("The Prompt Timeline is empty: add a row (a prompt and its length)")
    for number, (prompt, seconds) in enumerate(rows, 1):
        if not prompt.strip():
            raise ValueError(f"Row {number} of the Prompt Timeline has no prompt")
        if seconds <= 0:
            raise ValueError(f"Row {number} of the Prompt Timeline lasts {seconds:g} s; give it a length")
    return [(prompt.strip(), float(seconds)) for prompt, seconds in rows]


def segments_from_markers(markers: list[tuple[int, str]], end_frame: int, scene_fps: float) -> list[tuple[str, float]]:
    """Timeline markers named with prompts as segments: each lasts until the next marker, the last
    until `end_frame` (the scene's end); markers without a name are skipped, with a clear error
    when none is left."""
    named = sorted((frame, name.strip()) for frame, name in markers if name.strip())
    if not named:
        raise ValueError("No timeline marker is named with a prompt: add markers and name them (F2 in the timeline)")
    ends = [frame for frame, _ in named[1:]] + [end_frame + 1]
    segments = []
    for (frame, prompt), end in zip(named, ends):
        if end == frame:
            raise ValueError(f"Two markers named with prompts are at frame {frame}: move or rename one of them")
        if end < frame:
            raise ValueError(f"The marker '{prompt}' at frame {frame} is at or after the scene's end ({end_frame})")
        segments.append((prompt, (end - frame) / scene_fps))
    return segments


def shot_label(segments: list[tuple[str, float]]) -> str:
    """A name for the action a timeline makes: its first prompt and how many follow."""
    first = segments[0][0]
    return first if len(segments) == 1 else f"{first} + {len(segments) - 1} more"


def added_scene_frames(result_frames: int, source_frames: int, scene_fps: float, canonical_fps: float) -> int:
    """How many scene frames an extension adds: its canonical frames at the scene's rate."""
    return int(round((result_frames - source_frames) / canonical_fps * scene_fps))


def canonical_key_frames(
    scene_keys: list[float], action_start: float, scene_fps: float, canonical_frames: int, canonical_fps: float
) -> list[int]:
    """Selected key frames (scene frames) as the canonical frames nearest them, each once, in order."""
    frames = np.round((np.asarray(scene_keys, dtype=float) - action_start) / scene_fps * canonical_fps).astype(int)
    keys = sorted(set(int(frame) for frame in frames if 0 <= frame < canonical_frames))
    if len(keys) < 2:
        raise ValueError("Select keys on at least two different frames inside the action to in-between them")
    return keys
