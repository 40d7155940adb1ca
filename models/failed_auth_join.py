"""The join of session keys whose every request failed auth (401) to the key the model
joins each to (`sessions.join_failed_credentials`: the next key its connection carries),
found without the trace's rows held (issue 15): the failed keys' rows (given by the
caller, e.g. the rows `key_partitions`' scan kept, else a scan of ts, key and conn), then
a scan of the rows on their last rows' connections. `key_partitions` moves the joined
keys' rows to their targets' partitions (`scan_key_partitions(join_failed_auth=True)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .source import RequestSource
from .string_codes import POOL, session_key

__all__ = ["FailedRows", "KeyJoin", "failed_auth_join"]


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
    rows = 0
    from .key_partitions import scan_batches  # (the scan's: it imports this module)

    for batch in scan_batches(source, JOIN_COLUMNS, JOIN_COLUMNS[1:])[0]:
        n = batch.num_rows
        ts = np.asarray(pc.cast(batch.column("ts"), pa.int64(), memory_pool=POOL), np.int64)
        key, keys = session_key(batch)
        in_failed = pc.index_in(keys.cast(pa.string()), value_set=failed)
        position = np.asarray(in_failed.fill_null(-1), np.int64)
        yield batch.column("conn"), ts, np.arange(rows, rows + n), keys, key, position
        rows += n


def _batches(source: RequestSource) -> Iterator[tuple[pa.RecordBatch, int]]:
    """The batches of (ts, key columns, conn), each with its first row's scan position."""
    from .key_partitions import scan_batches  # (the scan's: it imports this module)

    rows = 0
    for batch in scan_batches(source, JOIN_COLUMNS, JOIN_COLUMNS[1:])[0]:
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
