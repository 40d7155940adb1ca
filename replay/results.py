"""What a replay measured: one `RequestResult` per request sent, written as it happens,
and `summary.json` computed from them (no locust here: the runner and the CLI share it).

Per worker, results go to `<out>/.workers/worker-K/`: `replayed/` (the trace schema: what
was sent, no bodies — live tokens and passwords must not reach the disk), `timing.arrows`
(full-precision latencies from the actual and from the intended send) and `sessions.json`.
`merge_workers` joins them into `<out>/replayed/`, `<out>/timing.parquet` and
`<out>/summary.json` once every process has stopped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from tracereplay.errors import TraceEmptyError
from tracereplay.trace import TraceMetadata, TraceRecord, TraceWriter, open_trace, open_writer
from tracereplay.trace.store import read_journal

from .safetylog import CLEANUP_INFO, CREATED_EVENTS, SafetyLog, merge_safety

WORKERS_DIR = ".workers"
ERROR_FILE = "error.txt"
"""A worker that failed writes one line here (credentials scrubbed) before it stops."""
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
KEPT_HEADERS = ("content-type", "accept", "user-agent")


@dataclass(frozen=True, slots=True)
class RequestResult:
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
    req_headers: tuple[tuple[str, str], ...]
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


@dataclass
class SessionLog:
    """Per worker: sessions planned, started, how late, and how they ended."""

    planned: int = 0
    started: int = 0
    completed: int = 0
    login_failed: int = 0
    cut: int = 0
    failed: int = 0
    """Sessions that raised (each ends the run: see ReplayDriver)."""
    lateness_ms: list[float] = field(default_factory=list)
    zero_s: float = 0.0
    """Epoch seconds of the worker's plan time 0 (its sessions' start times count from it)."""


class ResultWriter:
    """Writes results of one worker as they come (rows durable within a second)."""

    def __init__(self, directory: Path, *, host: str, scheme: str, start: datetime) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        meta = TraceMetadata(source="replay", capture_start=start)
        self._trace: TraceWriter = open_writer(directory / "replayed", meta)
        self._timing_file = pa.OSFile(str(directory / "timing.arrows"), "wb")
        self._timing = ipc.new_stream(self._timing_file, TIMING_SCHEMA)
        self._pending: list[RequestResult] = []
        self.host, self.scheme = host, scheme
        self.sessions = SessionLog(zero_s=start.timestamp())
        self.safety = SafetyLog()
        self._created = (directory / CREATED_EVENTS).open("a", encoding="utf-8")
        self.closed = False

    def created_event(self, event: dict[str, Any]) -> None:
        """One object created or deleted, on disk at once (a killed run still has it)."""
        if not self._created.closed:
            self._created.write(json.dumps(event, sort_keys=True) + "\n")
            self._created.flush()

    def cleanup_info(self, info: dict[str, Any]) -> None:
        """How cleanup signs in and deletes (no credential in it), once per worker."""
        (self.directory / CLEANUP_INFO).write_text(json.dumps(info, sort_keys=True))

    def add(self, result: RequestResult) -> None:
        self._trace.write(
            TraceRecord(
                ts=datetime.fromtimestamp(result.sent_s, UTC),
                method=result.method,
                path=result.path,
                duration_ms=result.latency_ms if result.status is not None else None,
                session=f"replay:{result.session:08d}",
                client="replay",
                scheme=self.scheme,
                host=self.host,
                query=result.query,
                req_headers=tuple(
                    (k, v) for k, v in result.req_headers if k.lower() in KEPT_HEADERS
                ),
                req_body_size=result.req_body_size,
                status=result.status,
                resp_body_size=result.resp_body_size,
                error=result.error,
            )
        )
        self._pending.append(result)
        if len(self._pending) >= 256:
            self.flush_timing()

    def flush_timing(self) -> None:
        if not self._pending:
            return
        rows = self._pending
        self._pending = []
        columns = {f.name: [] for f in TIMING_FIELDS}  # type: dict[str, list[Any]]
        for r in rows:
            columns["session"].append(r.session)
            columns["seq"].append(r.seq)
            columns["endpoint"].append(r.endpoint)
            columns["intended_s"].append(r.intended_s)
            columns["sent_s"].append(r.sent_s)
            columns["latency_ms"].append(r.latency_ms)
            columns["latency_intended_ms"].append(r.latency_intended_ms)
            columns["status"].append(r.status)
            columns["ok"].append(r.ok)
            columns["timed_out"].append(r.timed_out)
            columns["truncated"].append(r.truncated)
        self._timing.write_batch(pa.record_batch(columns, schema=TIMING_SCHEMA))

    def close(self) -> None:
        """Write what is buffered and sessions.json; safe to call twice (Ctrl-C path)."""
        if self.closed:
            return
        self.closed = True
        log = self.sessions
        log.cut = max(log.cut, log.started - log.completed - log.login_failed - log.failed)
        self.flush_timing()
        self._timing.close()
        self._timing_file.close()
        self._trace.close()
        self._created.close()
        (self.directory / "sessions.json").write_text(json.dumps(asdict(self.sessions)))
        (self.directory / "safety.json").write_text(json.dumps(asdict(self.safety)))


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


def merge_workers(out: Path, *, duration_s: float) -> dict[str, Any]:
    """Join the workers' results into out/replayed, out/timing.parquet, out/summary.json."""
    workers = sorted((out / WORKERS_DIR).glob("worker-*"))
    logs = SessionLog()
    zeros: list[float] = []  # each worker's plan time 0; the run's is the earliest
    timing_tables = []
    tables = []
    meta: TraceMetadata | None = None
    for directory in workers:
        sessions_file = directory / "sessions.json"
        if sessions_file.exists():
            data = json.loads(sessions_file.read_text())
            for key in ("planned", "started", "completed", "login_failed", "cut", "failed"):
                setattr(logs, key, getattr(logs, key) + int(data.get(key, 0)))
            logs.lateness_ms.extend(float(v) for v in data.get("lateness_ms", []))
            zeros.append(float(data.get("zero_s", 0.0)))
        # The timing stream is a journal like the trace's: read it the same way (a worker
        # killed mid-write leaves a torn tail that is skipped).
        timing_part = read_journal(directory / "timing.arrows")
        timing_tables.append(
            timing_part if timing_part is not None else TIMING_SCHEMA.empty_table()
        )
        replayed = directory / "replayed"
        if replayed.exists() and any(replayed.iterdir()):
            try:
                trace = open_trace(replayed)
                tables.append(trace.to_table())
            except TraceEmptyError:  # a worker that sent nothing has no rows
                continue
            meta = meta or trace.metadata
    logs.zero_s = min((z for z in zeros if z > 0), default=0.0)
    timing = pa.concat_tables(timing_tables) if timing_tables else TIMING_SCHEMA.empty_table()
    pq.write_table(timing, out / "timing.parquet")
    if tables:
        merged = pa.concat_tables(tables)
        with open_writer(out / "replayed", meta or TraceMetadata(source="replay")) as writer:
            writer.write_batch(merged)
    summary = summarize(timing, logs, duration_s)
    summary.update(merge_safety(out, workers))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out / WORKERS_DIR, ignore_errors=True)
    return summary


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}


def summarize(timing: pa.Table, logs: SessionLog, duration_s: float) -> dict[str, Any]:
    """summary.json: the keys DESIGN.md lists, and a few more."""
    requests = timing.num_rows
    ok = np.asarray(timing.column("ok").to_pylist(), dtype=bool) if requests else np.zeros(0)
    sent = np.asarray(timing.column("sent_s").to_numpy(zero_copy_only=False), dtype=float)
    span = float(sent.max() - sent.min()) if requests > 1 else 0.0
    latency = np.asarray(timing.column("latency_ms").to_numpy(zero_copy_only=False), dtype=float)
    intended = np.asarray(
        timing.column("latency_intended_ms").to_numpy(zero_copy_only=False), dtype=float
    )
    lateness = np.asarray(logs.lateness_ms, dtype=float)
    timed_out, truncated = (
        sum(1 for v in timing.column(name).to_pylist() if v) if name in timing.column_names else 0
        for name in ("timed_out", "truncated")
    )
    p_late = _percentiles(lateness)
    return {
        "sessions_planned": logs.planned,
        "sessions_started": logs.started,
        "sessions_completed": logs.completed,
        "sessions_login_failed": logs.login_failed,
        "sessions_cut": logs.cut,
        "sessions_failed": logs.failed,
        "requests": requests,
        "failures": int(requests - int(ok.sum())),
        "requests_timed_out": timed_out,
        "responses_truncated": truncated,
        "achieved_rps": round(requests / span, 3) if span > 0 else float(requests),
        "duration_s": duration_s,
        "latency_ms": _percentiles(latency),
        "latency_intended_ms": _percentiles(intended),
        "start_lateness_ms": {"p50": p_late["p50"], "p99": p_late["p99"]},
        "start_s": round(logs.zero_s, 3) if logs.zero_s else None,
    }
