"""The C allocator tuned for NumPy's temporaries.

glibc serves allocations above its mmap threshold (128 KiB at start) with fresh mappings and
gives freed memory at the top of the heap back to the system above its trim threshold. NumPy
makes and frees temporaries of hundreds of kilobytes on every layer of every step (a 128 x 256
float64 batch is 256 KiB), so each one comes back as new pages, faulted in and zeroed by the
kernel: a 784-256-256-10 float64 train step spent 40% of its time there (7.8 ms instead of
4.8 ms here). Raising both thresholds keeps such blocks in the heap for reuse; memory the
process no longer needs above ``trim`` is still returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MIB = 1 << 20


def tune_malloc_mib(threshold_mib: int) -> bool:
    """The service's tuning: blocks below ``threshold_mib`` MiB from the heap, and twice that
    much freed memory kept for reuse (0: the allocator's defaults)."""
    return tune_malloc(threshold_mib * MIB, 2 * threshold_mib * MIB)


def tune_malloc(mmap_threshold: int, trim_threshold: int) -> bool:
    """Set glibc's mmap and trim thresholds (bytes); False where there is no glibc."""
    if not sys.platform.startswith("linux") or mmap_threshold <= 0:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim_threshold)
    )
