"""What the service tests share: the trained demo checkpoint and a real engine subprocess."""

from __future__ import annotations

import json
import os
import secrets
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.cli import DEFAULT_CHECKPOINT
from mosa_blender.engine_client import EngineClient

ROOT = Path(__file__).resolve().parents[1]

ENGINE_PYTHON = os.environ.get("MOSA_ENGINE_PYTHON", sys.executable)


def engine_env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def write_token(folder: Path) -> tuple[Path, str]:
    token = secrets.token_urlsafe(32)
    path = folder / "token"
    path.write_text(token)
    path.chmod(0o600)
    return path, token


def start_engine(args: list[str], stderr_file: Path, timeout_s: float = 60.0) -> tuple[subprocess.Popen, dict]:
    """`python -m engine serve ARGS`; returns the process and its 'listening' line."""
    with open(stderr_file, "wb") as stderr:
        process = subprocess.Popen(
            [ENGINE_PYTHON, "-m", "engine", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=engine_env(),
            cwd=ROOT,
        )
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=timeout_s):
            process.kill()
            raise TimeoutError(f"no listening line in {timeout_s} s")
    line = process.stdout.readline().decode()
    if not line:
        process.wait()
        raise RuntimeError(f"engine exited ({process.returncode}): {stderr_file.read_text()}")
    return process, json.loads(line)


def wait_ready(client: EngineClient, timeout_s: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = client.health()
        if health["ready"]:
            return health
        if "error" in health:
            raise RuntimeError(health["error"])
        time.sleep(0.1)
    raise TimeoutError(f"model not ready in {timeout_s} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.stdout.close()


@dataclass
class RunningEngine:
    process: subprocess.Popen
    ready: dict  # the 'listening' line
    token: str
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ready['port']}"

    def client(self, timeout_s: float = 30.0) -> EngineClient:
        return EngineClient(self.url, self.token, timeout_s=timeout_s)


@contextmanager
def serving(folder: Path, *extra_args: str) -> Iterator[RunningEngine]:
    """An engine on the demo model, its files in `folder`, loaded and ready, stopped afterwards."""
    token_file, token = write_token(folder)
    args = [
        "--checkpoint",
        str(DEFAULT_CHECKPOINT),
        "--token-file",
        str(token_file),
        "--device",
        "cpu",
        "--log-file",
        str(folder / "engine.log"),
        *extra_args,
    ]
    process, ready = start_engine(args, folder / "stderr")
    try:
        engine = RunningEngine(process, ready, token, folder)
        wait_ready(engine.client())
        yield engine
    finally:
        stop(process)
