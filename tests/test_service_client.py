"""The client's errors when there is no engine to talk to, or it answers nonsense (needs no model)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from mosa_blender.engine_client import EngineClient, EngineError, EngineUnavailable


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


class OneAnswer(http.server.BaseHTTPRequestHandler):
    """An engine stand-in that answers every GET with the class's `answer` (JSON, or bytes as they are)."""

    answer: dict | bytes = {}
    status = 200

    def do_GET(self) -> None:
        body = self.answer if isinstance(self.answer, bytes) else json.dumps(self.answer).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_a_proxys_error_page_is_told_from_the_engines_answers():
    """A reverse proxy in front of a studio engine that is down answers 502 with its own page."""
    handler = type("Answer", (OneAnswer,), {"answer": b"<html>502 Bad Gateway</html>", "status": 502})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = EngineClient(f"http://127.0.0.1:{server.server_address[1]}", "token", timeout_s=5)
        try:
            with pytest.raises(EngineError, match="with HTTP 502: a proxy or server in front of it"):
                client.health()
        finally:
            client.close()
            server.shutdown()


@pytest.mark.parametrize(
    "result, expected",
    [
        ([{"positions": [[[0.5] * 3] * 22]}], "as sent"),  # an engine older than ?result=npz: JSON lists
        (["bm90IGFuIG5weg=="], "not a list of motions"),  # base64, but not of an .npz
        ([7], "not a list of motions"),
        ("npz", "not a list of motions"),
    ],
)
def test_a_finished_jobs_result_is_taken_as_sent_or_refused_clearly(result, expected):
    handler = type("Answer", (OneAnswer,), {"answer": {"id": "1", "state": "done", "result": result}})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = EngineClient(f"http://127.0.0.1:{server.server_address[1]}", "token", timeout_s=5)
        try:
            if expected == "as sent":
                assert client.job("1")["result"] == result
            else:
                with pytest.raises(EngineError, match=expected):
                    client.job("1")
        finally:
            client.close()
            server.shutdown()
