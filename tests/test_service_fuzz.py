"""Property-based fuzzing of every endpoint of a real engine over real HTTP on 127.0.0.1.

Hypothesis builds requests, from nearly valid to garbage: bodies with numbers of any magnitude,
booleans where numbers go, strings of control characters, deep nesting, truncated or binary
bodies, wrong content types and lengths, odd ids, methods and headers. Every answer must be
below 500, every 4xx must carry the API's JSON error, and the service must be healthy after.

MOSA_FUZZ_EXAMPLES sets the examples per endpoint (`python3 build.py fuzz` runs a longer fuzz).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.parse
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_engine import serving

from engine.datasets import deepmimic
from engine.validation import Limits

EXAMPLES = int(os.environ.get("MOSA_FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
SOURCE_FRAMES = 60


@dataclass
class Answer:
    method: str
    status: int
    content_type: str
    body: bytes


@dataclass
class Target:
    port: int
    token: str
    process: object
    folder: object

    def send(self, method: str, path: str, headers: dict[str, str | None], body: bytes = b"") -> Answer:
        """One request exactly as given, on its own connection; the writing side is shut after it,
        so a body shorter than its Content-Length ends instead of stalling the server."""
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items() if value is not None]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as connection:
            connection.sendall(head + body)
            connection.shutdown(socket.SHUT_WR)
            response = http.client.HTTPResponse(connection, method=method)
            response.begin()
            return Answer(
                method,
                response.status,
                response.getheader("Content-Type", ""),
                response.read(),
            )

    def post_json(self, path: str, body: bytes, **header_changes: str | None) -> Answer:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **header_changes,
        }
        return self.send("POST", path, headers, body)


def check(target: Target, answer: Answer) -> None:
    """The contract: no 5xx; a 4xx carries {"error": {"code", "message"}}; an accepted job is
    cancelled at once so that the queue stays short."""
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status >= 400 and answer.method != "HEAD":  # a HEAD answer has headers only
        assert answer.content_type == "application/json", answer
        error = json.loads(answer.body)["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
    if answer.status == 202:
        job_id = json.loads(answer.body)["id"]
        auth = {"Authorization": f"Bearer {target.token}"}
        check(target, target.send("DELETE", f"/v1/jobs/{job_id}", auth))


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    # A long queue: accepted fuzz jobs are cancelled at once, but a 429 would hide the validation.
    with serving(tmp_path_factory.mktemp("fuzz-engine"), "--max-queued", "64") as running:
        yield Target(running.ready["port"], running.token, running.process, running.folder)


# --- values --------------------------------------------------------------------------------------
EDGE_NUMBERS = st.sampled_from(
    [
        0,
        1,
        -1,
        2,
        40,
        196,
        200,
        2**31,
        2**63,
        10**20,
        10**400,
        -(10**400),
        0.5,
        -0.0,
        1e-320,
        1.7e308,
        -1.7e308,
    ]
)
NUMBERS = st.one_of(EDGE_NUMBERS, st.integers(), st.floats(allow_nan=True, allow_infinity=True))
NASTY_TEXT = st.text(
    st.one_of(
        st.characters(max_codepoint=0x40),
        st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Cs", "Co"]),
    )
)
TEXT = st.one_of(
    st.sampled_from(["a person walks forward", "", " ", "walk " * 101]),
    NASTY_TEXT,
    st.text(),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=12,
)
FIELD_VALUES = st.one_of(SCALARS, JSON_VALUES)
SAMPLING = {
    "guidance": 2.0,
    "temperature": 1.0,
    "top_k": 0.9,
    "top_p": 0.9,
    "smooth": True,
    "seed": 0,
    "samples": 1,
}


def dump(body: object) -> bytes:
    """JSON text as a client might send it: NaN and Infinity literals included."""
    return json.dumps(body, allow_nan=True).encode()


@st.composite
def generate_bodies(draw) -> dict:
    """A valid generate request with some fields replaced, dropped or added."""
    body = {
        "prompt": "a person walks forward",
        draw(st.sampled_from(["seconds", "frames"])): 40,
        **SAMPLING,
    }
    for name in draw(st.lists(st.sampled_from([*body, "seconds", "frames", "steps", ""]), max_size=4)):
        action = draw(st.sampled_from(["replace", "replace", "drop"]))
        if action == "drop":
            body.pop(name, None)
        else:
            body[name] = draw(st.one_of(NUMBERS, FIELD_VALUES) if name != "prompt" else st.one_of(TEXT, FIELD_VALUES))
    return body


@st.composite
def raw_bodies(draw, valid: bytes) -> bytes:
    """Bodies that are not the JSON of an object: binary, truncated, deeply nested, other encodings."""
    kind = draw(st.sampled_from(["binary", "truncated", "nested", "utf16", "scalar", "literal"]))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid)))]
    if kind == "nested":
        depth = draw(st.integers(1, 20_000))
        opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"prompt":[', "]}")]))
        return (
            opening * depth + draw(st.sampled_from(["1", "", '"x"'])) + closing * draw(st.integers(0, depth))
        ).encode()
    if kind == "utf16":
        return valid.decode().encode(draw(st.sampled_from(["utf-16", "utf-32", "utf-8-sig"])))
    if kind == "literal":
        literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000]))
        return valid.replace(b"40", literal.encode(), 1)
    return dump(draw(JSON_VALUES))


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
CONTENT_TYPES = st.one_of(
    st.sampled_from(
        ["application/json"] * 6
        + [
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "text/plain",
            "",
            "application/json; charset=latin-1",
            "multipart/form-data",
        ]
    ),
    st.none(),
    HEADER_TEXT,
)


@st.composite
def header_changes(draw, body: bytes) -> dict[str, str | None]:
    """Mostly the right headers; now and then a wrong token, content type or length."""
    changes: dict[str, str | None] = {}
    if draw(st.integers(0, 9)) == 0:
        changes["Authorization"] = draw(st.one_of(st.none(), st.just("Bearer " + "x" * 43), HEADER_TEXT))
    if draw(st.integers(0, 4)) == 0:
        changes["Content-Type"] = draw(CONTENT_TYPES)
    if draw(st.integers(0, 6)) == 0:
        lengths = st.one_of(
            st.none(),
            st.integers(0, len(body)).map(str),
            st.sampled_from(["-1", "²", "1e3", "9" * 30]),
        )
        changes["Content-Length"] = draw(lengths)
    return changes


# --- the endpoints -------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_fuzz_generate(target, data):
    valid = dump(data.draw(generate_bodies()))
    body = data.draw(st.one_of(st.just(valid), st.just(valid), raw_bodies(valid)))
    check(
        target,
        target.post_json("/v1/generate", body, **data.draw(header_changes(body))),
    )


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    return deepmimic.load_joints("walk", min_seconds=5)[:SOURCE_FRAMES]


@st.composite
def edit_bodies(draw, walk: np.ndarray) -> dict:
    """An edit of a real motion, its source cut, scaled or broken in one place, its mask any list."""
    frames = draw(st.sampled_from([SOURCE_FRAMES, 0, 1, 39, 40, 197, 300]))
    positions = np.resize(walk, (frames, 22, 3)) * draw(st.sampled_from([1.0, 0.0, 1e5, -1e-30, 1e30]))
    source: object = {"positions": positions.tolist()}
    shape = draw(st.sampled_from(["ok", "ok", "joints", "leaf", "features", "raw_features", "value"]))
    if shape == "joints" and frames:
        source = {"positions": positions[:, : draw(st.integers(0, 21))].tolist()}
    elif shape == "leaf" and frames:
        source["positions"][draw(st.integers(0, frames - 1))][draw(st.integers(0, 21))][draw(st.integers(0, 2))] = draw(
            FIELD_VALUES
        )
    elif shape == "features":
        source["features"] = draw(st.one_of(FIELD_VALUES, st.just(np.zeros((max(frames - 1, 0), 263)).tolist())))
    elif shape == "raw_features":
        rows = draw(st.sampled_from([SOURCE_FRAMES - 1, 0, 1, 200]))
        source = (np.resize(walk.reshape(-1), (rows, draw(st.sampled_from([263, 262])))) / 10).tolist()
    elif shape == "value":
        source = draw(FIELD_VALUES)
    mask = draw(
        st.one_of(
            st.just([index % 3 == 0 for index in range(frames)]),
            st.lists(st.booleans(), max_size=frames + 2),
            FIELD_VALUES,
        )
    )
    body = {"prompt": "a person jumps", "source": source, "frame_mask": mask}
    for name in draw(st.lists(st.sampled_from(["prompt", *SAMPLING, "frames"]), max_size=2)):
        body[name] = draw(st.one_of(NUMBERS, FIELD_VALUES))
    return body


@FUZZ
@given(data=st.data())
def test_fuzz_edit(target, walk, data):
    valid = dump(data.draw(edit_bodies(walk)))
    body = data.draw(st.one_of(st.just(valid), st.just(valid), st.just(valid), raw_bodies(valid)))
    check(target, target.post_json("/v1/edit", body, **data.draw(header_changes(body))))


@st.composite
def timeline_bodies(draw, walk: np.ndarray) -> dict:
    """A prompt timeline, or an extension of a real motion, with rows, lengths or fields broken."""
    row = st.fixed_dictionaries(
        {
            "prompt": st.one_of(st.just("a person waves"), TEXT, FIELD_VALUES),
            "seconds": st.one_of(st.just(2.0), st.just(0.1), NUMBERS, FIELD_VALUES),
        }
    )
    many = [{"prompt": "a person waves", "seconds": 1.0}] * 65
    body: dict = {"segments": draw(st.one_of(st.lists(row, max_size=3), st.just(many), FIELD_VALUES))}
    if draw(st.booleans()):
        body["source"] = draw(
            st.one_of(st.just({"positions": walk.tolist()}), st.just(walk[:10].tolist()), FIELD_VALUES)
        )
        body["side"] = draw(st.one_of(st.sampled_from(["after", "before", "middle"]), FIELD_VALUES))
    for name in draw(st.lists(st.sampled_from([*SAMPLING, "frames", "prompt"]), max_size=2)):
        body[name] = draw(st.one_of(NUMBERS, FIELD_VALUES))
    return body


@st.composite
def inbetween_bodies(draw, walk: np.ndarray) -> dict:
    """Key poses of a real motion to pass through, the keys, source or fields broken."""
    frames = len(walk)
    keys = st.one_of(
        st.just([0, frames // 2, frames - 1]),
        st.lists(st.one_of(st.integers(-5, 400), FIELD_VALUES), max_size=4),
        FIELD_VALUES,
    )
    source = st.one_of(st.just({"positions": walk.tolist()}), st.just({"positions": walk[:5].tolist()}), FIELD_VALUES)
    body = {"prompt": "a person hops", "source": draw(source), "key_frames": draw(keys)}
    for name in draw(st.lists(st.sampled_from(["prompt", *SAMPLING, "segments"]), max_size=2)):
        body[name] = draw(st.one_of(NUMBERS, FIELD_VALUES))
    return body


@FUZZ
@given(data=st.data())
def test_fuzz_timeline_and_extend(target, walk, data):
    valid = dump(data.draw(timeline_bodies(walk)))
    body = data.draw(st.one_of(st.just(valid), st.just(valid), raw_bodies(valid)))
    check(target, target.post_json("/v1/timeline", body, **data.draw(header_changes(body))))


@FUZZ
@given(data=st.data())
def test_fuzz_inbetween(target, walk, data):
    valid = dump(data.draw(inbetween_bodies(walk)))
    body = data.draw(st.one_of(st.just(valid), st.just(valid), raw_bodies(valid)))
    check(target, target.post_json("/v1/inbetween", body, **data.draw(header_changes(body))))


JOB_IDS = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["1-000000000000", "../health", "%00", "1" * 5000, ""]),
)


@FUZZ
@given(
    method=st.sampled_from(["GET", "DELETE", "POST", "PUT"]),
    job_id=JOB_IDS,
    real=st.booleans(),
)
def test_fuzz_jobs(target, method, job_id, real):
    auth = {"Authorization": f"Bearer {target.token}", "Content-Length": "0"}
    known = None
    if real:  # an id the queue knows, with the fuzzed text appended or not
        known = json.loads(target.post_json("/v1/generate", dump({"prompt": "a person waves", "frames": 40})).body)[
            "id"
        ]
        job_id = known + job_id[:1]
    answer = target.send(method, "/v1/jobs/" + urllib.parse.quote(job_id, safe=""), auth)
    check(target, answer)
    if known == job_id and method == "GET":
        assert answer.status == 200 and json.loads(answer.body)["state"] in (
            "queued",
            "running",
            "done",
            "cancelled",
        )
    if known:
        check(target, target.send("DELETE", f"/v1/jobs/{known}", auth))


QUERY = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#"),
    max_size=30,
)
METHODS = st.one_of(
    st.sampled_from(["GET", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT"]),
    st.text(st.characters(min_codepoint=65, max_codepoint=90), min_size=1, max_size=10),
)


@FUZZ
@given(
    method=METHODS,
    query=QUERY,
    headers=header_changes(b"x"),
    body=st.binary(max_size=100),
)
def test_fuzz_health_and_unknown_paths(target, method, query, headers, body):
    path = "/v1/health" + ("" if method == "HEAD" else "?" + query)
    auth = {"Authorization": f"Bearer {target.token}", "Content-Length": str(len(body))}
    check(target, target.send(method, path, {**auth, **headers}, body))
    check(target, target.send("GET", "/v1/" + urllib.parse.quote(query), auth))


def test_healthy_after_the_fuzz(target):
    """Run last in the file: the same engine process, ready, and a job that runs to its end."""
    assert target.process.poll() is None
    auth = {"Authorization": f"Bearer {target.token}"}
    health = json.loads(target.send("GET", "/v1/health", auth).body)
    assert health["ready"] is True and health["pid"] == target.process.pid
    accepted = target.post_json("/v1/generate", dump({"prompt": "a person bows", "frames": 40}))
    assert accepted.status == 202
    job_id = json.loads(accepted.body)["id"]
    for _ in range(1200):
        job = json.loads(target.send("GET", f"/v1/jobs/{job_id}", auth).body)
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert job["state"] == "done" and len(job["result"]) == 1
    assert "internal error" not in (target.folder / "engine.log").read_text()


def test_depth_limit_fits_the_schema():
    """The deepest valid body (an edit's source positions) fits the limit the fuzz runs against."""
    from engine.validation import json_depth

    assert json_depth(dump({"source": {"positions": [[[0.0, 0.0, 0.0]]]}})) == Limits().max_json_depth
    assert json_depth(b'{"prompt": "[[[[[[[\\"{{{{{", "a": [[]]}') == 3
