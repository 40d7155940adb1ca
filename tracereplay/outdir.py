"""Where a command writes (`--out`): checked before any work starts, so a read-only place, a
file where a directory goes or a missing parent is one line and exit 2, not a traceback
after minutes of work; and removed again when the command fails half-way.

Writability is probed by creating and removing a file (permission bits say nothing to
root, and nothing about a read-only mount).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tracereplay.errors import UsageError


def check_out_dir(out: Path, *, flag: str = "--out", empty: bool = True) -> Path:
    """`out` as a directory a command may create or fill: absent in an existing, writable
    directory, or a writable directory (empty unless `empty` is False). UsageError naming
    `flag` otherwise."""
    out = Path(out)
    if os.path.lexists(out):
        if out.is_symlink() or not out.is_dir():
            raise UsageError(f"{flag} {out}: exists and is not a directory")
        if empty and any(out.iterdir()):
            raise UsageError(f"{flag} {out}: is not empty; choose a new directory")
        _probe(out, flag, out)
        return out
    _check_parent(out, flag)
    return out


def check_out_file(out: Path, *, flag: str = "--out") -> Path:
    """`out` as a file a command may write (or replace): not a directory, in an existing,
    writable directory. UsageError naming `flag` otherwise."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"{flag} {out}: is a directory; give a file name")
    if os.path.lexists(out) and not out.is_file():
        raise UsageError(f"{flag} {out}: exists and is not a regular file")
    _check_parent(out, flag)
    return out


@contextlib.contextmanager
def removed_on_failure(out: Path) -> Iterator[Path]:
    """Run a block that writes into directory `out`; if it raises (Ctrl-C included), what
    it added is removed: `out` itself when it did not exist before, else the entries of
    `out` that were not there before (what was there is left alone)."""
    out = Path(out)
    before = set(out.iterdir()) if out.is_dir() else None
    try:
        yield out
    except BaseException:
        if before is None:
            shutil.rmtree(out, ignore_errors=True)
        elif out.is_dir():
            for child in set(out.iterdir()) - before:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _check_parent(out: Path, flag: str) -> None:
    parent = out.absolute().parent
    if not parent.exists():
        raise UsageError(f"{flag} {out}: the directory {parent} does not exist; create it first")
    if not parent.is_dir():
        raise UsageError(f"{flag} {out}: {parent} is not a directory")
    _probe(parent, flag, out)


def _probe(directory: Path, flag: str, out: Path) -> None:
    try:
        handle, name = tempfile.mkstemp(prefix=".tracereplay-probe-", dir=directory)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{flag} {out}: cannot write in {directory} ({reason})") from None
    os.close(handle)
    Path(name).unlink(missing_ok=True)
