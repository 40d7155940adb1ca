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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.errors import TraceEmptyError
from tracereplay.trace import open_trace

from .sessions import SessionStats, failed_keys
from .source import RequestSource

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


LIGHT_COLUMNS = ["ts", "duration_ms", "session", "client", "method", "path", "status"]
"""What templating, sessions, behaviors, arrivals and endpoint statistics read."""
NO_SESSION = "(no session)"


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


@dataclass(frozen=True)
class RequestColumns:
    """The light columns of every request as numpy arrays, in `ts` order (ties in scan
    order, as `requests_frame` sorts). Strings are codes into sorted distinct values, so
    memory grows by ~35 bytes a request, not by its strings."""

    row: np.ndarray
    """Position of each request in the trace's scan order (to fetch heavy columns); int32
    when the trace has fewer than 2**31 requests."""
    first_ts: pd.Timestamp
    t_s: np.ndarray
    duration_ms: np.ndarray
    """float64, NaN when no response came."""
    status: np.ndarray
    """float64, NaN when no response came (as pandas reads an int16 column with nulls)."""
    key: np.ndarray
    keys: list[str]
    """`session_key` (see `requests_frame`) = keys[key]; keys sorted."""
    method: np.ndarray
    methods: list[str]
    path: np.ndarray
    paths: pa.Array
    """Distinct paths (null read as None), sorted."""

    def __len__(self) -> int:
        return len(self.row)


def _encode(chunks: list[pa.Array]) -> tuple[np.ndarray, pa.Array]:
    """Codes into the sorted distinct values of a string column given in chunks."""
    encoded = pa.chunked_array(chunks, pa.dictionary(pa.int32(), pa.string())).unify_dictionaries()
    values = encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], pa.string())
    order = pc.sort_indices(values).to_numpy()
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = np.concatenate(
        [np.asarray(c.indices.fill_null(0), dtype=np.int32) for c in encoded.chunks]
        or [np.zeros(0, np.int32)]
    )
    return rank[codes], values.take(pa.array(order))


def read_request_columns(batches: Iterable[pa.RecordBatch], *, source: str) -> RequestColumns:
    """`RequestColumns` of record batches holding `LIGHT_COLUMNS` (session and client may
    be absent), read one batch at a time."""
    ts, duration, status = [], [], []
    keys: list[pa.Array] = []
    methods: list[pa.Array] = []
    paths: list[pa.Array] = []
    for batch in batches:
        names = batch.schema.names
        ts.append(np.asarray(batch.column("ts").cast(pa.int64()), dtype=np.int64))
        duration.append(np.asarray(batch.column("duration_ms").cast(pa.float64())))
        status.append(np.asarray(batch.column("status").cast(pa.float64())))
        none = pa.nulls(batch.num_rows, pa.string())
        session = batch.column("session") if "session" in names else none
        client = batch.column("client") if "client" in names else none
        has_session = pc.and_(pc.is_valid(session), pc.not_equal(session, ""))
        key = pc.if_else(pc.fill_null(has_session, False), session, client)
        keys.append(pc.dictionary_encode(pc.fill_null(key, NO_SESSION)))
        methods.append(pc.dictionary_encode(batch.column("method").cast(pa.string())))
        paths.append(pc.dictionary_encode(batch.column("path")))
    if not ts or not sum(len(t) for t in ts):
        raise TraceEmptyError(f"{source}: the trace holds no requests")
    # Each column's chunks are freed once joined, and each join once ordered: at 10 M
    # requests the read held every chunk list and its joined copy until it returned.
    ts_us = _joined(ts)
    order = np.argsort(ts_us, kind="stable")
    first = int(ts_us[order[0]])
    t_s = (ts_us[order] - first) / 1_000_000
    del ts_us
    key, key_values = _encode(keys)
    keys.clear()
    method, method_values = _encode(methods)
    method_nulls = np.concatenate([np.asarray(c.indices.is_null()) for c in methods])
    methods.clear()
    upper = [str(m).upper() for m in method_values.to_pylist()] + ["NONE"]
    method = np.where(method_nulls, len(upper) - 1, method)
    path, path_values = _encode(paths)
    path_nulls = np.concatenate([np.asarray(c.indices.is_null()) for c in paths])
    paths.clear()
    path_list = [*path_values.to_pylist(), None]
    path = np.where(path_nulls, len(path_list) - 1, path)
    return RequestColumns(
        row=order.astype(np.int32) if len(order) <= np.iinfo(np.int32).max else order,
        first_ts=pd.Timestamp(first, unit="us", tz="UTC"),
        t_s=t_s,
        duration_ms=_joined(duration)[order],
        status=_joined(status)[order],
        key=key[order],
        keys=[str(k) for k in key_values.to_pylist()],
        method=method[order],
        methods=upper,
        path=path[order],
        paths=pa.array(path_list, pa.string()),
    )


def _joined(chunks: list[np.ndarray]) -> np.ndarray:
    """The chunks as one array; the list emptied (its chunks freed)."""
    out = np.concatenate(chunks)
    chunks.clear()
    return out


KeyTimeSplit = tuple[np.ndarray, np.ndarray, np.ndarray]


def key_time_split(requests: RequestColumns) -> KeyTimeSplit:
    """The requests' order by (session key, time), stable as sessionize's sort; per request
    in that order, whether the one before it has the same key, and the pause since that
    one's response ended (unknown durations read as 0; the first one's is 0)."""
    order = np.lexsort((requests.t_s, requests.key))
    key, t = requests.key[order], requests.t_s[order]
    end = t + np.nan_to_num(requests.duration_ms[order], nan=0.0) / 1000.0
    same_key = np.zeros(len(order), dtype=bool)
    same_key[1:] = key[1:] == key[:-1]
    think = np.zeros(len(order))
    think[1:] = np.maximum(t[1:] - end[:-1], 0.0)
    return order, same_key, think


def _new_sessions(t: np.ndarray, same_key: np.ndarray, timeout_s: float) -> np.ndarray:
    """Where a session starts: the key changes or the gap between two starts > timeout."""
    new = ~same_key
    new[1:] |= (t[1:] - t[:-1]) > timeout_s
    return new


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
    if timeout_s <= 0:
        raise ValueError("session timeout must be > 0")
    order, same_key, think = split or key_time_split(requests)
    t = requests.t_s[order]
    new = _new_sessions(t, same_key, timeout_s)
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(order)))
    # Sessions numbered by start time, ties by key (stable: then by their sorted order).
    numbered = np.lexsort((requests.key[order[starts]], t[starts]))
    del new, t
    # Rows session by session in id order, each session's rows in time order.
    sizes, first = sizes[numbered], starts[numbered]
    placed = np.cumsum(sizes) - sizes  # where each session's first row goes
    rows = np.repeat(first - placed, sizes)
    rows += np.arange(len(order))
    request = order[rows]
    pause = think[rows]
    pause[placed] = np.nan
    del rows
    seq = np.arange(len(request), dtype=np.int64)  # in place: no second 8-byte array a row
    seq -= np.repeat(placed, sizes)
    return pd.DataFrame(
        {
            "session_key": requests.key[request],
            "t_s": requests.t_s[request],
            "duration_ms": requests.duration_ms[request],
            "request": request.astype(np.int64, copy=False),
            "endpoint": pd.Categorical.from_codes(endpoint[request], categories=pd.Index(names)),
            "think_s": pause,
            "session_id": np.repeat(np.arange(len(sizes), dtype=np.int64), sizes),
            "seq": seq,
        },
        copy=False,  # one block per column: no consolidated copy of them all at once
    )


def session_stats_by_timeout(
    requests: RequestColumns, timeouts_s: Mapping[str, float], split: KeyTimeSplit | None = None
) -> dict[str, SessionStats]:
    """`session_stats(sessionize(frame, t))` for each timeout t, from one sort of the
    requests by (session key, time): sessionize's rules (a new session where the key
    changes or the gap between two starts exceeds t; think time from the end of the
    previous response, unknown durations read as 0) without building the frame."""
    order, same_key, think = split or key_time_split(requests)
    t = requests.t_s[order]
    out = {}
    for name, timeout in timeouts_s.items():
        new = _new_sessions(t, same_key, timeout)
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
