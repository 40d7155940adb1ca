"""Where the model reads requests from: the seam between the model's aggregates and the
engine that scans the trace (docs/SCALE.md).

A `RequestSource` hands out every request's columns as record batches in one fixed scan
order, and the columns of chosen requests by their position in that order. The model
asks for the light columns of all requests once, and for heavy columns (bodies, headers)
only of the requests it samples. `ParquetSource` scans the trace directory with the
pyarrow dataset scanner; another engine (DuckDB over the same Parquet files, Spark or
Dask over a bigger dataset) plugs in by implementing these two methods.

A source may also give the keys of a map column alone (`map_keys`: each request's header
names, read without their values); one that does not gives them from `batches` of the
whole column (`map_keys` below).

A source may also say how its scan order splits into parts (`part_rows`: the trace's files,
each decoded whole when one of its rows is asked for); the session sample then draws its
sessions from few parts (models/session_sample.py). A source that does not is one part.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tracereplay.trace import Trace, TraceMetadata, open_trace

SCAN_BATCH_ROWS = 1 << 17
LEAN_BATCH_ROWS = 1 << 12
"""Rows a batch of heavy columns (bodies, headers) holds while `rows` keeps its chosen."""


TAKE_ROWS = 1 << 16
"""Rows gathered at once by `_taken`: each gather's bodies one Arrow array, under its
2 GiB of binary (a whole sample's bodies can pass it: one take of 978,500 requests of
cap20's, stretched, failed with "offset overflow")."""


class RequestSource(Protocol):
    """Requests of one trace, column by column, batch by batch."""

    @property
    def metadata(self) -> TraceMetadata: ...

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """`columns` of every request, in the source's scan order."""
        ...

    def rows(self, positions: np.ndarray, columns: list[str]) -> pa.Table:
        """`columns` of the requests at these scan positions, in the order given."""
        ...


@dataclass(frozen=True)
class ParquetSource:
    """A trace directory read with pyarrow's dataset scanner (the default source)."""

    trace: Trace
    read_threads: int = 1
    """Files `rows` reads at once."""

    @classmethod
    def open(cls, path: Path, read_threads: int = 1) -> ParquetSource:
        return cls(open_trace(path), read_threads)

    def part_rows(self) -> list[int] | None:
        """Rows of each file, in scan order (None: rows still in a journal, one part)."""
        parts = self._parts()
        return [part.rows for part in parts] if len(parts) > 1 else None

    @property
    def metadata(self) -> TraceMetadata:
        return self.trace.metadata

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        # Through the Trace: a damaged page is a one-line TraceCorruptError, not an OSError.
        yield from self.trace.to_batches(columns, batch_size=SCAN_BATCH_ROWS)

    def map_keys(self, column: str) -> Iterator[pa.RecordBatch]:
        """The keys of the map column `column` of every request (`KEYS`: e.g. its header
        names), in scan order, as one-column batches: of each file, the keys' pages only,
        none of the values decoded (real10M's `req_headers`: 0.12 CPU s against 0.3). The
        whole column through the scan when the trace has journals or a file lacks it."""
        dataset = self.trace.dataset
        files = dataset.files if isinstance(dataset, ds.FileSystemDataset) else None
        keys = [f"{column}.key_value.key"]
        with self.trace.reading():  # a damaged page: TraceCorruptError, as every read
            readers = [pq.ParquetFile(f, pre_buffer=False) for f in files or ()]
            if files is None or any(column not in r.schema_arrow.names for r in readers):
                yield from _keys_of(self.batches([column]), column)
                return
            for reader in readers:
                for batch in reader.iter_batches(SCAN_BATCH_ROWS, columns=keys, use_threads=False):
                    batch.validate(full=True)
                    yield _keys_batch(batch.column(0), column)

    def rows(self, positions: np.ndarray, columns: list[str]) -> pa.Table:
        """Read batch by batch, keeping only the chosen rows: memory follows the number
        of rows asked for, not the trace (for most of the rows, the columns are read
        whole and gathered: faster, and the rows are all kept anyway)."""
        return self.rows_of([(positions, columns)])[0]

    def rows_of(self, wants: Sequence[tuple[np.ndarray, list[str]]]) -> list[pa.Table]:
        """`rows(positions, columns)` of each of `wants`, from one scan of the columns
        they ask for together (bodies are most of a scan's cost: read them once)."""
        out: list[pa.Table | None] = [None] * len(wants)
        lean: list[_Kept] = []
        whole: list[tuple[int, np.ndarray, list[str]]] = []
        rows = self.trace.num_rows
        for i, (asked, columns) in enumerate(wants):
            positions = np.asarray(asked)  # int32 or int64: no 8-byte copy of a trace's
            if positions.dtype.kind not in "iu":
                positions = positions.astype(np.int64)
            schema = pa.schema([self.trace.dataset.schema.field(c) for c in columns])
            if not len(positions):  # no column to scan for it
                out[i] = schema.empty_table()
            elif 2 * len(positions) >= rows:  # most rows: one read, gathers
                whole.append((i, positions, columns))
            else:
                lean.append(_Kept(i, positions, columns, schema))
        if whole:  # one read of the columns they ask for together (a small trace: both)
            together = list(dict.fromkeys(c for _, _, columns in whole for c in columns))
            table = self.trace.to_table(together, sort=False)
            for i, positions, columns in whole:
                out[i] = _taken(table.select(columns), positions)
        # File by file, not through the dataset scanner (it held 2.2-2.9 GB of a row group's
        # bodies for 1 M requests at any batch size), and the full check (UTF-8, dictionary
        # indices: half the scan's CPU on bodies) on the kept rows only: Trace.lean_batches.
        # `read_threads` files at once (decompressing runs without the GIL); of a file, only
        # the columns of the wants with rows in it (a file holding none is not read).
        parts = self._parts() if lean else []
        threads = max(1, min(self.read_threads, len(parts)))
        with ThreadPoolExecutor(threads) as pool:
            read = pool.map if threads > 1 else map
            for pieces in read(lambda part: _kept_of(part, lean), parts):
                for kept, piece in zip(lean, pieces, strict=True):
                    kept.pieces += piece
        for kept in lean:
            out[kept.want] = kept.table()
        return [table for table in out if table is not None]

    def _parts(self) -> list[_Part]:
        """The trace file by file (no journals), else whole."""
        dataset = self.trace.dataset
        if not isinstance(dataset, ds.FileSystemDataset):
            return [_Part(self.trace, 0, self.trace.num_rows)]
        parts, offset = [], 0
        for fragment in dataset.get_fragments():
            one = ds.FileSystemDataset(
                [fragment], dataset.schema, dataset.format, dataset.filesystem
            )
            rows = fragment.metadata.num_rows
            parts.append(_Part(replace(self.trace, dataset=one), offset, rows))
            offset += rows
        return parts


@dataclass(frozen=True)
class _Part:
    """Some of a trace's files, as a trace, and where its rows start in the scan order."""

    trace: Trace
    offset: int
    rows: int


def _kept_of(part: _Part, lean: list[_Kept]) -> list[list[pa.Table]]:
    """The rows each of `lean` keeps of `part` (read only when some are in it, only the
    columns of those that keep some, and only up to the last row kept: the file's pages
    are decoded as its batches are asked for)."""
    out: list[list[pa.Table]] = [[] for _ in lean]
    wanted = [np.searchsorted(k.wanted, [part.offset, part.offset + part.rows]) for k in lean]
    here = [(k, hi) for k, (lo, hi) in zip(lean, wanted, strict=True) if hi > lo]
    if not here:
        return out
    columns = list(dict.fromkeys(c for kept, _ in here for c in kept.columns))
    end = max(int(kept.wanted[hi - 1]) for kept, hi in here) + 1
    offset = part.offset
    chosen: list[list[pa.RecordBatch]] = [[] for _ in lean]
    # Left at `end`, the generator is closed when it is dropped, on return.
    for batch in part.trace.lean_batches(columns, LEAN_BATCH_ROWS):
        for kept, rows in zip(lean, chosen, strict=True):
            lo, hi = np.searchsorted(kept.wanted, [offset, offset + batch.num_rows])
            if hi > lo:
                rows.append(batch.select(kept.columns).take(pa.array(kept.wanted[lo:hi] - offset)))
        offset += batch.num_rows
        if offset >= end:
            break
    # The kept rows of the whole file checked and cast at once, not batch by batch
    # (real1M: 284 batches, 0.155 -> 0.13 CPU s of the reads).
    for kept, rows, pieces in zip(lean, chosen, out, strict=True):
        if rows:
            table = pa.Table.from_batches(rows)
            part.trace.check(table)
            pieces.append(table.cast(kept.schema))
    return out


@dataclass
class _Kept:
    """One want of `ParquetSource.rows_of`: its rows as they come, in scan order."""

    want: int
    positions: np.ndarray
    columns: list[str]
    schema: pa.Schema
    pieces: list[pa.Table] = field(default_factory=list)
    order: np.ndarray = field(init=False)
    wanted: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.order = np.argsort(self.positions)  # a repeated position reads the same row
        # int64, as the bounds `np.searchsorted` compares it with: int32 positions (compare's
        # `sessions_auth`) would be cast, the whole array copied, for every batch.
        self.wanted = self.positions[self.order].astype(np.int64, copy=False)

    def table(self) -> pa.Table:
        """The rows in the order asked for (asked in scan order: as read, no take)."""
        table = pa.concat_tables(self.pieces) if self.pieces else self.schema.empty_table()
        if np.array_equal(self.order, np.arange(len(self.order))):
            return table
        back = np.empty(len(self.order), dtype=np.int64)
        back[self.order] = np.arange(len(self.order))
        return table.take(pa.array(back))


def said_rows(source: RequestSource) -> int | None:
    """The rows `source`'s files say they hold (their footers), or None: a source that does
    not say (taken as large where its size decides)."""
    return source.trace.num_rows if isinstance(source, ParquetSource) else None


def rows_of(source: RequestSource, wants: Sequence[tuple[np.ndarray, list[str]]]) -> list[pa.Table]:
    """`source.rows` of each of `wants`: in one scan when the source can (`rows_of`), else
    one `rows` each (a source needs only the two methods of `RequestSource`)."""
    together = getattr(source, "rows_of", None)
    if together is not None:
        tables: list[pa.Table] = together(wants)
        return tables
    return [source.rows(positions, columns) for positions, columns in wants]


KEYS = pa.list_(pa.string())
"""A request's keys of a map column (`map_keys`), in the map's order; null for a null map."""


def map_keys(source: RequestSource, column: str) -> Iterator[pa.RecordBatch]:
    """`source.map_keys(column)` when the source has it, else the keys of its `batches` of
    the whole column (a source needs only the two methods of `RequestSource`)."""
    alone = getattr(source, "map_keys", None)
    if alone is not None:
        yield from alone(column)
    else:
        yield from _keys_of(source.batches([column]), column)


def _keys_of(batches: Iterator[pa.RecordBatch], column: str) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        maps = batch.column(0)
        entry = pa.struct([maps.type.key_field, maps.type.item_field])
        yield _keys_batch(maps.cast(pa.list_(entry)), column)


def _keys_batch(lists: pa.ListArray, column: str) -> pa.RecordBatch:
    """A list of structs whose first field is the key (a map as its entries, or the keys
    read alone) as `KEYS`."""
    keys = pa.ListArray.from_arrays(
        lists.offsets,
        lists.values.field(0),
        KEYS,
        mask=lists.is_null() if lists.null_count else None,
    )
    return pa.record_batch([keys], [column])


def part_of(source: RequestSource, positions: np.ndarray) -> np.ndarray | None:
    """The part (`part_rows`: file, in scan order) of each of these scan positions; None
    when the source does not say or is one part."""
    counts = getattr(source, "part_rows", lambda: None)()
    if not counts or len(counts) < 2:
        return None
    ends = np.cumsum(np.asarray(counts, dtype=np.int64))
    kind = np.int16 if len(counts) <= np.iinfo(np.int16).max else np.int32
    return np.searchsorted(ends, np.asarray(positions), side="right").astype(kind)


def _taken(table: pa.Table, positions: np.ndarray) -> pa.Table:
    """`table.take(positions)`, as the chunks of one table: TAKE_ROWS positions at a time,
    each gathered from the record batches holding them (a take over a whole chunked column
    of binary concatenates it first, past 2 GiB an "offset overflow"), then put in order."""
    if len(positions) == table.num_rows and np.array_equal(positions, np.arange(len(positions))):
        return table  # every row, in scan order (a sample of every session of a small trace)
    if table.num_rows == 0 or (len(positions) <= TAKE_ROWS and table.nbytes < 1 << 30):
        return table.take(pa.array(positions))
    batches = table.to_batches()
    starts = np.cumsum([0] + [b.num_rows for b in batches])
    pieces = []
    for lo in range(0, len(positions), TAKE_ROWS):
        asked = np.asarray(positions[lo : lo + TAKE_ROWS], dtype=np.int64)
        order = np.argsort(asked, kind="stable")
        ordered = asked[order]
        batch_of = np.searchsorted(starts, ordered, side="right") - 1
        bounds = np.flatnonzero(np.diff(batch_of)) + 1
        gathered = [
            batches[int(batch_of[run[0]])].take(pa.array(ordered[run] - starts[batch_of[run[0]]]))
            for run in np.split(np.arange(len(ordered)), bounds)
        ]
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[order] = np.arange(len(order))
        pieces.append(pa.Table.from_batches(gathered, table.schema).take(pa.array(inverse)))
    return pa.concat_tables(pieces)
