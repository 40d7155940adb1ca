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
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from tracereplay.errors import TraceEmptyError
from tracereplay.trace import open_trace

from .key_split import (
    KeyRuns,
    KeyTimeSplit,
    key_time_split,
    keys_per_request,
    session_starts_and_keys,
    session_stats_by_timeout,
)
from .light_columns import (
    CHUNK_ROWS,
    LIGHT_COLUMNS,
    NO_SESSION,
    RequestColumns,
    gather,
    read_light_columns,
    read_request_columns,
)
from .sessions import failed_keys
from .source import RequestSource

__all__ = [
    "LIGHT_COLUMNS",
    "NO_SESSION",
    "PLANNED_SOURCES",
    "REQUEST_COLUMNS",
    "KeyRuns",
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
    "sessions_and_sizes",
    "with_endpoints",
    "with_positions",
    "with_session_ids",
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


def session_rows(
    requests: RequestColumns, timeout_s: float, split: KeyTimeSplit | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of `sessionize_requests`' frame: each row's request (its position in
    `requests`, of `KeyTimeSplit.order`'s dtype), its think time (NaN for a session's
    first request), and each session's number of requests, sessions in id order. `split`:
    `key_time_split(requests)`, when the caller has it (read, never written; what is
    returned may be its own arrays)."""
    rows = _Rows.of(requests, timeout_s, split)
    return rows.request, rows.pause, rows.sizes


class _Rows(NamedTuple):
    request: np.ndarray
    pause: np.ndarray
    sizes: np.ndarray
    split: KeyTimeSplit | KeyRuns | None
    """The split, when the rows are in its order (then its times and keys are the rows')."""
    t_s: np.ndarray | None = None
    """The rows' times, when a split was given (its times, gathered when the rows are not in
    its order): what `sessionize_requests` reads for requests whose own times were let go
    (`key_split.key_runs`)."""

    @classmethod
    def of(
        cls, requests: RequestColumns, timeout_s: float, split: KeyTimeSplit | KeyRuns | None
    ) -> _Rows:
        if timeout_s <= 0:
            raise ValueError("session timeout must be > 0")
        own = split is None  # (else the caller's: read, never written)
        split = split or key_time_split(requests)
        starts, keys = session_starts_and_keys(split, timeout_s)
        sizes = np.diff(np.append(starts, len(split.order)))
        # Sessions numbered by start time, ties by key: in the split's order when each
        # key has one session (keys by their first request), else `np.lexsort`'s.
        at = split.t_s[starts]
        if _numbered(at, keys):
            pause = split.think  # NaN where a key starts: where a session does, but cuts
            if len(starts) > len(split.key_starts):
                pause = pause if own else pause.copy()
                pause[starts] = np.nan
            return cls(split.order, pause, sizes, split, split.t_s)
        numbered = np.lexsort((keys, at))
        del at, keys
        # Rows session by session in id order, each session's rows in time order.
        sizes, first = sizes[numbered], starts[numbered]
        placed = np.cumsum(sizes) - sizes  # where each session's first row goes
        rows = np.repeat(first - placed, sizes)
        for start in range(0, len(rows), CHUNK_ROWS):  # + arange(n), no second 8-byte array
            part = rows[start : start + CHUNK_ROWS]
            part += np.arange(start, start + len(part))
        t = None if own else gather(split.t_s, rows)  # (before an own split's are reused)
        # Gathered into the times' and the rows' own arrays (read no more): no fresh ones.
        pause = gather(split.think, rows, out=split.t_s if own else None)
        # (into the rows' own array when of the order's dtype: each read before written)
        request = gather(split.order, rows, out=rows if rows.dtype == split.order.dtype else None)
        pause[placed] = np.nan
        return cls(request, pause, sizes, None, t)


def _numbered(at: np.ndarray, keys: np.ndarray) -> bool:
    """Whether sessions starting at `at` with keys `keys` are in (time, key) order."""
    later = at[1:] > at[:-1]
    later |= (at[1:] == at[:-1]) & (keys[1:] > keys[:-1])
    return bool(later.all())


def sessionize_requests(
    requests: RequestColumns,
    endpoint: np.ndarray | None,
    names: list[str],
    timeout_s: float,
    split: KeyTimeSplit | KeyRuns | None = None,
    *,
    narrow: bool = False,
    seq: bool = True,
    durations: bool = True,
    session_key: bool = True,
) -> pd.DataFrame:
    """`sessionize(frame, timeout_s)` of the frame of `requests` (session_key as codes,
    t_s, duration_ms, request, endpoint as a categorical of `names`), built with numpy:
    the same rows, columns and values, without pandas' sorts, groupbys and dict of session
    numbers. Keys that join their connection (`join_failed_credentials`): `requests` with
    the joined key codes (`sessions.joined_key_codes`; `sessionized.joined_keys`). `split`:
    `key_time_split(requests)`, when the caller has it: read, never written, but the
    frame may hold its arrays (of keys, times, thinks, requests, and durations when it
    has them) as its columns.
    `endpoint` None: no endpoint column (what `with_endpoints` puts in later). `narrow`:
    `session_id` and `seq` as int32 when the rows fit (sessionize's are int64), what the
    model holds them as (`_keep_what_later_stages_read`): no 8-byte arrays to narrow;
    `request` too, as `key_time_split` gives it (int32 below 2**31 requests). `seq` False:
    no `seq` column (`with_positions` puts it in later, last, as it would have been).
    `durations` False: no `duration_ms` column (the model's frame: no stage after the
    sessions reads it, and the censoring gathers the requests' own per session, a chunk at
    a time: 8 B a request less through the sessions' stage, where the parent peaks).
    `split` a `key_split.KeyRuns`: its times are the frame's (`requests` need hold none).
    `session_key` False: no `session_key` column (the model's frame: no stage after the
    sessions reads it)."""
    return sessions_and_sizes(
        requests, endpoint, names, timeout_s, split, narrow=narrow, seq=seq,
        durations=durations, session_key=session_key,
    )[0]  # fmt: skip


def sessions_and_sizes(
    requests: RequestColumns,
    endpoint: np.ndarray | None,
    names: list[str],
    timeout_s: float,
    split: KeyTimeSplit | KeyRuns | None = None,
    *,
    narrow: bool = False,
    seq: bool = True,
    durations: bool = True,
    session_key: bool = True,
    session_id: bool = True,
) -> tuple[pd.DataFrame, np.ndarray]:
    """`sessionize_requests(...)` and each session's number of rows (sessions in id
    order); `session_id` False: no `session_id` column (nor `seq`: `with_session_ids`
    puts it in later, where it would have been; the model's frame: its sessions' table and
    censoring read the runs from the sizes, 4 B a request less at the parent's peak)."""
    request, pause, sizes, same, t_s = _Rows.of(requests, timeout_s, split)
    kind = _id_kind(len(request), narrow)
    if not narrow:
        request = request.astype(np.int64, copy=False)
    columns: dict[str, object] = {}
    if session_key:
        columns["session_key"] = _session_keys(requests, request, same)
    columns["t_s"] = t_s if t_s is not None else gather(requests.t_s, request)
    if durations:
        columns["duration_ms"] = (
            same.duration_ms
            if isinstance(same, KeyTimeSplit) and same.duration_ms is not None
            else gather(requests.duration_ms, request)
        )
    columns["request"] = request
    if endpoint is not None:
        columns["endpoint"] = pd.Categorical.from_codes(
            gather(endpoint, request), categories=pd.Index(names)
        )
    columns["think_s"] = pause
    if session_id:
        ids = np.repeat(np.arange(len(sizes), dtype=kind), sizes)
        columns["session_id"] = ids
        if seq:
            columns["seq"] = _positions(ids, sizes)
    # One block per column: no consolidated copy of them all at once.
    return pd.DataFrame(columns, copy=False), sizes


def _id_kind(rows: int, narrow: bool) -> type[np.signedinteger[Any]]:
    """The dtype of `session_id` and `seq` in a frame of `rows` rows."""
    return np.int32 if narrow and rows < np.iinfo(np.int32).max else np.int64


def with_session_ids(sessions: pd.DataFrame, sizes: np.ndarray) -> None:
    """Put in place, after `think_s`, the `session_id` column a frame made by
    `sessions_and_sizes(session_id=False, narrow=True)` would have had; `sizes`: each
    session's rows (its session table's `length`)."""
    sizes = np.asarray(sizes)
    ids = np.repeat(np.arange(len(sizes), dtype=_id_kind(len(sessions), True)), sizes)
    at = list(sessions.columns).index("think_s") + 1
    sessions.insert(at, "session_id", pd.Series(ids, index=sessions.index, copy=False))


def _session_keys(
    requests: RequestColumns, request: np.ndarray, same: KeyTimeSplit | KeyRuns | None
) -> np.ndarray:
    """The key code of each of the frame's rows (`request`: their requests; `same`: the
    split when they are in its order)."""
    if isinstance(same, KeyTimeSplit):
        return same.key
    if same is not None:
        return keys_per_request(same.run_key, same.key_starts, len(request))
    return gather(requests.key, request)


def _positions(session_id: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """`seq` of rows session by session (`session_id` 0, 1, ... in order, session i's
    `sizes[i]` rows), of `session_id`'s dtype: row - the session's first row, a chunk at a
    time (no 8-byte array a row of the first rows repeated)."""
    kind = session_id.dtype
    placed = (np.cumsum(sizes) - sizes).astype(kind, copy=False)
    seq = np.arange(len(session_id), dtype=kind)
    for start in range(0, len(seq), CHUNK_ROWS):
        part = seq[start : start + CHUNK_ROWS]
        np.subtract(part, placed[session_id[start : start + CHUNK_ROWS]], out=part)
    return seq


def with_positions(sessions: pd.DataFrame, sizes: np.ndarray) -> None:
    """Put in place, last, the `seq` column a frame `sessionize_requests(seq=False)` made
    would have had; `sizes`: each session's rows (its session table's `length`)."""
    seq = _positions(sessions["session_id"].to_numpy(), np.asarray(sizes))
    sessions.insert(len(sessions.columns), "seq", pd.Series(seq, index=sessions.index, copy=False))


def with_endpoints(sessions: pd.DataFrame, endpoint: np.ndarray, names: list[str]) -> None:
    """Put in place the `endpoint` column a sessionized frame made without one would have
    had (before `think_s`): each row's request's `endpoint` code, a categorical of `names`."""
    codes = gather(endpoint, sessions["request"].to_numpy())
    categorical = pd.Categorical.from_codes(codes, categories=pd.Index(names))
    at = list(sessions.columns).index("think_s")
    sessions.insert(at, "endpoint", pd.Series(categorical, index=sessions.index, copy=False))


def run_positions(groups: np.ndarray) -> np.ndarray:
    """Each row's position within its run of equal `groups` values (0 at a run's first
    row): `seq` of rows sorted by session."""
    if len(groups) == 0:
        return np.zeros(0, np.int64)
    at = np.arange(len(groups))
    starts = np.r_[True, groups[1:] != groups[:-1]]
    positions: np.ndarray = at - np.maximum.accumulate(np.where(starts, at, 0))
    return positions


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
    if not failed_keys(requests.key, requests.status, len(requests.key_values)).any():
        return None
    conn = source.rows(requests.row, ["conn"]).column("conn")
    return np.asarray(conn.to_pylist(), dtype=object)
