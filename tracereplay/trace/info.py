"""A short description of a trace directory, for `tracereplay info`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from tracereplay.trace.reader import open_trace
from tracereplay.trace.schema import TraceMetadata


@dataclass(frozen=True)
class TraceInfo:
    path: Path
    metadata: TraceMetadata
    files: int
    rows: int
    sessions: int
    first_ts: datetime
    last_ts: datetime
    errors: int


def describe_trace(path: Path) -> TraceInfo:
    trace = open_trace(path)
    table = trace.to_table(["ts", "session", "error"], sort=False)
    first, last = pc.min_max(table["ts"]).values()
    return TraceInfo(
        path=trace.path,
        metadata=trace.metadata,
        files=len(trace.files),
        rows=table.num_rows,
        sessions=len(pc.unique(table["session"].drop_null())),
        first_ts=first.as_py(),
        last_ts=last.as_py(),
        errors=table.num_rows - table["error"].null_count,
    )


def render_trace_info(info: TraceInfo, console: Console | None = None) -> None:
    grid = Table.grid(padding=(0, 2))
    span_s = (info.last_ts - info.first_ts).total_seconds()
    for key, value in (
        ("trace", str(info.path)),
        ("source", info.metadata.source or "?"),
        ("written by", f"tracereplay {info.metadata.version}"),
        ("capture start", info.metadata.capture_start.isoformat()),
        ("policy hash", info.metadata.policy_hash or "(none)"),
        ("files", str(info.files)),
        ("rows", f"{info.rows:,}"),
        ("sessions", f"{info.sessions:,}"),
        ("span", f"{info.first_ts.isoformat()} .. {info.last_ts.isoformat()} ({span_s:,.1f} s)"),
        ("transport errors", f"{info.errors:,}"),
    ):
        grid.add_row(key, value)
    (console or Console()).print(grid)
