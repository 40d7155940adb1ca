"""A string column read batch by batch as codes into its sorted distinct values (issue 15):
each batch's indices into its own dictionary first, then one sort of the dictionaries'
used values maps them, in place (models/light_columns.py reads the columns)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NO_SESSION = "(no session)"

CHUNK_ROWS = 1 << 18
"""Rows a chunk of temporaries covers (2 MiB of 8-byte values); frame.py's too."""

POOL = pa.system_memory_pool()
"""Arrow's memory for the read of the light columns (the batches, their dictionaries'
values, their ranking): the C library's heap, not Arrow's default pool (mimalloc), which
kept ~40-45 MB of what the read freed at 1 M and 10 M requests alike, in its own pages,
given back neither to the system nor to numpy; the C library's freed memory serves numpy's
later arrays (`tracereplay.allocator`). bench/README.md, rd24."""


@dataclass
class _Dictionary:
    """One batch dictionary and the rows coded into it."""

    values: pa.Array
    used: np.ndarray
    """Which values some row uses; a null's slot (one past the end) last."""
    spans: list[tuple[int, int]] = field(default_factory=list)
    """(first row, row after the last) of each batch coded into it."""


@dataclass(frozen=True)
class UsedValues:
    """The values a dictionary's rows use, sorted, and where the rows read it."""

    values: pa.Array
    positions: np.ndarray
    """Each value's index in its dictionary."""
    size: int
    """The dictionary's values (a null reads one past them)."""
    spans: list[tuple[int, int]]


class Coding:
    """One string column's batches of one scan (a file, or a trace read in turn), written
    into a codes array as indices into their own dictionaries (a null: one past the end);
    a batch whose dictionary is the one before it (a Parquet row group's) shares it."""

    def __init__(self) -> None:
        self._dictionaries: list[_Dictionary] = []

    def add(self, codes: np.ndarray, at: int, indices: np.ndarray, dictionary: pa.Array) -> None:
        """A batch's indices (nulls already one past the end), from row `at` of `codes`."""
        stop = at + len(indices)
        last = self._dictionaries[-1] if self._dictionaries else None
        if last is None or not (last.values is dictionary or last.values.equals(dictionary)):
            last = _Dictionary(dictionary, np.zeros(len(dictionary) + 1, bool))
            self._dictionaries.append(last)
        last.used |= np.bincount(indices, minlength=len(last.used)) > 0  # (int32 indices:
        # twice as fast as `used[indices] = True`)
        last.spans.append((at, stop))
        codes[at:stop] = indices

    def used(self) -> list[UsedValues]:
        """Each dictionary's used values, sorted (the sort of all of them then merges
        sorted runs: at 10 M requests 2-4× faster than one sort of the unsorted values)."""
        out = []
        for one in self._dictionaries:
            positions = np.flatnonzero(one.used[:-1])
            strings = pc.cast(one.values, pa.string(), memory_pool=POOL)
            values = pc.take(strings, pa.array(positions, memory_pool=POOL), memory_pool=POOL)
            del strings
            order = pc.sort_indices(values, memory_pool=POOL)
            out.append(
                UsedValues(
                    pc.take(values, order, memory_pool=POOL),
                    positions[order.to_numpy()],
                    len(one.values),
                    one.spans,
                )
            )
        self._dictionaries.clear()
        return out


def ranked(codes: np.ndarray, used: list[UsedValues]) -> pa.Array:
    """The sorted distinct values of `used` (binary order of the UTF-8 bytes, pyarrow's);
    `codes`' rows mapped in place from indices into their batch dictionaries to codes
    into those values (a null: their count). `used` is emptied as it is read."""
    every = pa.concat_arrays(
        [u.values for u in used] or [pa.array([], pa.string())], memory_pool=POOL
    )
    # Each copy of the strings let go once the next is made: the batches' values once
    # concatenated, these once sorted (real10M's 39 MB of paths: 3 copies at once, now 2).
    maps = [(u.positions, u.size, u.spans) for u in used]
    used.clear()
    order = pc.sort_indices(every, memory_pool=POOL)
    in_order = pc.take(every, order, memory_pool=POOL)
    del every
    # Equal values are neighbours once sorted: a value starts a new distinct one where it
    # differs from the one before it (no hashing of a million strings).
    new = np.ones(len(in_order), bool)
    if len(in_order) > 1:
        new[1:] = np.asarray(pc.not_equal(in_order[1:], in_order[:-1], memory_pool=POOL))
    # (Every value distinct, as a trace's sessions often are: no copy of them filtered.)
    distinct = (
        in_order
        if new.all()
        else pc.filter(in_order, pa.array(new, memory_pool=POOL), memory_pool=POOL)
    )
    rank = np.empty(len(in_order), np.int32)
    rank[order.to_numpy()] = np.cumsum(new, dtype=np.int32) - 1
    del in_order, order
    start = 0
    for positions, size, spans in maps:
        mapping = np.full(size + 1, len(distinct), np.int32)  # a null: after all
        mapping[positions] = rank[start : start + len(positions)]
        start += len(positions)
        for at, stop in spans:
            for first in range(at, stop, CHUNK_ROWS):  # np.take makes its indices intp
                part = codes[first : min(first + CHUNK_ROWS, stop)]
                np.take(mapping, part, out=part, mode="clip")
    return distinct


def local(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """A string column's indices into its own dictionary (null: one past the end) and the
    dictionary; a plain string column is dictionary-encoded first."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column, memory_pool=POOL)
    dictionary = column.dictionary
    indices = column.indices
    if indices.null_count:
        # (`fill_null`, which takes no pool)
        indices = pc.coalesce(indices, pa.scalar(len(dictionary), indices.type), memory_pool=POOL)
    return np.asarray(indices, dtype=np.int32), dictionary


def session_key(batch: pa.RecordBatch) -> tuple[np.ndarray, pa.Array]:
    """Each request's `session_key` (the session, or the client when the session is null
    or empty, NO_SESSION when both are missing) as indices into a batch dictionary: the
    session's values, then the client's, then NO_SESSION; the session's alone when every
    request has a session and none of its values is empty (no per-request choice made)."""
    names = batch.schema.names
    none = pa.nulls(batch.num_rows, pa.string(), memory_pool=POOL)
    column = batch.column("session") if "session" in names else none
    session, sessions = local(column)
    sessions = pc.cast(sessions, pa.string(), memory_pool=POOL)
    named = np.asarray(
        pc.coalesce(pc.not_equal(sessions, "", memory_pool=POOL), False, memory_pool=POOL), bool
    )
    if not column.null_count and named.all():
        return session, sessions  # every request's key is its session
    client, clients = local(batch.column("client") if "client" in names else none)
    named = np.append(named, False)  # a null session: its slot last
    # A null client reads one past the clients: NO_SESSION.
    key = np.where(named[session], session, client + len(sessions))
    values = pa.concat_arrays(
        [sessions, pc.cast(clients, pa.string(), memory_pool=POOL), pa.array([NO_SESSION])],
        memory_pool=POOL,
    )
    return key.astype(np.int32, copy=False), values
