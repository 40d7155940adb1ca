"""Freed memory given back to the system between compare's stages (issue 15): glibc keeps
the free pages of its heap resident, and the next trace's read does not reuse them."""

from __future__ import annotations

import ctypes


def give_back_freed() -> None:
    """`malloc_trim(0)`: the free pages of every glibc arena returned to the system. REAL's
    read, sessions, binding and tables, and the noise floor's sorts, free ~0.1 GB of
    arrays under glibc's mmap threshold that stay resident once freed; OTHER's read
    (Arrow's pool, arrays mapped on their own) does not reuse them, so they sat under its
    peak (real10M vs other10M: bench/README.md, cmp24). A no-op where the C library has
    no `malloc_trim` (not glibc)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, TypeError, AttributeError):  # Windows: no handle of the process's own
        return
    trim(0)
