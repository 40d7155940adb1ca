"""`Recorder`: a worker thread between the proxy and the trace writer.

The proxy's hooks only copy a flow into an `Exchange` and enqueue it; anonymizing and
writing happen here, off the proxy's event loop, so the proxy never waits on disk or on
anonymization work, and no flow is referenced after its hook returns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tracereplay.trace import TraceRecord, TraceWriter

from .exchange import Exchange

logger = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True)
class RecorderStats:
    flows: int
    """Exchanges handed to the recorder."""
    rows: int
    """Rows given to the writer."""
    rows_flushed: int
    """Rows the writer has made durable (journal or Parquet)."""
    transport_errors: int
    """Exchanges that ended in a transport error (recorded as rows with `error`)."""
    dropped: int
    """Exchanges that could not be anonymized and were left out (never stored raw)."""
    backlog: int
    """Exchanges waiting to be anonymized."""


class Recorder:
    """Anonymizes exchanges and writes them, in submission order, on its own thread."""

    def __init__(self, to_record: Callable[[Exchange], TraceRecord], writer: TraceWriter) -> None:
        self._to_record = to_record
        self._writer = writer
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._flows = self._rows = self._errors = self._dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="trace-recorder", daemon=True)
        self._thread.start()

    def submit(self, exchange: Exchange) -> None:
        """Queue one exchange; never blocks and never does IO."""
        if self._closed:
            raise RuntimeError("recorder is closed")
        self._flows += 1
        if exchange.error is not None:
            self._errors += 1
        self._queue.put(exchange)

    def stats(self) -> RecorderStats:
        return RecorderStats(
            flows=self._flows,
            rows=self._rows,
            rows_flushed=self._writer.rows_flushed,
            transport_errors=self._errors,
            dropped=self._dropped,
            backlog=self._queue.qsize(),
        )

    def close(self) -> RecorderStats:
        """Drain the queue, then close the writer: everything submitted is on disk."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
            self._writer.close()
        return self.stats()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Exchange)
            try:
                record = self._to_record(item)
            except Exception as exc:
                # A bug in anonymizing one exchange must not stop the capture, and the raw
                # exchange must not be stored either: count it, log it, go on. The log names
                # the error type only: its message could quote raw data.
                self._dropped += 1
                logger.error(
                    "could not anonymize a %s request (%s); left out",
                    item.method,
                    type(exc).__name__,
                )
                continue
            try:
                self._writer.write(record)
            except Exception:
                self._dropped += 1
                logger.exception("tracereplay: trace writer failed")
                continue
            self._rows += 1
