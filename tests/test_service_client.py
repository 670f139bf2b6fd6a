"""The client's errors when there is no engine to talk to (needs no model)."""

from __future__ import annotations

import socket
import time

import pytest

from mosa_blender.engine_client import EngineClient, EngineUnavailable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_no_engine_is_engine_unavailable_quickly():
    client = EngineClient(f"http://127.0.0.1:{free_port()}", "token", timeout_s=2)
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="does not answer"):
        client.health()
    assert time.monotonic() - started < 2


def test_a_silent_engine_times_out():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = EngineClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "token", timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(EngineUnavailable, match="timed out"):
            client.job("1")
        assert time.monotonic() - started < 3
