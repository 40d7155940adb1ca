"""The light columns of a trace's requests as numpy arrays (issue 15): what templating,
sessions, behaviors, arrivals, endpoint statistics and compare read, strings as codes into
their sorted distinct values, read batch by batch into preallocated arrays; from a
Parquet trace, strings come as the files' own dictionaries (`read_light_columns`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.errors import TraceEmptyError

from .source import SCAN_BATCH_ROWS, ParquetSource, RequestSource

LIGHT_COLUMNS = ["ts", "duration_ms", "session", "client", "method", "path", "status"]
"""What templating, sessions, behaviors, arrivals and endpoint statistics read."""
NO_SESSION = "(no session)"


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
    """float64 (float32 when read so: `status_dtype`), NaN when no response came (as
    pandas reads an int16 column with nulls)."""
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
            for start in range(at, stop, CHUNK_ROWS):  # np.take makes its indices intp
                part = codes[start : min(start + CHUNK_ROWS, stop)]
                np.take(mapping, part, out=part, mode="clip")
        self.dictionaries.clear()
        return self.codes if len(self.codes) == rows else codes, distinct.take(pa.array(order))


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
    status_dtype: type[np.floating[Any]] = np.float64,
) -> RequestColumns:
    """`RequestColumns` of record batches holding `LIGHT_COLUMNS` (session and client may
    be absent; strings plain or dictionary-encoded, e.g. read as Parquet's dictionaries),
    read one batch at a time into preallocated arrays (`rows`: how many requests, when
    known; else they grow). `coded`: other string columns read alongside, as codes.
    `status_dtype`: float32 holds the trace's int16 statuses exactly, in half the memory."""
    capacity = rows if rows is not None else 1 << 16
    ts = np.empty(capacity, np.int64)
    duration = np.empty(capacity, np.float64)
    status = np.empty(capacity, status_dtype)
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
        status[n:end] = np.asarray(batch.column("status").cast(pa.from_numpy_dtype(status.dtype)))
        strings["key"].add(n, *_session_key(batch))
        for name in ("method", "path", *coded):
            strings[name].add(n, *_local(batch.column(name)))
        n = end
    if not n:
        raise TraceEmptyError(f"{source}: the trace holds no requests")
    numbers = {"ts": ts, "duration": duration, "status": status}
    del ts, duration, status  # (the next step lets each go as soon as it is gathered)
    first, t_s, duration_ms, ordered_status, row, coded_columns = _in_time_order(
        n, numbers, strings
    )
    key, key_values = coded_columns.pop("key")
    method, method_values = coded_columns.pop("method")
    path, path_values = coded_columns.pop("path")
    pa.default_memory_pool().release_unused()  # the batches' memory, kept by the pool
    return RequestColumns(
        row=row,
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


_Ordered = tuple[
    int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, pa.Array]]
]


def _in_time_order(n: int, numbers: dict[str, np.ndarray], strings: dict[str, _Codes]) -> _Ordered:
    """The first time, then seconds since it, durations, statuses, scan positions and the
    string columns' codes and distinct values, of the first `n` rows in `ts` order (ties in
    scan order), from `numbers` (ts, duration, status) and `strings`, emptied as read."""
    ts, duration, status = (numbers.pop(name) for name in ("ts", "duration", "status"))
    # Into `ts` order, a column at a time, each gathered into the array the column before
    # it let go: at 10 M requests a fresh array costs the kernel more than the gather
    # (bench/README.md, compare rounds 10 and 11). A trace read in order is not gathered.
    wide = n > np.iinfo(np.int32).max
    # The sort of the times on the other core while this one ranks the strings (numpy's
    # sort and Arrow's kernels let go of the GIL).
    with ThreadPoolExecutor(1) as pool:
        sorting = pool.submit(_time_order, ts[:n])
        ranked = {name: strings.pop(name).ranked(n) for name in list(strings)}
        order = sorting.result()
    coded_columns = {}
    if order is None:
        first = int(ts[0])
        since = _cut(ts, n)
        del ts
        since -= first
        t_s = _seconds(since, since)
        del since
        duration_ms, ordered_status = _cut(duration, n), _cut(status, n)
        del duration, status
        for name in list(ranked):
            codes, distinct = ranked.pop(name)
            coded_columns[name] = (_cut(codes, n), distinct)
            del codes
        row = np.arange(n, dtype=np.int64 if wide else np.int32)
    else:
        first = int(ts[order[0]])
        since = gather(ts[:n], order)
        since -= first
        t_s = _seconds(since, _own(ts, n, np.float64))
        del ts
        duration_ms = gather(duration[:n], order, _own(since, n, np.float64))
        del since
        ordered_status = gather(status[:n], order, _own(duration, n, status.dtype.type))
        del duration, status
        spare = None
        for name in list(ranked):
            codes, distinct = ranked.pop(name)
            coded_columns[name] = (gather(codes[:n], order, _own(spare, n, np.int32)), distinct)
            spare = codes
            del codes
        into = None if wide else _own(spare, n, np.int32)
        row = order if wide else order.astype(np.int32) if into is None else _copied(into, order)
        del order, spare
    return first, t_s, duration_ms, ordered_status, row, coded_columns


STRING_COLUMNS = ("session", "client", "path", "error", "conn")
"""String columns `read_light_columns` reads as the Parquet files' dictionaries."""
_READ_AHEAD = {"fragment_readahead": 2, "batch_readahead": 4}
"""The scanner's defaults (4 files, 16 batches ahead) held ~100 MB more at 10 M requests
and were no faster on 2 cores."""


def read_light_columns(
    source: RequestSource,
    *,
    coded: Sequence[str] = (),
    status_dtype: type[np.floating[Any]] = np.float64,
) -> RequestColumns:
    """`read_request_columns` of `LIGHT_COLUMNS` (and `coded`) of every request; from a
    Parquet trace with its string columns read as the files' own dictionaries (a batch's
    strings are then never decoded nor hashed per request: at 10 M requests the read
    took 2.3 CPU s this way, 5.7 s from plain strings)."""
    columns = [*LIGHT_COLUMNS, *coded]
    if not isinstance(source, ParquetSource):
        return read_request_columns(
            source.batches(columns), source="trace", coded=coded, status_dtype=status_dtype
        )
    trace = source.trace
    batches = trace.dictionary_batches(
        columns, STRING_COLUMNS, batch_size=SCAN_BATCH_ROWS, **_READ_AHEAD
    )
    return read_request_columns(
        batches, source=str(trace.path), rows=trace.num_rows, coded=coded, status_dtype=status_dtype
    )


def _with_null(values: pa.Array) -> pa.Array:
    """Distinct values and None after them (what a null's code reads)."""
    return pa.concat_arrays([values, pa.nulls(1, values.type)])


def _time_order(ts: np.ndarray) -> np.ndarray | None:
    """The stable order of `ts`; None when it is in order already."""
    return None if _ascending(ts) else np.argsort(ts, kind="stable")


def _ascending(values: np.ndarray) -> bool:
    """Whether `values` never decrease (a chunk at a time: no array of every comparison)."""
    pairs = len(values) - 1  # value i + 1 against value i
    return all(
        not (values[start + 1 : stop + 1] < values[start:stop]).any()
        for start in range(0, max(pairs, 0), CHUNK_ROWS)
        for stop in [min(start + CHUNK_ROWS, pairs)]
    )


def _cut(values: np.ndarray, rows: int) -> np.ndarray:
    """`values[:rows]` as an array of its own: `values` when that is it (a grown array's
    room to spare is not kept alive by a view)."""
    return values if values.base is None and len(values) == rows else values[:rows].copy()


def _own(array: np.ndarray | None, rows: int, dtype: type[np.generic]) -> np.ndarray | None:
    """The memory of `array` (whose values are read no more) as `rows` values of `dtype`,
    when it is an array of its own of `rows` values of that item size; else None."""
    if array is None or array.base is not None or len(array) != rows:
        return None
    return array.view(dtype) if array.itemsize == np.dtype(dtype).itemsize else None


def gather(values: np.ndarray, at: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """`values[at]` for positions known to be in range (an order, rows of one), into `out`
    when given (of `values`' dtype and not `values` itself): `np.take` in clip mode
    writes straight into `out`, where its raise mode copies it first."""
    return np.take(values, at, out=out, mode="clip")


def _copied(out: np.ndarray, values: np.ndarray) -> np.ndarray:
    np.copyto(out, values, casting="same_kind")
    return out


def _seconds(since_us: np.ndarray, into: np.ndarray | None) -> np.ndarray:
    """`since_us / 1e6` as float64, into `into` when given (it may be `since_us`' own
    memory: a chunk is divided before it is written)."""
    seconds = np.empty(len(since_us)) if into is None else into.view(np.float64)
    for start in range(0, len(since_us), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        seconds[start:stop] = since_us[start:stop] / 1_000_000
    return seconds


CHUNK_ROWS = 1 << 18
"""Rows a chunk of temporaries covers (2 MiB of 8-byte values); frame.py's too."""


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    out = np.empty(rows, array.dtype)
    out[: len(array)] = array
    return out
