"""A short description of a trace directory, for `tracereplay info`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
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
    overlapping_sessions: int = 0
    """Sessions with a request that starts before an earlier one of theirs has ended: one
    user's client sends one request at a time, so these are several users (or a browser
    fetching in parallel). 0 in a capture whose session keys follow users."""
    connections: int = 0
    """Distinct client connections (the `conn` column; 0 when the trace has none)."""


def describe_trace(path: Path) -> TraceInfo:
    trace = open_trace(path)
    table = trace.to_table(["ts", "duration_ms", "session", "error", "conn"], sort=False)
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
        overlapping_sessions=overlapping_sessions(table),
        connections=len(pc.unique(table["conn"].drop_null())),
    )


def overlapping_sessions(table: pa.Table) -> int:
    """How many sessions of `table` (columns ts, duration_ms, session) hold a request that
    starts before an earlier request of the same session has ended (no duration: it ends
    where it starts)."""
    keyed = table.filter(pc.is_valid(table["session"]))
    if keyed.num_rows < 2:
        return 0
    sessions = pc.dictionary_encode(keyed["session"].combine_chunks()).indices.to_numpy()
    start = keyed["ts"].cast(pa.int64()).to_numpy().astype(np.int64)
    duration_us = pc.multiply(pc.fill_null(keyed["duration_ms"], 0.0), 1000.0).to_numpy()
    end = start + np.maximum(duration_us, 0.0).astype(np.int64)
    order = np.lexsort((start, sessions))
    frame = pd.DataFrame({"session": sessions[order], "end": end[order]})
    # The latest end of the requests before each one, within its session.
    ended = frame.groupby("session")["end"].cummax().groupby(frame["session"]).shift(1)
    overlaps = start[order] < ended.to_numpy(dtype=float, na_value=-np.inf)
    return len(np.unique(frame["session"].to_numpy()[overlaps]))


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
        ("sessions with overlapping requests", f"{info.overlapping_sessions:,}"),
        ("client connections", f"{info.connections:,}" if info.connections else "(not recorded)"),
        ("span", f"{info.first_ts.isoformat()} .. {info.last_ts.isoformat()} ({span_s:,.1f} s)"),
        ("transport errors", f"{info.errors:,}"),
    ):
        grid.add_row(key, value)
    (console or Console()).print(grid)
