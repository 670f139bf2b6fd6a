"""Which models are installed, and the download of the official ones, through the engine's own
Python (`python -m engine models ...`). Plain Python (no bpy), so it is tested as is.

The add-on never imports the engine: it runs its command line, reads `list --json` for the
catalogue and the licences, and follows `download official --progress json`, one JSON object a
line, on a reader thread, so Blender's UI never waits on the network. Cancel is SIGTERM, which
the engine turns into a clean stop that keeps the downloaded bytes for the next run.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .engine_process import missing_python, python_cannot_run

# The panel's choices and the engine's model keys ("" for a checkpoint file the user picks).
CHOICES = {"DEMO": "demo", "HUMANML3D": "humanml3d", "MOTIONX": "motionx", "FILE": ""}


class CatalogueError(RuntimeError):
    """The engine's Python could not say which models there are (not set up, or broken)."""


@dataclass
class Catalogue:
    folder: str
    models: list[dict]  # key, label, knows, installed, path, bytes
    licences: list[str]

    def model(self, key: str) -> dict:
        return next(row for row in self.models if row["key"] == key)


def engine_command(python: str, *arguments: str) -> list[str]:
    """`python -m engine models ...`, once the engine's Python is a program that is there."""
    if problem := missing_python(python):
        raise CatalogueError(problem)
    return [python, "-m", "engine", "models", *arguments]


def not_the_engine(python: str, output: str) -> CatalogueError:
    """A Python that ran but answered something else: another program, or another project's engine."""
    said = " ".join(output.split())[:200] or "nothing"
    return CatalogueError(f"the engine's Python {python} did not answer as the MoSa engine does (its output: {said})")


def engine_environment(engine_root: Path) -> dict:
    """Only the engine's own folder on the path: Blender's PYTHONPATH belongs to another Python."""
    return dict(os.environ, PYTHONPATH=str(engine_root))


def run_engine(python: str, engine_root: Path, *arguments: str, timeout_s: float) -> subprocess.CompletedProcess:
    """The models command, run to its end; a Python that is missing, does not start or hangs as a CatalogueError."""
    try:
        return subprocess.run(
            engine_command(python, *arguments),
            cwd=engine_root,
            env=engine_environment(engine_root),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CatalogueError(python_cannot_run(python, error)) from None


def read_catalogue(python: str, engine_root: Path, timeout_s: float = 60.0) -> Catalogue:
    listed = run_engine(python, engine_root, "list", "--json", timeout_s=timeout_s)
    if listed.returncode != 0:
        tail = (listed.stderr.strip().splitlines() or [f"exit code {listed.returncode}"])[-1]
        raise CatalogueError(f"the engine could not list its models: {tail}")
    try:
        answer = json.loads(listed.stdout)
        return Catalogue(answer["folder"], answer["models"], answer["licences"])
    except (ValueError, TypeError, KeyError):
        raise not_the_engine(python, listed.stdout) from None


def remove_official(python: str, engine_root: Path) -> str:
    """Delete the downloaded official models; what the engine said it removed."""
    finished = run_engine(python, engine_root, "remove", "official", timeout_s=120)
    if finished.returncode != 0:
        raise CatalogueError((finished.stderr.strip().splitlines() or ["removing failed"])[-1])
    said = finished.stdout.strip().splitlines()
    if said != ["nothing to remove"] and not (said and all(line.startswith("removed ") for line in said)):
        raise not_the_engine(python, finished.stdout)
    return "\n".join(said)


@dataclass
class DownloadRun:
    """`models download official` running in the engine's Python; `poll()` takes what it printed."""

    process: subprocess.Popen
    log_file: Path  # the engine's stderr: what it says when it stops without a JSON error
    line: str = "starting"  # the latest progress, as a sentence
    fraction: float = 0.0  # of the current stage, 0..1
    state: str = "running"  # running, done, failed, cancelled
    message: str = ""  # the error, or what was installed
    answered: bool = False  # it printed an event: it is the engine
    stray: str = ""  # the last line it printed that was not an event
    _lines: queue.Queue = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, python: str, engine_root: Path, log_file: Path) -> "DownloadRun":
        command = engine_command(python, "download", "official", "--accept-licences", "--progress", "json")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "wb") as stderr:
            try:
                process = subprocess.Popen(
                    command,
                    cwd=engine_root,
                    env=engine_environment(engine_root),
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    text=True,
                )
            except OSError as error:
                raise CatalogueError(python_cannot_run(python, error)) from None
        run = cls(process, log_file)
        threading.Thread(target=run._read, name="mosa-model-download", daemon=True).start()
        return run

    def _read(self) -> None:
        for text in self.process.stdout:
            self._lines.put(text)
        self._lines.put(None)

    def poll(self) -> bool:
        """Take the lines printed since the last poll; True once the download is over."""
        while True:
            try:
                text = self._lines.get_nowait()
            except queue.Empty:
                return False
            if text is None:
                self.process.wait()
                if self.state == "running":  # it ended without saying why
                    self.state, self.message = "failed", self._stopped()
                return True
            self._take(text)

    def _stopped(self) -> str:
        """Why an engine that printed no error stopped: the last line of its log (a traceback's
        exception), and where the whole log is; a program that is not the engine, what it said."""
        if not self.answered and self.stray:
            return str(not_the_engine(self.process.args[0], self.stray))
        try:
            said = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            said = []
        last = f": {said[-1]}" if said else ""
        return f"the download stopped (exit code {self.process.returncode}){last}; the whole log is {self.log_file}"

    def _take(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            self.stray = text.strip() or self.stray  # a library's stray print, or not the engine at all
            return
        self.answered = True
        if event.get("event") == "progress":
            self.line = event["line"]
            total = event.get("total")
            self.fraction = min(1.0, event["done"] / total) if total else 0.0
        elif event.get("event") == "done":
            self.state, self.message = "done", f"installed {', '.join(event['installed'])} in {event['folder']}"
        elif event.get("event") == "error":
            self.state = "cancelled" if event.get("kind") == "cancelled" else "failed"
            self.message = event.get("message", "")

    @property
    def status_text(self) -> str:
        """What the status bar says while the download runs: the stage, bytes, rate and time left."""
        return f"MoSa: {self.line} - Esc cancels"

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
