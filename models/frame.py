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

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tracereplay.errors import TraceEmptyError
from tracereplay.trace import open_trace

from .light_columns import (
    CHUNK_ROWS,
    LIGHT_COLUMNS,
    NO_SESSION,
    RequestColumns,
    gather,
    read_light_columns,
    read_request_columns,
)
from .sessions import SessionStats, failed_keys
from .source import RequestSource

__all__ = [
    "LIGHT_COLUMNS",
    "NO_SESSION",
    "PLANNED_SOURCES",
    "REQUEST_COLUMNS",
    "KeyTimeSplit",
    "RequestColumns",
    "connections_to_join",
    "distinct",
    "gather",
    "key_time_split",
    "load_requests",
    "read_light_columns",
    "read_request_columns",
    "requests_frame",
    "run_positions",
    "session_rows",
    "session_stats_by_timeout",
    "sessionize_requests",
]

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
"""The light columns (`LIGHT_COLUMNS`, `RequestColumns`, their reader) are in
light_columns.py, imported here as before."""


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


KeyTimeSplit = tuple[np.ndarray, np.ndarray, np.ndarray]


def key_time_split(requests: RequestColumns) -> KeyTimeSplit:
    """The requests' order by (session key, time), stable as sessionize's sort; per request
    in that order, whether the one before it has the same key, and the pause since that
    one's response ended (unknown durations read as 0; the first one's is 0)."""
    order = _by_key_then_time(requests.key, requests.t_s)
    key = gather(requests.key, order)
    same_key = np.zeros(len(order), dtype=bool)
    np.equal(key[1:], key[:-1], out=same_key[1:])
    del key
    # end = t + duration / 1000 (unknown: 0), then each pause in its place: one 8-byte
    # array a request beside the times (fresh 10 M-request arrays cost the kernel more
    # than the arithmetic: bench/README.md, compare round 10).
    think = gather(requests.duration_ms, order)
    np.nan_to_num(think, copy=False, nan=0.0)
    think /= 1000.0
    t = gather(requests.t_s, order)
    think += t
    _pauses_in_place(think, t)
    return order, same_key, think


def _pauses_in_place(end: np.ndarray, t: np.ndarray) -> None:
    """`end[i]` made max(t[i] - end[i - 1], 0) (the first: 0), in place: chunks from the
    last, so each reads ends not yet overwritten."""
    for stop in range(len(end), 1, -CHUNK_ROWS):
        start = max(stop - CHUNK_ROWS, 1)
        part = np.subtract(t[start:stop], end[start - 1 : stop - 1])
        np.maximum(part, 0.0, out=part)
        end[start:stop] = part
    if len(end):
        end[0] = 0.0


def _by_key_then_time(key: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`np.lexsort((t, key))`. When `t` is in order already (RequestColumns' is) and the
    keys are codes under 2**32, that is a stable sort of the keys alone: two passes of
    numpy's radix sort of 16-bit values (3x faster than the lexsort at 1 M requests)."""
    top = int(key.max()) if key.size and key.dtype.kind in "iu" else 0
    small = key.dtype.kind in "iu" and (not key.size or 0 <= int(key.min()) <= top < 1 << 32)
    if not small or (t[1:] < t[:-1]).any() or np.isnan(t).any():
        return np.lexsort((t, key))
    digits = key.astype(np.uint16)  # the low 16 bits (keys are >= 0)
    order = np.argsort(digits, kind="stable")
    if top >= 1 << 16:
        np.right_shift(key, 16, out=digits, casting="unsafe")  # the high 16 bits
        high = gather(digits, order)
        del digits
        second = np.argsort(high, kind="stable")
        del high
        order = gather(order, second, out=second)
    return order


def _new_sessions(t: np.ndarray, same_key: np.ndarray, timeout_s: float) -> np.ndarray:
    """Where a session starts: the key changes or the gap between two starts > timeout."""
    new = ~same_key
    for start in range(1, len(t), CHUNK_ROWS):  # no 8-byte array of every gap
        stop = min(start + CHUNK_ROWS, len(t))
        new[start:stop] |= (t[start:stop] - t[start - 1 : stop - 1]) > timeout_s
    return new


def session_rows(
    requests: RequestColumns, timeout_s: float, split: KeyTimeSplit | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of `sessionize_requests`' frame: each row's request (its position in
    `requests`), its think time (NaN for a session's first request), and each session's
    number of requests, sessions in id order. `split`: `key_time_split(requests)`, when the
    caller has it."""
    if timeout_s <= 0:
        raise ValueError("session timeout must be > 0")
    order, same_key, think = split or key_time_split(requests)
    t = gather(requests.t_s, order)
    new = _new_sessions(t, same_key, timeout_s)
    starts = np.flatnonzero(new)
    del new
    sizes = np.diff(np.append(starts, len(order)))
    # Sessions numbered by start time, ties by key (stable: then by their sorted order):
    # the starts are in key order already, so a stable sort of their times alone is
    # `np.lexsort((key, t))` of them (5x faster at 1 M sessions).
    numbered = np.argsort(t[starts], kind="stable")
    # Rows session by session in id order, each session's rows in time order.
    sizes, first = sizes[numbered], starts[numbered]
    placed = np.cumsum(sizes) - sizes  # where each session's first row goes
    rows = np.repeat(first - placed, sizes)
    for start in range(0, len(rows), CHUNK_ROWS):  # + arange(n), no second 8-byte array
        part = rows[start : start + CHUNK_ROWS]
        part += np.arange(start, start + len(part))
    # Gathered into the times' and the rows' own arrays (read no more): no fresh ones.
    pause = gather(think, rows, out=t)
    del think, t
    request = gather(order, rows, out=rows)  # each row's position read before it is written
    del order, rows  # (when the caller gave no split: let go before the caller's gathers)
    pause[placed] = np.nan
    return request, pause, sizes


def sessionize_requests(
    requests: RequestColumns,
    endpoint: np.ndarray,
    names: list[str],
    timeout_s: float,
    split: KeyTimeSplit | None = None,
) -> pd.DataFrame:
    """`sessionize(frame, timeout_s)` of the frame of `requests` (session_key as codes,
    t_s, duration_ms, request, endpoint as a categorical of `names`), built with numpy:
    the same rows, columns and values, without pandas' sorts, groupbys and dict of session
    numbers. Not for keys that join their connection (`join_failed_credentials`). `split`:
    `key_time_split(requests)`, when the caller has it."""
    request, pause, sizes = session_rows(requests, timeout_s, split)
    session_id = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    # seq = row - the session's first row, a chunk at a time: no 8-byte array a row of the
    # first rows repeated.
    placed = np.cumsum(sizes) - sizes
    seq = np.arange(len(request), dtype=np.int64)
    for start in range(0, len(seq), CHUNK_ROWS):
        part = seq[start : start + CHUNK_ROWS]
        part -= placed[session_id[start : start + CHUNK_ROWS]]
    del placed
    return pd.DataFrame(
        {
            "session_key": gather(requests.key, request),
            "t_s": gather(requests.t_s, request),
            "duration_ms": gather(requests.duration_ms, request),
            "request": request.astype(np.int64, copy=False),
            "endpoint": pd.Categorical.from_codes(
                gather(endpoint, request), categories=pd.Index(names)
            ),
            "think_s": pause,
            "session_id": session_id,
            "seq": seq,
        },
        copy=False,  # one block per column: no consolidated copy of them all at once
    )


def run_positions(groups: np.ndarray) -> np.ndarray:
    """Each row's position within its run of equal `groups` values (0 at a run's first
    row): `seq` of rows sorted by session."""
    if len(groups) == 0:
        return np.zeros(0, np.int64)
    at = np.arange(len(groups))
    starts = np.r_[True, groups[1:] != groups[:-1]]
    positions: np.ndarray = at - np.maximum.accumulate(np.where(starts, at, 0))
    return positions


def session_stats_by_timeout(
    requests: RequestColumns, timeouts_s: Mapping[str, float], split: KeyTimeSplit | None = None
) -> dict[str, SessionStats]:
    """`session_stats(sessionize(frame, t))` for each timeout t, from one sort of the
    requests by (session key, time): sessionize's rules (a new session where the key
    changes or the gap between two starts exceeds t; think time from the end of the
    previous response, unknown durations read as 0) without building the frame."""
    order, same_key, think = split or key_time_split(requests)
    t = gather(requests.t_s, order)
    out: dict[str, SessionStats] = {}
    seen: tuple[np.ndarray, SessionStats] | None = None
    for name, timeout in timeouts_s.items():
        new = _new_sessions(t, same_key, timeout)
        if seen is not None and np.array_equal(new, seen[0]):
            out[name] = seen[1]  # no gap between the two timeouts: the same sessions
            continue
        starts = np.flatnonzero(new)
        last = np.append(starts[1:], len(t)) - 1
        lengths = last - starts + 1
        thinks = think[~new]
        out[name] = SessionStats(
            sessions=len(starts),
            mean_length=float(np.mean(lengths)),
            median_length=float(np.median(lengths)),
            mean_duration_s=float(np.mean(t[last] - t[starts])),
            # thinks is this loop's own copy: the median may partition it in place
            median_think_s=float(np.median(thinks, overwrite_input=True)) if len(thinks) else 0.0,
        )
        seen = (new, out[name])
    return out


def distinct(values: np.ndarray) -> np.ndarray:
    """`np.unique(values)` of integers by sorting: numpy 2's hash-based unique is 10-30×
    slower on a million values with many distinct ones (measured with numpy 2.4)."""
    ordered = np.sort(values)
    return (
        ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(ordered) else ordered
    )


def connections_to_join(source: RequestSource, requests: RequestColumns) -> np.ndarray | None:
    """Each request's `conn`, read only when some session key's requests all failed auth
    (what `sessionize` joins to its connection's next key), else None."""
    if not failed_keys(requests.key, requests.status, len(requests.keys)).any():
        return None
    conn = source.rows(requests.row, ["conn"]).column("conn")
    return np.asarray(conn.to_pylist(), dtype=object)
