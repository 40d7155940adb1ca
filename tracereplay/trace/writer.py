"""Batching trace writer: producers hand it records, a background thread flushes them to a sink.

`write()` never touches the disk, so a proxy hook or a load-test greenlet can call it on a
hot path; every `flush_interval_s` (and whenever `max_buffer_rows` are waiting) the
buffered rows go to the sink as one Arrow record batch.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from tracereplay.closing import Closing
from tracereplay.errors import TraceError
from tracereplay.trace.schema import TraceRecord, records_to_batch

logger = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL_S = 1.0
CONVERT_CHUNK_ROWS = 4096
"""Rows converted to Arrow at a time, one column after the other (the longest, a header
map, ~5 ms under the GIL): a proxy sharing the process waits at most about that long for
the flusher, and one journal frame holds at most this many."""


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


class TraceWriter(Closing):
    """Buffers `TraceRecord`s and flushes them to a `TraceSink` at least every interval.

    A row handed to `write()` reaches the sink within about `flush_interval_s`, so a
    process killed outright loses at most the rows of its last interval; `close()` loses
    nothing. A row that cannot be converted (a bug upstream) is left out, counted in
    `rows_rejected` and logged; the others go on. When the sink fails (a full disk) the
    writer says so once in the log and stops accepting: the rows it held and every later
    `write()` are counted in `rows_lost` and refused with a `TraceError`; what reached the
    sink before stays readable; `close()` closes the sink, then raises that error.
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
        self._sink_lock = threading.Lock()
        self._wake = threading.Event()
        self._woken = False  # whether write() has set _wake since the flusher cleared it
        self._closing = False
        self._closed = False
        self._error: TraceError | None = None
        self._refusing = False  # closing or failed: the one flag write() reads
        self.rows_flushed = 0
        """Rows the sink has taken (durable: a killed process keeps them)."""
        self.rows_rejected = 0
        """Rows left out because they could not be converted to the trace schema."""
        self.rows_lost = 0
        """Rows refused or dropped after the sink failed."""
        # Writes each converted chunk to the sink while the flusher converts the next.
        self._journal = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-journal")
        self._thread = threading.Thread(target=self._run, name="trace-writer", daemon=True)
        self._thread.start()

    @property
    def rows_buffered(self) -> int:
        return len(self._buffer)

    @property
    def failure(self) -> TraceError | None:
        """The sink's failure, once it failed (one line, what was kept and lost)."""
        return self._error

    def write(self, record: TraceRecord) -> None:
        """Queue one row; cheap, never blocks on IO."""
        if self._refusing:
            self._refuse(1)
        buffer = self._buffer
        buffer.append(record)  # atomic; only the flusher removes, from the front
        if len(buffer) >= self.max_buffer_rows and not self._woken:
            # Once: set() takes the Event's lock; reading a plain attribute is cheaper
            # still than Event.is_set(), a Python call on every row while the buffer is full.
            self._woken = True
            self._wake.set()

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Hand an already columnar batch straight to the sink (after what is buffered)."""
        if self._refusing:
            self._refuse(batch.num_rows)
        self.flush()
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        with self._sink_lock:
            for index, part in enumerate(batches):
                try:
                    self._sink.write_batch(part.cast(self.schema))
                except Exception as exc:
                    self._fail(exc, sum(b.num_rows for b in batches[index:]))
                    raise self._error from exc  # type: ignore[misc]  # set by _fail
                self.rows_flushed += part.num_rows

    def flush(self) -> None:
        """Send every buffered row to the sink now; a `TraceError` once the sink failed.

        The sink writes a chunk (Arrow IPC, CRC and `writev`, mostly without the GIL) on
        the journal thread while this one converts the next chunk (under the GIL). One
        chunk is in flight at a time: frames keep their order, and a failure is known
        before the next chunk is sent. Returns once every row has reached the sink.
        """
        with self._sink_lock:
            buffer = self._buffer
            count = len(buffer)
            records = buffer[:count]
            del buffer[:count]  # rows appended meanwhile stay, for the next flush
            if self._error is not None:
                self.rows_lost += len(records)
                raise self._error
            in_flight: _InFlight | None = None
            try:
                for start in range(0, len(records), CONVERT_CHUNK_ROWS):
                    if start:
                        time.sleep(0)  # Arrow's conversion holds the GIL: let others run between
                    batch, rejected = self._to_batch(records[start : start + CONVERT_CHUNK_ROWS])
                    if in_flight is not None:
                        landed, in_flight = in_flight, None
                        self._land(landed, len(records))
                    self.rows_rejected += rejected  # not when lost: the sink failed first
                    if batch is not None:
                        in_flight = _InFlight(self._journal.submit(self._store, batch), start)
            finally:
                if in_flight is not None:
                    self._land(in_flight, len(records))

    def close(self) -> None:
        """Flush everything and close the sink. Idempotent; raises the sink's failure."""
        if self._closed:
            return
        self._closing = self._refusing = True
        self._wake.set()
        self._thread.join()
        try:
            if self._error is None:
                self.flush()
        finally:
            self._closed = True
            self._journal.shutdown()
            self._sink.close()
        if self._error is not None:
            raise self._error

    def _refuse(self, rows: int) -> None:
        if self._closing:
            raise TraceError("trace writer is closed")
        self.rows_lost += rows
        assert self._error is not None
        raise self._error

    def _fail(self, exc: Exception, rows: int) -> None:
        self._refusing = True
        self.rows_lost += rows
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._error = TraceError(
            f"writing the trace failed ({reason or type(exc).__name__}): "
            f"{self.rows_flushed} rows were written and stay readable; "
            "rows after that are lost"
        )
        logger.error("%s", self._error)

    def _store(self, batch: pa.RecordBatch) -> None:
        """On the journal thread: `batch` into the sink (one call at a time)."""
        self._sink.write_batch(batch)
        self.rows_flushed += batch.num_rows  # only one thread at a time counts

    def _land(self, frame: _InFlight, total: int) -> None:
        """Wait for `frame` to reach the sink; on failure, the rows from it on are lost."""
        try:
            frame.sent.result()
        except Exception as exc:
            self._fail(exc, total - frame.start)
            raise self._error from exc  # type: ignore[misc]  # set by _fail

    def _to_batch(self, records: list[TraceRecord]) -> tuple[pa.RecordBatch | None, int]:
        """`records` as one batch, leaving out (and logging) any that cannot convert; and
        how many were left out."""
        try:
            return records_to_batch(records, self.schema), 0
        except _ROW_ERRORS:
            pass
        good = []
        for record in records:
            try:
                records_to_batch([record], self.schema)
            except _ROW_ERRORS as exc:
                # Type only: a message could quote the value.
                logger.error(
                    "a %s row could not be stored (%s); left out", record.method, type(exc).__name__
                )
            else:
                good.append(record)
        batch = records_to_batch(good, self.schema) if good else None
        return batch, len(records) - len(good)

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self._woken = False  # after clear(): a write() in between only sets it again
            try:
                self.flush()
            except TraceError:  # logged once by _fail; write() and close() raise it
                return


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A chunk handed to the sink on the journal thread; its rows start at `start`."""

    sent: Future[None]
    start: int


# What converting one bad row can raise (a surrogate in a str, a wrong type, a huge int).
_ROW_ERRORS = (pa.ArrowException, UnicodeError, TypeError, ValueError, OverflowError)
