"""Start, reuse, restart and stop the engine subprocess. Plain Python (no bpy).

The engine runs in its own Python (with torch) as `python -m engine serve --port 0`; it prints
one JSON line with the port it bound. A fresh random token goes to a 0600 file that only this
user can read. A state file beside it lets a reloaded add-on reuse the engine already running.
Token and state files are named after the Blender process, so two Blender sessions of one user
each keep their own engine: sharing one folder, each used to overwrite the other's token, take
the other's engine for a hung one and kill it. The log is shared; its lines carry the engine's pid.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from .engine_client import EngineClient, EngineError, EngineUnavailable

# The folder holding engine/ and retarget/: inside the built extension, or the checkout's root.
_PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_ENGINE_ROOT = _PACKAGE_DIR if (_PACKAGE_DIR / "engine").is_dir() else _PACKAGE_DIR.parent


class EngineStartError(RuntimeError):
    """The engine did not come up; the message ends with the tail of its log."""


class EngineProcess:
    def __init__(
        self,
        python: str,
        checkpoint: str,
        device: str = "auto",
        log_dir: str | os.PathLike = "",
        engine_root: str | os.PathLike = DEFAULT_ENGINE_ROOT,
        start_timeout_s: float = 120.0,
        serve_options: tuple[str, ...] = (),
    ) -> None:
        self.python, self.checkpoint, self.device = python, str(checkpoint), device
        self.serve_options = serve_options  # more `engine serve` options (the bench's --max-batch)
        self.log_dir = Path(log_dir or Path.home() / ".cache" / "mosa-blender" / "engine")
        self.engine_root = Path(engine_root)
        self.start_timeout_s = start_timeout_s
        session = f"engine-{os.getpid()}"
        self.token_file = self.log_dir / f"{session}.token"
        self.state_file = self.log_dir / f"{session}.json"
        self.stderr_file = self.log_dir / f"{session}.stderr"
        self.log_file = self.log_dir / "engine.log"
        self.pid: int | None = None
        self.port: int | None = None
        self._popen: subprocess.Popen | None = None
        self._launched = False  # a process started whose 'listening' line is not read yet

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise EngineUnavailable("the engine is not running; start it first")
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout_s: float = 10.0) -> EngineClient:
        return EngineClient(self.base_url, self.token_file.read_text().strip(), timeout_s=timeout_s)

    def is_running(self) -> bool:
        if self.pid is None:
            return False
        if self._popen is not None:
            return self._popen.poll() is None
        return _pid_alive(self.pid)

    def ensure_running(self) -> str | None:
        """Start the engine, reuse one that runs, or restart one that died.

        Returns None when it was already running, else a sentence saying what happened (for
        the user: a restart after a crash should not pass silently)."""
        news = self.launch()
        self.await_listening()
        return news

    def launch(self) -> str | None:
        """ensure_running's first half, which returns at once: a new engine's process is
        started, but its port not yet known (await_listening). Launch from a thread that lives
        as long as the engine (Blender's main thread): on Linux the engine exits with the thread
        that started it (its parent-death signal follows the thread)."""
        if self._launched:
            return None
        if self.is_running():
            try:
                self.client(timeout_s=5.0).health()
                return None
            except (EngineUnavailable, EngineError):
                self._kill()  # alive but not answering: hung, or dying right now
        crashed = self.pid is not None
        exit_code = self._popen.returncode if self._popen is not None else None
        if not crashed and self._adopt():
            return f"reusing the engine already running (pid {self.pid}, port {self.port})"
        self._launch()
        if crashed:
            return f"the engine had stopped (exit code {exit_code}); restarted it (pid {self.pid})"
        return f"started the engine (pid {self.pid})"  # its port is known once it listens

    def _kill(self) -> None:
        if self._popen is not None:
            self._popen.kill()
            self._popen.wait()
        elif self.pid is not None and _pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the engine to exit (SIGTERM), then kill it if it lingers."""
        if self.pid is not None and self.is_running():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.is_running() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.is_running():
                os.kill(self.pid, signal.SIGKILL)
        if self._popen is not None:
            self._popen.wait(timeout=timeout_s)
        self.state_file.unlink(missing_ok=True)
        self.token_file.unlink(missing_ok=True)
        self.pid = self.port = None
        self._popen, self._launched = None, False

    def await_listening(self) -> None:
        """Wait for the launched engine's 'listening' line (its port); nothing when none was launched."""
        if not self._launched:
            return
        self._launched = False
        try:
            ready = json.loads(self._first_line())
            self.port = int(ready["port"])
        except Exception as exc:
            tail = self._log_tail()
            if self._popen.poll() is None:
                self._popen.kill()
            self._popen.wait()
            self.pid = None
            raise EngineStartError(f"the engine did not start: {exc}\n--- engine output ---\n{tail}") from None
        # Anything the engine prints later must not fill the pipe and block it.
        threading.Thread(target=self._popen.stdout.read, name="engine-stdout", daemon=True).start()
        self.state_file.write_text(
            json.dumps({"pid": self.pid, "port": self.port, "checkpoint": self.checkpoint, "device": self.device})
        )

    # --- internals ----------------------------------------------------------------------------
    def _launch(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _remove_ended_sessions(self.log_dir)
        _write_private(self.token_file, secrets.token_urlsafe(32))
        command = [
            self.python,
            "-m",
            "engine",
            "serve",
            "--port",
            "0",
            "--token-file",
            str(self.token_file),
            "--checkpoint",
            self.checkpoint,
            "--device",
            self.device,
            "--log-file",
            str(self.log_file),
            "--parent-pid",
            str(os.getpid()),
            *self.serve_options,
        ]
        # Only the engine's own folder: Blender's PYTHONPATH belongs to another Python.
        env = dict(os.environ, PYTHONPATH=str(self.engine_root))
        if problem := missing_python(self.python):
            raise EngineStartError(problem)
        with open(self.stderr_file, "wb") as stderr:
            try:
                self._popen = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=self.log_dir
                )
            except OSError as error:
                raise EngineStartError(python_cannot_run(self.python, error)) from None
        self.pid, self.port, self._launched = self._popen.pid, None, True

    def _first_line(self) -> str:
        """The 'listening' line, within the start timeout; fails early if the engine exits."""
        deadline = time.monotonic() + self.start_timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self._popen.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.2):
                    line = self._popen.stdout.readline().decode(errors="replace")
                    if line.strip():
                        return line
                if self._popen.poll() is not None:
                    raise EngineStartError(f"it exited with code {self._popen.returncode}")
        raise EngineStartError(f"no 'listening' line within {self.start_timeout_s:.0f} s")

    def _adopt(self) -> bool:
        """Take over the engine a previous session of the add-on started, if it fits and answers."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return False
        if (state.get("checkpoint"), state.get("device")) != (self.checkpoint, self.device):
            return False
        if not _pid_alive(state.get("pid", -1)):
            return False
        self.pid, self.port = int(state["pid"]), int(state["port"])
        try:
            self.client(timeout_s=2.0).health()
        except (EngineUnavailable, EngineError, OSError):
            self.pid = self.port = None
            return False
        return True

    def _log_tail(self, lines: int = 30) -> str:
        """The end of this engine's stderr and of its lines in the shared log (another session's
        engine writes there too)."""
        texts = self.stderr_file.read_text(errors="replace").splitlines() if self.stderr_file.exists() else []
        if self.log_file.exists():
            texts.extend(_lines_of(self.log_file.read_text(errors="replace").splitlines()[-20 * lines :], self.pid))
        return "\n".join(texts[-lines:]) or "(no output)"


_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\d+) ")  # the log's time, then the engine's pid


def _lines_of(log_lines: list[str], pid: int | None) -> list[str]:
    """The lines one engine wrote to the shared log, a traceback's lines with the record they follow."""
    kept, mine = [], False
    for line in log_lines:
        if header := _LOG_LINE.match(line):
            mine = header.group(1) == str(pid)
        if mine:
            kept.append(line)
    return kept


def missing_python(python: str) -> str | None:
    """Why the engine's Python cannot be run, before trying: most often Set Up Engine never ran."""
    if shutil.which(python) is not None:
        return None
    what = "is not a program" if Path(python).exists() else "does not exist"
    return f"the engine's Python {python} {what}: run Set Up Engine in the add-on's preferences first"


def python_cannot_run(python: str, error: Exception) -> str:
    """The engine's Python is there but did not start (or answer) as a program does."""
    return f"the engine's Python {python} does not run ({error}); set it up again in the preferences"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, without a moment where it is readable by others."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _remove_ended_sessions(folder: Path) -> None:
    """The token, state and stderr files of Blender sessions that have ended."""
    for path in folder.glob("engine-*.*"):
        pid = path.stem.removeprefix("engine-")
        if pid.isdigit() and not _pid_alive(int(pid)):
            path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # Windows: signal 0 would be a Ctrl+C to the process; count it as alive
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
