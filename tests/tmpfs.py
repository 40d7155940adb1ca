"""A small tmpfs mounted for one test: a real filesystem that fills up (needs root)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(where: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """`where` (created) as a tmpfs of `size` (e.g. "2m"); the test is skipped without root."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path, *, leave_bytes: int = 0) -> Path:
    """A file in `directory` that takes all its free space but `leave_bytes`."""
    import os

    filler = directory / "filler"
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    with filler.open("wb") as handle:
        chunk = b"\0" * 65536
        left = max(0, free - leave_bytes)
        try:
            while left > 0:
                left -= handle.write(chunk[: min(len(chunk), left)])
        except OSError:
            pass
    return filler
