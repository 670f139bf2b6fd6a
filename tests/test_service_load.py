"""Bounded load on a real engine: many sequential jobs past the results it keeps, and 8 clients
at once; no errors, no leak."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from service_engine import serving

from mosa_blender.engine_client import EngineClient

SEQUENTIAL_JOBS = 100
CLIENTS = 8
JOBS_PER_CLIENT = 5
# The engine's --max-finished. Jobs finish in batches of up to 8, so a client's result is kept
# while three more batches finish, and the warm-ups fill the store: the jobs measured evict.
KEPT_RESULTS = WARMUP_JOBS = 4 * CLIENTS
# Growth of the engine's resident memory allowed; seen: under 0.5 % sequential, up to 2.1 %
# concurrent (batches of different sizes take the allocator's pools further).
MAX_GROWTH_SEQUENTIAL, MAX_GROWTH_CONCURRENT = 0.05, 0.10


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


def kept_results(url: str, token: str) -> int:
    client = EngineClient(url, token)
    try:
        return client.health()["jobs"]["done"]
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
    assert kept_results(url, token) == KEPT_RESULTS  # the older ones were let go
    print(
        f"\n{SEQUENTIAL_JOBS} sequential jobs in {seconds:.1f} s ({seconds / SEQUENTIAL_JOBS * 1000:.0f} ms each); "
        f"VmRSS {after_warmup / 1024:.1f} -> {after / 1024:.1f} MiB ({growth:+.1%})"
    )
    assert growth < MAX_GROWTH_SEQUENTIAL


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
    assert (after - before) / before < MAX_GROWTH_CONCURRENT
    assert kept_results(url, token) == KEPT_RESULTS
