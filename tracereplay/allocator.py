"""How this process gets memory for big arrays: freed blocks kept in glibc's heap for the
next array, and numpy's arrays on ordinary pages, not transparent huge pages.

`tracereplay model` at 10 M rows spent ~5 of its ~15 CPU s in the kernel, most of it
zeroing fresh huge pages for numpy's new arrays (clear_page_erms under
do_huge_pmd_anonymous_page): glibc maps every block above 32 MiB on its own and unmaps it
when freed, and numpy asks for huge pages on each. On this machine (a VM whose balloon
reports free 2 MiB blocks to the host) a fresh huge page costs ~1-2 s a GiB to touch, a
4 KiB page ~0.6, a page the heap kept nothing (bench/README.md, alloc18). Where the C
library is not glibc nothing is changed. And `collector_paused`: no cyclic garbage
collection over a stretch that makes many small objects and few cycles.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

M_TRIM_THRESHOLD = -1
"""glibc's mallopt parameter: the free top of the heap above which `free` shrinks it."""
M_MMAP_MAX = -4
"""glibc's mallopt parameter: how many blocks may be mapped on their own (0: none)."""
KEPT_TOP_BYTES = (1 << 31) - 1
"""The heap's free top `free` leaves in place (mallopt's int at most: 2 GiB, all of it at
the model's peaks). What bounds the peak: the sessions give the heap's free pages back
before the behaviors' child forks (`malloc_trim`, models/sessionized.py)."""


def _glibc() -> Any | None:
    """This process's C library when it is glibc (None elsewhere: musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # Windows: no handle of the process's own symbols
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc


def reuse_freed_memory() -> bool:
    """Have glibc serve every block from its heap (`M_MMAP_MAX` 0: no big array mapped on
    its own and unmapped when freed) and keep the heap's free top (`M_TRIM_THRESHOLD`), so
    a freed array's pages serve the next one instead of the kernel zeroing fresh ones; and
    numpy no longer ask for huge pages (the heap's are reused; a fresh one cost more here
    than the 512 small pages it holds). For the whole process and the children it forks;
    whether it was applied (False where the C library is not glibc or refused a value:
    numpy's pages are then left as they were)."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on a value it refuses.
    if not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, KEPT_TOP_BYTES)):
        return False
    from numpy._core import multiarray

    multiarray._set_madvise_hugepage(False)  # type: ignore[attr-defined]  # (no stub)
    return True


def give_back_freed() -> None:
    """glibc's free memory given back to the system (`malloc_trim(0)`, every arena: a
    thread's too). With `reuse_freed_memory`, freed arrays stay resident in the heap for
    the next one, which is the point, except where what comes next does not reuse them:
    the behaviors' child forks with them (models/sessionized.py: real10M's child 1,690 →
    1,612 MiB, sess17), Arrow's read or the next trace's read allocates elsewhere
    (models/light_columns.py, rd24; compare, cmp24), one process's behaviors and samples
    come on top of them (models/model.py, feat24). A no-op where the C library has no
    `malloc_trim` (not glibc)."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside, then the collector as it was (on or off), also
    on an error: the model's sample walks and imports make millions of small objects, few
    of them cycles, and each full collection traverses every live container again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


CGROUP = Path("/sys/fs/cgroup")
"""Where a Linux (cgroup v2) container's memory limit and use are read."""


def available_bytes(cgroup: Path = CGROUP) -> int:
    """The memory this process could still take: the system's available memory
    (`psutil.virtual_memory().available`), or less where its cgroup's limit leaves less
    (`memory.max` less `memory.current`, cgroup v2; no limit or no file: the system's)."""
    import psutil

    available = int(psutil.virtual_memory().available)
    try:
        limit = (cgroup / "memory.max").read_text(encoding="ascii").strip()
        if limit == "max":
            return available
        used = int((cgroup / "memory.current").read_text(encoding="ascii").strip())
        return max(0, min(available, int(limit) - used))
    except (OSError, ValueError):
        return available
