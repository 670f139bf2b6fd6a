"""HTTP client for the engine service; plain Python (requests), no bpy, so it is tested as is.

Every call has a timeout, and every failure is one of four exceptions an operator can report
as it is: the engine is not there, it refused the request, the job failed, the job was cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from .vendored import packed

FINISHED = ("done", "failed", "cancelled")
STATES = ("queued", "running", *FINISHED)


class EngineUnavailable(Exception):
    """The engine does not answer (not started, crashed, wrong address)."""


class EngineError(Exception):
    """The engine answered with an error; the message is the server's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status, self.code, self.message = status, code, message


class JobFailed(Exception):
    """The job ran and failed; the message is the engine's."""


class JobCancelled(Exception):
    """The job was cancelled before it finished."""


def _motion(item: Any) -> dict:
    """One motion of a job's result: packed text (what the client asks for) or a JSON dict."""
    if isinstance(item, str):
        return packed.decode_motion(item)
    if isinstance(item, dict):
        return item
    raise TypeError(f"a motion is {type(item).__name__}")


class EngineClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def health(self) -> dict:
        health = self._call("GET", "/v1/health")
        if not isinstance(health.get("ready"), bool) or not isinstance(health.get("loading"), dict):
            raise EngineError(200, "bad_response", f"{self.base_url} answered {str(health)[:80]}, not a MoSa health")
        return health

    def generate(self, prompt: str, seconds: float | None = None, frames: int | None = None, **options: Any) -> str:
        """Queue a generation; returns the job id. Options: seed, samples, guidance, temperature,
        top_k, top_p, smooth."""
        length = {"frames": frames} if frames is not None else {"seconds": seconds}
        return self._submit("/v1/generate", {"prompt": prompt, **length, **options})

    def edit(self, prompt: str, source: dict | list, frame_mask: list[bool], **options: Any) -> str:
        """Queue an edit of `source` (a canonical motion dict or feature rows) where frame_mask
        is true; returns the job id."""
        body = {"prompt": prompt, "source": source, "frame_mask": [bool(flag) for flag in frame_mask], **options}
        return self._submit("/v1/edit", body)

    def timeline(
        self, segments: list[tuple[str, float]], source: dict | None = None, side: str = "after", **options: Any
    ) -> str:
        """Queue one motion over (prompt, seconds) segments, of any length; with `source` (a canonical
        motion dict) the segments extend it on `side` ("after" or "before"). Returns the job id."""
        body: dict[str, Any] = {"segments": [{"prompt": p, "seconds": s} for p, s in segments], **options}
        if source is not None:
            body.update(source=source, side=side)
        return self._submit("/v1/timeline", body)

    def inbetween(self, prompt: str, source: dict, key_frames: list[int], **options: Any) -> str:
        """Queue a motion through `source`'s poses at `key_frames`, the frames between from the prompt."""
        body = {"prompt": prompt, "source": source, "key_frames": [int(frame) for frame in key_frames], **options}
        return self._submit("/v1/inbetween", body)

    def job(self, job_id: str) -> dict:
        """The job's state; once done, its result as canonical motion dicts. Asked for packed (numpy
        arrays in base64: a 30 s shot's motion is 5 MB of JSON floats, read in about half a second);
        an engine older than that option answers JSON lists, taken as they are."""
        job = self._call("GET", f"/v1/jobs/{job_id}?result=npz")
        if job.get("state") not in STATES:
            raise EngineError(200, "bad_response", f"{self.base_url} answered {str(job)[:80]}, not a MoSa job")
        if "result" in job:
            try:
                job["result"] = [_motion(item) for item in job["result"]]
            except (TypeError, ValueError) as error:
                raise EngineError(200, "bad_response", f"the job's result is not a list of motions: {error}") from None
        return job

    def cancel(self, job_id: str) -> dict:
        return self._call("DELETE", f"/v1/jobs/{job_id}")

    def wait(
        self,
        job_id: str,
        on_progress: Callable[[dict], None] | None = None,
        timeout_s: float = 600.0,
        poll_s: float = 0.1,
    ) -> list[dict]:
        """Poll until the job finishes; returns its result (canonical motion dicts)."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job["state"] == "done":
                return job["result"]
            if job["state"] == "failed":
                raise JobFailed(job.get("error") or "the job failed without a message")
            if job["state"] == "cancelled":
                raise JobCancelled(f"job {job_id} was cancelled")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish in {timeout_s:.0f} s (last state: {job['state']})")
            time.sleep(poll_s)

    def close(self) -> None:
        self._session.close()

    def _submit(self, path: str, body: dict) -> str:
        """POST a job; its id (an answer without one is not a MoSa engine's)."""
        answer = self._call("POST", path, body)
        if not isinstance(answer.get("id"), str):
            raise EngineError(200, "bad_response", f"{self.base_url} answered {str(answer)[:80]}, not a job id")
        return answer["id"]

    def _call(self, method: str, path: str, body: Any = None) -> dict:
        url = self.base_url + path
        try:
            response = self._session.request(method, url, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise EngineUnavailable(f"the engine at {self.base_url} does not answer: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            said = f"(its answer begins {response.text[:80]!r})"
            if response.status_code >= 500:  # a proxy's error page in front of an engine that is down
                said = f"with HTTP {response.status_code}: a proxy or server in front of it? {said}"
            raise EngineError(
                response.status_code, "bad_response", f"{self.base_url} does not answer as a MoSa engine does {said}"
            )
        if response.status_code >= 400:
            error = payload.get("error")
            error = error if isinstance(error, dict) else {}
            raise EngineError(
                response.status_code, error.get("code", "unknown"), error.get("message", response.text[:200])
            )
        return payload
