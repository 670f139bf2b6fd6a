"""engine.allocator: the engine process keeps the memory it frees (glibc's thresholds raised)."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest
from conftest import ROOT

BLOCK = 24 * 1024 * 1024  # above glibc's default mmap threshold, below the raised one

# Allocates and frees one block in a fresh process; prints whether it was mapped on its own and
# how many free bytes the heap kept after the free.
PROBE = f"""
import ctypes, sys
from engine.allocator import keep_freed_memory
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
raised = keep_freed_memory() if sys.argv[1] == "keep" else False
mapped_before = libc.mallinfo2().hblks
block = libc.malloc({BLOCK})
mapped = libc.mallinfo2().hblks - mapped_before
libc.free(block)
print(raised, mapped, libc.mallinfo2().fordblks)
"""


def probe(mode: str) -> tuple[bool, int, int]:
    command = [sys.executable, "-c", PROBE, mode]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


def test_freed_blocks_stay_with_the_process():
    if not sys.platform.startswith("linux"):
        pytest.skip("the allocator setting is glibc's (Linux); elsewhere the engine keeps the defaults")
    try:
        observable = hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        observable = False
    if not observable:
        pytest.skip("this C library has no mallinfo2 (glibc >= 2.33) to observe the allocator with")
    raised, mapped, _ = probe("default")
    assert not raised and mapped == 1, "by default glibc maps a 24 MB block on its own (and unmaps it at free)"
    raised, mapped, kept = probe("keep")
    assert raised, "keep_freed_memory() did not raise glibc's thresholds"
    assert mapped == 0, "with the thresholds raised a 24 MB block comes from the heap"
    assert kept >= BLOCK, f"the heap gave the freed block back ({kept} free bytes kept)"
