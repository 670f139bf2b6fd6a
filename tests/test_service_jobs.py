"""The job queue on its own: order, progress, cancel, failures, the bound, retention."""

from __future__ import annotations

import threading
import time

import pytest

from engine.jobs import JobCancelled, JobExpired, JobNotFound, JobQueue, JobSettings, QueueFull


class Scales:
    """A runner that walks 10 scales, each waiting until the test lets it pass (or times out)."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.batches: list[list[str]] = []

    def __call__(self, jobs, on_progress, should_cancel):
        self.batches.append([job.request for job in jobs])
        if "fail" in self.batches[-1]:
            raise ValueError("the prompt made the model unhappy")
        for step in range(1, 11):
            if should_cancel():
                raise JobCancelled()
            self.gate.acquire(timeout=5)
            on_progress(step, 10, [[step, job.request] for job in jobs])
        return [[job.request] for job in jobs]

    def release(self, scales: int = 1) -> None:
        for _ in range(scales):
            self.gate.release()


def wait_for(queue: JobQueue, job_id: str, predicate, timeout_s: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while not predicate(view := queue.view(job_id)):
        assert time.monotonic() < deadline, view
        time.sleep(0.005)
    return view


def test_a_job_reports_progress_and_its_result():
    scales = Scales()
    queue = JobQueue(scales)
    job = queue.submit("generate", "walk")
    assert queue.view(job.id)["state"] in ("queued", "running")
    scales.release(3)
    view = wait_for(queue, job.id, lambda v: v["progress"]["step"] == 3)
    assert view["state"] == "running" and view["preview"] == [3, "walk"] and "result" not in view
    scales.release(7)
    view = wait_for(queue, job.id, lambda v: v["state"] == "done")
    assert view["result"] == ["walk"] and view["progress"] == {"step": 10, "total": 10}
    queue.close()


def test_cancel_running_and_queued_jobs():
    scales = Scales()
    queue = JobQueue(scales)
    running, queued = queue.submit("generate", "a"), queue.submit("generate", "b")
    scales.release(2)
    wait_for(queue, running.id, lambda v: v["progress"]["step"] == 2)
    assert queue.cancel(queued.id)["state"] == "cancelled"  # at once: it never ran
    queue.cancel(running.id)
    scales.release(1)  # the scale in flight finishes, the next check stops it
    view = wait_for(queue, running.id, lambda v: v["state"] == "cancelled")
    assert view["progress"]["step"] <= 3
    assert queue.counts()["cancelled"] == 2
    queue.close()


def test_a_failure_keeps_the_worker_alive():
    scales = Scales()
    queue = JobQueue(scales)
    failed = queue.submit("generate", "fail")
    view = wait_for(queue, failed.id, lambda v: v["state"] == "failed")
    assert view["error"] == "ValueError: the prompt made the model unhappy"
    ok = queue.submit("generate", "walk")
    scales.release(10)
    assert wait_for(queue, ok.id, lambda v: v["state"] == "done")["result"] == ["walk"]
    queue.close()


def test_the_queue_is_bounded():
    scales = Scales()
    queue = JobQueue(scales, JobSettings(max_queued=2))
    first = queue.submit("generate", "a")
    wait_for(queue, first.id, lambda v: v["state"] == "running")
    queue.submit("generate", "b"), queue.submit("generate", "c")
    with pytest.raises(QueueFull, match="2 jobs are already waiting"):
        queue.submit("generate", "d")
    scales.release(30)
    queue.close()


def test_results_expire_after_the_ttl_and_beyond_the_count():
    scales = Scales()
    queue = JobQueue(scales, JobSettings(result_ttl_s=0.3, max_finished=2))
    scales.release(40)
    ids = [queue.submit("generate", str(index)).id for index in range(4)]
    wait_for(queue, ids[-1], lambda v: v["state"] == "done")
    with pytest.raises(JobExpired, match="latest 2 at most"):
        queue.view(ids[0])  # only the 2 latest finished jobs are kept
    assert queue.view(ids[3])["result"] == ["3"]
    time.sleep(0.4)
    assert queue.counts()["done"] == 0  # an idle queue's counts leave out what has expired
    with pytest.raises(JobExpired, match="kept 0.3 s"):
        queue.view(ids[3])
    with pytest.raises(JobNotFound, match="no job with id 'nope'"):
        queue.view("nope")
    queue.close()


def test_compatible_jobs_run_as_one_batch():
    scales = Scales()
    queue = JobQueue(scales, JobSettings(max_batch=3), batch_key=lambda job: job.request[0])
    first = queue.submit("generate", "a0")
    wait_for(queue, first.id, lambda v: v["state"] == "running")
    waiting = [queue.submit("generate", request) for request in ("a1", "b1", "a2", "a3", "a4")]
    queue.cancel(waiting[3].id)  # "a3" leaves the queue before it runs
    scales.release(40)
    views = [wait_for(queue, job.id, lambda v: v["state"] in ("done", "cancelled")) for job in waiting]
    assert scales.batches == [["a0"], ["a1", "a2", "a4"], ["b1"]]
    assert [view["state"] for view in views] == ["done", "done", "done", "cancelled", "done"]
    assert views[4]["result"] == ["a4"] and views[4]["preview"] == [10, "a4"]
    queue.close()


def test_a_cancelled_job_in_a_running_batch_gets_no_result():
    scales = Scales()
    queue = JobQueue(scales, JobSettings(max_batch=2), batch_key=lambda job: "same")
    blocker = queue.submit("generate", "first")
    wait_for(queue, blocker.id, lambda v: v["state"] == "running")
    kept, dropped = queue.submit("generate", "kept"), queue.submit("generate", "dropped")
    scales.release(12)
    wait_for(queue, dropped.id, lambda v: v["progress"]["step"] == 2)
    queue.cancel(dropped.id)
    scales.release(10)
    assert wait_for(queue, kept.id, lambda v: v["state"] == "done")["result"] == ["kept"]
    assert wait_for(queue, dropped.id, lambda v: v["state"] == "cancelled").get("result") is None
    queue.close()
