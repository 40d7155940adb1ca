"""`build_model`: a trace in, a `tracereplay.model/1` document out (plain JSON data), and
the file's reading and writing. Same trace + same options → byte-identical file.

The stages read only the columns they need: the light columns of every request
(`frame.LIGHT_COLUMNS`, batch by batch, strings kept as codes), then bodies and query
strings of a seeded sample of each endpoint's requests, then what correlation finding
walks. Templates are learned per distinct path skeleton, behaviors are clustered on a
bounded sample of sessions; every aggregate is a numpy/pyarrow reduction over codes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay import __version__
from tracereplay.errors import UsageError

from .addresses import first_addresses, header_addresses
from .arrivals import fit_arrivals
from .behaviors import CLUSTER_SAMPLE_SESSIONS, Behavior, fit_behaviors, sig
from .correlations import (
    NO_AUTH,
    AuthInfo,
    CorrelationRule,
    auth_to_json,
    correlations_to_json,
    find_auth,
    find_correlations,
    walk_sessions,
)
from .endpoints import (
    PAYLOAD_COLUMNS,
    PAYLOAD_SAMPLE_REQUESTS,
    EndpointRows,
    infer_payloads,
    latency_and_status,
    param_kinds,
)
from .forked import forked, preload
from .frame import (
    RequestColumns,
    connections_to_join,
    distinct,
    key_time_split,
    read_light_columns,
    run_positions,
    session_stats_by_timeout,
    sessionize_requests,
)
from .id_model import IdModel
from .ids import NO_IDS, ids_to_json, learn_ids
from .model_file import MAX_MODEL_BYTES as MAX_MODEL_BYTES  # noqa: PLC0414 (re-exported)
from .model_file import MODEL_FORMAT
from .model_file import load_model as load_model  # noqa: PLC0414 (re-exported)
from .outcomes import NO_OUTCOMES, Outcomes, fit_outcomes, outcomes_to_json
from .session_sample import (
    CORRELATION_SAMPLE_SESSIONS,
    CORRELATION_SESSIONS_PER_ENDPOINT,
    SessionSample,
    half_check,
    payload_rows,
    sample_sessions,
)
from .session_shape import Censoring, censoring, km_percentiles
from .sessions import (
    DEFAULT_SESSION_TIMEOUT_S,
    SessionStats,
    request_curve,
    session_stats,
    session_table,
    sessionize,
)
from .source import ParquetSource, RequestSource, part_of, rows_of
from .templating import Templater, request_endpoints

SENSITIVITY_TIMEOUTS_S = {"15m": 900.0, "30m": 1800.0, "60m": 3600.0}
STAGES = ("read", "templates", "sessions", "behaviors", "arrivals", "payloads", "correlations",
          "outcomes")  # fmt: skip
CLUSTERING_MODULES = ["sklearn.cluster", "sklearn.metrics", "threadpoolctl", "scipy.stats"]
CORRELATION_COLUMNS = ["path", "query", "req_headers", "req_body", "status", "resp_headers",
                       "resp_body", "addr"]  # fmt: skip


@dataclass(frozen=True)
class StageReport:
    """A stage starting (`seconds` None) or done; `str()` is its progress line."""

    stage: str
    rows: int
    seconds: float | None = None

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None

    def __str__(self) -> str:
        if self.seconds is None:
            return self.stage
        rate = f" ({self.rows_per_s:,.0f} rows/s)" if self.rows_per_s else ""
        return f"{self.stage}: {self.rows:,} rows in {self.seconds:.2f} s{rate}"


Progress = Callable[[StageReport], None]


@dataclass
class _Clock:
    progress: Progress | None
    rows: int = 0

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        say = self.progress or (lambda _report: None)
        say(StageReport(stage, self.rows))
        start = time.perf_counter()
        yield
        # Arrow's allocator keeps what a stage freed (~0.5 GB after reading 10 M requests'
        # columns) unless told: return it before numpy asks the system for more.
        pa.default_memory_pool().release_unused()
        say(StageReport(stage, self.rows, time.perf_counter() - start))

    def started(self, stage: str) -> None:
        """A stage that runs beside the others (`done` when its result is taken)."""
        if self.progress is not None:
            self.progress(StageReport(stage, self.rows))

    def done(self, stage: str, seconds: float | None) -> None:
        if self.progress is not None:
            self.progress(StageReport(stage, self.rows, seconds))


def build_model(
    trace_path: Path,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    progress: Progress | None = None,
    seed: int = 0,
    payload_sample: int = PAYLOAD_SAMPLE_REQUESTS,
    behavior_sample: int = CLUSTER_SAMPLE_SESSIONS,
    correlation_sample: int = CORRELATION_SAMPLE_SESSIONS,
    correlation_per_endpoint: int = CORRELATION_SESSIONS_PER_ENDPOINT,
    correlations: bool = True,
    source: RequestSource | None = None,
    censor_edges: bool = True,
    processes: int | None = None,
) -> dict[str, Any]:
    """The model of the trace at `trace_path` as JSON-ready data. `payload_sample`:
    requests per endpoint whose payloads are read; `behavior_sample`: sessions k-means
    runs on; `correlation_sample` and `correlation_per_endpoint`: the sessions whose
    requests correlation finding reads (models/session_sample.py); `correlations=False`
    leaves correlations and auth empty (for benchmarks of the other stages). `source`
    reads the trace (default: its Parquet files through pyarrow; see models/source.py).
    `censor_edges=False` treats sessions cut by the capture's edges as ended (as models
    before issue 11 did: bench_model.py's equality check with the old code). `processes`:
    2 fits the behaviors in a forked child while this process learns the payloads and
    correlations (models/forked.py); 1 runs every stage here, one after the other (the
    same model either way); None: 2 when a core is free (`free_processes`)."""
    if payload_sample < 1 or behavior_sample < 2:
        raise UsageError("--payload-sample must be ≥ 1 and --behavior-sample ≥ 2")
    if correlation_sample < 2 or correlation_per_endpoint < 0:
        raise UsageError("--correlation-sample must be ≥ 2 and --correlation-per-endpoint ≥ 0")
    clock = _Clock(progress)
    child = (processes or free_processes()) > 1
    # What the behaviors' child imports, imported in a thread while the trace is read.
    imports = preload(CLUSTERING_MODULES) if child else None
    with clock("read"):
        trace = source or ParquetSource.open(trace_path)
        # The strings as the files' own dictionaries: none decoded per request (real10M's
        # read 14-16 → 5-7 CPU s, peak 1.3 → 0.86 GB; the same arrays).
        requests = read_light_columns(trace)
        clock.rows = len(requests)
    with clock("templates"):
        templater, endpoint, names = _templates(requests)
    with clock("sessions"):
        sessions, by_timeout = _sessionized(
            trace, requests, endpoint, names, session_timeout_s, SENSITIVITY_TIMEOUTS_S
        )
        sensitivity = {name: stats.to_json() for name, stats in by_timeout.items()}
        table = session_table(sessions)
        stats = session_stats(sessions).to_json()
        censored = censoring(sessions, session_timeout_s if censor_edges else 0.0)
        _keep_what_later_stages_read(sessions)
    span_s = float(requests.t_s[-1])
    # Behaviors (numpy over the sessionized frame) in a forked child, on the second core,
    # while this process reads and learns the payloads and correlations (Parquet reads and
    # Python per sampled value): they share nothing but the frame, read by both. The
    # child's stage line comes when its result is taken.
    if imports is not None:
        imports.join()
    clock.started("behaviors")
    with forked(
        lambda: _behaviors_and_shape(sessions, table, censored, seed, behavior_sample),
        child=child,
    ) as fitting:
        with clock("arrivals"):
            arrivals = fit_arrivals(table["start_s"].to_numpy(float), span_s)
        with clock("payloads"):
            # One scan of the trace's heavy columns for every sample read below: the
            # payloads', the correlation sample's and every session's first `addr` (bodies
            # are most of a scan's cost). Part of this stage's time is the correlations' read.
            parts = _request_parts(trace, requests)
            sample = _correlation_sample(
                parts, sessions, correlation_sample, correlation_per_endpoint, seed
            )
            groups, chosen, payload_read, files = _payload_sample(
                parts, endpoint, names, payload_sample, seed
            )
            read = _SampleReads.of(trace, requests, sessions, payload_read, sample, correlations)
            endpoints, payload_note = _endpoints(
                requests, groups, chosen, read.payloads, payload_sample, seed
            )
            payload_note.update(files)
        with clock("correlations"):
            note = {
                "per_sample": correlation_sample,
                "per_endpoint": correlation_per_endpoint,
                "seed": seed,
                "sessions": len(table),
                "sessions_read": int(sample.chosen.sum()),
            }
            found = _Found([], NO_AUTH, NO_IDS, note)
            if correlations:
                heavy = _correlation_frame(requests, read.sessions, read.correlations)
                found = _Found.of(heavy, sample, endpoints, note)
                if not sample.whole:
                    found.addresses = _every_address(trace, requests, sessions)
        behaviors, shape = fitting.result()
        clock.done("behaviors", fitting.seconds)
    with clock("outcomes"):
        outcomes = found.outcomes(behaviors)
    return {
        "format": MODEL_FORMAT,
        "provenance": {
            "trace": str(trace_path),
            "source": trace.metadata.source,
            "policy_hash": trace.metadata.policy_hash,
            "rows": len(requests),
            "sessions": len(table),
            "first_ts": requests.first_ts.isoformat(),
            "span_s": sig(span_s),
            "tool_version": __version__,
            "sampling": {
                "payloads": payload_note,
                "behaviors": {
                    "sample_sessions": behavior_sample,
                    "clustered_sessions": min(len(table), behavior_sample),
                    "seed": seed,
                },
                "correlations": found.note,
            },
        },
        "sessions": {
            "timeout_s": session_timeout_s,
            # Additive (issue 11): sessions the capture's edges cut (session_shape.py).
            "censored": censored.to_json(),
            "stats": stats,
            **shape,
            "requests": request_curve(requests.t_s, arrivals.bucket_s, span_s),
            "timeout_sensitivity": sensitivity,
        },
        "templates": templater.to_json(),
        "endpoints": endpoints,
        "behaviors": [b.to_json() for b in behaviors],
        "arrivals": arrivals.to_json(),
        "correlations": correlations_to_json(found.rules),
        "auth": auth_to_json(found.auth),
        # Additive (issue 10): what replay's ownership rules and role matching read.
        "ids": ids_to_json(found.ids),
        "outcomes": outcomes_to_json(outcomes),
    }


def free_processes() -> int:
    """2 when a core idles beside this process (the 1-minute load average, in which this
    process counts about 1, at most the cores it may use less a half), else 1. On a
    machine whose cores other work keeps busy, the forked child only shares this
    process's core: real10M, load 4.5-5.8 on 2 cores, one process took 23-33 s, two
    29-44 s; at load 0.7-1.1, two 16.2 s, one 21.0 s (bench/README.md, model8)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return 2 if (cores or 1) >= 2 and load <= (cores or 1) - 0.5 else 1


def learned_auth(
    trace_path: Path,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    seed: int = 0,
    correlation_sample: int = CORRELATION_SAMPLE_SESSIONS,
    correlation_per_endpoint: int = CORRELATION_SESSIONS_PER_ENDPOINT,
) -> AuthInfo:
    """The auth flow `build_model` (same options) finds in the trace at `trace_path`, found
    the same way (its sessions, its seeded sample of them), without the other stages:
    what compare binds the `login` SLO class to when REAL has no model file. Reads the
    light columns of every request and the heavy ones of the sampled sessions only
    (`sessions_auth`, which takes sessions a caller has already)."""
    trace = ParquetSource.open(trace_path)
    requests = read_light_columns(trace)
    _, endpoint, names = _templates(requests)
    sessions, _ = _sessionized(trace, requests, endpoint, names, session_timeout_s)
    request = sessions["request"].to_numpy()
    return sessions_auth(
        trace, sessions["session_id"].to_numpy(), sessions["endpoint"], requests.row[request],
        seed=seed, correlation_sample=correlation_sample,
        correlation_per_endpoint=correlation_per_endpoint,
    )  # fmt: skip


AUTH_COLUMNS = [c for c in CORRELATION_COLUMNS if c != "addr"]
"""What the walk for the auth flow reads of a sampled request (`addr`: the outcomes only)."""


def sessions_auth(
    trace: RequestSource,
    session_id: np.ndarray,
    endpoint: pd.Series,
    scan_rows: np.ndarray,
    *,
    seed: int = 0,
    correlation_sample: int = CORRELATION_SAMPLE_SESSIONS,
    correlation_per_endpoint: int = CORRELATION_SESSIONS_PER_ENDPOINT,
) -> AuthInfo:
    """`learned_auth` of the sessions a caller has: rows by (session_id, seq) as
    `build_model`'s sessions are (each row's session id, endpoint as a categorical of
    `build_model`'s endpoint names, and its request's position in the trace's scan order),
    e.g. compare's frame of REAL (compare/bindings.py), so the light columns are not read
    and sessionized again. Reads the heavy columns of the sampled sessions' requests."""
    codes = np.asarray(endpoint.cat.codes)
    sample = sample_sessions(
        session_id, codes, per_sample=correlation_sample,
        per_endpoint=correlation_per_endpoint, seed=seed, part=part_of(trace, scan_rows),
    )  # fmt: skip
    chosen = sample.chosen[session_id]
    ids = np.asarray(session_id)[chosen]
    frame: pd.DataFrame = trace.rows(np.asarray(scan_rows)[chosen], AUTH_COLUMNS).to_pandas()
    frame["session_id"] = ids
    frame["seq"] = run_positions(ids)
    frame["endpoint"] = np.asarray(endpoint.cat.categories, dtype=object)[codes[chosen]]
    walk = walk_sessions(frame)
    return find_auth(frame, find_correlations(frame, walk=walk), walk=walk)


def _sessionized(
    trace: RequestSource,
    requests: RequestColumns,
    endpoint: np.ndarray,
    names: list[str],
    timeout_s: float,
    timeouts_s: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, dict[str, SessionStats]]:
    """The sessions (with `conn` read and `sessionize` run when some key failed auth
    throughout, else numpy's `sessionize_requests`), and the session statistics at each of
    `timeouts_s` (from the same numpy sort, before the frame is built: the two do not
    hold memory at once)."""
    conn = connections_to_join(trace, requests)
    timeouts_s = timeouts_s or {}
    if conn is None:  # numpy, as sessionize would (frame.sessionize_requests)
        split = key_time_split(requests)
        by_timeout = session_stats_by_timeout(requests, timeouts_s, split)
        return sessionize_requests(requests, endpoint, names, timeout_s, split), by_timeout
    # A failed credential joins its connection's next key: sessionize per timeout.
    by_timeout = {
        name: session_stats(sessionize(_session_frame(requests, conn), t))
        for name, t in timeouts_s.items()
    }
    return sessionize(_session_frame(requests, conn, endpoint, names), timeout_s), by_timeout


def _behaviors_and_shape(
    sessions: pd.DataFrame,
    table: pd.DataFrame,
    censored: Censoring,
    seed: int,
    sample: int,
) -> tuple[list[Behavior], dict[str, Any]]:
    """The behaviors, and the quantiles of the sessions' lengths and durations the file
    reports (1-2 s at 10 M requests: beside the payloads and correlations too)."""
    behaviors = fit_behaviors(sessions, seed=seed, sample=sample, censored=censored)
    shape = {
        # Kaplan-Meier (issue 11): cut sessions' lengths are lower bounds.
        "length": _quantiles(table["length"].to_numpy(float), censored.any),
        "duration_s": _quantiles(table["duration_s"].to_numpy(float), censored.any),
    }
    return behaviors, shape


def _keep_what_later_stages_read(sessions: pd.DataFrame) -> None:
    """Drop, in place, the columns of the sessionized frame no stage after sessions reads
    (`t_s`, `duration_ms`, `session_key`: the requests' own, kept in `RequestColumns`), and hold the
    ids, positions and request numbers as int32 where they fit: ~0.32 GB less from the
    behaviors on at 10 M requests (behaviors read session_id, endpoint and think_s;
    correlations session_id, seq, request and endpoint)."""
    for column in ("t_s", "duration_ms", "session_key"):
        del sessions[column]
    if len(sessions) < np.iinfo(np.int32).max:
        for column in ("session_id", "seq", "request"):
            sessions[column] = sessions[column].to_numpy().astype(np.int32)


def _request_parts(trace: RequestSource, requests: RequestColumns) -> np.ndarray | None:
    """Each request's part of the trace (its file: `source.part_of`), None when the trace
    is one part: looked up for the sorted scan positions and gathered (real10M: 0.16 s;
    `part_of` the requests' own positions, unordered, 1.1 s)."""
    if not len(requests):
        return None
    by_position = part_of(trace, np.arange(int(requests.row.max()) + 1))
    return None if by_position is None else by_position[requests.row]


def _correlation_sample(
    parts: np.ndarray | None,
    sessions: pd.DataFrame,
    per_sample: int,
    per_endpoint: int,
    seed: int,
) -> SessionSample:
    """The correlation sample of the sessions, drawn from few of the trace's files."""
    return sample_sessions(
        sessions["session_id"].to_numpy(),
        sessions["endpoint"].cat.codes.to_numpy(),
        per_sample=per_sample,
        per_endpoint=per_endpoint,
        seed=seed,
        part=None if parts is None else parts[sessions["request"].to_numpy()],
    )


def _templates(requests: RequestColumns) -> tuple[Templater, np.ndarray, list[str]]:
    """The templater (fitted on distinct (method, path skeleton) with counts) and each
    request's endpoint code into the returned names (templating.request_endpoints)."""
    return request_endpoints(requests.methods, requests.method, requests.paths, requests.path)


def _session_frame(
    requests: RequestColumns,
    conn: np.ndarray | None = None,
    endpoint: np.ndarray | None = None,
    names: list[str] | None = None,
) -> pd.DataFrame:
    """What `sessionize` reads, with session keys as codes sorted like the keys (so ids
    and ties come out as with the strings) and endpoints as a categorical; `conn` and
    `status` when some key failed auth throughout."""
    frame = pd.DataFrame(
        {
            "session_key": requests.key,
            "t_s": requests.t_s,
            "duration_ms": requests.duration_ms,
            "request": np.arange(len(requests)),
        }
    )
    if conn is not None:
        frame["status"], frame["conn"] = requests.status, conn
    if endpoint is not None and names is not None:
        frame["endpoint"] = pd.Categorical.from_codes(endpoint, categories=pd.Index(names))
    return frame


@dataclass
class _SampleReads:
    """What the model reads of the sampled requests' heavy columns, in one scan (bodies
    are most of a scan's cost): the payload sample's and the correlation sample's
    (`sessions`: its sessionized rows)."""

    payloads: pa.Table
    sessions: pd.DataFrame
    correlations: pa.Table

    @classmethod
    def of(
        cls,
        trace: RequestSource,
        requests: RequestColumns,
        sessions: pd.DataFrame,
        payload_read: np.ndarray,
        sample: SessionSample,
        correlations: bool,
    ) -> _SampleReads:
        read = _correlation_rows(sessions, sample) if correlations else sessions.iloc[:0]
        wants = [(_scan_positions(requests, payload_read), PAYLOAD_COLUMNS)]
        wants.append((_scan_positions(requests, read["request"].to_numpy()), CORRELATION_COLUMNS))
        payloads, rows = rows_of(trace, wants)
        return cls(payloads, read, rows)


def _scan_positions(requests: RequestColumns, index: np.ndarray) -> np.ndarray:
    """The scan positions of these requests as int64, what a source's reads search with:
    `np.searchsorted` of an int32 array for int64 bounds copies the whole array per call
    (real10M: 9,848 searches of the 1 M first requests' positions, 1.7 s of the scans)."""
    return np.asarray(requests.row[index], dtype=np.int64)


def _payload_sample(
    parts: np.ndarray | None,
    endpoint: np.ndarray,
    names: list[str],
    sample: int,
    seed: int,
) -> tuple[EndpointRows, list[np.ndarray], np.ndarray, dict[str, int]]:
    """The requests grouped by endpoint, each endpoint's sampled requests (from few of the
    trace's files: `session_sample.payload_rows`), all of those (what payload inference
    reads) and, when an endpoint was cut on a trace of several files, how many files the
    trace has and how many hold the read requests (provenance, additive: issue 15)."""
    groups = EndpointRows.of(endpoint, names)
    cut = bool(len(groups.bounds) > 1 and np.diff(groups.bounds).max() > sample)
    part = parts if cut else None
    chosen = payload_rows(groups, sample, seed, part)
    read = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    if part is None:
        return groups, chosen, read, {}
    files = int(part.max()) + 1
    return groups, chosen, read, {"files": files, "files_sampled": len(distinct(part[read]))}


def _endpoints(
    requests: RequestColumns,
    groups: EndpointRows,
    chosen: list[np.ndarray],
    payload_rows: pa.Table,
    sample: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    out: dict[str, Any] = {}
    sampled = fields = stable = 0
    offset = 0
    for i, name in enumerate(groups.names):
        rows = groups.rows(i)
        method, template = name.split(" ", 1)
        part = payload_rows.slice(offset, len(chosen[i]))
        offset += len(chosen[i])
        cut = len(chosen[i]) < len(rows)
        payloads = infer_payloads(part, half_check=cut)
        if cut:
            sampled += 1
            fields, stable = fields + payloads.fields, stable + payloads.stable_fields
        paths = requests.paths.take(distinct(requests.path[rows]))
        entry: dict[str, Any] = {
            "method": method,
            "template": template,
            "count": len(rows),
            "share": sig(len(rows) / len(requests)),
            "params": param_kinds(template, pc.fill_null(paths, "/")),
            "query": payloads.query,
            "body": payloads.body,
        }
        entry.update(latency_and_status(requests.duration_ms[rows], requests.status[rows]))
        out[name] = entry
    note = {
        "per_endpoint": sample,
        "seed": seed,
        "requests": len(requests),
        "read": payload_rows.num_rows,
        "endpoints_sampled": sampled,
        "fields_sampled": fields,
        "fields_same_on_half": stable,
    }
    return out, note


@dataclass
class _Found:
    """What correlation finding learned on the sample: rules, auth, ids, its provenance
    note, and what the outcomes are fitted from once the behaviors are known."""

    rules: list[CorrelationRule]
    auth: AuthInfo
    ids: IdModel
    note: dict[str, Any]
    heavy: pd.DataFrame | None = None
    """The sampled sessions' rows walked (None: correlations not looked for)."""
    addresses: tuple[int, str | None] | None = None
    """Every session's address counts and their sources (None: the sample is whole)."""

    @classmethod
    def of(
        cls, heavy: pd.DataFrame, sample: SessionSample, endpoints: dict[str, Any], note: Any
    ) -> _Found:
        """Correlations, auth and ids found on the sampled sessions' rows (`heavy`), `note`
        updated with what was read and found; the addresses are counted by the caller."""
        walk = walk_sessions(heavy)  # one walk: correlations, auth and ids share it
        rules = find_correlations(heavy, walk=walk)
        auth = find_auth(heavy, rules, walk=walk)
        ids = learn_ids(walk, auth, endpoints)
        note.update(requests_read=len(heavy), rules=len(rules))
        if not sample.whole:
            note.update(half_check(heavy, walk, sample, rules, auth))
            if sample.parts:  # additive (issue 15): a cluster sample, by file
                note.update(files=sample.parts, files_sampled=sample.parts_read)
        return cls(rules, auth, ids, note, heavy)

    def outcomes(self, behaviors: list[Behavior]) -> Outcomes:
        if self.heavy is None:
            return NO_OUTCOMES
        outcomes = fit_outcomes(self.heavy, self.auth, behaviors)
        if self.addresses is None:
            return outcomes
        count, where = self.addresses
        return replace(outcomes, addresses=count, addresses_from=where)


def _correlation_rows(sessions: pd.DataFrame, sample: SessionSample) -> pd.DataFrame:
    """The sessionized rows of the sampled sessions (in session order)."""
    read: pd.DataFrame = sessions[sample.chosen[sessions["session_id"].to_numpy()]]
    return read


def _correlation_frame(
    requests: RequestColumns, read: pd.DataFrame, rows: pa.Table
) -> pd.DataFrame:
    """What correlation finding walks: the values (`rows`, read for `read`'s requests) of
    every request of the sampled sessions, in session order."""
    order = read["request"].to_numpy()
    frame: pd.DataFrame = rows.to_pandas()
    frame["session_key"] = np.asarray(requests.keys, dtype=object)[requests.key[order]]
    frame["session_id"] = read["session_id"].to_numpy()
    frame["seq"] = read["seq"].to_numpy()
    frame["endpoint"] = read["endpoint"].astype(object).to_numpy()
    return frame


def _first_requests(sessions: pd.DataFrame) -> np.ndarray:
    """Each session's first request (rows are by (session_id, seq))."""
    return np.asarray(sessions["request"].to_numpy()[sessions["seq"].to_numpy() == 0])


def _every_address(
    trace: RequestSource, requests: RequestColumns, sessions: pd.DataFrame
) -> tuple[int, str | None]:
    """The addresses counted over every session (replay spreads its sessions over as
    many), for outcomes learned on a sample of sessions: from each session's first request,
    its `addr`, else its X-Forwarded-For header (read only where `addr` is empty)."""
    request = _first_requests(sessions)
    rows = _scan_positions(requests, request)
    addr = _scanned(trace, rows, "addr")
    missing = np.flatnonzero(
        pc.fill_null(pc.or_(pc.is_null(addr), pc.equal(addr, "")), True).to_numpy(False)
    )
    address, source = pa.array([], pa.string()), np.zeros(0, np.int8)
    if len(missing):
        if len(missing) * SCANNED_SHARE >= len(requests):
            headers = _scanned(trace, rows[missing], "req_headers")
        else:  # few: from the files and pages that hold them only
            headers = trace.rows(rows[missing], ["req_headers"]).column("req_headers")
        keys = pa.array(requests.keys, pa.string()).take(requests.key[request[missing]])
        address, source = header_addresses(headers, keys)
    return first_addresses(addr, missing, address, source)


SCANNED_SHARE = 16
"""Requests per one asked for, at most, for which `_every_address` reads a column through
the whole scan: then every page holds some of the rows asked for anyway."""


def _scanned(trace: RequestSource, positions: np.ndarray, column: str) -> pa.ChunkedArray:
    """`trace.rows(positions, [column])`'s column, read through the source's scan of
    every request (`batches`), the rows kept batch by batch: for a column of one request
    in every session, rows in every file. The sampled reads (`rows`) decode a file's
    pages as deep as its last row asked for, in small batches, checking the kept rows
    (heavy columns); here batches are large and checked whole (real10M's 1 M first
    requests: `addr` 0.67 -> 0.18 s, `req_headers` 1.6 -> 0.5 s; a 1 M-request tile of
    cap20, 100 k rows: 0.30 -> 0.16 s and 1.44 -> 1.33 s)."""
    order = np.argsort(positions, kind="stable")
    wanted = positions[order]
    pieces, offset = [], 0
    for batch in trace.batches([column]) if len(wanted) else ():
        lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
        if hi > lo:
            pieces.append(batch.column(0).take(pa.array(wanted[lo:hi] - offset)))
        offset += batch.num_rows
        if hi == len(wanted):
            break
    if not pieces:
        return trace.rows(positions[:0], [column]).column(column)
    back = np.empty(len(order), dtype=np.int64)
    back[order] = np.arange(len(order))
    return pa.chunked_array(pieces).take(pa.array(back))


def _quantiles(values: np.ndarray, censored: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    points = {"p05": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "p99": 99, "max": 100}
    found = km_percentiles(values, censored, list(points.values()))
    return {k: sig(float(v), 4) for k, v in zip(points, found, strict=True)}


def model_json(model: dict[str, Any]) -> str:
    """The file's text: indented, keys sorted, so two models diff line by line."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_model(model: dict[str, Any], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(model_json(model), encoding="utf-8")
    tmp.replace(out)
    return out


def default_model_path(trace_path: Path) -> Path:
    """traces/NAME → traces/NAME.model.json (DESIGN.md's NAME.model.json)."""
    trace_path = Path(trace_path)
    return trace_path.with_name(f"{trace_path.name}.model.json")
