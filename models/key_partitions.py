"""The trace's requests split by session key into partitions spilled to disk (issue 15):
one scan of the record batches, each row to partition hash(key) mod P, its endpoint from
per-batch path skeletons; each partition read back in time order, one at a time.

The partitioned model's first step (docs/SCALE.md item 4, bench/bench_partitioned.py): a
partition holds every request of its keys, so the sessions of the trace are the sessions
of each partition, made with the model's own functions, while only one partition's arrays
are held. What a row's values are is what `light_columns.read_light_columns` reads and
`templating.request_endpoints` codes (the tests compare them to the bit).

Keys whose every request failed auth (401), which the model joins to their connection's
next key (`sessions.join_failed_credentials`), are found by the scan (keys-sized: per
spilled key, whether its rows were all 401s); with `join_failed_auth` the scan keeps the
rows that failed auth (401-rows-sized), their join is made from the failed keys' rows and
a scan of (ts, key, conn) (models/failed_auth_join.py), and the rows of each key joined to
another are moved to the joined key's partition (`KeyJoin`): the trace is scanned once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from tracereplay.closing import Closing
from tracereplay.errors import TraceCorruptError, TraceEmptyError

from .failed_auth_join import (
    AUTH_FAILED_FILE,
    AuthFailedRows,
    KeyJoin,
    failed_auth_join,
    move_joined,
)
from .in_order import in_order, read_ahead
from .light_columns import (
    IN_FLOAT32,
    LIGHT_COLUMNS,
    STRING_COLUMNS,
    RequestColumns,
    numbers_into,
)
from .partition_sessions import KeyPartition
from .sessions import AUTH_FAILED
from .skeleton_cells import BatchPairs, SkeletonCells
from .source import SCAN_BATCH_ROWS, ParquetSource, RequestSource
from .string_codes import POOL, local, session_key
from .templating import Templater

if TYPE_CHECKING:  # (partition_endpoints imports this module)
    from .partition_endpoints import ParamFacts

__all__ = ["KeyPartitions", "Partition", "scan_batches", "scan_key_partitions"]


def partition_of(keys: pa.Array, count: int) -> np.ndarray:
    """Each key's partition of `count`: its hash's high 32 bits mod `count`. As 16-bit
    ints where they fit: numpy sorts them stably by radix (a batch's rows 5x faster than
    as int64: real10M's scan 0.3 CPU s)."""
    part = (_hash_strings(keys) >> np.uint64(32)) % np.uint64(count)
    return part.astype(np.int16 if count <= 1 << 15 else np.int64)


def _hash_strings(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (pandas' siphash, fixed key: the same in every run).
    It only spreads keys over partitions: keys are told apart by their strings."""
    objects = values.cast(pa.string()).to_numpy(zero_copy_only=False)
    return np.asarray(pd.util.hash_array(objects, categorize=False), dtype=np.uint64)


@dataclass(frozen=True)
class Partition:
    """The requests of one partition's keys, in time order (ties in scan order: the
    order of the model's `RequestColumns`, restricted to these keys)."""

    ts: np.ndarray
    """int64 µs since the epoch."""
    key: np.ndarray
    """int32 codes into `key_values`."""
    key_values: pa.Array
    """The partition's distinct session keys (`string_codes.session_key`), sorted as the
    model sorts its `key_values` (binary order): key codes compare as the model's do."""
    endpoint: np.ndarray
    """Codes into `KeyPartitions.names` (int16 when they fit, else int32): the model's
    `request_endpoints` code of each request."""
    duration_ms: np.ndarray
    status: np.ndarray
    row: np.ndarray
    """Each request's position in the trace's scan order (`RequestColumns.row`: what the
    sample reads fetch heavy columns by), int32 below 2**31 requests."""
    joined: bool = False
    """Keyed by the joined key (`KeyPartitions.join`): the trace holds keys whose every
    request failed auth, which the model sessionizes the pandas way (`KeyPartition.joined`)."""

    def key_partition(self, first_ts_us: int) -> KeyPartition:
        """These requests as `partition_sessions` reads them (`t_s` as `request_columns`'),
        marked `joined` when they are."""
        return KeyPartition(
            (self.ts - first_ts_us) / 1_000_000, self.duration_ms, self.status, self.key,
            self.key_values, joined=self.joined,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.ts)

    def request_columns(self, first_ts_us: int) -> RequestColumns:
        """As the model's `RequestColumns` of these requests (`t_s` in seconds since the
        trace's first request, computed as the model does), for `key_time_split` and
        `sessionize_requests` with `endpoint` given: no method nor path codes."""
        return RequestColumns(
            row=self.row, first_ts=pd.Timestamp(first_ts_us, unit="us", tz="UTC"),
            t_s=(self.ts - first_ts_us) / 1_000_000, duration_ms=self.duration_ms,
            status=self.status, key=self.key, key_values=self.key_values,
            method=np.zeros(0, np.int8), methods=[], path=np.zeros(0, np.int32),
            paths=pa.array([], pa.string()),
        )  # fmt: skip


def _keys(
    key: np.ndarray, keys: pa.Array, spills: list[_Spill], failed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's key code and partition: the batch's distinct keys (`session_key`'s `key`
    indices into `keys`) are hashed to their partitions and appended to those partitions'
    key spills; a row's code is its key's index into its partition's spilled keys. Each
    spill told which of its new keys' rows all failed auth (`failed`: per row)."""
    count = len(spills)
    rows_of = np.bincount(key, minlength=len(keys))
    used = np.flatnonzero(rows_of)
    # (keys whose batch rows are all 401s: few, and none in a batch without a 401)
    all_failed = np.zeros(len(used), bool)
    if failed.any():
        all_failed = (np.bincount(key[failed], minlength=len(keys)) == rows_of)[used]
    used_keys = keys.take(pa.array(used))
    part_of_used = partition_of(used_keys, count)
    order = np.argsort(part_of_used, kind="stable")
    bounds = np.searchsorted(part_of_used, np.arange(count + 1), sorter=order)
    # Each used key's place among the batch's keys of its partition, after those spilled.
    place = np.empty(len(used), np.int64)
    place[order] = np.arange(len(used)) - np.repeat(bounds[:-1], np.diff(bounds))
    spilled = np.array([spill.key_count for spill in spills], np.int64)
    code = np.zeros(len(keys), np.int32)
    code[used] = spilled[part_of_used] + place
    part = np.zeros(len(keys), part_of_used.dtype)
    part[used] = part_of_used
    in_order = used_keys.take(pa.array(order)).cast(pa.string())  # (one take, then slices)
    failed_in_order = all_failed[order] if all_failed.any() else None
    for p in np.flatnonzero(np.diff(bounds)).tolist():
        lo, hi = int(bounds[p]), int(bounds[p + 1])
        spills[p].pending_keys.append(in_order.slice(lo, hi - lo))
        if failed_in_order is not None and len(entries := np.flatnonzero(failed_in_order[lo:hi])):
            spills[p].all_failed.append(entries + spills[p].key_count)
        spills[p].key_count += hi - lo
    return code[key], part[key]


@dataclass
class _Spill:
    """One partition's two spill files: its rows, in scan order, and its keys (each
    batch's distinct keys of this partition; a row's key code indexes them all, in
    order). What batches give it is held until `flush` writes it as one record batch."""

    rows: ipc.RecordBatchFileWriter
    keys: ipc.RecordBatchFileWriter
    key_count: int = 0
    all_failed: list[np.ndarray] = field(default_factory=list)
    """The spilled keys (their indices) whose batch's rows all failed auth."""
    pending_rows: list[list[np.ndarray]] = field(default_factory=list)
    pending_keys: list[pa.Array] = field(default_factory=list)

    def flush(self, schema: pa.Schema) -> None:
        """The rows and keys held written, each as one record batch."""
        if self.pending_rows:
            columns = zip(*self.pending_rows, strict=True)
            self.rows.write_batch(
                pa.record_batch([np.concatenate(c) for c in columns], schema=schema)
            )
            self.pending_rows = []
        if self.pending_keys:
            keys = pa.concat_arrays(self.pending_keys)
            self.keys.write_batch(pa.record_batch([keys], schema=KEY_SCHEMA))
            self.pending_keys = []


SPILL_FLUSH_ROWS = 1 << 19
"""Rows the scan holds for the spills before writing them (~17 MB): each partition's
rows of several batches written as one record batch, not one per batch and partition
(an IPC record batch's write and read cost ~0.1 ms whatever its size: real10M at P=32,
4,352 of them a file, ...)."""


ROW_FILE = "rows-{}.arrow"
KEY_FILE = "keys-{}.arrow"
KEY_SCHEMA = pa.schema([("key", pa.string())])


@dataclass
class KeyPartitions(Closing):
    """A trace scanned into `count` partitions of session keys, spilled under `directory`
    (made for it, removed by `close`: use it as a context manager). `partition(p)` reads
    one back; `templater` and `names` are the model's endpoints, `first_ts_us` the trace's
    first request time, `rows` its requests."""

    directory: Path
    count: int
    rows: int = 0
    first_ts_us: int = 0
    templater: Templater | None = None
    names: list[str] = field(default_factory=list)
    endpoint_of: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    """Each spilled cell's endpoint code."""
    counts: dict[str, int] = field(default_factory=dict)
    """What the scan kept and wrote (for benchmarks)."""
    failed_keys: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    """The session keys whose every request failed auth (401), sorted (binary order): the
    model then joins them (`sessions.join_failed_credentials`) and sessionizes the
    pandas way. Partitioned by their own key unless `join` is set."""
    join: KeyJoin | None = None
    """When the rows were partitioned by their joined key (`scan_key_partitions`'
    `join_failed_auth`): each failed key's target."""
    moved_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """With `join`, the scan positions (ascending) of the rows moved to another key's
    partition: the rows of the failed keys joined to another key."""
    moved_keys: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    """Those rows' own session keys (the failed keys), in the same order."""

    def close(self) -> None:
        """The spill directory removed."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def partition(self, p: int) -> Partition:
        """Partition `p`'s requests in time order, ties in scan order (a stable sort of
        its spill, written in scan order), keys ranked to codes into its sorted keys."""
        # (the spills memory-mapped: every array returned is a copy, taken in time order)
        with (
            pa.memory_map(str(self.directory / ROW_FILE.format(p))) as rows_file,
            pa.memory_map(str(self.directory / KEY_FILE.format(p))) as keys_file,
        ):
            rows = ipc.open_file(rows_file).read_all()
            ts = rows.column("ts").to_numpy()
            order = _time_order(ts)
            key_values, rank = _ranked(ipc.open_file(keys_file).read_all().column("key"))
            key = rank[rows.column("key").to_numpy()[order]]
            row = rows.column("row").to_numpy()[order]
            wide = self.rows > np.iinfo(np.int32).max
            return Partition(
                ts=ts[order],
                key=key,
                key_values=key_values,
                endpoint=self.endpoint_of[rows.column("cell").to_numpy()[order]],
                duration_ms=rows.column("duration_ms").to_numpy()[order],
                status=rows.column("status").to_numpy()[order],
                row=row if wide else row.astype(np.int32, copy=False),
                joined=self.join is not None,
            )

    def times(self, p: int) -> np.ndarray:
        """Partition `p`'s request times as the model's `t_s` (seconds since `first_ts_us`),
        in its spill's order (scan order): only the times' column read, memory-mapped."""
        with pa.memory_map(str(self.directory / ROW_FILE.format(p))) as file:
            ts: np.ndarray = ipc.open_file(file).read_all().column("ts").to_numpy()
            return (ts - self.first_ts_us) / 1_000_000  # (a copy: the map closes)

    def partitions(self, *, release: bool = True) -> Iterator[Partition]:
        """Every partition in turn; with `release` each one's files removed once read."""
        for p in range(self.count):
            yield self.partition(p)
            if release:
                for name in (ROW_FILE, KEY_FILE):
                    (self.directory / name.format(p)).unlink()


def _time_order(ts: np.ndarray) -> np.ndarray:
    """`np.argsort(ts, kind="stable")` of int64 times, by 16 bits at a time from the
    lowest (numpy sorts 16-bit ints stably by radix: real10M's partitions, 31 bits of
    span, 2.3x faster than its timsort of the int64s); the times as given when in order."""
    if len(ts) < 2 or np.all(ts[1:] >= ts[:-1]):
        return np.arange(len(ts))
    offset = (ts - ts.min()).view(np.uint64)  # (a span to 2**64 - 1: wrapped, unsigned)
    order: np.ndarray | None = None
    for shift in range(0, max(int(offset.max()).bit_length(), 1), 16):
        digit = ((offset if order is None else offset[order]) >> shift).astype(np.uint16)
        step = np.argsort(digit, kind="stable")
        order = step if order is None else order[step]
    assert order is not None
    return order


def read_spill(path: Path) -> pa.Table:
    """A spill file (Arrow IPC: a partition's rows or keys) read whole."""
    with pa.OSFile(str(path)) as source:
        return ipc.open_file(source).read_all()


def _ranked(spilled: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The distinct strings of `spilled`, sorted (binary order), and each entry's index
    into them (int32): equal strings are neighbours once sorted."""
    values = pa.concat_arrays(spilled.chunks) if spilled.num_chunks else pa.array([], pa.string())
    order = pc.sort_indices(values)
    in_order = values.take(order)
    new = np.ones(len(in_order), bool)
    if len(in_order) > 1:
        new[1:] = np.asarray(pc.not_equal(in_order[1:], in_order[:-1]))
    rank = np.empty(len(in_order), np.int32)
    rank[order.to_numpy()] = np.cumsum(new, dtype=np.int32) - 1
    return in_order.filter(pa.array(new)), rank


def scan_batches(
    source: RequestSource,
    columns: list[str] | None = None,
    strings: Sequence[str] = STRING_COLUMNS,
) -> tuple[Iterator[pa.RecordBatch], int | None, pa.DataType | None]:
    """The light columns' batches (or `columns`', the `strings` among them read as
    dictionaries) in the model's scan order (as `read_light_columns` reads them: a Parquet
    trace file by file, strings as the files' dictionaries), how many rows (None: unknown)
    and the trace's status type (None: unknown)."""
    columns = LIGHT_COLUMNS if columns is None else columns
    if not isinstance(source, ParquetSource):
        return iter(source.batches(columns)), None, None
    trace = source.trace
    status_type = trace.dataset.schema.field("status").type
    files = trace.dictionary_files(columns, strings, batch_size=SCAN_BATCH_ROWS, memory_pool=POOL)
    if files is None:  # rows still in a journal: one scan
        batches = trace.dictionary_batches(columns, strings, batch_size=SCAN_BATCH_ROWS)
        return batches, trace.num_rows, status_type

    def checked() -> Iterator[pa.RecordBatch]:
        for file in files:
            read = 0
            for batch in file.batches():
                read += batch.num_rows
                yield batch
            if read != file.rows:
                raise TraceCorruptError(
                    f"{trace.path}: a trace file is damaged (its rows are not the "
                    f"{file.rows} its footer says)"
                )

    return checked(), sum(file.rows for file in files), status_type


def scan_key_partitions(
    source: RequestSource,
    count: int,
    parent: Path | None = None,
    *,
    join_failed_auth: bool = False,
    params: ParamFacts | None = None,
) -> KeyPartitions:
    """`source`'s requests scanned into `count` partitions of session keys, spilled to a
    directory made under `parent` (default: the system's temp directory), removed on
    error or when the returned `KeyPartitions` is closed. One batch held at a time.
    With `join_failed_auth`, when some key's every request failed auth, its join is found
    (`failed_auth_join`, from the rows that failed auth the scan kept and a scan of ts,
    keys and connections) and the rows of each key joined to another moved to the joined
    key's partition (`move_joined`): partitions of the joined keys, as a scan of the
    trace by joined keys would spill them (the model's sessions: `Partition.joined`).
    With `params`, each batch's paths are given to it by their skeleton cells, so that
    the endpoints' parameter kinds are `params.endpoint_kinds(parts.names, parts.endpoint_of)`."""
    if count < 1:
        raise ValueError(f"partitions must be ≥ 1, not {count}")
    failing = AuthFailedRows() if join_failed_auth else None
    parts = _scanned(source, count, parent, params, failing)
    if failing is None or not len(parts.failed_keys):
        return parts
    try:
        rows, key, columns = failing.of(parts.failed_keys)
        join = failed_auth_join(source, parts.failed_keys, rows)
        move_joined(parts, join, key, columns)
    except BaseException:
        parts.close()
        raise
    parts.join = join
    return parts


def _scanned(
    source: RequestSource,
    count: int,
    parent: Path | None,
    params: ParamFacts | None,
    failing: AuthFailedRows | None = None,
) -> KeyPartitions:
    directory = Path(tempfile.mkdtemp(prefix="tracereplay-", dir=parent))
    parts = KeyPartitions(directory, count)
    if failing is not None:
        failing.path = directory / AUTH_FAILED_FILE
    try:
        _scan(source, parts, params, failing or AuthFailedRows())
    except BaseException:
        parts.close()
        raise
    return parts


def _scan(
    source: RequestSource, parts: KeyPartitions, params: ParamFacts | None, failing: AuthFailedRows
) -> None:
    """Each batch's rows appended to their partitions' spills (each partition's rows in
    scan order), its keys to their partitions' key spills, its paths' skeletons counted;
    then `parts` told the rows, the first time and the endpoints. The rows that failed
    auth given to `failing` (kept when it has a path)."""
    batches, total, status_type = scan_batches(source)
    status = pa.float32() if status_type in IN_FLOAT32 else pa.float64()
    row_type = pa.int32() if total is not None and total <= np.iinfo(np.int32).max else pa.int64()
    schema = pa.schema(
        [("ts", pa.int64()), ("key", pa.int32()), ("cell", pa.int32()),
         ("duration_ms", pa.float64()), ("status", status), ("row", row_type)]
    )  # fmt: skip
    count = parts.count
    spills: list[_Spill] = []
    skeletons = SkeletonCells()
    first, rows, held = np.iinfo(np.int64).max, 0, 0
    try:
        for p in range(count):
            spills.append(
                _Spill(
                    ipc.new_file(str(parts.directory / ROW_FILE.format(p)), schema),
                    ipc.new_file(str(parts.directory / KEY_FILE.format(p)), KEY_SCHEMA),
                )
            )
        # The batches read on a thread of their own, each one's columns decoded and its
        # pairs cut to skeletons on threads ahead (`_Decoded`: Arrow and numpy over the
        # batch alone); numbered, spilled and kept here in scan order.
        read = (b for b in read_ahead(batches, AHEAD, "read") if b.num_rows)
        decoded = in_order(partial(_Decoded.of, status=status), read, AHEAD, "scan")
        for one in decoded:
            n, ts, duration, statuses = one.rows, one.ts, one.duration, one.statuses
            first = min(first, int(ts.min()))
            cells = skeletons.add(one.pairs)
            cell = cells.row
            if params is not None:  # (the batch's distinct pairs: its rows' facts)
                params.add_batch(cells.pair_cell, one.paths, cells.pair_path, cells.segments)
            own, keys = one.own, one.keys
            auth_failed = statuses == AUTH_FAILED
            failing.add(auth_failed, keys, own, [ts, cell, duration, statuses], rows)
            key, part = _keys(own, keys, spills, auth_failed)
            order = np.argsort(part, kind="stable")  # each partition's rows in scan order
            bounds = np.searchsorted(part, np.arange(count + 1), sorter=order)
            row = order.astype(row_type.to_pandas_dtype()) + rows  # (the rows' scan positions)
            columns = [*(c[order] for c in (ts, key, cell, duration, statuses)), row]
            for p in np.flatnonzero(np.diff(bounds)).tolist():
                lo, hi = bounds[p], bounds[p + 1]
                spills[p].pending_rows.append([c[lo:hi] for c in columns])
            rows += n
            held += n
            if held >= SPILL_FLUSH_ROWS:
                for spill in spills:
                    spill.flush(schema)
                held = 0
        for spill in spills:
            spill.flush(schema)
    finally:
        for spill in spills:
            spill.rows.close()
            spill.keys.close()
        failing.close()
    _told(parts, source, spills, skeletons, rows, first)


AHEAD = 2
"""Batches the scan reads on a thread (`read_ahead`) and decodes on threads (`in_order`)
ahead of the one it spills."""


@dataclass(frozen=True)
class _Decoded:
    """A batch's columns as the scan spills them and its (method, path) pairs cut to
    skeletons (`BatchPairs`), made from the batch alone."""

    rows: int
    ts: np.ndarray
    duration: np.ndarray
    statuses: np.ndarray
    paths: pa.Array
    """The batch's path dictionary."""
    pairs: BatchPairs
    own: np.ndarray
    keys: pa.Array
    """Each row's session key (`session_key`: indices into `keys`)."""

    @classmethod
    def of(cls, batch: pa.RecordBatch, *, status: pa.DataType) -> _Decoded:
        n = batch.num_rows
        ts = np.asarray(pc.cast(batch.column("ts"), pa.int64(), memory_pool=POOL), np.int64)
        duration = np.empty(n, np.float64)
        numbers_into(duration, batch.column("duration_ms"))
        statuses = np.empty(n, status.to_pandas_dtype())
        numbers_into(statuses, batch.column("status"))
        method, methods = local(batch.column("method"))
        path, paths = local(batch.column("path"))
        own, keys = session_key(batch)
        pairs = BatchPairs.of(methods, paths, method, path)
        return cls(n, ts, duration, statuses, paths, pairs, own, keys)


def _told(
    parts: KeyPartitions, source: RequestSource, spills: list[_Spill], skeletons: SkeletonCells,
    rows: int, first: int,
) -> None:  # fmt: skip
    """`parts` told what the scan found: the rows, the first time, the failed keys, the
    endpoints."""
    if not rows:
        where = source.trace.path if isinstance(source, ParquetSource) else "trace"
        raise TraceEmptyError(f"{where}: the trace holds no requests")
    parts.rows, parts.first_ts_us = rows, first
    parts.failed_keys = _failed_keys(parts.directory, spills)
    parts.templater, parts.names, parts.endpoint_of = skeletons.fit()
    parts.counts = {
        "rows": rows,
        "spill_bytes": sum(f.stat().st_size for f in parts.directory.iterdir()),
        "keys_spilled": sum(s.key_count for s in spills),
        **skeletons.held(),
    }


def _failed_keys(directory: Path, spills: list[_Spill]) -> pa.Array:
    """The keys every spilled entry of which (each batch's rows of the key) all failed
    auth, sorted: read from the key spills of the partitions where some entry did."""
    found = [pa.array([], pa.string())]
    for p, spill in enumerate(spills):
        if not spill.all_failed:
            continue
        values, rank = _ranked(read_spill(directory / KEY_FILE.format(p)).column("key"))
        every = np.zeros(len(rank), bool)
        every[np.concatenate(spill.all_failed)] = True
        passed = np.zeros(len(values), bool)  # (some batch's rows of it not all 401s)
        passed[rank[~every]] = True
        candidates = np.unique(rank[every])
        found.append(values.take(pa.array(candidates[~passed[candidates]])))
    every_failed = pa.concat_arrays(found)
    return every_failed.take(pc.sort_indices(every_failed))
