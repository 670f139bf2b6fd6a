"""Keep memory the engine frees for its next allocation, instead of giving it back to the system.

A guided sampling step at batch 32 makes attention scores of up to 18 MB per layer. glibc serves
blocks above its mmap threshold (128 kB, rising only as such blocks are freed) with fresh pages
from the kernel and unmaps them at free, so each step pays page faults for memory it has just
freed; a freed top of the heap is trimmed the same way. With both thresholds raised, a batch-32
generation on a 2-core CPU is 12-14 % faster (docs/bench.md), and resident memory stays at its
peak instead of going up and down. Elsewhere (macOS, Windows, other C libraries) nothing changes.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
LARGEST_MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024  # free memory at the heap's top kept before trimming


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; whether they were raised."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        log.info("no glibc mallopt here; the allocator keeps its defaults")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    refused = [
        name
        for name, parameter, value in (
            ("mmap threshold", M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD),
            ("trim threshold", M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        )
        if mallopt(parameter, value) != 1
    ]
    if refused:
        log.info("glibc refused to raise its %s; freed memory may go back to the system", " and ".join(refused))
    return not refused
