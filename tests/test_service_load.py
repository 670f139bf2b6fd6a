"""Bounded load on a real engine: many sequential jobs past the kept results, and 8 clients at once; no errors, no leak."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from service_engine import serving

from mosa_blender.engine_client import EngineClient

SEQUENTIAL_JOBS = 100
WARMUP_JOBS = 20
CLIENTS = 8
JOBS_PER_CLIENT = 5
KEPT_RESULTS = 2 * CLIENTS  # the engine's --max-finished: the warm-up fills it, the jobs after evict
MAX_GROWTH = 0.05  # of the engine's resident memory; seen: under 2 %


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    options = ("--max-queued", str(CLIENTS * 2), "--max-finished", str(KEPT_RESULTS))
    with serving(tmp_path_factory.mktemp("load"), *options) as running:
        yield {"process": running.process, "url": running.url, "token": running.token}


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def one_job(url: str, token: str, seed: int) -> int:
    client = EngineClient(url, token, timeout_s=30)
    try:
        result = client.wait(
            client.generate("a person walks forward", frames=40, seed=seed), timeout_s=120, poll_s=0.01
        )
        return len(result[0]["positions"])
    finally:
        client.close()


def test_sequential_jobs_keep_memory_flat(engine):
    url, token, pid = engine["url"], engine["token"], engine["process"].pid
    for seed in range(WARMUP_JOBS):
        assert one_job(url, token, seed) == 40
    after_warmup = resident_kib(pid)
    started = time.monotonic()
    for seed in range(SEQUENTIAL_JOBS):
        assert one_job(url, token, seed) == 40
    seconds = time.monotonic() - started
    after = resident_kib(pid)
    growth = (after - after_warmup) / after_warmup
    assert EngineClient(url, token).health()["jobs"]["done"] == KEPT_RESULTS  # the rest were let go
    print(
        f"\n{SEQUENTIAL_JOBS} sequential jobs in {seconds:.1f} s ({seconds / SEQUENTIAL_JOBS * 1000:.0f} ms each); "
        f"VmRSS {after_warmup / 1024:.1f} -> {after / 1024:.1f} MiB ({growth:+.1%})"
    )
    assert growth < MAX_GROWTH


def test_concurrent_clients_all_complete(engine):
    url, token, pid = engine["url"], engine["token"], engine["process"].pid
    with ThreadPoolExecutor(CLIENTS) as pool:  # warm-up: the first batches of up to 8 jobs size the allocator's pools
        assert list(pool.map(lambda seed: one_job(url, token, seed), range(4 * CLIENTS))) == [40] * 4 * CLIENTS
    before = resident_kib(pid)
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        seeds = range(CLIENTS * JOBS_PER_CLIENT)
        lengths = list(pool.map(lambda seed: one_job(url, token, seed), seeds))
    seconds = time.monotonic() - started
    after = resident_kib(pid)
    print(
        f"\n{CLIENTS} clients x {JOBS_PER_CLIENT} jobs in {seconds:.1f} s; VmRSS {before / 1024:.1f} -> {after / 1024:.1f} MiB"
    )
    assert lengths == [40] * len(seeds)
    assert (after - before) / before < MAX_GROWTH
    assert EngineClient(url, token).health()["jobs"]["failed"] == 0
