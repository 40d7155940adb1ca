"""`Recorder`: anonymizing worker processes between the proxy and the single trace writer.

The proxy's hooks copy a flow into an `Exchange` and `submit` it: a list append, no
pickling, no IO, so the event loop never waits. Exchanges go to the workers in batches:
per worker a feeder thread wakes when a batch opens, waits `BATCH_WINDOW_S` (or until
`BATCH_MAX` exchanges or `BATCH_MAX_BYTES` are in it), and pickles the whole batch into
the worker's pipe at once; the worker (its own process: off the proxy's GIL, and niced
behind it for the CPU) anonymizes it and sends the batch's results back as one message;
a collector thread puts the rows back in submission order, gives each its session key
and hands it to the trace writer. So the proxy's threads wake, and take the GIL from the
event loop, a few times per batch instead of per exchange. The
backlog (bytes submitted and not back yet) is bounded: past `max_backlog_bytes` an
exchange is left out and counted in `dropped_backlog`, so memory stays bounded and the
proxy never slows the traffic it records.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from tracereplay.errors import TraceError
from tracereplay.trace import TraceRecord, TraceWriter

from .exchange import Exchange
from .workers import Anonymized, WorkerSpec, worker_main

logger = logging.getLogger(__name__)

DEFAULT_MAX_BACKLOG_BYTES = 4 * 1024 * 1024
"""~900 exchanges of 4.6 KB: seconds of anonymizing to drain after Ctrl-C, not minutes."""
_HEADER_BYTES = 64  # what one header pair costs, roughly, in the backlog's accounting
_STOP_WAIT_S = 10.0
BATCH_WINDOW_S = 0.02
"""A batch goes to its worker at most this long after its first exchange (traffic or not)."""
BATCH_MAX = 64
"""... or as soon as it holds this many exchanges,"""
BATCH_MAX_BYTES = 1024 * 1024
"""... or this many backlog bytes."""


def default_workers() -> int:
    """Cores this process may use, less one for the proxy (at least one)."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


def exchange_bytes(ex: Exchange) -> int:
    """What an exchange weighs in the backlog: bodies, path, query, headers."""
    headers = len(ex.req_headers or ()) + len(ex.resp_headers or ())
    bodies = len(ex.req_body or b"") + len(ex.resp_body or b"")
    return backlog_bytes(bodies, len(ex.path) + len(ex.query), headers)


def backlog_bytes(bodies: int, target: int, headers: int) -> int:
    """The backlog's weight of an exchange from its sizes (see `exchange_bytes`)."""
    return bodies + target + _HEADER_BYTES * (headers + 1)


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
    """Exchanges that could not be anonymized or stored (never stored raw)."""
    dropped_backlog: int
    """Exchanges left out because the backlog was full (the anonymizers fell behind)."""
    backlog: int
    """Exchanges waiting to be anonymized or written."""
    rows_lost: int = 0
    """Rows the writer could not take after the disk failed."""
    failure: str | None = None
    """Why the trace could not be written further (one line), once it could not."""


class _Worker:
    """One worker process, its pipes, and the parent's feeder thread for it."""

    def __init__(self, spec: WorkerSpec, name: str) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited sockets or threads
        tasks_out, self.tasks = ctx.Pipe(duplex=False)
        self.results, results_in = ctx.Pipe(duplex=False)
        self.process: BaseProcess = ctx.Process(
            target=worker_main,
            args=(spec, tasks_out, results_in, os.getpid()),
            name=name,
            daemon=True,
        )
        self.process.start()
        tasks_out.close()  # the child's ends: the parent sees EOF when the child dies
        results_in.close()
        self.outstanding: dict[int, int] = {}  # seq -> bytes, until its result is back
        self._batch: list[tuple[int, Exchange]] = []
        self._batch_bytes = 0
        self._stopping = False
        self._ready = threading.Condition(threading.Lock())
        self._feeder = threading.Thread(target=self._feed, name=f"{name}-feeder", daemon=True)
        self._feeder.start()

    def send(self, seq: int, exchange: Exchange, size: int) -> None:
        """Add to the open batch; wake the feeder only when a batch opens or is full."""
        with self._ready:
            self._batch.append((seq, exchange))
            self._batch_bytes += size
            if len(self._batch) == 1 or self._full():
                self._ready.notify()

    def batch_open(self) -> bool:
        """A batch is filling (its window has not passed): more exchanges may join it."""
        return bool(self._batch)

    def stop(self) -> None:
        """Send what is batched now, then end the worker (after it has done all of it)."""
        with self._ready:
            self._stopping = True
            self._ready.notify()

    def _full(self) -> bool:
        return len(self._batch) >= BATCH_MAX or self._batch_bytes >= BATCH_MAX_BYTES

    def _feed(self) -> None:
        while True:
            with self._ready:
                while not self._batch and not self._stopping:
                    self._ready.wait()
                deadline = time.monotonic() + BATCH_WINDOW_S
                while not self._stopping and not self._full():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
                batch, self._batch, self._batch_bytes = self._batch, [], 0
                stopping = self._stopping
            try:
                if batch:
                    self.tasks.send(batch)  # one pickle, one write: off the event loop
                if stopping:
                    self.tasks.send(None)
            except (OSError, ValueError):
                return  # the worker died: the collector counts what it held
            if stopping:
                return

    def join(self) -> None:
        """After `stop()` and its last result: wait for the process to end."""
        self._feeder.join(timeout=_STOP_WAIT_S)
        self.process.join(timeout=_STOP_WAIT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.tasks.close()
        self.results.close()


class Recorder:
    """Anonymizes exchanges in worker processes and writes them in submission order."""

    def __init__(
        self,
        spec: WorkerSpec,
        writer: TraceWriter,
        *,
        order: Callable[[Anonymized], TraceRecord] | None = None,
        workers: int | None = None,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
    ) -> None:
        self._spec = spec
        self._writer = writer
        self._order = order or _record_only
        self._max_backlog = max_backlog_bytes
        self._workers = [
            _Worker(spec, f"trace-anonymizer-{i}") for i in range(workers or default_workers())
        ]
        self._filling: _Worker | None = None  # the worker whose batch new exchanges join
        self._lock = threading.Lock()
        self._next_seq = 0
        self._backlog_bytes = 0
        self._flows = self._rows = self._errors = self._dropped = self._dropped_backlog = 0
        self._refused = 0  # submitted after the writer failed
        self._done: dict[int, Anonymized | None] = {}
        self._written_seq = 0
        self._failure: str | None = None
        self._closing = False
        self._closed = False
        self._collector = threading.Thread(target=self._collect, name="trace-collector")
        self._collector.start()

    def submit(self, exchange: Exchange) -> bool:
        """Queue one exchange; never blocks, never does IO. False when left out."""
        return self.offer(exchange_bytes(exchange), lambda: exchange, exchange.error is not None)

    def offer(self, size: int, make: Callable[[], Exchange], transport_error: bool) -> bool:
        """Queue the exchange `make()` builds, if `size` bytes fit in the backlog.

        `make` is only called when it fits: under overload most exchanges are left out,
        and copying them out of the flow would be work the proxy does for nothing.
        """
        if self._closing:
            raise RuntimeError("recorder is closed")
        with self._lock:
            self._flows += 1
            if transport_error:
                self._errors += 1
            if self._failure is not None:
                self._refused += 1  # nothing more can be written
                return False
            if self._backlog_bytes + size > self._max_backlog:
                self._dropped_backlog += 1
                return False
            self._backlog_bytes += size
            seq = self._next_seq
            self._next_seq += 1
            worker = self._filling
            if worker is None or not worker.batch_open():
                worker = min(self._workers, key=lambda w: len(w.outstanding))
                self._filling = worker
            worker.outstanding[seq] = size
        worker.send(seq, make(), size)
        return True

    def stats(self) -> RecorderStats:
        return RecorderStats(
            flows=self._flows,
            rows=self._rows,
            rows_flushed=self._writer.rows_flushed,
            transport_errors=self._errors,
            dropped=self._dropped + self._writer.rows_rejected,
            dropped_backlog=self._dropped_backlog,
            backlog=self._next_seq - self._written_seq,
            rows_lost=self._writer.rows_lost + self._refused,
            failure=self._failure,
        )

    def close(self) -> RecorderStats:
        """Anonymize and write everything submitted, then close the writer."""
        if not self._closed:
            self._closing = True
            for worker in self._workers:
                worker.stop()  # after what it was given
            self._collector.join()
            for worker in self._workers:
                worker.join()
            try:
                self._writer.close()
            except TraceError as exc:
                self._fail(str(exc))
            self._closed = True
        return self.stats()

    # -- the collector thread ------------------------------------------------------------
    def _collect(self) -> None:
        while True:
            live = [w for w in self._workers if not w.results.closed]
            if self._closing and (self._written_seq >= self._next_seq or not live):
                return
            waitables: list[object] = [w.results for w in live]
            for connection in wait(waitables, timeout=0.2):  # type: ignore[arg-type]
                worker = next(w for w in live if w.results is connection)
                self._receive(worker)
            self._write_in_order()

    def _receive(self, worker: _Worker) -> None:
        """Every batch of results `worker` has ready (one `wait()` for them all)."""
        try:
            while True:
                results: list[Anonymized] = worker.results.recv()
                with self._lock:
                    for result in results:
                        self._backlog_bytes -= worker.outstanding.pop(result.seq, 0)
                for result in results:
                    self._done[result.seq] = result
                if not worker.results.poll():
                    return
        except (EOFError, OSError):
            self._worker_died(worker)

    def _worker_died(self, worker: _Worker) -> None:
        worker.results.close()
        worker.process.join(timeout=1.0)  # its pipe closed as it exited: reap it
        # Started before taking the lock (spawning takes a while): `offer` never waits on it.
        name = worker.process.name or "trace-anonymizer"
        replacement = None if self._closing else _Worker(self._spec, name)
        with self._lock:  # swapped and emptied at once: no exchange is left with the dead
            lost = dict(worker.outstanding)
            worker.outstanding.clear()
            self._backlog_bytes -= sum(lost.values())
            if replacement is not None:
                self._workers[self._workers.index(worker)] = replacement
            if self._filling is worker:
                self._filling = None  # nothing more joins the dead worker's batch
        for seq in lost:
            self._done[seq] = None
        if lost or not self._closing:
            logger.error(
                "an anonymizer process ended (exit code %s); %d exchanges it held are lost",
                worker.process.exitcode,
                len(lost),
            )

    def _write_in_order(self) -> None:
        while self._written_seq in self._done:
            result = self._done.pop(self._written_seq)
            self._written_seq += 1
            if result is None or result.record is None:
                self._dropped += 1
                if result is not None:
                    logger.error("could not anonymize an exchange (%s); left out", result.error)
                continue
            try:
                self._writer.write(self._order(result))
            except TraceError as exc:
                self._fail(str(exc))
                continue
            self._rows += 1

    def _fail(self, message: str) -> None:
        if self._failure is None:  # the writer has logged it, once
            self._failure = message


def _record_only(result: Anonymized) -> TraceRecord:
    assert result.record is not None
    return result.record
