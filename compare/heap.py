"""glibc asked to keep and reuse the memory `tracereplay compare` frees (issue 15): at 10 M
requests a run makes ~15 GB of short-lived arrays, and what glibc hands back is zeroed
again by the kernel when touched anew (half the run's CPU was the kernel's `clear_page`).

By default glibc serves a block over its mmap threshold (at most 32 MiB: a column of 10 M
float64 is 80 MB) by a mapping of its own, unmapped when freed, and gives a thread other
than the main one an arena of its own. `keep_freed_memory` serves blocks up to
`MMAP_THRESHOLD` from the heap, returns the heap's top only past `TRIM_THRESHOLD` free,
and keeps every thread in the main arena (compare reads OTHER on a thread), so a freed
column is the next one's memory. Measured (bench/README.md, round 10): the kernel zeroes
~2.5 GB of huge pages instead of ~15 GB; the peak stays what it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
"""mallopt's parameter numbers (glibc's malloc.h)."""
MMAP_THRESHOLD = 1 << 30
"""Blocks up to 1 GiB from the heap: every column compare holds or makes at 10 M."""
TRIM_THRESHOLD = 256 << 20
"""The heap's top handed back once 256 MiB of it is free (glibc keeps no more than that
beyond what is in use at its top; freed blocks below it are reused, not returned)."""


def keep_freed_memory() -> bool:
    """Set the three options (module doc) for this process; False where the C library is
    not glibc (nothing changed). Takes effect for what is allocated afterwards; the arena
    limit only for threads that start afterwards."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt), or no libc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (M_ARENA_MAX, 1))  # fmt: skip
    return all(mallopt(option, value) == 1 for option, value in settings)
