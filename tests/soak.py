"""The soak behind `python3 build.py soak`: many jobs against a real engine on 127.0.0.1, some
cancelled at random moments, the engine killed outright twice and started again, and the engine's
memory and open files measured at the start and at the end of each of its lives.

A job may end done, cancelled, or lost with an engine that was killed under it; any other end (a
failed job, an HTTP error, a job that never finishes) is a failure. The figures are printed as a
table, and the exit status is 1 on any failure or when a life's memory or open files grow past
the bounds below. Usage: tests/soak.py [--jobs 1000] [--kills 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cli import DEFAULT_CHECKPOINT  # noqa: E402
from mosa_blender.engine_client import EngineClient, EngineError, EngineUnavailable  # noqa: E402
from tests.service_engine import start_engine, stop, wait_ready, write_token  # noqa: E402

PROMPTS = ("a person walks forward", "a person waves", "a person jumps", "someone spins around", "a person crouches")
IN_FLIGHT = 6  # jobs submitted and not yet finished, at most
CANCEL_SHARE = 0.2
WARM_UP_JOBS = 20  # a life's first measure comes after these (the model and its caches loaded)
MAX_MEMORY_GROWTH_MB = 200.0
MAX_OPEN_FILES_GROWTH = 16
JOB_TIMEOUT_S = 120.0


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Life:
    """One engine process, from its start to its kill or stop."""

    pid: int
    jobs: int = 0
    memory_mb: list[float] = field(default_factory=list)  # after warm-up, at the end
    files: list[int] = field(default_factory=list)

    def measure(self) -> None:
        self.memory_mb.append(resident_mb(self.pid))
        self.files.append(open_files(self.pid))


@dataclass
class Tally:
    done: int = 0
    cancelled: int = 0
    lost_to_kills: int = 0
    failures: list[str] = field(default_factory=list)


class Engine:
    """The engine subprocess, started again after each kill on the same token."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.token_file, self.token = write_token(folder)
        self.process = None
        self.client: EngineClient | None = None

    def start(self) -> Life:
        args = ["--checkpoint", str(DEFAULT_CHECKPOINT), "--token-file", str(self.token_file), "--device", "cpu"]
        args += ["--log-file", str(self.folder / "engine.log"), "--max-queued", str(4 * IN_FLIGHT)]
        self.process, ready = start_engine(args, self.folder / "stderr")
        self.client = EngineClient(f"http://127.0.0.1:{ready['port']}", self.token, timeout_s=30.0)
        wait_ready(self.client)
        return Life(self.process.pid)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process.stdout.close()
        self.client.close()

    def stop(self) -> None:
        stop(self.process)
        self.client.close()


def finish(client: EngineClient, in_flight: dict[str, float], tally: Tally, rng: random.Random) -> int:
    """One poll of every job in flight (cancelling some); returns how many finished."""
    finished = 0
    for job_id, submitted in list(in_flight.items()):
        if rng.random() < CANCEL_SHARE / 4:  # about CANCEL_SHARE of the jobs, at some poll of their life
            client.cancel(job_id)
        state = client.job(job_id)["state"]
        if state in ("queued", "running"):
            if time.monotonic() - submitted > JOB_TIMEOUT_S:
                tally.failures.append(f"job {job_id} still {state} after {JOB_TIMEOUT_S:.0f} s")
                del in_flight[job_id]
            continue
        del in_flight[job_id]
        finished += 1
        if state == "done":
            tally.done += 1
        elif state == "cancelled":
            tally.cancelled += 1
        else:
            tally.failures.append(f"job {job_id} ended {state}: {client.job(job_id).get('error')}")
    return finished


def soak(jobs: int, kills: int, seed: int) -> tuple[Tally, list[Life], float]:
    rng = random.Random(seed)
    kill_after = [jobs * (k + 1) // (kills + 1) for k in range(kills)]
    tally, lives = Tally(), []
    soak_files_before = open_files(os.getpid())
    with tempfile.TemporaryDirectory(prefix="mosa-soak-") as folder:
        engine = Engine(Path(folder))
        lives.append(engine.start())
        in_flight: dict[str, float] = {}
        submitted = 0
        while submitted < jobs or in_flight:
            life = lives[-1]
            try:
                while submitted < jobs and len(in_flight) < IN_FLIGHT:
                    options = {"seconds": rng.choice((2.0, 3.0, 4.0)), "seed": rng.randrange(1000)}
                    in_flight[engine.client.generate(rng.choice(PROMPTS), **options)] = time.monotonic()
                    submitted += 1
                life.jobs += finish(engine.client, in_flight, tally, rng)
            except (EngineError, EngineUnavailable) as error:
                tally.failures.append(f"{type(error).__name__}: {error}")
                in_flight.clear()
            if len(life.memory_mb) == 0 and life.jobs >= WARM_UP_JOBS:
                life.measure()
            if kill_after and submitted >= kill_after[0]:
                kill_after.pop(0)
                life.measure()
                engine.kill()
                tally.lost_to_kills += len(in_flight)
                in_flight.clear()
                lives.append(engine.start())
            time.sleep(0.02)
        lives[-1].measure()
        engine.stop()
    return tally, lives, open_files(os.getpid()) - soak_files_before


def report(tally: Tally, lives: list[Life], soak_files_growth: int, seconds: float) -> list[str]:
    """Prints the figures; returns what is wrong."""
    total = tally.done + tally.cancelled + tally.lost_to_kills + len(tally.failures)
    print(f"| jobs | done | cancelled | lost to {len(lives) - 1} engine kills | failures | seconds |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {total} | {tally.done} | {tally.cancelled} | {tally.lost_to_kills} | {len(tally.failures)} | {seconds:.0f} |"
    )
    print()
    print("| engine life | jobs finished | memory after warm-up -> end (MB) | open files after warm-up -> end |")
    print("|---|---|---|---|")
    wrong = list(tally.failures[:10])
    for number, life in enumerate(lives, 1):
        if len(life.memory_mb) < 2:
            life.memory_mb.insert(0, life.memory_mb[0])  # too short a life to warm up: start and end the same
            life.files.insert(0, life.files[0])
        (memory_start, memory_end), (files_start, files_end) = life.memory_mb[:2], life.files[:2]
        print(f"| {number} | {life.jobs} | {memory_start:.0f} -> {memory_end:.0f} | {files_start} -> {files_end} |")
        if memory_end - memory_start > MAX_MEMORY_GROWTH_MB:
            wrong.append(f"life {number}: memory grew {memory_end - memory_start:.0f} MB")
        if files_end - files_start > MAX_OPEN_FILES_GROWTH:
            wrong.append(f"life {number}: open files grew by {files_end - files_start}")
    print(f"\nthe soak's own open files grew by {soak_files_growth}")
    if soak_files_growth > MAX_OPEN_FILES_GROWTH:
        wrong.append(f"the client side's open files grew by {soak_files_growth}")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    tally, lives, soak_files_growth = soak(args.jobs, args.kills, args.seed)
    wrong = report(tally, lives, soak_files_growth, time.monotonic() - started)
    for line in wrong:
        print(f"FAIL: {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
