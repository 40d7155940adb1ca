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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.errors import TraceEmptyError
from tracereplay.trace import open_trace

from .sessions import SessionStats, failed_keys
from .source import SCAN_BATCH_ROWS, ParquetSource, RequestSource

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
    coded: Mapping[str, tuple[np.ndarray, pa.Array]] = field(default_factory=dict)
    """Other string columns read with them (`read_request_columns(coded=)`), each as
    codes and its distinct values (sorted, null last), as `path` and `paths`."""

    def __len__(self) -> int:
        return len(self.row)


class _Codes:
    """One string column's codes, filled batch by batch into a preallocated int32 array:
    each batch's indices into its own dictionary (Parquet's, read as is, or one pyarrow
    makes of a plain string column), a null as one past its dictionary's end. `ranked`
    maps them to codes into the sorted distinct values at the end, in place."""

    def __init__(self, rows: int) -> None:
        self.codes = np.empty(rows, np.int32)
        self.dictionaries: list[pa.Array] = []
        self.spans: list[tuple[int, int]] = []  # (first row, dictionary) where one starts

    def add(self, at: int, indices: np.ndarray, dictionary: pa.Array) -> None:
        """A batch's local indices (nulls already one past the end) from row `at` on."""
        last = self.dictionaries[-1] if self.dictionaries else None
        if last is None or not (last is dictionary or last.equals(dictionary)):
            self.dictionaries.append(dictionary)
            self.spans.append((at, len(self.dictionaries) - 1))
        self.codes[at : at + len(indices)] = indices

    def grow(self, rows: int) -> None:
        self.codes = _grown(self.codes, rows)

    def ranked(self, rows: int) -> tuple[np.ndarray, pa.Array]:
        """Codes into the sorted distinct values the rows use (a null: their count), and
        those values; in place."""
        codes = self.codes[:rows]
        stops = [*(at for at, _ in self.spans[1:]), rows]
        spans = [(at, which, stop) for (at, which), stop in zip(self.spans, stops, strict=True)]
        # What each batch dictionary's rows use (a dictionary read from Parquet may hold
        # values no row here has), with its null slot last.
        used = [np.zeros(len(d) + 1, bool) for d in self.dictionaries]
        for at, which, stop in spans:
            used[which] |= np.bincount(codes[at:stop], minlength=len(used[which])) > 0
        # One dictionary_encode of the used values of every dictionary: its indices are
        # each value's code into the distinct values in order of first use, ranked by one
        # sort of those.
        every = pa.concat_arrays(
            [
                d.cast(pa.string()).filter(u[:-1])
                for d, u in zip(self.dictionaries, used, strict=True)
            ]
            or [pa.array([], pa.string())]
        )
        encoded = pc.dictionary_encode(every)
        distinct = encoded.dictionary
        order = pc.sort_indices(distinct).to_numpy()
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        ranks = rank[np.asarray(encoded.indices, np.int32)]
        offsets = np.cumsum([0, *(int(u[:-1].sum()) for u in used)])
        for at, which, stop in spans:
            mapping = np.full(len(used[which]), len(order), np.int32)  # null: after all
            mapping[np.flatnonzero(used[which][:-1])] = ranks[offsets[which] : offsets[which + 1]]
            np.take(mapping, codes[at:stop], out=codes[at:stop])
        self.dictionaries.clear()
        return codes, distinct.take(pa.array(order))


def _local(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """A string column's indices into its own dictionary (null: one past the end) and the
    dictionary; a plain string column is dictionary-encoded first."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    dictionary = column.dictionary
    indices = column.indices
    if indices.null_count:
        indices = indices.fill_null(len(dictionary))
    return np.asarray(indices, dtype=np.int32), dictionary


def _session_key(batch: pa.RecordBatch) -> tuple[np.ndarray, pa.Array]:
    """Each request's `session_key` (the session, or the client when the session is null
    or empty, NO_SESSION when both are missing) as indices into a batch dictionary: the
    session's values, then the client's, then NO_SESSION."""
    names = batch.schema.names
    none = pa.nulls(batch.num_rows, pa.string())
    session, sessions = _local(batch.column("session") if "session" in names else none)
    client, clients = _local(batch.column("client") if "client" in names else none)
    named = pc.fill_null(pc.not_equal(sessions.cast(pa.string()), ""), False)
    named = np.append(np.asarray(named, bool), False)  # a null session: its slot last
    # A null client reads one past the clients: NO_SESSION.
    key = np.where(named[session], session, client + len(sessions))
    values = pa.concat_arrays(
        [sessions.cast(pa.string()), clients.cast(pa.string()), pa.array([NO_SESSION])]
    )
    return key.astype(np.int32, copy=False), values


def read_request_columns(
    batches: Iterable[pa.RecordBatch],
    *,
    source: str,
    rows: int | None = None,
    coded: Sequence[str] = (),
) -> RequestColumns:
    """`RequestColumns` of record batches holding `LIGHT_COLUMNS` (session and client may
    be absent; strings plain or dictionary-encoded, e.g. read as Parquet's dictionaries),
    read one batch at a time into preallocated arrays (`rows`: how many requests, when
    known; else they grow). `coded`: other string columns read alongside, as codes."""
    capacity = rows if rows is not None else 1 << 16
    ts = np.empty(capacity, np.int64)
    duration = np.empty(capacity, np.float64)
    status = np.empty(capacity, np.float64)
    strings = {name: _Codes(capacity) for name in ("key", "method", "path", *coded)}
    n = 0
    for batch in batches:
        end = n + batch.num_rows
        if end > capacity:
            capacity = max(end, capacity * 3 // 2)  # unknown size: at most half to spare
            ts, duration, status = (_grown(a, capacity) for a in (ts, duration, status))
            for column in strings.values():
                column.grow(capacity)
        ts[n:end] = np.asarray(batch.column("ts").cast(pa.int64()), dtype=np.int64)
        duration[n:end] = np.asarray(batch.column("duration_ms").cast(pa.float64()))
        status[n:end] = np.asarray(batch.column("status").cast(pa.float64()))
        strings["key"].add(n, *_session_key(batch))
        for name in ("method", "path", *coded):
            strings[name].add(n, *_local(batch.column(name)))
        n = end
    if not n:
        raise TraceEmptyError(f"{source}: the trace holds no requests")
    # Into `ts` order, a column at a time, each scan-order array let go once gathered.
    order = np.argsort(ts[:n], kind="stable")
    first = int(ts[order[0]])
    since = ts[order]
    del ts
    since -= first
    t_s = since / 1_000_000
    del since
    duration_ms = duration[:n][order]
    del duration
    ordered_status = status[:n][order]
    del status
    coded_columns = {}
    for name in list(strings):
        codes, distinct = strings.pop(name).ranked(n)
        coded_columns[name] = (codes[order], distinct)
        del codes
    key, key_values = coded_columns.pop("key")
    method, method_values = coded_columns.pop("method")
    path, path_values = coded_columns.pop("path")
    pa.default_memory_pool().release_unused()  # the batches' memory, kept by the pool
    return RequestColumns(
        row=order.astype(np.int32) if n <= np.iinfo(np.int32).max else order,
        first_ts=pd.Timestamp(first, unit="us", tz="UTC"),
        t_s=t_s,
        duration_ms=duration_ms,
        status=ordered_status,
        key=key,
        keys=[str(k) for k in key_values.to_pylist()],
        method=method,
        methods=[str(m).upper() for m in method_values.to_pylist()] + ["NONE"],
        path=path,
        paths=_with_null(path_values),
        coded={
            name: (codes, _with_null(values)) for name, (codes, values) in coded_columns.items()
        },
    )


STRING_COLUMNS = ("session", "client", "path", "error", "conn")
"""String columns `read_light_columns` reads as the Parquet files' dictionaries."""
_READ_AHEAD = {"fragment_readahead": 2, "batch_readahead": 4}
"""The scanner's defaults (4 files, 16 batches ahead) held ~100 MB more at 10 M requests
and were no faster on 2 cores."""


def read_light_columns(source: RequestSource, *, coded: Sequence[str] = ()) -> RequestColumns:
    """`read_request_columns` of `LIGHT_COLUMNS` (and `coded`) of every request; from a
    Parquet trace with its string columns read as the files' own dictionaries (a batch's
    strings are then never decoded nor hashed per request: at 10 M requests the read
    took 2.3 CPU s this way, 5.7 s from plain strings)."""
    columns = [*LIGHT_COLUMNS, *coded]
    if not isinstance(source, ParquetSource):
        return read_request_columns(source.batches(columns), source="trace", coded=coded)
    trace = source.trace
    batches = trace.dictionary_batches(
        columns, STRING_COLUMNS, batch_size=SCAN_BATCH_ROWS, **_READ_AHEAD
    )
    return read_request_columns(batches, source=str(trace.path), rows=trace.num_rows, coded=coded)


def _with_null(values: pa.Array) -> pa.Array:
    """Distinct values and None after them (what a null's code reads)."""
    return pa.concat_arrays([values, pa.nulls(1, values.type)])


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    out = np.empty(rows, array.dtype)
    out[: len(array)] = array
    return out


KeyTimeSplit = tuple[np.ndarray, np.ndarray, np.ndarray]


def key_time_split(requests: RequestColumns) -> KeyTimeSplit:
    """The requests' order by (session key, time), stable as sessionize's sort; per request
    in that order, whether the one before it has the same key, and the pause since that
    one's response ended (unknown durations read as 0; the first one's is 0)."""
    order = _by_key_then_time(requests.key, requests.t_s)
    key = requests.key[order]
    same_key = np.zeros(len(order), dtype=bool)
    np.equal(key[1:], key[:-1], out=same_key[1:])
    del key
    # end = t + duration / 1000 (unknown: 0), in place: one 8-byte array a request at a time
    end = requests.duration_ms[order]
    np.nan_to_num(end, copy=False, nan=0.0)
    end /= 1000.0
    t = requests.t_s[order]
    end += t
    think = np.zeros(len(order))
    np.subtract(t[1:], end[:-1], out=think[1:])
    del t, end
    np.maximum(think, 0.0, out=think)
    return order, same_key, think


def _by_key_then_time(key: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`np.lexsort((t, key))`. When `t` is in order already (RequestColumns' is) and the
    keys are codes under 2**32, that is a stable sort of the keys alone: two passes of
    numpy's radix sort of 16-bit values (3x faster than the lexsort at 1 M requests)."""
    small = key.dtype.kind in "iu" and (
        not key.size or 0 <= int(key.min()) <= int(key.max()) < 1 << 32
    )
    if not small or (t[1:] < t[:-1]).any() or np.isnan(t).any():
        return np.lexsort((t, key))
    order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    if key.size and int(key.max()) >= 1 << 16:
        high = (key >> 16).astype(np.uint16)[order]
        order = order[np.argsort(high, kind="stable")]
    return order


def _new_sessions(t: np.ndarray, same_key: np.ndarray, timeout_s: float) -> np.ndarray:
    """Where a session starts: the key changes or the gap between two starts > timeout."""
    new = ~same_key
    new[1:] |= (t[1:] - t[:-1]) > timeout_s
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
    for start in range(0, len(rows), _CHUNK):  # + arange(n), no second 8-byte array
        part = rows[start : start + _CHUNK]
        part += np.arange(start, start + len(part))
    request = order[rows]
    del order  # (when the caller gave no split: let go before the next gather)
    pause = think[rows]
    del think, rows
    pause[placed] = np.nan
    return request, pause, sizes


_CHUNK = 1 << 20


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
    seq = np.arange(len(request), dtype=np.int64)  # in place: no second 8-byte array a row
    seq -= np.repeat(np.cumsum(sizes) - sizes, sizes)
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
