"""The join of session keys whose every request failed auth (401) to the key the model
joins each to (`sessions.join_failed_credentials`: the next key its connection carries),
found without the trace's rows held (issue 15): the failed keys' rows (`AuthFailedRows`:
the rows that failed auth `key_partitions`' scan spilled aside; else a scan of ts, key and
conn), then a scan of the rows on their last rows' connections; and the joined keys' rows
moved to their targets' key partitions (`move_joined`), so that the trace is scanned once
into partitions of the joined keys (`scan_key_partitions(join_failed_auth=True)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from .in_order import read_ahead
from .source import RequestSource
from .string_codes import POOL, session_key

if TYPE_CHECKING:  # (key_partitions imports this module)
    from .key_partitions import KeyPartitions

__all__ = ["AuthFailedRows", "FailedRows", "KeyJoin", "failed_auth_join", "move_joined"]


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
READ_AHEAD = 2
"""Batches the join's scan reads on a thread of their own ahead of its lookups."""


@dataclass(frozen=True)
class FailedRows:
    """Every row of the failed keys (`failed_auth_join`'s `failed`), in scan order: its
    time (int64 µs), scan position and key (its index into the failed keys)."""

    ts: np.ndarray
    row: np.ndarray
    key: np.ndarray


def failed_auth_join(
    source: RequestSource, failed: pa.Array, rows: FailedRows | None = None
) -> KeyJoin:
    """Each of the keys `failed` (every request of which failed auth) with the key the
    model joins it to (`join_failed_credentials`): the rows with a connection ordered by
    (conn, t, scan position) (the model's stable sort of its time-ordered rows by conn
    and t), the key's last such row, and the first row after it on its connection whose
    key is not failed. The failed keys' rows are `rows` when given (their connections read
    at their positions), else a scan of (ts, key, conn) finds them; then a scan of (ts,
    key, conn) reads the rows on their last rows' connections. Rows-sized only in those
    rows."""
    failed = failed.cast(pa.string())
    last = _last_rows(source, failed) if rows is None else _last_of(source, rows)
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
    for batch, first in _batches(source):
        ts = np.asarray(pc.cast(batch.column("ts"), pa.int64(), memory_pool=POOL), np.int64)
        key, keys = session_key(batch)
        in_failed = pc.index_in(keys.cast(pa.string()), value_set=failed)
        position = np.asarray(in_failed.fill_null(-1), np.int64)
        row = np.arange(first, first + batch.num_rows)
        yield batch.column("conn"), ts, row, keys, key, position


def _batches(source: RequestSource) -> Iterator[tuple[pa.RecordBatch, int]]:
    """The batches of (ts, key columns, conn), each with its first row's scan position."""
    from .key_partitions import scan_batches  # (the scan's: it imports this module)

    rows = 0
    batches = scan_batches(source, JOIN_COLUMNS, JOIN_COLUMNS[1:])[0]
    for batch in read_ahead(batches, READ_AHEAD, "read"):  # (read beside the lookups)
        yield batch, rows
        rows += batch.num_rows


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
        return _NO_ROWS
    return _last_per_key(
        pa.concat_arrays([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
    )  # fmt: skip


_NO_ROWS = _Rows(pa.array([], pa.string()), np.zeros(0, np.int64), np.zeros(0, np.int64),
                 np.zeros(0, np.int64))  # fmt: skip


def _last_of(source: RequestSource, rows: FailedRows) -> _Rows:
    """`_last_rows` of the failed keys' rows given: their connections read at their scan
    positions (failed-rows-sized), no scan."""
    if not len(rows.row):
        return _NO_ROWS
    position = np.asarray(rows.row, np.int64)
    conn = source.rows(position, ["conn"]).column("conn")
    conn = conn.combine_chunks() if conn.num_chunks else pa.array([], pa.string())
    take = np.asarray(conn.is_valid())
    if not take.any():
        return _NO_ROWS
    ts, key = np.asarray(rows.ts, np.int64), np.asarray(rows.key, np.int64)
    return _last_per_key(_strings(conn.filter(pa.array(take))), ts[take], position[take], key[take])


def _last_per_key(conn: pa.Array, ts: np.ndarray, row: np.ndarray, key: np.ndarray) -> _Rows:
    """Of failed keys' rows with a connection, each key's last in (conn, ts, row) order."""
    every = _Rows.sorted(conn, ts, row, key)
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
    for batch, first in _batches(source):
        # (the rows on those connections first, through the dictionaries: then only
        # theirs keyed, looked up among the failed keys and timed)
        at = np.flatnonzero(_in(batch.column("conn"), conns))
        if not len(at):
            continue
        on = batch.take(pa.array(at))
        key, keys = session_key(on)
        own = keys.cast(pa.string()).take(pa.array(key))
        good = np.asarray(pc.is_null(pc.index_in(own, value_set=failed)))
        if good.any():
            ts = np.asarray(pc.cast(on.column("ts"), pa.int64(), memory_pool=POOL), np.int64)
            mask = pa.array(good)
            conn = _strings(on.column("conn").filter(mask))
            parts.append((conn, ts[good], at[good] + first, own.filter(mask)))
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


SPILLED = ["ts", "cell", "duration_ms", "status", "row"]
"""A spilled row's columns besides its key code."""


AUTH_FAILED_FILE = "auth-failed.arrow"
AUTH_FAILED_FLUSH_ROWS = 1 << 16
"""Rows that failed auth the scan holds before spilling them (~4 MB)."""


@dataclass
class AuthFailedRows:
    """The rows the scan found failed auth (401), in scan order: their keys (strings) and
    `SPILLED` columns, spilled to `path` (a failed key's rows are all among them; no path:
    none kept) and read back by `of` a batch at a time: what is held is failed keys' rows
    only."""

    path: Path | None = None
    writer: ipc.RecordBatchFileWriter | None = None
    keys: list[pa.Array] = field(default_factory=list)
    columns: list[list[np.ndarray]] = field(default_factory=list)
    held: int = 0

    def add(
        self, failed: np.ndarray, keys: pa.Array, key: np.ndarray, columns: list[np.ndarray],
        first_row: int,
    ) -> None:  # fmt: skip
        """A batch's rows that `failed` (per row), given its keys (`session_key`'s `keys`
        and `key`), its `SPILLED` columns but the row and its first row's scan position."""
        if self.path is None or not failed.any():
            return
        at = np.flatnonzero(failed)
        self.keys.append(keys.take(pa.array(key[at])).cast(pa.string()))
        self.columns.append([*(c[at] for c in columns), at + first_row])
        self.held += len(at)
        if self.held >= AUTH_FAILED_FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """The rows held written to `path` as one record batch."""
        if not self.held:
            return
        assert self.path is not None, "the scan gives the spill's path"
        columns = [np.concatenate(c) for c in zip(*self.columns, strict=True)]
        batch = pa.record_batch([pa.concat_arrays(self.keys), *columns], names=["key", *SPILLED])
        if self.writer is None:
            self.writer = ipc.new_file(str(self.path), batch.schema)
        self.writer.write_batch(batch)
        self.keys, self.columns, self.held = [], [], 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()

    def of(self, failed: pa.Array) -> tuple[FailedRows, np.ndarray, list[np.ndarray]]:
        """The rows of the keys `failed` (sorted strings): as `failed_auth_join` takes
        them, their keys' indices into `failed` and their `SPILLED` columns."""
        keys: list[np.ndarray] = []
        columns: list[list[np.ndarray]] = []
        if self.writer is not None and self.path is not None:
            with pa.OSFile(str(self.path)) as file:
                reader = ipc.open_file(file)
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i)
                    at = pc.index_in(batch.column("key"), value_set=failed)
                    mine = np.asarray(at.is_valid())
                    keys.append(np.asarray(at.filter(pa.array(mine)), np.int64))
                    columns.append([batch.column(n).to_numpy()[mine] for n in SPILLED])
            self.path.unlink()
        if not keys:
            return FailedRows(*(np.zeros(0, np.int64),) * 3), np.zeros(0, np.int64), []
        key = np.concatenate(keys)
        every = [np.concatenate(c) for c in zip(*columns, strict=True)]
        ts, row = every[SPILLED.index("ts")], every[SPILLED.index("row")]
        return FailedRows(ts, np.asarray(row, np.int64), key), key, every


def move_joined(
    parts: KeyPartitions, join: KeyJoin, key: np.ndarray, columns: list[np.ndarray]
) -> None:
    """The rows of each failed key joined to another key (`key`: their indices into
    `join.failed`; `columns`: their `SPILLED` columns, in scan order) moved from their own
    key's partition to the joined key's, keyed by it: each partition the move touches
    rewritten, its rows still in scan order and its keys those of its rows (what a scan
    keyed by the joined keys spills)."""
    from .key_partitions import partition_of  # (it imports this module)

    moving = np.asarray(pc.not_equal(join.target, join.failed))
    if not moving.any():
        return
    count = parts.count
    gone = join.failed.filter(pa.array(moving))
    gone_from = partition_of(gone, count)
    target_of = partition_of(join.target, count)
    moved = moving[key]
    key = key[moved]
    to = target_of[key]
    columns = [c[moved] for c in columns]
    parts.moved_rows = np.asarray(columns[SPILLED.index("row")], np.int64)
    parts.moved_keys = join.failed.take(pa.array(key))
    for p in np.union1d(gone_from, to).tolist():
        here = np.flatnonzero(to == p)
        _rewritten(
            parts.directory, p, gone.filter(pa.array(gone_from == p)),
            join.target.take(pa.array(key[here])), [c[here] for c in columns],
        )  # fmt: skip


def _rewritten(
    directory: Path, p: int, gone: pa.Array, keys: pa.Array, columns: list[np.ndarray]
) -> None:
    """Partition `p`'s spills rewritten without the rows of the keys `gone` and with the
    rows `columns` (`SPILLED`, in scan order) of the keys `keys` merged in scan order:
    the keys spilled those of the rows kept, then the new rows' distinct keys."""
    from .key_partitions import KEY_FILE, KEY_SCHEMA, ROW_FILE, read_spill  # (it imports us)

    rows = read_spill(directory / ROW_FILE.format(p))
    spilled = read_spill(directory / KEY_FILE.format(p)).column("key")
    values = pa.concat_arrays(spilled.chunks) if spilled.num_chunks else pa.array([], pa.string())
    code = rows.column("key").to_numpy()
    kept = [rows.column(name).to_numpy() for name in SPILLED]
    if len(gone):
        dropped = np.asarray(pc.is_in(values, value_set=gone))
        keep = ~dropped[code]
        renumbered = (np.cumsum(~dropped) - 1).astype(np.int32)
        code, kept = renumbered[code[keep]], [c[keep] for c in kept]
        values = values.filter(pa.array(~dropped))
    new = pc.dictionary_encode(keys)
    new_code = np.asarray(new.indices, np.int64) + len(values)
    # The new rows' places among the kept ones by scan position (no row is in both).
    row = SPILLED.index("row")
    n = len(code) + len(new_code)
    at = np.searchsorted(kept[row], columns[row]) + np.arange(len(new_code))
    is_new = np.zeros(n, bool)
    is_new[at] = True
    schema = rows.schema

    def merged(old: np.ndarray, added: np.ndarray, name: str) -> np.ndarray:
        out = np.empty(n, schema.field(name).type.to_pandas_dtype())
        out[is_new], out[~is_new] = added, old
        return out

    arrays = {name: merged(kept[i], columns[i], name) for i, name in enumerate(SPILLED)}
    arrays["key"] = merged(code, new_code, "key")
    with ipc.new_file(str(directory / ROW_FILE.format(p)), schema) as writer:
        writer.write_batch(pa.record_batch([arrays[f.name] for f in schema], schema=schema))
    with ipc.new_file(str(directory / KEY_FILE.format(p)), KEY_SCHEMA) as writer:
        keys_now = pa.concat_arrays([values, new.dictionary.cast(pa.string())])
        writer.write_batch(pa.record_batch([keys_now], schema=KEY_SCHEMA))
