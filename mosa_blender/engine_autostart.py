"""Start the engine before the first click: just after the add-on is enabled (Blender starting
with it on, or the user enabling it), or when the panel first draws.

The start runs on a thread (engine_session.start_early), so Blender never waits for it; a timer
here copies the thread's readiness into the panel's engine line until the model is loaded.
Nothing starts early for a remote engine, with the preference off, before the engine's Python is
set up or the chosen model installed (the first Generate then says what is missing), nor on
enable in background mode (scripts and tests start the engine when they need it).
"""

from __future__ import annotations

import threading
from pathlib import Path

import bpy

from . import engine_session, model_ops, preferences

READINESS_POLL_S = 0.25

_asked = False  # once per session: after Stop Engine, the panel's next draw does not start it again
_starting: threading.Thread | None = None


def on_enable() -> None:
    if not bpy.app.background:
        _ask()


def on_panel_draw() -> None:
    if not _asked:
        _ask()


def _ask() -> None:
    """Start on a timer: a panel's draw may not change any data, and on enable the preferences are not there yet."""
    global _asked
    _asked = True
    bpy.app.timers.register(_start_from_timer, first_interval=0.0)


def _start_from_timer() -> None:
    start(bpy.context)


def start(context: bpy.types.Context) -> threading.Thread | None:
    """Start the local engine now on a thread and return it; None when nothing should start."""
    global _starting
    prefs = preferences.get(context)
    if prefs.engine_mode != "LOCAL" or not prefs.start_engine_early:
        return None
    python = prefs.resolved_python()
    if not Path(python).is_file():
        return None
    try:
        checkpoint = model_ops.chosen_checkpoint(context)
    except RuntimeError:
        return None
    _starting = engine_session.start_early(python, checkpoint, prefs.device, preferences.user_dir())
    if not bpy.app.timers.is_registered(_show_readiness):
        bpy.app.timers.register(_show_readiness, first_interval=READINESS_POLL_S)
    return _starting


def _show_readiness() -> float | None:
    """The early start's progress on the panel's engine line; runs until the model is loaded."""
    context = bpy.context
    context.window_manager.mosa_session.status = engine_session.readiness
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
    return READINESS_POLL_S if _starting is not None and _starting.is_alive() else None


def register() -> None:
    on_enable()


def unregister() -> None:
    global _asked, _starting
    for timer in (_start_from_timer, _show_readiness):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    _asked, _starting = False, None
