"""Where the model reads requests from: the seam between the model's aggregates and the
engine that scans the trace (docs/SCALE.md).

A `RequestSource` hands out every request's columns as record batches in one fixed scan
order, and the columns of chosen requests by their position in that order. The model
asks for the light columns of all requests once, and for heavy columns (bodies, headers)
only of the requests it samples. `ParquetSource` scans the trace directory with the
pyarrow dataset scanner; another engine (DuckDB over the same Parquet files, Spark or
Dask over a bigger dataset) plugs in by implementing these two methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from tracereplay.trace import Trace, TraceMetadata, open_trace

SCAN_BATCH_ROWS = 1 << 17
LEAN_BATCH_ROWS = 1 << 14
"""Rows a batch of heavy columns (bodies, headers) holds while `rows` keeps its chosen."""


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

    @classmethod
    def open(cls, path: Path) -> ParquetSource:
        return cls(open_trace(path))

    @property
    def metadata(self) -> TraceMetadata:
        return self.trace.metadata

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        # Through the Trace: a damaged page is a one-line TraceCorruptError, not an OSError.
        yield from self.trace.to_batches(columns, batch_size=SCAN_BATCH_ROWS)

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
        for i, (asked, columns) in enumerate(wants):
            positions = np.asarray(asked)  # int32 or int64: no 8-byte copy of a trace's
            if positions.dtype.kind not in "iu":
                positions = positions.astype(np.int64)
            schema = pa.schema([self.trace.dataset.schema.field(c) for c in columns])
            if not len(positions):  # no column to scan for it
                out[i] = schema.empty_table()
            elif 2 * len(positions) >= self.trace.num_rows:  # most rows: one read, one gather
                out[i] = self.trace.to_table(columns, sort=False).take(pa.array(positions))
            else:
                lean.append(_Kept(i, positions, columns, schema))
        offset = 0
        # File by file, not through the dataset scanner (it held 2.2-2.9 GB of a row group's
        # bodies for 1 M requests at any batch size), and the full check (UTF-8, dictionary
        # indices: half the scan's CPU on bodies) on the kept rows only: Trace.lean_batches.
        every = list(dict.fromkeys(c for kept in lean for c in kept.columns))
        for batch in self.trace.lean_batches(every, LEAN_BATCH_ROWS) if lean else ():
            for kept in lean:
                lo, hi = np.searchsorted(kept.wanted, [offset, offset + batch.num_rows])
                if hi > lo:
                    chosen = batch.select(kept.columns).take(pa.array(kept.wanted[lo:hi] - offset))
                    self.trace.check(chosen)
                    kept.pieces.append(pa.Table.from_batches([chosen]).cast(kept.schema))
            offset += batch.num_rows
        for kept in lean:
            out[kept.want] = kept.table()
        return [table for table in out if table is not None]


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
        self.wanted = self.positions[self.order]

    def table(self) -> pa.Table:
        """The rows in the order asked for."""
        table = pa.concat_tables(self.pieces) if self.pieces else self.schema.empty_table()
        back = np.empty(len(self.order), dtype=np.int64)
        back[self.order] = np.arange(len(self.order))
        return table.take(pa.array(back))


def rows_of(source: RequestSource, wants: Sequence[tuple[np.ndarray, list[str]]]) -> list[pa.Table]:
    """`source.rows` of each of `wants`: in one scan when the source can (`rows_of`), else
    one `rows` each (a source needs only the two methods of `RequestSource`)."""
    together = getattr(source, "rows_of", None)
    if together is not None:
        tables: list[pa.Table] = together(wants)
        return tables
    return [source.rows(positions, columns) for positions, columns in wants]
