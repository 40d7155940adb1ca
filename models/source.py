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

from collections.abc import Iterator
from dataclasses import dataclass
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
        positions = np.asarray(positions)  # int32 or int64: no 8-byte copy of a whole trace's
        if positions.dtype.kind not in "iu":
            positions = positions.astype(np.int64)
        if 2 * len(positions) >= self.trace.num_rows:  # most rows: one read, one gather
            table = self.trace.to_table(columns, sort=False)
            return table.take(pa.array(positions))
        wanted = np.sort(positions)
        pieces: list[pa.Table] = []
        offset = 0
        # File by file, not through the dataset scanner (it held 2.2-2.9 GB of a row group's
        # bodies for 1 M requests at any batch size), and the full check (UTF-8, dictionary
        # indices: half the scan's CPU on bodies) on the kept rows only: Trace.lean_batches.
        schema = pa.schema([self.trace.dataset.schema.field(c) for c in columns])
        for batch in self.trace.lean_batches(columns, LEAN_BATCH_ROWS):
            lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
            if hi > lo:
                chosen = batch.take(pa.array(wanted[lo:hi] - offset))
                self.trace.check(chosen)
                pieces.append(pa.Table.from_batches([chosen]).cast(schema))
            offset += batch.num_rows
        table = pa.concat_tables(pieces) if pieces else schema.empty_table()
        # Rows came in scan order; put them in the order asked for.
        return table.take(pa.array(np.searchsorted(wanted, positions)))
