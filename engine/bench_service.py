"""Throughput of one engine serving 8 clients at once, over real HTTP on loopback.

The service runs the generate jobs that wait together with the same options as one batch
(`serve --max-batch 8`); the same 8 clients against an engine that runs jobs one at a time
(`--max-batch 1`) show what the batching buys, and one client alone what a single user gets.
The committed demo model, 4 s of motion per job; each engine gets a warm-up round first.
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from engine.cli import DEFAULT_CHECKPOINT
from engine.service import default_threads

CLIENTS = 8
JOBS_PER_CLIENT = 4
SECONDS = 4.0
PROMPT = "a person walks forward"
POLL_S = 0.03  # as the add-on polls (operators.POLL_S)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Round:
    max_batch: int
    clients: int
    jobs: int
    seconds: float

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds


def _one_client(client, seeds: range) -> None:
    for seed in seeds:
        client.wait(client.generate(PROMPT, seconds=SECONDS, seed=seed), poll_s=POLL_S)


def _round(engine, clients: int) -> float:
    """Seconds for `clients` clients at once, JOBS_PER_CLIENT jobs each, one after another."""
    connections = [engine.client(timeout_s=60.0) for _ in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        runs = [
            pool.submit(_one_client, c, range(n * JOBS_PER_CLIENT, (n + 1) * JOBS_PER_CLIENT))
            for n, c in enumerate(connections)
        ]
        for run in runs:
            run.result()
    seconds = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return seconds


def measure() -> list[Round]:
    """One client alone and 8 at once on a batching engine, then 8 at once on a one-job-at-a-time engine."""
    from mosa_blender.engine_process import EngineProcess

    rounds = []
    with tempfile.TemporaryDirectory(prefix="mosa-bench-service-") as folder:
        for max_batch, client_counts in ((CLIENTS, (1, CLIENTS)), (1, (CLIENTS,))):
            engine = EngineProcess(
                sys.executable,
                str(DEFAULT_CHECKPOINT),
                device="cpu",
                log_dir=Path(folder) / f"batch-{max_batch}",
                engine_root=ROOT,
                serve_options=("--max-batch", str(max_batch), "--max-queued", str(4 * CLIENTS)),
            )
            engine.ensure_running()
            try:
                _round(engine, CLIENTS)  # warm-up: the model loaded, the first batches sized
                for clients in client_counts:
                    rounds.append(Round(max_batch, clients, clients * JOBS_PER_CLIENT, _round(engine, clients)))
            finally:
                engine.stop()
    return rounds


def table(rounds: list[Round]) -> str:
    lines = [
        f"## One engine, {CLIENTS} clients at once (HTTP on loopback; demo model, {SECONDS:g} s of motion per job)",
        "",
        "| engine | clients | jobs | s | jobs / s | s / job |",
        "|---|---|---|---|---|---|",
    ]
    for r in rounds:
        engine = f"batches up to {r.max_batch}" if r.max_batch > 1 else "one job at a time"
        lines.append(
            f"| {engine} (--max-batch {r.max_batch}) | {r.clients} | {r.jobs} | {r.seconds:.2f} | "
            f"{r.jobs_per_second:.2f} | {r.seconds / r.jobs:.3f} |"
        )
    batched = next(r for r in rounds if r.max_batch > 1 and r.clients == CLIENTS)
    alone = next(r for r in rounds if r.max_batch == 1)
    notes = [
        f"each client waits for its job's result before sending the next ({JOBS_PER_CLIENT} jobs each), polling every "
        f"{POLL_S * 1000:.0f} ms, as the add-on does; the engines run with serve's default --threads "
        f"({default_threads()} on this machine)",
        f"batching: {batched.jobs_per_second / alone.jobs_per_second:.2f}x the throughput of one job at a time "
        f"with {CLIENTS} clients",
    ]
    return "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"


def report() -> str:
    return table(measure())
