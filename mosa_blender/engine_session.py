"""One engine per Blender session: started on first use, reused, restarted after a crash, stopped on quit."""

from __future__ import annotations

import atexit
from pathlib import Path

from .engine_client import EngineClient
from .engine_process import DEFAULT_ENGINE_ROOT, EngineProcess

_process: EngineProcess | None = None


def default_checkpoint() -> str:
    return str(Path(DEFAULT_ENGINE_ROOT) / "engine" / "checkpoints" / "demo.pt")


def connect(prefs, log_dir: Path, checkpoint: str | None = None) -> tuple[EngineClient, str | None]:
    """A client for the engine the preferences name, on `checkpoint` (default: the preferences'
    file, else the demo model), and a sentence when something changed (started, reused,
    restarted after a crash or on another model) that the operator reports."""
    global _process
    if prefs.engine_mode == "REMOTE":
        return EngineClient(prefs.remote_url, prefs.remote_token), None
    python, checkpoint = prefs.resolved_python(), checkpoint or prefs.checkpoint or default_checkpoint()
    if _process is not None and (_process.python, _process.checkpoint, _process.device) != (
        python,
        checkpoint,
        prefs.device,
    ):
        _process.stop()  # settings changed: the next engine runs with the new ones
        _process = None
    if _process is None:
        _process = EngineProcess(python, checkpoint, device=prefs.device, log_dir=log_dir)
    news = _process.ensure_running()
    return _process.client(), news


def stop() -> None:
    """Stop the engine this session started (Blender quitting, the add-on unloading)."""
    global _process
    if _process is not None:
        _process.stop()
        _process = None


atexit.register(stop)
