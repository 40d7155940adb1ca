"""Batching trace writer: producers hand it records, a background thread flushes them to a sink.

`write()` never touches the disk, so a proxy hook or a load-test greenlet can call it on a
hot path; every `flush_interval_s` (and whenever `max_buffer_rows` are waiting) the
buffered rows go to the sink as one Arrow record batch.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Protocol

import pyarrow as pa

from tracereplay.errors import TraceError
from tracereplay.trace.schema import TraceRecord, records_to_batch

DEFAULT_FLUSH_INTERVAL_S = 1.0


class TraceSink(Protocol):
    """Where flushed batches go. Called from one thread at a time."""

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Store `batch` durably enough that a killed process keeps it."""

    def close(self) -> None:
        """Finish: everything written so far becomes the final, readable trace."""


class MemorySink:
    """A sink that keeps batches in memory, for tests and in-process pipelines."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.batches: list[pa.RecordBatch] = []
        self.closed = False

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    def close(self) -> None:
        self.closed = True

    def table(self) -> pa.Table:
        return pa.Table.from_batches(self.batches, schema=self.schema)


class TraceWriter:
    """Buffers `TraceRecord`s and flushes them to a `TraceSink` at least every interval.

    A row handed to `write()` reaches the sink within about `flush_interval_s`, so a
    process killed outright loses at most the rows of its last interval; `close()` loses
    nothing. A sink failure keeps the rows buffered and is raised by the next call.
    """

    def __init__(
        self,
        sink: TraceSink,
        schema: pa.Schema,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_buffer_rows: int = 20_000,
    ) -> None:
        if flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be > 0")
        self.schema = schema
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows
        self._sink = sink
        self._buffer: list[TraceRecord] = []
        self._buffer_lock = threading.Lock()
        self._sink_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None
        self.rows_flushed = 0
        self._thread = threading.Thread(target=self._run, name="trace-writer", daemon=True)
        self._thread.start()

    @property
    def rows_buffered(self) -> int:
        return len(self._buffer)

    def write(self, record: TraceRecord) -> None:
        """Queue one row; cheap, never blocks on IO."""
        if self._closing or self._error is not None:
            self._check()
        with self._buffer_lock:
            self._buffer.append(record)
            full = len(self._buffer) >= self.max_buffer_rows
        if full:
            self._wake.set()

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Hand an already columnar batch straight to the sink (after what is buffered)."""
        self._check()
        self.flush()
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        with self._sink_lock:
            for part in batches:
                self._sink.write_batch(part.cast(self.schema))
                self.rows_flushed += part.num_rows

    def flush(self) -> None:
        """Send every buffered row to the sink now."""
        with self._sink_lock:
            with self._buffer_lock:
                records, self._buffer = self._buffer, []
            if not records:
                return
            try:
                self._sink.write_batch(records_to_batch(records, self.schema))
            except BaseException:
                with self._buffer_lock:  # keep them: nothing captured is dropped
                    self._buffer[:0] = records
                raise
            self.rows_flushed += len(records)

    def close(self) -> None:
        """Flush everything and close the sink. Idempotent."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        self._thread.join()
        self.flush()
        self._sink.close()
        self._closed = True

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check(self) -> None:
        if self._closing:
            raise TraceError("trace writer is closed")
        if self._error is not None:
            raise TraceError(f"writing the trace failed: {self._error}") from self._error

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # surfaced by the next write() or close()
                self._error = exc
                return
