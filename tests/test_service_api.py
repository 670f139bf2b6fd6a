"""The HTTP API against a real engine subprocess serving the trained demo model."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest
import requests
from service_engine import serving

from engine.datasets import deepmimic
from engine.validation import Limits
from mosa_blender.engine_client import EngineError, JobCancelled

SOURCE_FRAMES = 80


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("engine"), "--max-queued", "4", "--result-ttl", "3") as running:
        client = running.client()
        yield {
            "process": running.process,
            "ready": running.ready,
            "client": client,
            "token": running.token,
            "folder": running.folder,
        }
        client.close()


@pytest.fixture(scope="module")
def walk_source() -> dict:
    """A real motion (the DeepMimic walk) as the canonical motion dict an edit sends."""
    positions = deepmimic.load_joints("walk", min_seconds=5)[:SOURCE_FRAMES]
    return {"fps": 20, "positions": positions.tolist()}


def raw(engine, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """A request exactly as given (no client-side checks), with the right token unless overridden."""
    headers = {"Authorization": f"Bearer {engine['token']}", "Content-Type": "application/json", **(headers or {})}
    url = f"http://127.0.0.1:{engine['ready']['port']}{path}"
    return requests.request(method, url, data=body, headers=headers, timeout=30)


def test_listening_line_and_health(engine):
    ready = engine["ready"]
    assert ready["event"] == "listening" and ready["host"] == "127.0.0.1"
    assert ready["port"] > 0 and ready["pid"] == engine["process"].pid
    health = engine["client"].health()
    assert health["ready"] is True and health["loading"]["progress"] == 1.0
    assert health["version"] == ready["version"] and health["model"]
    assert health["log_file"] == str(engine["folder"] / "engine.log")
    assert "listening on" in (engine["folder"] / "engine.log").read_text()


def test_generate_end_to_end_with_progress(engine):
    client = engine["client"]
    job_id = client.generate("a person walks forward", seconds=2.4, seed=3, samples=2)
    steps: list[int] = []
    result = client.wait(
        job_id, on_progress=lambda job: steps.append(job["progress"]["step"]), timeout_s=120, poll_s=0.01
    )
    assert len(result) == 2
    positions = np.asarray(result[0]["positions"])
    assert positions.shape == (48, 22, 3) and np.isfinite(positions).all()
    seen = sorted(set(steps) - {0})
    assert seen[-1] == 10 and all(1 <= step <= 10 for step in seen)
    assert client.job(job_id)["progress"] == {"step": 10, "total": 10}


def test_a_result_comes_packed_when_asked_bit_for_bit_the_json_one(engine):
    """?result=npz (what the add-on asks for) carries the same float32 values as the JSON lists."""
    client = engine["client"]
    job_id = client.generate("a person walks forward", seconds=3.0, seed=5)
    client.wait(job_id, timeout_s=120)
    as_json = raw(engine, "GET", f"/v1/jobs/{job_id}").json()["result"]
    as_text = raw(engine, "GET", f"/v1/jobs/{job_id}?result=npz").json()["result"]
    assert len(as_json) == len(as_text) == 1 and isinstance(as_text[0], str)
    assert len(as_text[0]) < len(json.dumps(as_json[0])) / 3
    listed, packed_motion = as_json[0], client.job(job_id)["result"][0]
    assert set(listed) == set(packed_motion) >= {"positions", "rotations", "root_translation", "features", "parents"}
    for key, value in listed.items():
        if key in ("fps", "joint_names"):
            assert packed_motion[key] == value
        else:
            np.testing.assert_array_equal(packed_motion[key], np.asarray(value, dtype=packed_motion[key].dtype))
    for query, named in [("result=xml", "json, npz"), ("result=npz&result=json", "json, npz"), ("page=2", "'page'")]:
        response = raw(engine, "GET", f"/v1/jobs/{job_id}?{query}")
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_query"
        assert named in response.json()["error"]["message"]


def test_edit_end_to_end(engine, walk_source):
    client = engine["client"]
    mask = [40 <= frame < 60 for frame in range(SOURCE_FRAMES)]
    result = client.wait(client.edit("a person jumps", walk_source, mask, seed=1), timeout_s=120)
    assert len(result) == 1
    assert np.asarray(result[0]["positions"]).shape[1:] == (22, 3)


def test_a_timeline_longer_than_one_window_is_one_motion(engine):
    """12 s from two prompts (one window cannot make it): one motion, its root continuous."""
    client = engine["client"]
    (motion,) = client.wait(client.timeline([("a person walks forward", 6.0), ("a person waves", 6.0)], seed=2))
    positions = np.asarray(motion["positions"])
    assert positions.shape == (240, 22, 3) and np.isfinite(positions).all()
    steps = np.linalg.norm(np.diff(positions[:, 0], axis=0), axis=-1)
    assert steps.max() < 0.2  # metres per frame at 20 fps: no jump at the seams


def test_extend_keeps_the_source_and_adds_the_frames(engine, walk_source):
    client = engine["client"]
    for side in ("after", "before"):
        (motion,) = client.wait(client.timeline([("a person jumps", 2.0)], source=walk_source, side=side, seed=1))
        features, positions = np.asarray(motion["features"]), np.asarray(motion["positions"])
        assert len(positions) == SOURCE_FRAMES + 40 and len(features) == SOURCE_FRAMES + 40
        # The seam frame is where the source has it (the source is not at the origin).
        seam, seam_in_result = (SOURCE_FRAMES - 1, SOURCE_FRAMES - 1) if side == "after" else (0, 40)
        source_seam = np.asarray(walk_source["positions"])[seam]
        assert np.linalg.norm(positions[seam_in_result, 0] - source_seam[0]) < 0.05


def test_inbetween_passes_through_the_key_poses(engine, walk_source):
    client = engine["client"]
    keys = [0, 40, 79]
    (motion,) = client.wait(client.inbetween("a person hops", walk_source, keys, seed=3))
    positions, source = np.asarray(motion["positions"]), np.asarray(walk_source["positions"])
    assert positions.shape == source.shape
    errors = np.linalg.norm(positions[keys] - source[keys], axis=-1)
    assert errors.max() < 0.01, errors.max()  # within 1 cm at every key frame


WAVE = {"prompt": "a person waves", "seconds": 2}


@pytest.mark.parametrize(
    "path, body, code, words",
    [
        ("/v1/timeline", {"segments": []}, "bad_timeline", "list of 1..64"),
        ("/v1/timeline", {"segments": [{"prompt": "  \u0007 ", "seconds": 2}]}, "bad_prompt", "timeline row 1: "),
        ("/v1/timeline", {"segments": [{**WAVE, "seconds": 601}]}, "bad_seconds", "timeline row 1: 'seconds' is 601"),
        ("/v1/timeline", {"segments": [{**WAVE, "seconds": 300}] * 3}, "bad_length", "at most 600 s"),
        ("/v1/timeline", {"segments": [WAVE], "side": "up"}, "bad_side", "'side' is 'up'"),
        ("/v1/timeline", {"segments": [WAVE, "a person walks"]}, "bad_timeline", "timeline row 2 is 'a person walks'"),
        (
            "/v1/timeline",
            {"segments": [{"prompt": "a person waves"}]},
            "bad_seconds",
            "timeline row 1: 'seconds' is missing",
        ),
        ("/v1/inbetween", {"prompt": "a person hops", "source": [], "key_frames": [0, 9]}, "bad_source", "'source'"),
    ],
)
def test_bad_timelines_and_keys_are_clear_400s(engine, path, body, code, words):
    answer = raw(engine, "POST", path, json.dumps(body).encode())
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["code"] == code and words in error["message"], answer.text


STILL = np.zeros((SOURCE_FRAMES, 22, 3)).tolist()  # every joint at the origin: no body's motion
BAD_INBETWEEN = {  # (what changes in a good request, given the source; code; words in the message)
    "a key outside the source": (lambda source: {"key_frames": [10, SOURCE_FRAMES]}, "bad_key_frames", "0..79"),
    "keys 3 frames apart": (lambda source: {"key_frames": [10, 13]}, "keys_too_close", "6 or more frames apart"),
    "keys 1 frame apart": (lambda source: {"key_frames": [10, 11]}, "keys_too_close", "'key_frames' [10, 11]"),
    "a source standing still": (lambda source: {"source": {"positions": STILL}}, "bad_source", "not a body's motion"),
    "a source at 240 fps": (lambda source: {"source": {**source, "fps": 240}}, "bad_source", "'source.fps' is 240"),
    "an unknown source field": (
        lambda source: {"source": {**source, "bogus": 1}},
        "unknown_field",
        "['bogus'] in 'source'",
    ),
    "a 1000-character prompt": (lambda source: {"prompt": "a" * 1000}, "bad_prompt", "1000 characters"),
    "a prompt of control characters": (lambda source: {"prompt": "\x07\x00"}, "bad_prompt", "empty"),
    "a seed out of range": (lambda source: {"seed": 10**20}, "bad_seed", "expected 0..2147483647"),
}


@pytest.mark.parametrize("case", list(BAD_INBETWEEN))
def test_bad_inbetweens_are_clear_400s_before_a_job_is_queued(engine, walk_source, case):
    change, code, words = BAD_INBETWEEN[case]
    body = {"prompt": "a person hops", "source": walk_source, "key_frames": [10, 40], **change(walk_source)}
    answer = raw(engine, "POST", "/v1/inbetween", json.dumps(body).encode())
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["code"] == code and words in error["message"], answer.text


def test_cancel_stops_within_one_scale(engine):
    client = engine["client"]
    job_id = client.generate("a person runs in a circle", frames=196, samples=8, seed=5)
    while (job := client.job(job_id))["progress"]["step"] < 2:
        assert job["state"] in ("queued", "running")
        time.sleep(0.005)
    step_at_cancel = client.cancel(job_id)["progress"]["step"]
    with pytest.raises(JobCancelled):
        client.wait(job_id, timeout_s=60, poll_s=0.01)
    final = client.job(job_id)
    assert final["state"] == "cancelled" and "result" not in final
    assert final["progress"]["step"] <= step_at_cancel + 1 < 10


def test_queued_job_cancels_at_once_and_results_expire(engine):
    client = engine["client"]
    running = client.generate("a person waves", frames=196, samples=8)
    queued = client.generate("a person sits", frames=40)
    assert client.cancel(queued)["state"] == "cancelled"
    client.cancel(running)
    time.sleep(3.5)  # the module's engine keeps results 3 s
    with pytest.raises(EngineError) as expired:
        client.job(queued)
    assert expired.value.status == 404 and expired.value.code == "expired"


def test_full_queue_answers_429(engine):
    client = engine["client"]
    ids = [client.generate("a person dances", frames=196, samples=8)]
    with pytest.raises(EngineError) as full:
        for _ in range(10):
            ids.append(client.generate("a person dances", frames=40))
    assert full.value.status == 429 and "waiting" in full.value.message
    for job_id in ids:
        client.cancel(job_id)


TOO_LONG = "walk " * 20_000  # 100 kB
BAD_GENERATE = {
    "wrong types": ({"prompt": 5, "seconds": 2}, "bad_prompt"),
    "empty prompt": ({"prompt": "   ", "seconds": 2}, "bad_prompt"),
    "control characters": ({"prompt": "\x00\x07\u200b\t\x7f\ud800", "seconds": 2}, "bad_prompt"),
    "100 kB prompt": ({"prompt": TOO_LONG, "seconds": 2}, "bad_prompt"),
    "length 0": ({"prompt": "walk", "frames": 0}, "bad_length"),
    "negative": ({"prompt": "walk", "seconds": -2}, "bad_length"),
    "above the maximum": ({"prompt": "walk", "frames": 200}, "bad_length"),
    "not a multiple of 4": ({"prompt": "walk", "frames": 42}, "bad_length"),
    "no length": ({"prompt": "walk"}, "bad_length"),
    "string seconds": ({"prompt": "walk", "seconds": "4"}, "bad_seconds"),
    "samples": ({"prompt": "walk", "seconds": 2, "samples": 100}, "bad_samples"),
    "temperature": ({"prompt": "walk", "seconds": 2, "temperature": 0}, "bad_temperature"),
    # Both passed validation and made a job fail in the model (logits / temperature overflowed).
    "tiny temperature": ({"prompt": "walk", "seconds": 2, "temperature": 1e-40}, "bad_temperature"),
    "tinier temperature": ({"prompt": "walk", "seconds": 2, "temperature": 1e-300}, "bad_temperature"),
    "top_p": ({"prompt": "walk", "seconds": 2, "top_p": 1.5}, "bad_top_p"),
    "seed": ({"prompt": "walk", "seconds": 2, "seed": -1}, "bad_seed"),
    "smooth": ({"prompt": "walk", "seconds": 2, "smooth": "yes"}, "bad_smooth"),
    "unknown field": ({"prompt": "walk", "seconds": 2, "steps": 3}, "unknown_field"),
    "huge seed": ({"prompt": "walk", "seconds": 2, "seed": 10**400}, "bad_seed"),
    "huge integer seconds": ({"prompt": "walk", "seconds": 10**400}, "bad_seconds"),
    "huge float seconds": ({"prompt": "walk", "seconds": 1.7e308}, "bad_length"),
    "huge guidance": ({"prompt": "walk", "seconds": 2, "guidance": -(10**400)}, "bad_guidance"),
    "boolean samples": ({"prompt": "walk", "seconds": 2, "samples": True}, "bad_samples"),
    "boolean seconds": ({"prompt": "walk", "seconds": True}, "bad_seconds"),
    "null seconds": ({"prompt": "walk", "seconds": None}, "bad_seconds"),
    "not an object": ([1, 2], "bad_body"),
}


@pytest.mark.parametrize("case", list(BAD_GENERATE))
def test_bad_generate_is_a_clear_400(engine, case):
    body, code = BAD_GENERATE[case]
    response = raw(engine, "POST", "/v1/generate", json.dumps(body).encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and len(error["message"]) > 10


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(engine, literal):
    response = raw(engine, "POST", "/v1/generate", f'{{"prompt": "walk", "seconds": {literal}}}'.encode())
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_json"


def test_overflowing_literal_is_not_a_number(engine):
    response = raw(engine, "POST", "/v1/generate", b'{"prompt": "walk", "seconds": 1e999}')
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_seconds"


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deep_nesting_is_refused_before_parsing(engine, opening):
    body = (opening * 100_000).encode()  # the parser would recurse past Python's limit
    response = raw(engine, "POST", "/v1/edit", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_deep" and "100000 levels" in error["message"]


def test_brackets_inside_strings_are_not_nesting(engine):
    body = json.dumps({"prompt": '[[[[[[[[{{{{{{{ walk \\" [[[[[[', "seconds": 2, "seed": 1}).encode()
    response = raw(engine, "POST", "/v1/generate", body)
    assert response.status_code == 202
    engine["client"].cancel(response.json()["id"])


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin-1"]
)
def test_wrong_content_type_is_415(engine, content_type):
    response = raw(engine, "POST", "/v1/generate", b'{"prompt": "walk", "seconds": 2}', {"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_odd_content_length_is_411(engine):
    port = engine["ready"]["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        head = (
            f"POST /v1/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {engine['token']}\r\n"
            "Content-Type: application/json\r\nContent-Length: \xb2\r\n\r\n"
        )
        connection.sendall(head.encode("latin-1"))
        reply = connection.makefile("rb").read().decode()
    assert reply.startswith("HTTP/1.1 411") and "length_required" in reply


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "FROB"])
def test_a_method_without_handler_is_a_json_405(engine, method):
    response = raw(engine, method, "/v1/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_body_on_a_get_does_not_spill_into_the_next_request(engine):
    url = f"http://127.0.0.1:{engine['ready']['port']}/v1/health"
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {engine['token']}"
        first = session.get(url, data=b"GET /v1/nothing HTTP/1.1\r\n\r\n", timeout=10)
        second = session.get(url, timeout=10)
    assert first.status_code == second.status_code == 200 and second.json()["ready"] is True


def test_malformed_json(engine):
    response = raw(engine, "POST", "/v1/generate", b'{"prompt": "walk", ')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def edit_body(walk_source: dict, **changes) -> dict:
    return {"prompt": "a person jumps", "source": walk_source, "frame_mask": [True] * SOURCE_FRAMES, **changes}


def test_bad_edits_are_clear_400s(engine, walk_source):
    positions = np.asarray(walk_source["positions"])
    with_nan = positions.copy()
    with_nan[10, 3, 1] = np.nan
    cases = {
        "mask of the wrong length": (edit_body(walk_source, frame_mask=[True] * 10), "bad_frame_mask", "10 entries"),
        "mask selects nothing": (
            edit_body(walk_source, frame_mask=[False] * SOURCE_FRAMES),
            "bad_frame_mask",
            "no frame",
        ),
        "mask of numbers": (edit_body(walk_source, frame_mask=[1] * SOURCE_FRAMES), "bad_frame_mask", "true/false"),
        "source with NaN": (edit_body({"positions": with_nan.tolist()}), "bad_json", "NaN"),
        "wrong joint count": (edit_body({"positions": positions[:, :21].tolist()}), "bad_source", "(frames, 22, 3)"),
        "source not a motion": (edit_body("walk.npz"), "bad_source", "canonical motion"),
        "numbers as strings": (edit_body({"positions": np.asarray(positions, str).tolist()}), "bad_source", "numbers"),
        "booleans as numbers": (edit_body({"positions": (positions > 0).tolist()}), "bad_source", "numbers"),
        "far away": (edit_body({"positions": (positions * 1e6).tolist()}), "bad_source", "beyond"),
        "a huge integer": (edit_body({"positions": [[[10**400] * 3] * 22] * SOURCE_FRAMES}), "bad_source", "range"),
        "one frame": (edit_body({"positions": positions[:1].tolist()}), "bad_source", "1 frames"),
        "another frame rate": (edit_body({**walk_source, "fps": 240}), "bad_source", "resample the motion to 20 fps"),
        "an unknown source field": (edit_body({**walk_source, "bogus": 1}), "unknown_field", "in 'source'"),
        "another skeleton": (edit_body({**walk_source, "joint_names": 5}), "bad_source", "'source.joint_names' is 5"),
        "rotations as text": (
            edit_body({**walk_source, "rotations": "quaternions"}),
            "bad_source",
            "'source.rotations'",
        ),
        "rotations as 3 numbers": (
            edit_body({**walk_source, "rotations": [[[1.0, 0.0, 0.0]] * 22] * SOURCE_FRAMES}),
            "bad_source",
            "'source.rotations' must be a nested list of numbers of shape (frames, 22, 4)",
        ),
        "a root path a frame short": (
            edit_body({**walk_source, "root_translation": [[0.0, 0.9, 0.0]] * (SOURCE_FRAMES - 1)}),
            "bad_source",
            "'source.root_translation' does not have one row per frame",
        ),
    }
    for case, (body, code, words) in cases.items():
        text = json.dumps(body, allow_nan=True).encode()  # NaN on purpose: the server must refuse it
        response = raw(engine, "POST", "/v1/edit", text)
        assert response.status_code == 400, case
        error = response.json()["error"]
        assert error["code"] == code and words in error["message"], (case, error)


def test_auth_on_every_endpoint(engine):
    for method, path in (
        ("GET", "/v1/health"),
        ("POST", "/v1/generate"),
        ("GET", "/v1/jobs/1"),
        ("DELETE", "/v1/jobs/1"),
    ):
        missing = raw(engine, method, path, headers={"Authorization": ""})
        wrong = raw(engine, method, path, headers={"Authorization": "Bearer " + "x" * 43})
        for response in (missing, wrong):
            assert response.status_code == 401, (method, path)
            assert response.json()["error"]["code"] == "unauthorized"
    assert "wrong token" in wrong.json()["error"]["message"]


def test_unknown_job_and_endpoint(engine):
    response = raw(engine, "GET", "/v1/jobs/no-such-job")
    assert response.status_code == 404 and "no-such-job" in response.json()["error"]["message"]
    assert raw(engine, "GET", "/v1/nothing").status_code == 404
    assert raw(engine, "PUT", "/v1/health").status_code in (404, 405, 501)
    assert raw(engine, "GET", "/v1/generate").json()["error"]["code"] == "method_not_allowed"


def test_body_over_the_limit_is_413(engine):
    with pytest.raises(EngineError) as refused:
        engine["client"].generate("walk " * 1_000_000, frames=40)  # 5 MB, over the 4 MB limit
    assert refused.value.status == 413 and refused.value.code == "body_too_large"


def test_a_huge_body_is_refused_without_reading_it(engine):
    port = engine["ready"]["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        head = (
            f"POST /v1/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {engine['token']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {2**30}\r\n\r\n"
        )
        connection.sendall(head.encode())
        reply = connection.makefile("rb").read().decode()  # to the close: head and body may come apart
    assert reply.startswith("HTTP/1.1 413") and "body_too_large" in reply


def test_the_lowest_temperature_makes_a_motion(engine):
    """The bound is what the model still samples at (engine.validation.Limits.min_temperature)."""
    client = engine["client"]
    (motion,) = client.wait(client.generate("a person walks", frames=40, temperature=Limits().min_temperature))
    assert np.isfinite(np.asarray(motion["positions"])).all()


def test_still_healthy_after_bad_input(engine):
    assert engine["process"].poll() is None
    client = engine["client"]
    assert client.health()["ready"] is True
    assert len(client.wait(client.generate("a person bows", frames=40), timeout_s=120)) == 1


def test_concurrent_generate_jobs_run_as_one_batch_with_the_motions_they_would_have_alone(engine, walk_source):
    """While an edit occupies the worker, three generate jobs queue; they share their options and run
    together in one pass (the engine log names them on one line), each with its own motion."""
    client = engine["client"]
    busy = client.edit("a person jumps", walk_source, [True] * SOURCE_FRAMES, seed=1)
    prompts = ["a person walks forward", "a person waves", "a person jumps", "a person turns around"]
    queued = [client.generate(prompt, seconds=2.0, seed=10 + index) for index, prompt in enumerate(prompts[:3])]
    client.wait(busy)
    together = [client.wait(job_id)[0] for job_id in queued]
    log = (engine["folder"] / "engine.log").read_text()
    assert f"job {', '.join(queued)} (generate) done" in log, log[-2000:]
    alone = client.wait(client.generate(prompts[1], seconds=2.0, seed=11))[0]
    np.testing.assert_allclose(np.asarray(together[1]["positions"]), np.asarray(alone["positions"]), atol=1e-3)
    assert not np.allclose(np.asarray(together[0]["positions"]), np.asarray(together[1]["positions"]))
