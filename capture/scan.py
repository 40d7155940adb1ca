"""The leak scanner: runs the detectors over every stored string of a trace.

`scan_trace` builds a `ScanReport` (counts and masked examples, never a raw value);
`render_scan` prints it. A clean report means no detector fired anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pyarrow as pa

from tracereplay.capture.anonymize.detectors import KINDS, Finding, find_all
from tracereplay.errors import UsageError
from tracereplay.trace import open_trace

if TYPE_CHECKING:
    from rich.console import Console

STRING_COLUMNS = ("session", "client", "host", "path", "query", "error")
HEADER_COLUMNS = ("req_headers", "resp_headers")
BODY_COLUMNS = ("req_body", "resp_body")
SCANNED_COLUMNS = STRING_COLUMNS + HEADER_COLUMNS + BODY_COLUMNS

# Each row may hold two bodies of up to the capture's body limit: small batches and little
# read-ahead keep memory bounded on big traces.
_BATCH_ROWS = 512
_READ_AHEAD = {"batch_readahead": 2, "fragment_readahead": 1}
_MEMO_MAX_CHARS = 256  # short values (hosts, header names, sessions) repeat on every row


def mask(value: str) -> str:
    """What may be shown of a found value: its first 2 characters and its length."""
    return f"{value[:2]}…({len(value)})"


@dataclass(frozen=True)
class ScanReport:
    """What the leak scanner found in one trace."""

    rows: int
    values: int
    """Strings scanned: every non-null cell, header name and header value."""
    counts: dict[tuple[str, str], int]
    """Findings per (kind, column)."""
    examples: dict[str, tuple[tuple[str, str], ...]]
    """Per kind, up to `max_examples` distinct (column, masked value) pairs."""
    kinds: tuple[str, ...] = KINDS
    """The detector kinds that ran."""
    clean: bool = field(init=False)
    """No detector fired anywhere."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "clean", not any(self.counts.values()))

    @property
    def findings(self) -> int:
        return sum(self.counts.values())


def scan_trace(
    path: Path,
    *,
    kinds: Collection[str] = KINDS,
    max_examples: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> ScanReport:
    """Scan every stored string of the trace at `path`, batch by batch (bounded memory).

    `progress(rows_done, rows_total)` is called after each batch. Raises `TraceError` for an
    unreadable trace and `UsageError` for an unknown kind.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise UsageError(f"unknown detector kind {unknown[0]!r} (known: {', '.join(KINDS)})")
    wanted = tuple(k for k in KINDS if k in kinds)
    trace = open_trace(path)
    total = trace.num_rows
    scanner = _Scanner(wanted, max_examples)
    rows = 0
    batches = trace.dataset.to_batches(
        columns=list(SCANNED_COLUMNS), batch_size=_BATCH_ROWS, **_READ_AHEAD
    )
    for batch in batches:
        for column in SCANNED_COLUMNS:
            scanner.scan(column, _strings(batch.column(column), column))
        rows += batch.num_rows
        if progress is not None:
            progress(rows, total)
    return ScanReport(
        rows=rows,
        values=scanner.values,
        counts=dict(sorted(scanner.counts.items())),
        examples={k: tuple(v) for k, v in scanner.examples.items() if v},
        kinds=wanted,
    )


def _strings(array: pa.Array, column: str) -> Iterable[str]:
    """The non-null strings a column holds; header maps give their names and values."""
    if column in HEADER_COLUMNS:
        # Row by row: MapArray.keys/.items ignore the slice a batch may be.
        maps: list[list[tuple[str, str | None]] | None] = array.to_pylist()
        return (s for pairs in maps if pairs for pair in pairs for s in pair if s is not None)
    if column in BODY_COLUMNS:
        # Stored bodies are already decoded; binary or broken UTF-8 must still be scannable.
        return (b.decode("utf-8", "replace") for b in array.to_pylist() if b is not None)
    return (s for s in array.to_pylist() if s is not None)


class _Scanner:
    """Counts findings per (kind, column) and keeps a few masked examples per kind."""

    def __init__(self, kinds: tuple[str, ...], max_examples: int) -> None:
        self.kinds = kinds
        self.max_examples = max_examples
        self.values = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.examples: dict[str, list[tuple[str, str]]] = {k: [] for k in kinds}
        self._find_short = lru_cache(maxsize=65536)(self._find)

    def _find(self, text: str) -> tuple[Finding, ...]:
        # Percent-decoded first, so "%2B1-234…" or "%40" in a raw query or form body is seen.
        decoded = unquote(text) if "%" in text else text
        return tuple(find_all(decoded, self.kinds))

    def scan(self, column: str, texts: Iterable[str]) -> None:
        for text in texts:
            self.values += 1
            found = self._find_short(text) if len(text) <= _MEMO_MAX_CHARS else self._find(text)
            for finding in found:
                self.counts[finding.kind, column] += 1
                examples = self.examples[finding.kind]
                example = (column, mask(finding.value))
                if len(examples) < self.max_examples and example not in examples:
                    examples.append(example)


def render_scan(report: ScanReport, console: Console) -> None:
    """A small table: kind, column, count and one masked example per row."""
    from rich.table import Table

    scanned = f"{report.rows:,} rows, {report.values:,} values scanned"
    if report.clean:
        console.print(f"[green]clean[/green]: no detector fired ({scanned}).")
        return
    table = Table(title=f"Possible leaks: {report.findings:,} findings ({scanned})")
    table.add_column("kind")
    table.add_column("column")
    table.add_column("count", justify="right")
    table.add_column("example (masked)")
    for (kind, column), number in report.counts.items():
        example = next((m for c, m in report.examples.get(kind, ()) if c == column), "")
        table.add_row(kind, column, f"{number:,}", example)
    console.print(table)
