"""One process at a time in a folder: an flock on a lock file there, which the system releases
however the process ends (a crash, a kill). The file holds the holder's pid, for the refusal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Held(Exception):
    """Another process holds the lock; `holder` is its pid as the lock file says ('unknown' if not)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextmanager
def held_alone(path: Path) -> Iterator[None]:
    """Hold the lock file `path` for the block, or raise Held at once. Windows has no flock: two
    processes there are not told apart."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise Held(lock.read().strip() or "unknown") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield
