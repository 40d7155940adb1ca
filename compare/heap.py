"""glibc asked to keep and reuse the memory `tracereplay compare` frees (issue 15): at 10 M
requests a run makes ~15 GB of short-lived arrays, and what glibc hands back is zeroed
again by the kernel when touched anew (half the run's CPU was the kernel's `clear_page`).

By default glibc serves a block over its mmap threshold (at most 32 MiB: a column of 10 M
float64 is 80 MB) by a mapping of its own, unmapped when freed, and gives a thread other
than the main one an arena of its own. `keep_freed_memory` serves blocks up to
`MMAP_THRESHOLD` from the heap, returns the heap's top only past `TRIM_THRESHOLD` free,
and keeps every thread in the main arena (compare reads OTHER on a thread), so a freed
column is the next one's memory. What is kept stays resident, and two threads in one heap
leave holes: so over the stage that sets the peak (OTHER's read beside REAL's noise floor)
`given_back` returns the free pages first and lets glibc work as by default.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
"""mallopt's parameter numbers (glibc's malloc.h)."""
MMAP_THRESHOLD = 1 << 30
"""Blocks up to 1 GiB from the heap: every column compare holds or makes at 10 M."""
TRIM_THRESHOLD = 256 << 20
"""The heap's top handed back once 256 MiB of it is free (freed blocks below the top are
reused, not returned)."""
DEFAULT_MMAP_THRESHOLD, DEFAULT_TRIM_THRESHOLD = 32 << 20, 64 << 20
"""Where glibc's own thresholds settle once it has freed a 32 MiB mapping (64-bit)."""
_kept = [False]


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
    kept = _set((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (M_ARENA_MAX, 1))  # fmt: skip
    _kept[0] = _kept[0] or kept
    return kept


def give_back() -> bool:
    """Return the heap's free pages to the system (glibc's `malloc_trim(0)`: the free
    blocks below its top too); False where there is no glibc."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


@contextmanager
def given_back() -> Iterator[None]:
    """When `keep_freed_memory` was called: the heap's free pages returned, and glibc's
    default-like thresholds within (big blocks mapped and unmapped), kept memory after.
    Otherwise nothing."""
    if not _kept[0]:
        yield
        return
    give_back()
    _set((M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD), (M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD))
    try:
        yield
    finally:
        _set((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
