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
spilled key, whether its rows were all 401s); with `join_failed_auth` their join is made
from two scans of (ts, key, conn) (`failed_auth_join`) and the trace scanned again, each
row partitioned by its joined key (`KeyJoin`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from tracereplay.errors import TraceCorruptError, TraceEmptyError

from .light_columns import _IN_FLOAT32, LIGHT_COLUMNS, STRING_COLUMNS, RequestColumns
from .light_columns import _numbers_into as numbers_into
from .partition_sessions import KeyPartition
from .sessions import AUTH_FAILED
from .shapes import skeleton_codes
from .source import SCAN_BATCH_ROWS, ParquetSource, RequestSource
from .string_codes import POOL, local, session_key
from .templating import Templater

__all__ = ["KeyJoin", "KeyPartitions", "Partition", "failed_auth_join", "scan_key_partitions"]


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


class _Skeletons:
    """What the endpoints need, kept across batches: (METHOD, path skeleton) request
    counts (all `Templater.fit_skeletons` reads: it sums counts per skeleton and keeps the
    set of (method, skeleton)), and per cell (raw method, skeleton applied) the least path
    seen (where `request_endpoints` numbers the names: in order of first use over the
    sorted (method, path) pairs). A row spills its cell; nothing kept grows with paths
    unless skeletons do."""

    def __init__(self) -> None:
        self.skeleton_id: dict[tuple[str, ...], int] = {}
        self.method_id: dict[str | None, int] = {}
        """Raw methods (None: null) as read, numbered in order of first use."""
        self.fit_counts: dict[tuple[str, int], int] = {}
        self.cell_id: dict[tuple[int, int], int] = {}
        self.least_path: list[str | None] = []
        """Per cell, its least path (None: only null paths, which sort last)."""

    def _skeletons(self, texts: pa.Array) -> np.ndarray:
        codes, skeletons = skeleton_codes(texts)
        ids = self.skeleton_id
        number = np.array([ids.setdefault(k, len(ids)) for k in skeletons], np.int64)
        return np.asarray(number[codes])

    def add_batch(
        self, methods: pa.Array, paths: pa.Array, method: np.ndarray, path: np.ndarray
    ) -> np.ndarray:
        """Each row's cell, from its method and path indices into the batch dictionaries
        `methods` and `paths` (a null: one past the end)."""
        methods = pa.concat_arrays([methods.cast(pa.string()), pa.nulls(1, pa.string())])
        paths = pa.concat_arrays([paths.cast(pa.string()), pa.nulls(1, pa.string())])
        pairs, row_pair, counts = _distinct(method, path, len(methods), len(paths))
        pair_method, pair_path = pairs // len(paths), pairs % len(paths)
        used_paths, pair_path = np.unique(pair_path, return_inverse=True)
        pair_path = pair_path.ravel()
        texts = paths.take(pa.array(used_paths))
        fit = self._skeletons(texts.fill_null("None"))  # the fit reads a null as "None"
        # ... and templates it as "/" (request_endpoints)
        applied = self._skeletons(texts.fill_null("/")) if texts.null_count else fit
        raw = methods.to_pylist()
        upper = ["NONE" if m is None else str(m).upper() for m in raw]
        raw_id = np.array([self.method_id.setdefault(m, len(self.method_id)) for m in raw])
        # Counts per (METHOD, fit skeleton): few per batch.
        upper_of, upper_code = np.unique(np.array(upper, dtype=object), return_inverse=True)
        key = upper_code.ravel()[pair_method] * (1 << 32) + fit[pair_path]
        keys, at = np.unique(key, return_inverse=True)
        sums = np.bincount(at.ravel(), weights=counts, minlength=len(keys)).astype(np.int64)
        for k, n in zip(keys.tolist(), sums.tolist(), strict=True):
            entry = (str(upper_of[k >> 32]), k & 0xFFFFFFFF)
            self.fit_counts[entry] = self.fit_counts.get(entry, 0) + n
        # The cells (raw method, applied skeleton), each one's least path of the batch.
        key = raw_id[pair_method] * (1 << 32) + applied[pair_path]
        keys, at = np.unique(key, return_inverse=True)
        at = at.ravel()
        path_rank = np.empty(len(texts), np.int64)  # (sort_indices: a null last)
        path_rank[pc.sort_indices(texts).to_numpy()] = np.arange(len(texts))
        by = np.lexsort((path_rank[pair_path], at))
        least = texts.take(pa.array(pair_path[by[np.searchsorted(at[by], np.arange(len(keys)))]]))
        cells = []
        for k, text in zip(keys.tolist(), least.to_pylist(), strict=True):
            cell = self.cell_id.setdefault((k >> 32, k & 0xFFFFFFFF), len(self.cell_id))
            if cell == len(self.least_path):
                self.least_path.append(text)
            elif _path_before(text, self.least_path[cell]):
                self.least_path[cell] = text
            cells.append(cell)
        return np.asarray(np.array(cells, np.int32)[at][row_pair])

    def fit(self) -> tuple[Templater, list[str], np.ndarray]:
        """The templater, the endpoint names (as `request_endpoints` numbers them) and each
        cell's code into them."""
        methods = list(self.method_id)
        skeletons = list(self.skeleton_id)
        templater = Templater.fit_skeletons(
            (method, skeletons[k], n) for (method, k), n in self.fit_counts.items()
        )
        cells = list(self.cell_id)
        names_of_cell = [
            templater.skeleton_endpoint(
                "NONE" if methods[m] is None else str(methods[m]).upper(), skeletons[k]
            )
            for m, k in cells
        ]
        # A name's first use: its least (method, path) pair, methods and paths each in
        # sorted order with null last (the model's codes).
        rank: dict[str | None, int] = {
            m: i for i, m in enumerate(sorted(m for m in methods if m is not None))
        }
        rank[None] = len(rank)
        first: dict[str, tuple[int, bool, str]] = {}
        for (m, _), name, path in zip(cells, names_of_cell, self.least_path, strict=True):
            at = (rank[methods[m]], path is None, path or "")
            if name not in first or at < first[name]:
                first[name] = at
        names = sorted(first, key=first.__getitem__)
        kind = np.int16 if len(names) <= np.iinfo(np.int16).max else np.int32
        number = {name: i for i, name in enumerate(names)}
        endpoint_of = np.array([number[name] for name in names_of_cell], kind)
        return templater, names, endpoint_of

    def held(self) -> dict[str, int]:
        return {"skeletons": len(self.skeleton_id), "cells": len(self.cell_id)}


def _path_before(path: str | None, other: str | None) -> bool:
    """Whether `path` sorts before `other`, as the model's sorted paths have them: by
    code point (the binary order of UTF-8), a null last."""
    return path is not None and (other is None or path < other)


def _keys(
    batch: pa.RecordBatch, spills: list[_Spill], failed: np.ndarray, join: KeyJoin | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's key code and partition: the batch's distinct keys (`session_key`, each
    failed one replaced by its target with `join`) are hashed to their partitions and
    appended to those partitions' key spills; a row's code is its key's index into its
    partition's spilled keys. Each spill told which of its new keys' rows all failed
    auth (`failed`: per row)."""
    count = len(spills)
    key, keys = session_key(batch)
    if join is not None:
        keys = join.apply(keys)
    rows_of = np.bincount(key, minlength=len(keys))
    used = np.flatnonzero(rows_of)
    # (keys whose batch rows are all 401s: few, and none in a batch without a 401)
    all_failed = np.zeros(len(used), bool)
    if failed.any():
        all_failed = (np.bincount(key[failed], minlength=len(keys)) == rows_of)[used]
    used_keys = keys.take(pa.array(used))
    part_of_used = (_hash_strings(used_keys) >> np.uint64(32)) % np.uint64(count)
    # 16-bit partitions where they fit: numpy sorts them stably by radix (a batch's rows
    # 5x faster than as int64: real10M's scan 0.3 CPU s).
    part_of_used = part_of_used.astype(np.int16 if count <= 1 << 15 else np.int64)
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
    for p in np.flatnonzero(np.diff(bounds)).tolist():
        lo, hi = int(bounds[p]), int(bounds[p + 1])
        taken = in_order.slice(lo, hi - lo)
        spills[p].keys.write_batch(pa.record_batch([taken], schema=KEY_SCHEMA))
        entries = np.flatnonzero(all_failed[order[lo:hi]])
        if len(entries):
            spills[p].all_failed.append(entries + spills[p].key_count)
        spills[p].key_count += hi - lo
    return code[key], part[key]


def _distinct(
    method: np.ndarray, path: np.ndarray, n_methods: int, n_paths: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch's distinct (method, path) index pairs as `method * n_paths + path`
    (sorted), each row's index into them and each pair's rows: counted in a table of every
    cell when it holds at most 4 cells a row (a row group's dictionaries are small), else
    by a sort."""
    pair = method.astype(np.int64) * n_paths + path
    cells = n_methods * n_paths
    if cells > 4 * len(pair):
        pairs, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
        return pairs, inverse.ravel(), counts
    counts = np.bincount(pair, minlength=cells)
    pairs = np.flatnonzero(counts)
    index = np.zeros(cells, np.int64)
    index[pairs] = np.arange(len(pairs))
    return pairs, index[pair], counts[pairs]


@dataclass
class _Spill:
    """One partition's two spill files: its rows, in scan order, and its keys (each
    batch's distinct keys of this partition; a row's key code indexes them all, in
    order)."""

    rows: ipc.RecordBatchFileWriter
    keys: ipc.RecordBatchFileWriter
    key_count: int = 0
    all_failed: list[np.ndarray] = field(default_factory=list)
    """The spilled keys (their indices) whose batch's rows all failed auth."""


ROW_FILE = "rows-{}.arrow"
KEY_FILE = "keys-{}.arrow"
KEY_SCHEMA = pa.schema([("key", pa.string())])


@dataclass
class KeyPartitions:
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

    def __enter__(self) -> KeyPartitions:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """The spill directory removed."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def partition(self, p: int) -> Partition:
        """Partition `p`'s requests in time order, ties in scan order (a stable sort of
        its spill, written in scan order), keys ranked to codes into its sorted keys."""
        rows = _read(self.directory / ROW_FILE.format(p))
        spilled_keys = _read(self.directory / KEY_FILE.format(p)).column("key")
        ts = rows.column("ts").to_numpy()
        order = np.argsort(ts, kind="stable")
        key_values, rank = _ranked(spilled_keys)
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

    def partitions(self, *, release: bool = True) -> Iterator[Partition]:
        """Every partition in turn; with `release` each one's files removed once read."""
        for p in range(self.count):
            yield self.partition(p)
            if release:
                for name in (ROW_FILE, KEY_FILE):
                    (self.directory / name.format(p)).unlink()


def _read(path: Path) -> pa.Table:
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


def _batches(
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
    source: RequestSource, count: int, parent: Path | None = None, *, join_failed_auth: bool = False
) -> KeyPartitions:
    """`source`'s requests scanned into `count` partitions of session keys, spilled to a
    directory made under `parent` (default: the system's temp directory), removed on
    error or when the returned `KeyPartitions` is closed. One batch held at a time.
    With `join_failed_auth`, when some key's every request failed auth, its join is found
    (`failed_auth_join`: two scans of ts, keys and connections) and the trace scanned
    again into partitions of the joined keys (the model's sessions: `Partition.joined`)."""
    if count < 1:
        raise ValueError(f"partitions must be ≥ 1, not {count}")
    parts = _scanned(source, count, parent, None)
    if not join_failed_auth or not len(parts.failed_keys):
        return parts
    failed = parts.failed_keys
    parts.close()
    join = failed_auth_join(source, failed)
    parts = _scanned(source, count, parent, join)
    parts.failed_keys, parts.join = failed, join
    return parts


def _scanned(
    source: RequestSource, count: int, parent: Path | None, join: KeyJoin | None
) -> KeyPartitions:
    directory = Path(tempfile.mkdtemp(prefix="tracereplay-", dir=parent))
    parts = KeyPartitions(directory, count)
    try:
        _scan(source, parts, join)
    except BaseException:
        parts.close()
        raise
    return parts


def _scan(source: RequestSource, parts: KeyPartitions, join: KeyJoin | None) -> None:
    """Each batch's rows appended to their partitions' spills (each partition's rows in
    scan order), its keys to their partitions' key spills, its paths' skeletons counted;
    then `parts` told the rows, the first time and the endpoints."""
    batches, total, status_type = _batches(source)
    status = pa.float32() if status_type in _IN_FLOAT32 else pa.float64()
    row_type = pa.int32() if total is not None and total <= np.iinfo(np.int32).max else pa.int64()
    schema = pa.schema(
        [("ts", pa.int64()), ("key", pa.int32()), ("cell", pa.int32()),
         ("duration_ms", pa.float64()), ("status", status), ("row", row_type)]
    )  # fmt: skip
    count = parts.count
    spills: list[_Spill] = []
    skeletons = _Skeletons()
    first, rows = np.iinfo(np.int64).max, 0
    try:
        for p in range(count):
            spills.append(
                _Spill(
                    ipc.new_file(str(parts.directory / ROW_FILE.format(p)), schema),
                    ipc.new_file(str(parts.directory / KEY_FILE.format(p)), KEY_SCHEMA),
                )
            )
        for batch in batches:
            n = batch.num_rows
            if not n:
                continue
            ts = np.asarray(pc.cast(batch.column("ts"), pa.int64(), memory_pool=POOL), np.int64)
            first = min(first, int(ts.min()))
            duration = np.empty(n, np.float64)
            numbers_into(duration, batch.column("duration_ms"))
            statuses = np.empty(n, status.to_pandas_dtype())
            numbers_into(statuses, batch.column("status"))
            method, methods = local(batch.column("method"))
            path, paths = local(batch.column("path"))
            cell = skeletons.add_batch(methods, paths, method, path)
            key, part = _keys(batch, spills, statuses == AUTH_FAILED, join)
            row = np.arange(rows, rows + n, dtype=row_type.to_pandas_dtype())
            order = np.argsort(part, kind="stable")  # each partition's rows in scan order
            bounds = np.searchsorted(part, np.arange(count + 1), sorter=order)
            columns = [c[order] for c in (ts, key, cell, duration, statuses, row)]
            for p in np.flatnonzero(np.diff(bounds)).tolist():
                lo, hi = bounds[p], bounds[p + 1]
                spills[p].rows.write_batch(
                    pa.record_batch([c[lo:hi] for c in columns], schema=schema)
                )
            rows += n
    finally:
        for spill in spills:
            spill.rows.close()
            spill.keys.close()
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
        values, rank = _ranked(_read(directory / KEY_FILE.format(p)).column("key"))
        every = np.zeros(len(rank), bool)
        every[np.concatenate(spill.all_failed)] = True
        passed = np.zeros(len(values), bool)  # (some batch's rows of it not all 401s)
        passed[rank[~every]] = True
        candidates = np.unique(rank[every])
        found.append(values.take(pa.array(candidates[~passed[candidates]])))
    every_failed = pa.concat_arrays(found)
    return every_failed.take(pc.sort_indices(every_failed))


@dataclass(frozen=True)
class KeyJoin:
    """Session keys whose every request failed auth (`failed`, sorted: binary order) and
    each one's `target`: the key the model joins it to (`sessions.join_failed_credentials`),
    its own when its connection carries no other key after it."""

    failed: pa.Array
    target: pa.Array

    def apply(self, keys: pa.Array) -> pa.Array:
        """`keys` (strings) with each failed one replaced by its target."""
        keys = keys.cast(pa.string())
        at = pc.index_in(keys, value_set=self.failed)
        if not at.null_count < len(at):
            return keys
        return pc.if_else(at.is_valid(), self.target.take(at), keys)


JOIN_COLUMNS = ["ts", "session", "client", "conn"]


def failed_auth_join(source: RequestSource, failed: pa.Array) -> KeyJoin:
    """Each of the keys `failed` (every request of which failed auth) with the key the
    model joins it to (`join_failed_credentials`): the rows with a connection ordered by
    (conn, t, scan position) (the model's stable sort of its time-ordered rows by conn
    and t), the key's last such row, and the first row after it on its connection whose
    key is not failed. Two scans of (ts, key, conn): the failed keys' rows, then the rows
    on their last rows' connections. Rows-sized only in those rows."""
    failed = failed.cast(pa.string())
    last = _last_rows(source, failed)
    target = failed
    if len(last.conn):
        after = _rows_after(source, failed, last)
        if after is not None:
            target = pc.if_else(after.is_valid(), after, failed)
    return KeyJoin(failed, target)


@dataclass(frozen=True)
class _Rows:
    """Rows with a connection, sorted by (conn, ts, row): strings, µs and scan positions,
    `key` a code (into the failed keys) or a string (a target's)."""

    conn: pa.Array
    ts: np.ndarray
    row: np.ndarray
    key: np.ndarray | pa.Array

    @classmethod
    def sorted(cls, conn: pa.Array, ts: np.ndarray, row: np.ndarray, key: object) -> _Rows:
        # (conn strings in binary order: the code point order pandas sorts Python strings by;
        # µs ties are the model's t_s ties, times less than ~140 years apart)
        table = pa.table({"conn": conn, "ts": ts, "row": row})
        order = pc.sort_indices(
            table, [("conn", "ascending"), ("ts", "ascending"), ("row", "ascending")]
        )
        index = order.to_numpy()
        taken = key.take(order) if isinstance(key, pa.Array) else np.asarray(key)[index]
        return cls(conn.take(order), ts[index], row[index], taken)


def _join_batches(
    source: RequestSource, failed: pa.Array
) -> Iterator[tuple[pa.Array, np.ndarray, np.ndarray, pa.Array, np.ndarray, np.ndarray]]:
    """Per batch: its connections (strings), ts (µs), scan positions, its keys
    (`session_key`'s dictionary and each row's index into it) and each key's index into
    `failed` (-1: not failed)."""
    rows = 0
    for batch in _batches(source, JOIN_COLUMNS, JOIN_COLUMNS[1:])[0]:
        n = batch.num_rows
        ts = np.asarray(pc.cast(batch.column("ts"), pa.int64(), memory_pool=POOL), np.int64)
        key, keys = session_key(batch)
        in_failed = pc.index_in(keys.cast(pa.string()), value_set=failed)
        position = np.asarray(in_failed.fill_null(-1), np.int64)
        yield batch.column("conn"), ts, np.arange(rows, rows + n), keys, key, position
        rows += n


def _strings(values: pa.Array) -> pa.Array:
    """`values` (strings, maybe a dictionary array) as plain strings."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values.cast(pa.string())


def _in(conn: pa.Array, values: pa.Array) -> np.ndarray:
    """Per row, whether its connection is one of `values` (a null: not), through a
    dictionary array's dictionary when it is one (no string decoded a row)."""
    if not pa.types.is_dictionary(conn.type):
        return np.asarray(pc.fill_null(pc.is_in(conn.cast(pa.string()), values), False))
    known = np.append(
        np.asarray(pc.fill_null(pc.is_in(_strings(conn.dictionary), values), False)), False
    )
    index = np.asarray(conn.indices.fill_null(len(conn.dictionary)), np.int64)
    return np.asarray(known[index])


def _last_rows(source: RequestSource, failed: pa.Array) -> _Rows:
    """Each failed key's last row with a connection in (conn, ts, row) order (keys
    without one: none), `key` its index into `failed`."""
    parts: list[tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]] = []
    for conn, ts, row, _, key, position in _join_batches(source, failed):
        at = position[key]
        take = (at >= 0) & np.asarray(conn.is_valid())
        if take.any():
            parts.append((_strings(conn.filter(pa.array(take))), ts[take], row[take], at[take]))
    if not parts:
        return _Rows(pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64),
                     np.zeros(0, np.int64))  # fmt: skip
    every = _Rows.sorted(
        pa.concat_arrays([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
    )  # fmt: skip
    key = np.asarray(every.key)
    # The last of each key's rows: its first in reverse.
    _, first_back = np.unique(key[::-1], return_index=True)
    last = np.sort(len(key) - 1 - first_back)
    return _Rows(every.conn.take(pa.array(last)), every.ts[last], every.row[last], key[last])


def _rows_after(source: RequestSource, failed: pa.Array, last: _Rows) -> pa.Array | None:
    """Per failed key, the key of the first row after its last row (`last`) on that
    row's connection whose key is not failed (null: none; None: no key has one)."""
    conns = pc.unique(last.conn)
    parts: list[tuple[pa.Array, np.ndarray, np.ndarray, pa.Array]] = []
    for conn, ts, row, keys, key, position in _join_batches(source, failed):
        take = (position[key] < 0) & _in(conn, conns)
        if take.any():
            good = keys.cast(pa.string()).take(pa.array(key[take]))
            parts.append((_strings(conn.filter(pa.array(take))), ts[take], row[take], good))
    if not parts:
        return None
    n = len(last.conn)
    # The last rows and the good rows together, in (conn, ts, row) order: each last row's
    # next good row on its connection (no row is both: a last row's key failed).
    events = _Rows.sorted(
        pa.concat_arrays([last.conn, *(p[0] for p in parts)]),
        np.concatenate([last.ts, *(p[1] for p in parts)]),
        np.concatenate([last.row, *(p[2] for p in parts)]),
        np.arange(n + sum(len(p[1]) for p in parts)),
    )
    which = np.asarray(events.key)
    good_keys = pa.concat_arrays([p[3] for p in parts])
    total = len(which)
    is_good = which >= n
    next_good = np.where(is_good, np.arange(total), total)
    next_good = np.minimum.accumulate(next_good[::-1])[::-1]
    conn_code = np.asarray(pc.dictionary_encode(events.conn).indices)
    at_last = np.flatnonzero(~is_good)
    follow = next_good[at_last]
    found = follow < total
    found[found] = conn_code[follow[found]] == conn_code[at_last[found]]
    good_of = np.full(len(failed), -1, np.int64)  # (per failed key: its good row, -1 none)
    good_of[np.asarray(last.key)[which[at_last[found]]]] = which[follow[found]] - n
    return good_keys.take(pa.array(good_of, mask=good_of < 0))
