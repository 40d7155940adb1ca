"""A trace as a pandas frame of requests, the common input of every modelling step.

`load_requests` reads a trace directory; `requests_frame` converts an Arrow table (tests
build one in memory). Columns are the trace columns plus `t_s`, seconds since the first
request, and `session_key` (the trace's `session`, or the client when it has none).

Time origin: a captured or imported trace starts at its first request. A synthesized or
replayed trace starts at its metadata's `capture_start`, which its writer sets to the
instant that plays the model's (or the real trace's) time zero — so a session that starts
3 s into the plan is at t_s = 3 s, and curves of real and synthetic traces line up.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from tracereplay.errors import TraceEmptyError
from tracereplay.trace import open_trace

PLANNED_SOURCES = ("synthesize", "replay")

REQUEST_COLUMNS = [
    "ts",
    "duration_ms",
    "session",
    "client",
    "method",
    "path",
    "query",
    "req_headers",
    "req_body",
    "status",
    "resp_headers",
    "resp_body",
    "error",
]


def load_requests(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The requests of the trace at `path`, ordered by time (see `requests_frame`)."""
    trace = open_trace(path)
    table = trace.to_table(columns or REQUEST_COLUMNS)
    origin = trace.metadata.capture_start if trace.metadata.source in PLANNED_SOURCES else None
    return requests_frame(table, source=str(path), origin=origin)


def requests_frame(
    table: pa.Table, *, source: str = "trace", origin: datetime | None = None
) -> pd.DataFrame:
    """Plain pandas columns (strings as object, bytes as bytes, headers as lists of
    pairs), sorted by `ts` (stable), with `t_s` and `session_key` added."""
    if table.num_rows == 0:
        raise TraceEmptyError(f"{source}: the trace holds no requests")
    df = table.to_pandas(types_mapper=None)
    for name in ("method", "scheme", "host"):
        if name in df.columns:
            df[name] = df[name].astype(object)
    df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    df["method"] = df["method"].astype(str).str.upper()
    first = df["ts"].iloc[0]
    start = pd.Timestamp(origin) if origin is not None and origin <= first else first
    df["t_s"] = (df["ts"] - start).dt.total_seconds().astype(float)
    session = df["session"] if "session" in df.columns else pd.Series(None, index=df.index)
    client = df["client"] if "client" in df.columns else pd.Series(None, index=df.index)
    key = session.where(session.notna() & (session != ""), client)
    df["session_key"] = key.fillna("(no session)").astype(str)
    return pd.DataFrame(df)
