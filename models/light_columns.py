"""The light columns of a trace's requests as numpy arrays (issue 15): what templating,
sessions, behaviors, arrivals, endpoint statistics and compare read, strings as codes into
their sorted distinct values, read batch by batch into preallocated arrays; from a
Parquet trace, strings come as the files' own dictionaries (`read_light_columns`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.allocator import give_back_freed
from tracereplay.errors import TraceCorruptError, TraceEmptyError

from .source import SCAN_BATCH_ROWS, ParquetSource, RequestSource
from .string_codes import (
    CHUNK_ROWS,
    NO_SESSION,
    POOL,
    Coding,
    UsedValues,
    local,
    ranked,
    session_key,
)
from .time_order import TimeSort, codes_in_time_order, gather, numbers_in_time_order

__all__ = [
    "CHUNK_ROWS",
    "IN_FLOAT32",
    "LIGHT_COLUMNS",
    "NO_SESSION",
    "READ_THREADS",
    "STRING_COLUMNS",
    "RequestColumns",
    "gather",
    "numbers_into",
    "read_light_columns",
    "read_request_columns",
]

LIGHT_COLUMNS = ["ts", "duration_ms", "session", "client", "method", "path", "status"]
"""What templating, sessions, behaviors, arrivals and endpoint statistics read."""


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
    """float32 when every value of the trace's status type is one (its int16), else
    float64 (or as read: `status_dtype`); NaN when no response came (as pandas reads an
    int16 column with nulls)."""
    key: np.ndarray
    key_values: pa.Array
    """`session_key` (see `requests_frame`) = key_values[key]: the distinct keys (strings,
    no null), sorted; as a list, `keys`."""
    method: np.ndarray
    """Codes into `methods`: int8 when they fit (a trace has a few methods), else int32."""
    methods: list[str]
    path: np.ndarray
    paths: pa.Array
    """Distinct paths (null read as None), sorted."""
    coded: Mapping[str, tuple[np.ndarray, pa.Array]] = field(default_factory=dict)
    """Other string columns read with them (`read_request_columns(coded=)`), each as
    codes and its distinct values (sorted, null last), as `path` and `paths`."""

    def __len__(self) -> int:
        return len(self.row)

    @cached_property
    def keys(self) -> list[str]:
        """`key_values` as a list of str, made when first asked for (at 10 M requests its
        1.06 M strings are 73 MiB and 0.06 CPU s with the GIL: the stages before the fork
        never ask, so the behaviors' child never holds them; a frozen dataclass's cached
        property is written into the instance's `__dict__`, not through `__setattr__`)."""
        keys: list[str] = self.key_values.to_pylist()
        return keys


class _Columns:
    """The light columns being read: preallocated arrays each batch writes its slice of
    (`fill`), strings as indices into the batches' dictionaries until `finished`."""

    def __init__(
        self,
        rows: int,
        coded: Sequence[str],
        status_dtype: type[np.floating[Any]] | None,
        status_type: pa.DataType | None = None,
    ):
        # Statuses of a type float32 holds exactly (the trace's int16) are read as float32
        # whatever `status_dtype`: half the memory, and it is the first codes' in time order;
        # and kept so when no `status_dtype` is asked for (4 bytes a request less held by
        # every stage: they compare and count statuses, never add them).
        exact = status_type is not None and status_type in IN_FLOAT32
        self.status_dtype = status_dtype or (np.float32 if exact else np.float64)
        self.numbers = {
            "ts": np.empty(rows, np.int64),
            "duration": np.empty(rows, np.float64),
            "status": np.empty(rows, np.float32 if exact else self.status_dtype),
        }
        self.strings = {
            name: np.empty(rows, np.int32) for name in ("key", "method", "path", *coded)
        }
        self.used: dict[str, list[UsedValues]] = {name: [] for name in self.strings}
        self.missing = {"duration", "status"}
        """The numbers every batch read so far has no value of (all null: NaN)."""

    def grow(self, rows: int) -> None:
        for arrays in (self.numbers, self.strings):
            for name, array in arrays.items():
                arrays[name] = _grown(array, rows)

    def fill(self, batch: pa.RecordBatch, at: int, codings: dict[str, Coding]) -> int:
        """Write `batch` from row `at` on (strings through `codings`); the row after it."""
        end: int = at + batch.num_rows
        ts, duration, status = (self.numbers[name] for name in ("ts", "duration", "status"))
        ts[at:end] = np.asarray(
            pc.cast(batch.column("ts"), pa.int64(), memory_pool=POOL), dtype=np.int64
        )
        for name, out, column in (
            ("duration", duration, batch.column("duration_ms")),
            ("status", status, batch.column("status")),
        ):
            numbers_into(out[at:end], column)
            if column.null_count < len(column):
                self.missing.discard(name)
        codings["key"].add(self.strings["key"], at, *session_key(batch))
        for name, coding in codings.items():
            if name != "key":
                coding.add(self.strings[name], at, *local(batch.column(name)))
        return end

    def codings(self) -> dict[str, Coding]:
        return {name: Coding() for name in self.strings}

    def done(self, used: dict[str, list[UsedValues]]) -> None:
        """The batches of some `codings` are all written: their `Coding.used`."""
        for name, values in used.items():
            self.used[name] += values

    def finished(self, n: int, source: str) -> RequestColumns:
        """`RequestColumns` of the first `n` rows, in `ts` order; the arrays are let go."""
        if not n:
            raise TraceEmptyError(f"{source}: the trace holds no requests")
        with ThreadPoolExecutor(READ_THREADS) as pool:
            sort = TimeSort(self.numbers["ts"], n, pool, READ_THREADS)
            # The numbers put in time order on the pool, the strings ranked on this thread
            # meanwhile (numpy's sort and gathers and Arrow's kernels let go of the GIL).
            numbers = pool.submit(
                numbers_in_time_order, n, sort, self.numbers, self.status_dtype, self.missing
            )
            values = {
                name: ranked(self.strings[name][:n], self.used.pop(name))
                for name in list(self.used)
            }
            # (a dictionary holds no null)
            keys = pc.cast(values.pop("key"), pa.string(), memory_pool=POOL)
            methods = [str(m).upper() for m in values.pop("method").to_pylist()] + ["NONE"]
            paths = _with_null(values.pop("path"))
            coded = {name: _with_null(distinct) for name, distinct in values.items()}
            duration_ms, status, spare = numbers.result()
        t_s, codes, row = codes_in_time_order(n, sort, self.numbers.pop("ts"), self.strings, spare)
        del spare
        columns = RequestColumns(
            row=row,
            first_ts=pd.Timestamp(sort.first, unit="us", tz="UTC"),
            t_s=t_s,
            duration_ms=duration_ms,
            status=status,
            key=codes.pop("key"),
            key_values=keys,
            method=_narrow(codes.pop("method"), len(methods)),
            methods=methods,
            path=codes.pop("path"),
            paths=paths,
            coded={name: (codes.pop(name), values) for name, values in coded.items()},
        )
        # What the read freed given back: the C library's (`POOL`'s and numpy's; every
        # arena, the reading threads' too: real1M's read ended 38 MB lower), and Arrow's
        # default pool's, if any.
        give_back_freed()
        pa.default_memory_pool().release_unused()
        return columns


def read_request_columns(
    batches: Iterable[pa.RecordBatch],
    *,
    source: str,
    rows: int | None = None,
    coded: Sequence[str] = (),
    status_dtype: type[np.floating[Any]] | None = None,
    status_type: pa.DataType | None = None,
) -> RequestColumns:
    """`RequestColumns` of record batches holding `LIGHT_COLUMNS` (session and client may
    be absent; strings plain or dictionary-encoded, e.g. read as Parquet's dictionaries),
    read one batch at a time into preallocated arrays (`rows`: how many requests, when
    known; else they grow). `coded`: other string columns read alongside, as codes.
    `status_dtype`: float32 holds the trace's int16 statuses exactly, in half the memory;
    None: float32 when `status_type`, the batches' status type, is known to fit it (see
    `_Columns`), else float64."""
    capacity = rows if rows is not None else 1 << 16
    columns = _Columns(capacity, coded, status_dtype, status_type)
    codings = columns.codings()
    n = 0
    for batch in batches:
        if n + batch.num_rows > capacity:
            capacity = max(n + batch.num_rows, capacity * 3 // 2)  # at most half to spare
            columns.grow(capacity)
        n = columns.fill(batch, n, codings)
    columns.done({name: coding.used() for name, coding in codings.items()})
    return columns.finished(n, source)


STRING_COLUMNS = ("session", "client", "path", "error", "conn")
"""String columns `read_light_columns` reads as the Parquet files' dictionaries."""
_READ_AHEAD = {"fragment_readahead": 2, "batch_readahead": 4}
"""The scanner's defaults (4 files, 16 batches ahead) held ~100 MB more at 10 M requests
and were no faster on 2 cores."""


IN_FLOAT32 = (pa.int8(), pa.int16(), pa.uint8(), pa.uint16(), pa.float32())
"""Status types whose every value float32 holds exactly."""

READ_THREADS = 2
"""Files `read_light_columns` reads at once (a file's decoding lets go of the GIL)."""


def read_light_columns(
    source: RequestSource,
    *,
    coded: Sequence[str] = (),
    status_dtype: type[np.floating[Any]] | None = None,
) -> RequestColumns:
    """`read_request_columns` of `LIGHT_COLUMNS` (and `coded`) of every request; from a
    Parquet trace with its string columns read as the files' own dictionaries (a batch's
    strings are then never decoded nor hashed per request: at 10 M requests the read
    took 2.3 CPU s this way, 5.7 s from plain strings), `READ_THREADS` files at once, each
    into its slice of the arrays (where it starts: the rows of the files before it, from
    their footers)."""
    columns = [*LIGHT_COLUMNS, *coded]
    if not isinstance(source, ParquetSource):
        return read_request_columns(
            source.batches(columns), source="trace", coded=coded, status_dtype=status_dtype
        )
    trace = source.trace
    status_type = trace.dataset.schema.field("status").type
    files = trace.dictionary_files(
        columns, STRING_COLUMNS, batch_size=SCAN_BATCH_ROWS, memory_pool=POOL
    )
    if files is None:  # rows still in a journal: one scan
        batches = trace.dictionary_batches(
            columns, STRING_COLUMNS, batch_size=SCAN_BATCH_ROWS, **_READ_AHEAD
        )
        return read_request_columns(
            batches, source=str(trace.path), rows=trace.num_rows, coded=coded,
            status_dtype=status_dtype, status_type=status_type,
        )  # fmt: skip
    starts = np.cumsum([0, *(file.rows for file in files)]).tolist()
    read = _Columns(starts[-1], coded, status_dtype, status_type)

    def read_file(i: int) -> dict[str, list[UsedValues]]:
        codings = read.codings()
        end = starts[i]
        for batch in files[i].batches():
            if end + batch.num_rows > starts[i + 1]:
                break
            end = read.fill(batch, end, codings)
        if end != starts[i + 1]:
            raise TraceCorruptError(
                f"{trace.path}: a trace file is damaged (its rows are not the "
                f"{files[i].rows} its footer says)"
            )
        return {name: coding.used() for name, coding in codings.items()}

    with ThreadPoolExecutor(READ_THREADS) as pool:
        for used in pool.map(read_file, range(len(files))):
            read.done(used)
    return read.finished(starts[-1], str(trace.path))


def numbers_into(out: np.ndarray, column: pa.Array) -> None:
    """A numeric column's values into `out` (floats), a null as NaN, as an Arrow cast to
    `out`'s type reads them: cast straight from the column's values buffer into `out`
    when every value converts exactly, with no Arrow cast nor NaN-filled copy made first
    (a column all null, as a trace's statuses when no response came, is a fill)."""
    nulls = column.null_count
    if nulls == len(column):
        out.fill(np.nan)
        return
    kind = column.type
    if not _exact(kind, out.dtype):
        out[:] = np.asarray(pc.cast(column, pa.from_numpy_dtype(out.dtype), memory_pool=POOL))
        return
    width = kind.bit_width // 8
    values = np.frombuffer(
        column.buffers()[1], kind.to_pandas_dtype(), len(column), column.offset * width
    )
    np.copyto(out, values)
    if nulls:
        out[np.asarray(pc.is_null(column, memory_pool=POOL))] = np.nan


def _exact(kind: pa.DataType, dtype: np.dtype) -> bool:
    """Whether every value of `kind` is one of the floats `dtype` (float32 or float64)."""
    digits = np.finfo(dtype).nmant + 1
    if pa.types.is_floating(kind):
        return bool(kind.bit_width <= dtype.itemsize * 8)
    return bool(pa.types.is_integer(kind) and kind.bit_width < digits)


def _with_null(values: pa.Array) -> pa.Array:
    """Distinct values and None after them (what a null's code reads)."""
    return pa.concat_arrays([values, pa.nulls(1, values.type)], memory_pool=POOL)


def _narrow(codes: np.ndarray, values: int) -> np.ndarray:
    """Codes into `values` values as int8 when they fit (a copy of a quarter the size:
    the int32 array is let go), else as they are."""
    return codes.astype(np.int8) if values <= np.iinfo(np.int8).max + 1 else codes


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    out = np.empty(rows, array.dtype)
    out[: len(array)] = array
    return out
