"""Jobs: a bounded queue served by one model worker thread, with progress, cancel and retention.

The model runs on one device, so one worker thread owns it; HTTP threads only enqueue, read and
flag jobs. The worker takes the oldest job together with the waiting jobs that share its batch
key (requests the model can run as one batch), up to `max_batch`. A finished job's result stays
for `result_ttl_s` seconds, then its id answers "expired" instead of an ambiguous "unknown".
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED_STATES = (DONE, FAILED, CANCELLED)


class QueueFull(Exception):
    """More jobs are waiting than the queue holds."""


class JobNotFound(KeyError):
    """No job has this id (never had, or forgotten long ago)."""


class JobExpired(KeyError):
    """The job finished and its result was dropped after the retention time."""


class JobCancelled(Exception):
    """Raised by a runner that stopped because its job was cancelled."""


@dataclass
class Job:
    """One request and everything a client may ask about it."""

    id: str
    kind: str  # "generate" or "edit"
    request: Any
    state: str = QUEUED
    step: int = 0
    total: int = 0
    preview: Any = None  # coarse joints after the latest scale
    result: Any = None  # what the runner returned, when done
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> dict:
        """The job's state, read under the queue's lock; preview and result as the runner gave them."""
        view: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "progress": {"step": self.step, "total": self.total},
        }
        if self.preview is not None:
            view["preview"] = self.preview
        if self.finished is not None:
            view["elapsed_s"] = self.finished - self.created  # in the engine: queued, then run
        if self.state == DONE:
            view["result"] = self.result
        if self.state == FAILED:
            view["error"] = self.error
        return view


# A runner does the work of a batch of jobs: runner(jobs, on_progress(step, total, previews),
# should_cancel) returns one result per job, or raises JobCancelled (all were cancelled) or any
# exception (all failed). `previews` holds one preview per job, or is None.
Runner = Callable[[list[Job], Callable[[int, int, Any], None], Callable[[], bool]], list]
# The batch key of a job; jobs with equal keys may run as one batch, None never batches.
BatchKey = Callable[[Job], Any]


@dataclass
class JobSettings:
    max_queued: int = 16
    max_batch: int = 1  # jobs run together at most; 1 runs them one by one
    result_ttl_s: float = 600.0
    max_finished: int = 256  # finished jobs kept at most, whatever their age: bounded memory
    remember_expired: int = 10_000  # how many expired ids still answer "expired"


class JobQueue:
    """Bounded FIFO of jobs and the single worker thread that runs them."""

    def __init__(self, runner: Runner, settings: JobSettings | None = None, batch_key: BatchKey | None = None) -> None:
        self.settings = settings or JobSettings()
        self._runner = runner
        self._batch_key = batch_key or (lambda job: None)
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._expired: OrderedDict[str, float] = OrderedDict()
        self._waiting: deque[Job] = deque()
        self._closed = False
        self._counter = itertools.count(1)
        self._worker = threading.Thread(target=self._work, name="model-worker", daemon=True)
        self._worker.start()

    # --- called from HTTP threads -------------------------------------------------------------
    def submit(self, kind: str, request: Any) -> Job:
        self._purge_expired()
        job = Job(id=f"{next(self._counter)}-{secrets.token_hex(6)}", kind=kind, request=request)
        with self._lock:
            if len(self._waiting) >= self.settings.max_queued:
                raise QueueFull(f"{self.settings.max_queued} jobs are already waiting; retry when one finishes")
            self._waiting.append(job)
            self._jobs[job.id] = job
            self._wakeup.notify()
        return job

    def view(self, job_id: str) -> dict:
        self._purge_expired()
        with self._lock:
            return self._find(job_id).snapshot()

    def cancel(self, job_id: str) -> dict:
        """Flag the job; a queued job is cancelled at once, a running one at its next scale."""
        with self._lock:
            job = self._find(job_id)
            if job.state not in FINISHED_STATES:
                job.cancel_requested.set()
                if job.state == QUEUED:
                    self._waiting.remove(job)
                    self._finish(job, CANCELLED)
            return job.snapshot()

    def counts(self) -> dict[str, int]:
        self._purge_expired()  # an idle engine's expired jobs are gone from the counts too
        with self._lock:
            states = [job.state for job in self._jobs.values()]
        return {state: states.count(state) for state in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)}

    def close(self) -> None:
        """Let the worker finish its current batch and stop."""
        with self._lock:
            self._closed = True
            self._wakeup.notify()

    # --- internals ----------------------------------------------------------------------------
    def _find(self, job_id: str) -> Job:
        if job_id in self._jobs:
            return self._jobs[job_id]
        if job_id in self._expired:
            raise JobExpired(
                f"job {job_id} expired: results are kept {self.settings.result_ttl_s:g} s "
                f"(the latest {self.settings.max_finished} at most)"
            )
        raise JobNotFound(f"no job with id {job_id!r}")

    def _finish(self, job: Job, state: str) -> None:
        job.state = state
        job.finished = time.monotonic()
        job.request = None  # the source motion of an edit can be large; the result is what stays

    def _purge_expired(self) -> None:
        now = time.monotonic()
        with self._lock:
            finished = sorted((job.finished, job.id) for job in self._jobs.values() if job.finished is not None)
            too_many = len(finished) - self.settings.max_finished
            for index, (finished_at, job_id) in enumerate(finished):
                if index < too_many or now - finished_at > self.settings.result_ttl_s:
                    del self._jobs[job_id]
                    self._expired[job_id] = now
            while len(self._expired) > self.settings.remember_expired:
                self._expired.popitem(last=False)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._run(batch)

    def _next_batch(self) -> list[Job] | None:
        """The oldest waiting job and the waiting jobs that share its batch key; None on close."""
        with self._wakeup:
            while not self._waiting and not self._closed:
                self._wakeup.wait()
            if self._closed:
                return None
            batch = [self._waiting.popleft()]
            key = self._batch_key(batch[0])
            if key is not None:
                for job in list(self._waiting):
                    if len(batch) == self.settings.max_batch:
                        break
                    if self._batch_key(job) == key:
                        self._waiting.remove(job)
                        batch.append(job)
            for job in batch:
                job.state = RUNNING
            return batch

    def _run(self, batch: list[Job]) -> None:
        def on_progress(step: int, total: int, previews: list | None) -> None:
            with self._lock:
                for index, job in enumerate(batch):
                    job.step, job.total = step, total
                    job.preview = None if previews is None else previews[index]

        def should_cancel() -> bool:
            return all(job.cancel_requested.is_set() for job in batch)

        try:
            results = self._runner(batch, on_progress, should_cancel)
        except JobCancelled:
            outcomes = [(CANCELLED, None, None)] * len(batch)
        except Exception as exc:  # the jobs fail; the worker and the service live on
            outcomes = [(FAILED, None, f"{type(exc).__name__}: {exc}")] * len(batch)
        else:
            outcomes = [(DONE, result, None) for result in results]
        with self._lock:
            for job, (state, result, error) in zip(batch, outcomes):
                if job.cancel_requested.is_set() and state == DONE:
                    state, result = CANCELLED, None  # its batch mates kept the model running
                job.result, job.error = result, error
                self._finish(job, state)
        self._purge_expired()
