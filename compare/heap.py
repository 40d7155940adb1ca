"""glibc asked to keep and reuse the memory `tracereplay compare` frees (issue 15): at 10 M
requests a run makes ~15 GB of short-lived arrays, and what glibc hands back is zeroed
again by the kernel when touched anew (half the run's CPU was the kernel's `clear_page`).

By default glibc serves a block over its mmap threshold (at most 32 MiB: a column of 10 M
float64 is 80 MB) by a mapping of its own, unmapped when freed, and gives a thread other
than the main one an arena of its own. `keep_freed_memory` serves blocks up to
`MMAP_THRESHOLD` from the heap, returns the heap's top only past `TRIM_THRESHOLD` free,
and keeps every thread in the main arena (compare reads OTHER on a thread), so a freed
column is the next one's memory. What is kept stays resident and leaves holes under what
is allocated later, so the command sets it only after both reads (where its peak is:
bench/README.md, round 10) and `give_back` returns the free pages before each later step.
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
"""The heap's top handed back once 256 MiB of it is free (freed blocks below the top are
reused, not returned)."""


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _set(*settings: tuple[int, int]) -> bool:
    mallopt = getattr(_libc(), "mallopt", None)  # not glibc (musl has no mallopt): None
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(mallopt(option, value) == 1 for option, value in settings)


def keep_freed_memory() -> bool:
    """Set the three options (module doc) for this process; False where the C library is
    not glibc (nothing changed). Takes effect for what is allocated afterwards; the arena
    limit only for threads that start afterwards."""
    return _set((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (M_ARENA_MAX, 1))  # fmt: skip


def give_back() -> bool:
    """Return the heap's free pages to the system (glibc's `malloc_trim(0)`: the free
    blocks below its top too); False where there is no glibc."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
