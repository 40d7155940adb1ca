"""`import_files`: HAR files and mitmproxy dumps into a new trace directory, all or nothing.

Owns checking the inputs and `out` before any work, and the write-aside-then-rename that
leaves `out` untouched when an import fails or is interrupted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracereplay.capture.exchange import Exchange
from tracereplay.capture.importers.detect import detect_format
from tracereplay.capture.importers.har import iter_har
from tracereplay.capture.importers.mitm import iter_mitm
from tracereplay.errors import TraceEmptyError, TraceExistsError, UsageError
from tracereplay.outdir import check_out_dir
from tracereplay.trace import TraceMetadata, TraceRecord, TraceWriter, open_writer
from tracereplay.trace.store import scan_directory

FORMATS = ("auto", "har", "mitm")
PROGRESS_EVERY_ROWS = 1000


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    out: Path
    files: int
    rows: int
    skipped: int
    """Inputs left out on purpose: TCP/UDP/DNS flows, HAR entries with non-HTTP URLs."""


def import_files(
    paths: Sequence[Path],
    out: Path,
    *,
    to_record: Callable[[Exchange], TraceRecord],
    policy_hash: str,
    fmt: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import every exchange of `paths`, in the order given, as a new trace at `out`.

    Everything is checked before anything is written: the files exist and each is a HAR
    file or a flow dump (`fmt` "auto" sniffs each), and `out` is absent or an empty
    directory. Rows go to a hidden sibling directory that is renamed to `out` once
    complete; on any error, Ctrl-C included, it is removed and `out` stays as it was.

    The trace's capture_start is the ts of the first exchange read: exports and dumps
    are written in about request order, and knowing the true minimum up front would
    take a second parse of every file for a field that is only shown, not computed with.
    `progress(rows)` is called every `PROGRESS_EVERY_ROWS` rows and once at the end.
    """
    sources = _check_inputs(paths, fmt)
    _check_out(out)
    target = out.resolve()  # `out` may be "." or "x/..": name its sibling from the real path
    tmp = target.parent / f".{target.name}.importing-{os.getpid()}"
    # Only this process uses this name; a directory left under it by a killed import
    # that had the same pid (containers reuse pids) would make the writer refuse.
    shutil.rmtree(tmp, ignore_errors=True)
    kinds = {kind for _, kind in sources}
    source = f"import-{kinds.pop()}" if len(kinds) == 1 else "import"
    skipped = 0

    def skip(_reason: str) -> None:
        nonlocal skipped
        skipped += 1

    writer: TraceWriter | None = None
    rows = 0
    try:
        # closing(): a failed row closes the file being read now, not at garbage collection.
        with contextlib.closing(_exchanges(sources, skip)) as exchanges:
            for exchange in exchanges:
                if writer is None:
                    metadata = TraceMetadata(
                        source=source, capture_start=exchange.ts, policy_hash=policy_hash
                    )
                    writer = open_writer(tmp, metadata)
                writer.write(to_record(exchange))
                rows += 1
                if progress is not None and rows % PROGRESS_EVERY_ROWS == 0:
                    progress(rows)
        if writer is None:
            raise TraceEmptyError(_nothing_to_import(paths, skipped))
        writer.close()
        _move_into_place(tmp, target, out)
    except BaseException:
        if writer is not None:
            # Stop the writer's flush and compaction threads before deleting under them.
            with contextlib.suppress(Exception):
                writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress is not None and rows % PROGRESS_EVERY_ROWS:
        progress(rows)
    return ImportResult(out=out, files=len(paths), rows=rows, skipped=skipped)


def _check_inputs(paths: Sequence[Path], fmt: str) -> list[tuple[Path, str]]:
    """(path, 'har' | 'mitm') for each input, after checking it exists and is one."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not paths:
        raise UsageError("no files to import")
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file")
        if not path.is_file():
            raise UsageError(f"{path}: not a file")
    return [(path, detect_format(path) if fmt == "auto" else fmt) for path in paths]


def _check_out(out: Path) -> None:
    """Refuse an `out` that exists, unless it is an empty directory, and one that cannot be
    written (read-only, no parent directory: `check_out_dir`)."""
    if not os.path.lexists(out):
        check_out_dir(out)
        return
    if out.is_symlink() or not out.is_dir():
        raise TraceExistsError(f"{out} already exists; choose a new --out directory")
    parts, journals = scan_directory(out)
    if parts or journals:
        raise TraceExistsError(f"{out} already holds a trace; choose a new --out directory")
    if any(out.iterdir()):
        raise TraceExistsError(f"{out} is not empty; choose a new --out directory")
    check_out_dir(out)


def _exchanges(
    sources: list[tuple[Path, str]], on_skip: Callable[[str], None]
) -> Generator[Exchange, None, None]:
    for path, kind in sources:
        reader = iter_har if kind == "har" else iter_mitm
        yield from reader(path, on_skip=on_skip)


def _move_into_place(tmp: Path, target: Path, out: Path) -> None:
    if target.is_dir():
        try:
            target.rmdir()  # was checked empty; os.replace cannot replace a directory everywhere
        except OSError:
            raise TraceExistsError(
                f"{out} is no longer empty; choose a new --out directory"
            ) from None
    tmp.replace(target)


def _nothing_to_import(paths: Sequence[Path], skipped: int) -> str:
    where = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files"
    also = f", {skipped} skipped as not HTTP" if skipped else ""
    return f"{where}: nothing to import (no HTTP exchanges{also})"
