"""The engine subprocess: start, reuse, crash and restart, port in use, remote bind, parent death."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_engine import ENGINE_PYTHON, ROOT, engine_env, start_engine, stop, wait_ready, write_token

from engine.cli import DEFAULT_CHECKPOINT
from mosa_blender.engine_client import EngineClient, EngineUnavailable, JobFailed
from mosa_blender.engine_process import EngineProcess, EngineStartError


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return DEFAULT_CHECKPOINT


@pytest.fixture(scope="module")
def managed(checkpoint, tmp_path_factory):
    engine = EngineProcess(
        ENGINE_PYTHON, checkpoint, device="cpu", log_dir=tmp_path_factory.mktemp("managed"), engine_root=ROOT
    )
    yield engine
    engine.stop()


def gone(pid: int, timeout_s: float) -> bool:
    """Whether the process ended (a zombie waiting for its reaper counts as ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_start_writes_a_private_token_and_serves(managed):
    message = managed.ensure_running()
    assert message == f"started the engine (pid {managed.pid})"
    assert managed.token_file.stat().st_mode & 0o777 == 0o600
    health = wait_ready(managed.client())
    assert health["pid"] == managed.pid and health["log_file"] == str(managed.log_file)
    assert managed.ensure_running() is None  # running: nothing to do


def test_a_second_manager_reuses_the_running_engine(managed, checkpoint):
    other = EngineProcess(ENGINE_PYTHON, checkpoint, device="cpu", log_dir=managed.log_dir, engine_root=ROOT)
    assert other.ensure_running().startswith("reusing")
    assert (other.pid, other.port) == (managed.pid, managed.port)
    assert other.client().health()["ready"] is True


# Another Blender session: its own process, the same folder (the extension's user folder).
OTHER_SESSION = """
import json, sys
from mosa_blender.engine_process import EngineProcess
engine = EngineProcess(sys.executable, sys.argv[1], device="cpu", log_dir=sys.argv[2], engine_root=sys.argv[3])
print(json.dumps({"news": engine.ensure_running(), "pid": engine.pid, "token_file": str(engine.token_file)}), flush=True)
sys.stdin.readline()
engine.stop()
"""


def test_two_blender_sessions_each_keep_their_own_engine(managed, checkpoint):
    """Two sessions of one user used to share the token file: each start overwrote the other's
    token, and the other then killed the engine it could no longer talk to, again and again."""
    managed.ensure_running()
    mine = managed.pid
    other = subprocess.Popen(
        [ENGINE_PYTHON, "-c", OTHER_SESSION, str(checkpoint), str(managed.log_dir), str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=engine_env(),
        cwd=ROOT,
    )
    try:
        started = json.loads(other.stdout.readline())
        assert started["news"] == f"started the engine (pid {started['pid']})" and started["pid"] != mine
        assert started["token_file"] != str(managed.token_file)
        assert managed.ensure_running() is None and managed.pid == mine  # not taken for hung, not killed
        assert managed.client().health()["pid"] == mine
    finally:
        other.communicate("stop\n", timeout=60)
    assert gone(started["pid"], 10) and managed.ensure_running() is None and managed.pid == mine


def test_killed_engine_gives_a_clear_error_then_restarts(managed):
    managed.ensure_running()
    client = managed.client()
    wait_ready(client)
    job_id = client.generate("a person runs", frames=196, samples=8)
    while client.job(job_id)["state"] == "queued":
        time.sleep(0.01)
    old_pid = managed.pid
    os.kill(old_pid, signal.SIGKILL)
    with pytest.raises(EngineUnavailable, match="does not answer"):
        client.wait(job_id, timeout_s=30)
    message = managed.ensure_running()
    assert "had stopped (exit code -9); restarted" in message and managed.pid != old_pid
    client = managed.client()
    wait_ready(client)
    assert len(client.wait(client.generate("a person walks", frames=40), timeout_s=120)) == 1


def test_start_failure_reports_the_log_tail(checkpoint, tmp_path):
    """Its own output only: the log is shared with another session's engine."""
    empty_root = tmp_path / "no-engine-here"
    empty_root.mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "engine.log").write_text(
        "2026-12-08 00:00:00,000 1 ERROR MainThread another session's engine\nTraceback: its own\n"
    )
    broken = EngineProcess(ENGINE_PYTHON, checkpoint, device="cpu", log_dir=tmp_path / "logs", engine_root=empty_root)
    with pytest.raises(EngineStartError, match="No module named engine") as failed:
        broken.ensure_running()
    assert "another session" not in str(failed.value) and "its own" not in str(failed.value)
    assert not broken.is_running()


def test_port_in_use_is_a_clear_error(managed, checkpoint, tmp_path):
    managed.ensure_running()
    token_file, _ = write_token(tmp_path)
    result = subprocess.run(
        [
            ENGINE_PYTHON,
            "-m",
            "engine",
            "serve",
            "--port",
            str(managed.port),
            "--checkpoint",
            str(checkpoint),
            "--token-file",
            str(token_file),
            "--log-file",
            str(tmp_path / "log"),
        ],
        capture_output=True,
        text=True,
        env=engine_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0 and result.stdout == ""
    assert f"cannot listen on 127.0.0.1:{managed.port}: the port is already in use" in result.stderr


def test_serve_defaults_to_the_bundled_model(tmp_path):
    token_file, _ = write_token(tmp_path)
    server = subprocess.Popen(
        [ENGINE_PYTHON, "-m", "engine", "serve", "--token-file", str(token_file), "--log-file", str(tmp_path / "log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=engine_env(),
        cwd=ROOT,
    )
    try:
        listening = json.loads(server.stdout.readline())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert listening["event"] == "listening" and listening["checkpoint"] == str(DEFAULT_CHECKPOINT)


def test_remote_bind_only_when_asked(checkpoint, tmp_path):
    token_file, _ = write_token(tmp_path)
    common = ["--checkpoint", str(checkpoint), "--token-file", str(token_file), "--log-file", str(tmp_path / "log")]
    refused = subprocess.run(
        [ENGINE_PYTHON, "-m", "engine", "serve", "--host", "0.0.0.0", *common],
        capture_output=True,
        text=True,
        env=engine_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    process, ready = start_engine(["--host", "0.0.0.0", "--allow-remote", *common], tmp_path / "stderr")
    try:
        assert ready["host"] == "0.0.0.0"
        deadline = time.monotonic() + 10
        while "warning: serving on 0.0.0.0" not in (tmp_path / "stderr").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop(process)


def test_a_checkpoint_that_fails_to_load_fails_jobs_clearly(checkpoint, tmp_path):
    token_file, token = write_token(tmp_path)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(os.urandom(4096))
    args = ["--checkpoint", str(broken), "--token-file", str(token_file), "--log-file", str(tmp_path / "log")]
    process, ready = start_engine(args, tmp_path / "stderr")
    try:
        client = EngineClient(f"http://127.0.0.1:{ready['port']}", token)
        with pytest.raises(RuntimeError):
            wait_ready(client, timeout_s=60)
        health = client.health()
        assert health["ready"] is False and "loading failed" in health["loading"]["message"]
        # One line naming the file, not torch's paragraphs advising weights_only=False.
        assert f"{broken} is not a MoSa checkpoint (torch could not read it: " in health["error"]
        assert "\n" not in health["error"] and "weights_only" not in health["error"]
        with pytest.raises(JobFailed, match="the model could not be loaded: .* is not a MoSa checkpoint") as failed:
            client.wait(client.generate("a person walks", frames=40), timeout_s=30)
        assert "weights_only" not in str(failed.value)
    finally:
        stop(process)


@pytest.mark.parametrize(
    "token, options, message",
    [
        (None, ["--checkpoint", "nope.pt"], "nope.pt not found"),
        ("short", [], "shorter than 16 characters"),
        (None, ["--max-finished", "0"], "--max-finished and --threads must be at least 1"),
        (None, ["--result-ttl", "0"], "--result-ttl must be more than 0 seconds"),
        (None, ["--port", "99999"], "--port 99999 must be 0..65535"),
        (None, ["--port", "-1"], "--port -1 must be 0..65535"),
        (None, ["--log-file", "{tmp}"], "--log-file {tmp} is a folder; give a file name in it"),
        (None, ["--log-file", "{tmp}/token/engine.log"], "{tmp}/token is a file, not a folder"),
    ],
    ids=[
        "missing checkpoint",
        "short token",
        "no results kept",
        "results kept no time",
        "port too high",
        "negative port",
        "log file a folder",
        "log file under a file",
    ],
)
def test_serve_refuses_what_it_cannot_run(checkpoint, tmp_path, token, options, message):
    """token: the token file's text in place of a valid one, or None to keep it; {tmp} in options and
    message is the test's folder (the token file is in it)."""
    token_file, _ = write_token(tmp_path)
    if token is not None:
        token_file.write_text(token)
    options, message = [option.format(tmp=tmp_path) for option in options], message.format(tmp=tmp_path)
    command = [ENGINE_PYTHON, "-m", "engine", "serve", "--checkpoint", str(checkpoint), "--token-file", str(token_file)]
    result = subprocess.run(
        [*command, *options], capture_output=True, text=True, env=engine_env(), cwd=ROOT, timeout=60
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout, result.stderr  # no traceback


PARENT = """
import subprocess, sys, os, time
engine = subprocess.Popen(sys.argv[1:] + ["--parent-pid", str(os.getpid())], stdout=subprocess.PIPE)
sys.stdout.write(engine.stdout.readline().decode()); sys.stdout.flush()
time.sleep(600)
"""


def test_engine_exits_when_its_parent_dies(checkpoint, tmp_path):
    token_file, _ = write_token(tmp_path)
    engine_command = [
        ENGINE_PYTHON,
        "-m",
        "engine",
        "serve",
        "--checkpoint",
        str(checkpoint),
        "--token-file",
        str(token_file),
        "--log-file",
        str(tmp_path / "log"),
    ]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, *engine_command], stdout=subprocess.PIPE, env=engine_env(), cwd=ROOT
    )
    try:
        engine_pid = json.loads(parent.stdout.readline())["pid"]
        parent.kill()
        parent.wait()
        assert gone(engine_pid, timeout_s=10)
    finally:
        parent.stdout.close()
        if parent.poll() is None:
            parent.kill()
