"""The leak scanner: looks at every stored value of a trace without trusting its policy.

`scan_trace` parses what the trace stores (paths, queries, headers, cookies, JSON, NDJSON,
forms, XML and HTML bodies) into values and runs the checks of `scan_checks` on each;
it builds a `ScanReport` (counts and masked examples, never a raw value) that `render_scan`
prints. A clean report means no check fired anywhere.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow.compute as pc

from tracereplay.capture.anonymize.detectors import KINDS
from tracereplay.capture.anonymize.headers import split_set_cookie
from tracereplay.capture.anonymize.policy_headers import (
    CSP_HEADERS,
    PERMISSION_WORDS,
    PERMISSIONS_HEADERS,
    classify,
    csp_sources,
    permission_items,
)
from tracereplay.capture.anonymize.shapes import URL_START
from tracereplay.capture.scan_checks import CHECK_KINDS, Checker, Finding, body_leaves
from tracereplay.errors import UsageError
from tracereplay.trace import open_trace

if TYPE_CHECKING:
    from rich.console import Console

ALL_KINDS = (*KINDS, *CHECK_KINDS)
STRING_COLUMNS = ("session", "client", "host", "path", "query", "error")
HEADER_COLUMNS = ("req_headers", "resp_headers")
BODY_COLUMNS = ("req_body", "resp_body")
SCANNED_COLUMNS = STRING_COLUMNS + HEADER_COLUMNS + BODY_COLUMNS

# Each row may hold two bodies of up to the capture's body limit: small batches and little
# read-ahead keep memory bounded on big traces.
_BATCH_ROWS = 512
_READ_AHEAD = {"batch_readahead": 2, "fragment_readahead": 1}
_URL_HEADERS = frozenset(("referer", "origin", "location", "content-location", "link", "refresh"))
_LINK_URL = re.compile(r"<([^>]*)>")
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"\s]*)", re.IGNORECASE)


def mask(value: str) -> str:
    """What may be shown of a found value: its first 2 characters and its length."""
    return f"{value[:2]}…({len(value)})"


@dataclass(frozen=True)
class ScanReport:
    """What the leak scanner found in one trace."""

    rows: int
    values: int
    """Cells scanned: every non-null cell and header; bodies and queries count once."""
    counts: dict[tuple[str, str], int]
    """Findings per (kind, column)."""
    examples: dict[str, tuple[tuple[str, str], ...]]
    """Per kind, up to `max_examples` distinct (column, masked value) pairs."""
    kinds: tuple[str, ...] = ALL_KINDS
    """The kinds of finding looked for."""
    clean: bool = field(init=False)
    """No check fired anywhere."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "clean", not any(self.counts.values()))

    @property
    def findings(self) -> int:
        return sum(self.counts.values())


def read_canaries(path: Path) -> tuple[str, ...]:
    """One value a line (blank lines and # comments ignored); UsageError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--canaries {path}: cannot read ({exc.__class__.__name__})") from None
    values = tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if not values:
        raise UsageError(f"--canaries {path}: no values in the file")
    return values


def scan_trace(
    path: Path,
    *,
    kinds: Collection[str] = ALL_KINDS,
    canaries: Iterable[str] = (),
    allow_hosts: Iterable[str] = (),
    max_examples: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> ScanReport:
    """Scan every stored value of the trace at `path`, batch by batch (bounded memory).

    Hosts the trace was sent to (its `host` column) and `allow_hosts` may appear in URLs;
    any other host is a finding. `progress(rows_done, rows_total)` is called after each
    batch. Raises `TraceError` for an unreadable trace and `UsageError` for an unknown kind.
    """
    unknown = sorted(set(kinds) - set(ALL_KINDS))
    if unknown:
        raise UsageError(f"unknown finding kind {unknown[0]!r} (known: {', '.join(ALL_KINDS)})")
    wanted = tuple(k for k in ALL_KINDS if k in kinds)
    trace = open_trace(path)
    total = trace.num_rows
    own = trace.dataset.to_table(columns=["host"]).column("host")
    hosts = pc.unique(own.cast("string")).to_pylist()
    own_hosts = {str(h).rsplit(":", 1)[0].lower() for h in hosts if h}
    checker = Checker(
        own_hosts=frozenset(own_hosts),
        allow_hosts=frozenset(h.lower() for h in allow_hosts),
        canaries=tuple(canaries),
    )
    tally = _Tally(frozenset(wanted), max_examples)
    rows = 0
    batches = trace.to_batches(columns=list(SCANNED_COLUMNS), batch_size=_BATCH_ROWS, **_READ_AHEAD)
    for batch in batches:
        for column in SCANNED_COLUMNS:
            for cell in batch.column(column).to_pylist():
                if cell is None:
                    continue
                tally.values += 1
                tally.add(column, cell_findings(checker, column, cell))
        rows += batch.num_rows
        if progress is not None:
            progress(rows, total)
    return ScanReport(
        rows=rows,
        values=tally.values,
        counts=dict(sorted(tally.counts.items())),
        examples={k: tuple(v) for k, v in tally.examples.items() if v},
        kinds=wanted,
    )


def cell_findings(checker: Checker, column: str, cell: Any) -> Iterator[Finding]:
    """What the checks find in one stored cell of `column` (raw values: for tests and tools)."""
    if column in ("session", "client"):
        if not checker.session_key(cell):
            yield from checker.anywhere(cell)
        return
    if column == "host":
        yield from checker.anywhere(cell)
        return
    if column == "error":
        yield from checker.anywhere(cell)
        yield from checker.urls(cell)
        return
    if column == "path":
        yield from _path(checker, cell)
        return
    if column == "query":
        yield from _query(checker, cell)
        return
    if column in HEADER_COLUMNS:
        for name, value in cell:
            yield from checker.anywhere(name)
            yield from _header(checker, name.lower(), value or "")
        return
    yield from _body(checker, bytes(cell).decode("utf-8", "replace"))


def _path(checker: Checker, path: str) -> Iterator[Finding]:
    yield from checker.anywhere(unquote(path))
    yield from _segments(checker, path)


def _segments(checker: Checker, path: str) -> Iterator[Finding]:
    """The path checks without the detectors: tokens, text and identifiers per segment."""
    for segment in unquote(path).split("/"):
        head, _, params = segment.partition(";")
        if params:
            yield from _query(checker, params)
        found = checker.value(head)
        # Route words are not the capture's to replace: only tokens, text and names count.
        yield from (f for f in found if f[0] in ("entropy", "free-text", "identifier"))


def _query(checker: Checker, query: str) -> Iterator[Finding]:
    yield from checker.anywhere(unquote(query))
    for name, value in parse_qsl(query.replace(";", "&"), keep_blank_values=True):
        yield from _checks_only(checker.value(value, name))


def _checks_only(found: Iterable[Finding]) -> Iterator[Finding]:
    """Findings of the value checks, without the detectors' and canaries' (counted already
    over the whole cell)."""
    return (f for f in found if f[0] in CHECK_KINDS and f[0] != "canary")


def _header(checker: Checker, name: str, value: str) -> Iterator[Finding]:
    if name in ("authorization", "proxy-authorization"):
        yield from checker.anywhere(value)
        credential = value.partition(" ")[2] or value
        yield from _checks_only(checker.value(credential, "token"))
    elif name == "cookie":
        for part in value.split(";"):
            cookie_name, eq, cookie_value = part.strip().partition("=")
            yield from checker.value(cookie_value if eq else cookie_name, "cookie")
    elif name == "set-cookie":
        for cookie in split_set_cookie(value):
            first, _, attributes = cookie.partition(";")
            cookie_name, eq, cookie_value = first.strip().partition("=")
            yield from checker.value(cookie_value if eq else cookie_name, "cookie")
            for attribute in attributes.split(";"):
                attribute_name, _, attribute_value = attribute.strip().partition("=")
                if attribute_name.lower() in ("path", "domain"):
                    yield from checker.anywhere(attribute_value)
                    yield from checker.urls(attribute_value)
    elif name in _URL_HEADERS or URL_START.match(value.strip()):
        # Any header whose value is an absolute URL (`Next-Page`, `X-Callback-Url`) too.
        yield from checker.anywhere(unquote(value))
        yield from checker.urls(value)
        for url in _header_urls(name, value):
            yield from _url_parts(checker, url)
    elif name in CSP_HEADERS or name in PERMISSIONS_HEADERS:
        yield from checker.anywhere(value)
        yield from _policy_header(checker, name, value)
    elif name in checker.known_headers:
        yield from checker.anywhere(value)
    else:
        yield from checker.value(value, name)


def _policy_header(checker: Checker, name: str, value: str) -> Iterator[Finding]:
    """Content-Security-Policy and Permissions-Policy: each source or origin by its kind
    (keywords and schemes are structure; nonces must be pseudonyms; hosts and URLs)."""
    if name in PERMISSIONS_HEADERS:
        sources = [i for i, _ in permission_items(value) if i not in PERMISSION_WORDS]
    else:
        sources = csp_sources(value)
    for source in sources:
        kind, part = classify(source)
        if kind == "nonce":
            yield from _checks_only(checker.value(part, "nonce"))
        elif kind == "url":
            yield from checker.urls(part)
            yield from _url_parts(checker, part)
        elif kind == "host":
            yield from checker.urls(part)
        elif kind == "value":
            yield from _checks_only(checker.value(part))


def _header_urls(name: str, value: str) -> list[str]:
    """The URLs a URL-valued header holds: each `<…>` of a Link, the `url=` of a Refresh,
    else the whole value."""
    if name == "link" or _LINK_URL.search(value):
        return _LINK_URL.findall(value)
    if name == "refresh":
        return [m.group(1) for m in _REFRESH_URL.finditer(value)]
    return [value.strip()]


def _url_parts(checker: Checker, url: str) -> Iterator[Finding]:
    """Path segments, query and fragment of one URL, by the checks each place gets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        yield from _checks_only(checker.value(url))
        return
    yield from _segments(checker, parts.path)
    yield from _query(checker, parts.query)
    fragment = parts.fragment
    if "=" in fragment:
        yield from _query(checker, fragment)
    elif fragment.startswith("/"):
        yield from _segments(checker, fragment)
    elif fragment:
        yield from _checks_only(checker.value(unquote(fragment)))


def _body(checker: Checker, text: str) -> Iterator[Finding]:
    yield from checker.anywhere(text)
    leaves = body_leaves(text)
    if leaves is None:
        yield from _checks_only(checker.value(text))
        return
    for name, value in leaves:
        yield from _checks_only(checker.value(value, name))


class _Tally:
    """Counts findings per (kind, column) and keeps a few masked examples per kind."""

    def __init__(self, kinds: frozenset[str], max_examples: int) -> None:
        self.kinds = kinds
        self.max_examples = max_examples
        self.values = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.examples: dict[str, list[tuple[str, str]]] = {k: [] for k in kinds}

    def add(self, column: str, found: Iterable[Finding]) -> None:
        for kind, value in found:
            if kind not in self.kinds:
                continue
            self.counts[kind, column] += 1
            examples = self.examples[kind]
            example = (column, mask(value))
            if len(examples) < self.max_examples and example not in examples:
                examples.append(example)


def render_scan(report: ScanReport, console: Console) -> None:
    """A small table: kind, column, count and one masked example per row."""
    from rich.table import Table

    scanned = f"{report.rows:,} rows, {report.values:,} values scanned"
    if report.clean:
        console.print(f"[green]clean[/green]: no check fired ({scanned}).")
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
