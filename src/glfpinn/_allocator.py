"""Keeping freed memory for reuse on CPU (glibc's malloc).

A PINN training step on the CPU allocates and frees dozens of (points x width) buffers of a few
hundred KiB to a few MiB. glibc serves blocks above its mmap threshold with fresh mappings and
returns freed memory at the top of the heap to the system, so every step pays page faults on
memory it just gave back: 1,000-1,500 minor faults per allen-cahn step (N = 2000) and 15-25% of
its time (``benchmarks/training_speed.py``, which counts them). Raising the two thresholds keeps
that memory in the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["retain_freed_memory"]

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 * 2**20
#: Freed memory at the top of the heap kept for reuse instead of being returned.
TRIM_THRESHOLD = 1024 * 2**20

_applied = False


def retain_freed_memory() -> bool:
    """Have glibc keep blocks up to 32 MiB in the heap and keep up to 1 GiB of freed memory.

    Process-wide and idempotent; the only cost is that a process's resident memory does not
    shrink after a peak. Returns whether the settings are in effect (``False`` off glibc, e.g.
    on macOS or musl, where nothing is changed).
    """
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    except (OSError, AttributeError):
        return False
    _applied = ok
    return ok
