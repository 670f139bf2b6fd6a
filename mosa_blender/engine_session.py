"""One engine per Blender session: started early or on first use, reused, restarted after a crash, stopped on quit.

Starting early (`start_early`) launches the process and leaves the waiting to a thread, so
Blender's UI never waits for the engine; the thread follows the model's loading through
/v1/health and keeps a one-line `readiness` the panel shows. A lock keeps the early start and a
first Generate from starting two.
"""

from __future__ import annotations

import atexit
import threading
import time
import urllib.parse
from pathlib import Path

from .engine_client import EngineClient, EngineError, EngineUnavailable
from .engine_process import DEFAULT_ENGINE_ROOT, EngineProcess

HEALTH_POLL_S = 0.2  # how often the early start looks at the model's loading

_process: EngineProcess | None = None
_lock = threading.Lock()  # held while the engine is started, stopped or swapped
readiness = "not started"  # what the early start saw last, for the panel
_stops = 0  # how many times stop() ran: an early start asked before the last stop does not start


def default_checkpoint() -> str:
    return str(Path(DEFAULT_ENGINE_ROOT) / "engine" / "checkpoints" / "demo.pt")


def connect(prefs, log_dir: Path, checkpoint: str | None = None) -> tuple[EngineClient, str | None]:
    """A client for the engine the preferences name, on `checkpoint` (default: the preferences'
    file, else the demo model), and a sentence when something changed (started, reused,
    restarted after a crash or on another model) that the operator reports."""
    if prefs.engine_mode == "REMOTE":
        return EngineClient(remote_url(prefs.remote_url), prefs.remote_token), None
    checkpoint = checkpoint or prefs.checkpoint or default_checkpoint()
    with _lock:
        process = _process_for(prefs.resolved_python(), checkpoint, prefs.device, log_dir)
        news = process.ensure_running()
        return process.client(), news


def remote_url(url: str) -> str:
    """The preferences' remote URL, refused in words when it cannot name an engine (requests
    reads port 0 as 80, and 'gpu-box:8765' as a URL scheme)."""
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # out of range
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ValueError(f"the remote URL {url!r} is not an address like http://gpu-box:8765")
    return url.strip()


def start_early(python: str, checkpoint: str, device: str, log_dir: Path) -> threading.Thread:
    """Launch the local engine's process here (the caller's thread must outlive it: Blender's
    main thread), then return a thread that waits for its port and follows the model's loading
    until it is loaded or failed, keeping `readiness` up to date. A Generate meanwhile waits
    only for the port, then for the model inside its job, like any job does."""
    global readiness
    readiness = "starting"
    with _lock:
        process = _process_for(python, checkpoint, device, log_dir)
        try:
            process.launch()
        except (EngineUnavailable, EngineError, OSError) as failure:
            readiness = f"not running: {str(failure).splitlines()[0]}"
            process = None  # nothing to follow
    thread = threading.Thread(target=_follow, args=(process, _stops), name="mosa-engine-start", daemon=True)
    thread.start()
    return thread


def _follow(process: EngineProcess | None, stops_when_launched: int) -> None:
    """The launched engine's port, then its health until the model is loaded (see start_early)."""
    global readiness
    try:
        with _lock:
            if _stops != stops_when_launched or _process is not process:  # stopped or swapped meanwhile
                return
            process.await_listening()
            client = process.client(timeout_s=5.0)
        while _process is process:
            health = client.health()
            if health["ready"]:
                readiness = f"ready: {health['model']} on {health['device']}"
                return
            if "error" in health:
                readiness = f"the model did not load: {health['error']}"
                return
            readiness = f"{health['loading']['message']} ({health['loading']['progress']:.0%})"
            time.sleep(HEALTH_POLL_S)
    except (EngineUnavailable, EngineError, OSError, RuntimeError) as failure:  # never started, or died
        readiness = f"not running: {str(failure).splitlines()[0]}"


def _process_for(python: str, checkpoint: str, device: str, log_dir: Path) -> EngineProcess:
    """The session's engine for these settings, running or not (call with the lock held)."""
    global _process
    if _process is not None and (_process.python, _process.checkpoint, _process.device) != (python, checkpoint, device):
        _process.stop()  # settings changed: the next engine runs with the new ones
        _process = None
    if _process is None:
        _process = EngineProcess(python, checkpoint, device=device, log_dir=log_dir)
    return _process


def stop() -> None:
    """Stop the engine this session started (Blender quitting, the add-on unloading); waits for
    an early start under way, so that no engine outlives the add-on."""
    global _process, readiness, _stops
    with _lock:
        _stops += 1
        if _process is not None:
            _process.stop()
            _process = None
        readiness = "not started"


atexit.register(stop)
