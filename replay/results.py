"""What a replay measured: one `RequestResult` per request sent, recorded as it happens,
and summary.json computed from them (no locust here: the runner and the CLI share it).

Per worker, results go to `<out>/.workers/worker-K/`: `results.arrows` (checksummed
frames, one row per request: what was sent — no bodies, live tokens and passwords must
not reach the disk — and its full-precision latencies from the actual and from the
intended send) and `sessions.json`. Recording costs the sending loop one tuple and one list
append per request: the derived columns (the latency from the intended send, `ok`, the
headers kept), the Arrow batches and the writes happen on `background` (a real OS thread
in the Locust process, replay/offload.py), at least once a second.
`merge_workers` joins them into `<out>/replayed/` (the trace schema),
`<out>/timing.parquet` and `<out>/summary.json` once every process has stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tracereplay.trace import TRACE_SCHEMA, TraceMetadata, open_writer, trace_schema
from tracereplay.trace.store import append_frame, read_journal

from .accounting import SessionLog, session_key, summarize

__all__ = [
    "ERROR_FILE",
    "TIMING_SCHEMA",
    "WORKERS_DIR",
    "RequestResult",
    "ResultWriter",
    "SessionLog",
    "merge_workers",
    "worker_errors",
    "write_worker_error",
]

from .safetylog import CLEANUP_INFO, CREATED_EVENTS, SafetyLog, merge_safety

WORKERS_DIR = ".workers"
ERROR_FILE = "error.txt"
"""A worker that failed writes one line here (credentials scrubbed) before it stops."""
RESULTS_FILE = "results.arrows"
ORIGIN_FILE = "origin.json"
TIMING_FIELDS = [
    pa.field("session", pa.int64()),
    pa.field("seq", pa.int32()),
    pa.field("endpoint", pa.string()),
    pa.field("intended_s", pa.float64()),
    pa.field("sent_s", pa.float64()),
    pa.field("latency_ms", pa.float64()),
    pa.field("latency_intended_ms", pa.float64()),
    pa.field("status", pa.int32()),
    pa.field("ok", pa.bool_()),
    pa.field("timed_out", pa.bool_()),
    pa.field("truncated", pa.bool_()),
]
TIMING_SCHEMA = pa.schema(TIMING_FIELDS)
REQUEST_FIELDS = [
    pa.field("method", pa.string()),
    pa.field("path", pa.string()),
    pa.field("query", pa.string()),
    pa.field("req_headers", pa.map_(pa.string(), pa.string())),
    pa.field("req_body_size", pa.int64()),
    pa.field("resp_body_size", pa.int64()),
    pa.field("error", pa.string()),
]
RESULT_SCHEMA = pa.schema(TIMING_FIELDS + REQUEST_FIELDS)
KEPT_HEADERS = ("content-type", "accept", "user-agent")
FLUSH_INTERVAL_S = 1.0
FLUSH_ROWS = 4096
CONVERT_ROWS = 512
"""Rows turned into Arrow at a time (1.7 ms holding the GIL, measured on a loaded machine;
the replay's 1 ms switch interval hands it to the sending loop meanwhile), so the sending
loop never waits long for the writer's thread."""


class Background(Protocol):
    """Where `ResultWriter` does its conversion and IO: in order, one task at a time."""

    def submit(self, work: Callable[[], None]) -> None: ...

    def wait(self) -> None:
        """Until everything submitted ran; raises what a task raised."""

    def pause(self) -> None:
        """Let the sending loop run (between conversion chunks)."""

    def run(self, work: Callable[[], None]) -> None:
        """`work()` now, the caller waiting for it, off the sending loop where there is one
        (the counts a replay writes at its end: a long run's lateness list took the hub
        for over 10 ms to copy and format)."""


class Inline:
    """Does the work at once, in the caller's thread (tests; merging)."""

    def submit(self, work: Callable[[], None]) -> None:
        work()

    def wait(self) -> None:
        pass

    def pause(self) -> None:
        pass

    def run(self, work: Callable[[], None]) -> None:
        work()


class RequestResult(NamedTuple):
    """One request sent, as the driver records it (a tuple: built and appended on the
    sending loop at the cost of one allocation; the writer's thread derives the rest)."""

    session: int
    seq: int
    endpoint: str
    method: str
    path: str
    query: str | None
    intended_s: float
    """Epoch seconds the request should have been sent at (plan or previous answer + think)."""
    sent_s: float
    """Epoch seconds it was actually sent at."""
    latency_ms: float
    """From the actual send to the end of the response."""
    status: int | None
    error: str | None
    req_headers: Sequence[tuple[str, str]]
    req_body_size: int
    resp_body_size: int
    timed_out: bool = False
    """No answer in time: the request timeout, or the run ended while it waited (cut)."""
    truncated: bool = False
    """The body was longer than --max-body: the rest was not read (connection closed)."""

    @property
    def latency_intended_ms(self) -> float:
        return (self.sent_s - self.intended_s) * 1000.0 + self.latency_ms

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and self.status < 400


class ResultWriter:
    """Records the results of one worker as they come (on disk within about a second)."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str,
        scheme: str,
        start: datetime,
        background: Background | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._background = background or Inline()
        self._fd = os.open(
            directory / RESULTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        )
        self._rows: list[RequestResult] = []
        self._flushed_at = time.monotonic()
        self.host, self.scheme = host, scheme
        (directory / ORIGIN_FILE).write_text(json.dumps({"scheme": scheme, "host": host}))
        self.sessions = SessionLog(zero_s=start.timestamp())
        self.safety = SafetyLog()
        self._created = (directory / CREATED_EVENTS).open("a", encoding="utf-8")
        self.closed = False
        from gevent.event import Event  # here: only a Locust process writes results

        self._done = Event()

    def created_event(self, event: dict[str, Any]) -> None:
        """One object created or deleted, on disk at once (a killed run still has it)."""
        if not self._created.closed:
            self._created.write(json.dumps(event, sort_keys=True) + "\n")
            self._created.flush()

    def cleanup_info(self, info: dict[str, Any]) -> None:
        """How cleanup signs in and deletes (no credential in it), once per worker."""
        (self.directory / CLEANUP_INFO).write_text(json.dumps(info, sort_keys=True))

    def add(self, result: RequestResult) -> None:
        """Record one request: one list append on this thread (and a flush every
        FLUSH_ROWS rows; the driver flushes every second too)."""
        rows = self._rows
        rows.append(result)
        if len(rows) >= FLUSH_ROWS or time.monotonic() - self._flushed_at >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Hand what is buffered to the background (converted and written there)."""
        self._flushed_at = time.monotonic()
        if not self._rows or self.closed:
            return
        rows, self._rows = self._rows, []
        fd, pause = self._fd, self._background.pause

        def write() -> None:
            for begin in range(0, len(rows), CONVERT_ROWS):
                if begin:
                    pause()
                append_frame(fd, result_batch(rows[begin : begin + CONVERT_ROWS]))

        self._background.submit(write)

    def close(self) -> None:
        """Write what is buffered and sessions.json; safe to call twice (Ctrl-C path)."""
        if self.closed:
            # A second caller (the quitting listener and the driver's own end) waits for
            # the first: returning early let the process exit before anything was written.
            self._done.wait()
            return
        log = self.sessions
        log.cut = max(log.cut, log.started - log.completed - log.login_failed - log.failed)
        self.flush()
        self.closed = True
        # The counts are final: on disk before waiting for the rows (a kill may come).
        # Copied here (sessions the quitting path cuts may still append to the lists; the
        # safety counts are small), formatted and written off the sending loop.
        sessions = replace(log, lateness_ms=[*log.lateness_ms], cut_sessions=[*log.cut_sessions])
        safety, directory = asdict(self.safety), self.directory

        def counts() -> None:
            (directory / "sessions.json").write_text(json.dumps(asdict(sessions)))
            (directory / "safety.json").write_text(json.dumps(safety))

        self._background.run(counts)
        try:
            self._background.wait()
        finally:
            os.close(self._fd)
            self._created.close()
            self._done.set()


def result_batch(rows: Sequence[RequestResult]) -> pa.RecordBatch:
    """Rows as one Arrow batch of RESULT_SCHEMA (on the writer's thread). The derived
    columns are computed on the Arrow columns, as `RequestResult`'s properties compute
    them per row (the same IEEE operations in the same order: the same values), and the
    sending loop's GIL is not held for a Python pass over every row for each."""
    fields = zip(*rows, strict=True)
    columns: dict[str, Any] = dict(zip(RequestResult._fields, fields, strict=True))
    columns["req_headers"] = tuple(map(_KeptHeaders(), columns["req_headers"]))
    arrays = {f.name: pa.array(columns[f.name], f.type) for f in RESULT_SCHEMA if f.name in columns}
    arrays["latency_intended_ms"] = derived_latency_intended_ms(
        arrays["sent_s"], arrays["intended_s"], arrays["latency_ms"]
    )
    arrays["ok"] = derived_ok(arrays["error"], arrays["status"])
    return pa.RecordBatch.from_arrays([arrays[f.name] for f in RESULT_SCHEMA], schema=RESULT_SCHEMA)


def derived_latency_intended_ms(
    sent_s: pa.Array, intended_s: pa.Array, latency_ms: pa.Array
) -> pa.Array:
    """`RequestResult.latency_intended_ms` of each row: (sent - intended) * 1000 + latency."""
    return pc.add(pc.multiply(pc.subtract(sent_s, intended_s), 1000.0), latency_ms)


def derived_ok(error: pa.Array, status: pa.Array) -> pa.Array:
    """`RequestResult.ok` of each row: no error, and a status below 400 (none: not ok)."""
    below_400 = pc.fill_null(pc.less(status, 400), False)
    return pc.and_(pc.is_null(error), below_400)


class _KeptHeaders(dict[Any, list[tuple[str, str]]]):
    """A request's headers as recorded (KEPT_HEADERS only), once per distinct header tuple
    of a batch: most requests of a run repeat a few (0.40 of the 1.7 ms a 512-row batch
    took, on the GIL, was this filter run on every row). A list (what `prepare` sends) is
    looked up as a tuple: as a key it raised, and every row was filtered anew.)"""

    def __call__(self, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        key = headers if type(headers) is tuple else tuple(headers)  # a list: not a key
        try:
            return self[key]
        except KeyError:
            kept = self[key] = _kept(key)
            return kept


def _kept(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() in KEPT_HEADERS]


def write_worker_error(directory: Path, line: str) -> None:
    """Record why a worker stopped (the first failure only: later ones follow from it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ERROR_FILE
    if not path.exists():
        path.write_text(" ".join(line.split())[:500] + "\n", encoding="utf-8")


def worker_errors(out: Path) -> list[str]:
    """The line of every worker that failed, by worker (read before `merge_workers`)."""
    return [
        f"{path.parent.name}: {path.read_text(encoding='utf-8', errors='replace').strip()}"
        for path in sorted((out / WORKERS_DIR).glob(f"worker-*/{ERROR_FILE}"))
    ]


def merge_workers(out: Path, *, duration_s: float, real_rps: float | None = None) -> dict[str, Any]:
    """Join the workers' results into out/replayed, out/timing.parquet, out/summary.json.

    `duration_s`: the plan's window in wall seconds; `real_rps`: the real trace's request
    rate over that window (None when unknown), for `achieved_scale`."""
    workers = sorted((out / WORKERS_DIR).glob("worker-*"))
    logs = SessionLog()
    tables = []
    origins: list[tuple[str, str]] = []
    for directory in workers:
        sessions_file = directory / "sessions.json"
        if sessions_file.exists():
            data = json.loads(sessions_file.read_text())
            logs.merge(data)
        # Read as a trace's journal is (a worker killed mid-write leaves a torn tail that
        # is skipped).
        journal = directory / RESULTS_FILE
        part = read_journal(journal) if journal.exists() else None
        if part is not None and part.num_rows:
            tables.append(part)
            origins.append(_origin(directory))
    results = pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()
    timing = results.select([f.name for f in TIMING_FIELDS])
    pq.write_table(timing, out / "timing.parquet")
    if tables:
        zero = logs.zero_s or float(pc.min(results["sent_s"]).as_py())
        meta = TraceMetadata(source="replay", capture_start=datetime.fromtimestamp(zero, UTC))
        with open_writer(out / "replayed", meta) as writer:
            for table, (scheme, host) in zip(tables, origins, strict=True):
                writer.write_batch(replayed_rows(table, scheme, host, meta))
    summary = summarize(timing, logs, duration_s, real_rps)
    summary.update(merge_safety(out, workers))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out / WORKERS_DIR, ignore_errors=True)
    return summary


def _origin(directory: Path) -> tuple[str, str]:
    try:
        data = json.loads((directory / ORIGIN_FILE).read_text())
        return str(data["scheme"]), str(data["host"])
    except (OSError, ValueError, KeyError):
        return "http", ""


def replayed_rows(results: pa.Table, scheme: str, host: str, meta: TraceMetadata) -> pa.Table:
    """The requests of `results` as rows of the trace schema (what was sent, no bodies)."""
    n = results.num_rows
    status = results["status"]
    sent_us = pc.round(pc.multiply(results["sent_s"], 1_000_000.0)).cast(pa.int64())
    no_answer = pa.scalar(None, pa.float64())
    columns = {
        "ts": sent_us.cast(pa.timestamp("us", tz="UTC")),
        "duration_ms": pc.if_else(pc.is_valid(status), results["latency_ms"], no_answer),
        "session": pa.array([session_key(int(i)) for i in results["session"].to_numpy()]),
        "client": pa.array(["replay"] * n, pa.string()),
        "method": results["method"],
        "scheme": pa.array([scheme] * n, pa.string()),
        "host": pa.array([host] * n, pa.string()),
        "path": results["path"],
        "query": results["query"],
        "req_headers": results["req_headers"],
        "req_body_size": results["req_body_size"],
        "status": status.cast(pa.int16()),
        "resp_body_size": results["resp_body_size"],
        "error": results["error"],
    }
    arrays = [
        columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type)
        for f in TRACE_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=trace_schema(meta))
