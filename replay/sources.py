"""Replay plans from a model (sessions synthesized, each from its own seed) or from a trace
(captured sessions re-issued in order, plus jittered copies for --scale N).

Both builders compute every session's start time (cheap) in every worker, so indices agree
across processes, and build requests only for the worker's shard (index % workers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from tracereplay.errors import TraceReplayError, UsageError
from tracereplay.models.correlations import (
    AuthInfo,
    CorrelationRule,
    find_auth,
    find_correlations,
)
from tracereplay.models.frame import load_requests
from tracereplay.models.model import load_model
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S, sessionize
from tracereplay.models.synthesize import Synthesizer
from tracereplay.models.templating import Templater, add_endpoints
from tracereplay.trace import open_trace

from .plan import Plan, PlannedRequest, PlannedSession
from .profiles import shape
from .urls import UnsafeUrlError, check_method, check_path, check_query

# Copies of a captured session start within ±jitter of it; by default half the median gap
# between session starts (copies stay in the same stretch of the arrival curve, but do
# not all hit the target in the same instant), never more than this.
MAX_DEFAULT_JITTER_S = 30.0
# Headers a replay must not re-send as captured. Hop-by-hop and framing headers belong to
# the captured connection; Host goes to --host; Cookie and Authorization carry stale
# pseudonyms (the cookie jar and runtime correlation supply live values); the HTTP client
# negotiates its own encodings (a captured "br" it cannot decode would break correlation).
DROPPED_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
     "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host",
     "content-length", "cookie", "authorization", "accept-encoding", "expect"}
)  # fmt: skip


@dataclass(frozen=True)
class TraceKnowledge:
    """What runtime correlation needs when a trace is replayed without a model, fit on
    the trace itself as `build_model` would."""

    templater: Templater
    rules: list[CorrelationRule]
    auth: AuthInfo


def load_source(path: Path) -> str:
    """ "model" for a model file, "trace" for a trace directory; UsageError otherwise."""
    path = Path(path)
    try:
        if path.is_file():
            load_model(path)
            return "model"
        if path.is_dir():
            open_trace(path)
            return "trace"
    except TraceReplayError as exc:
        raise UsageError(str(exc)) from None
    raise UsageError(f"{path}: no such model file or trace directory")


def _check_common(speed: float, duration_s: float | None, worker: int, workers: int) -> None:
    if not math.isfinite(speed) or speed <= 0:
        raise UsageError(f"--speed must be > 0, not {speed!r}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise UsageError(f"--duration must be > 0, not {duration_s!r}")
    if workers < 1 or not 0 <= worker < workers:
        raise UsageError(f"worker {worker} of {workers}: need 0 <= worker < workers")


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, not {seed}")


# ---- what a source would send: checked when it is loaded ------------------------------------

# A value of a path parameter fills one segment: nothing that ends or escapes it.
_BAD_SEGMENT = re.compile(r"[/?#\\\x00-\x20\x7f]")


def check_model_requests(model: dict[str, Any], where: str) -> None:
    """Every request the model can make is a path on --host: methods, templates, and the
    values its parameters take; else UnsafeUrlError naming the endpoint and template."""
    for name, spec in model["endpoints"].items():
        field = f"{where}: endpoint {name!r}"
        check_method(spec["method"], field)
        check_path(spec["template"], f"{field}: template")
        for param, kind in (spec.get("params") or {}).items():
            for example in kind.get("examples") or ():
                if not example or _BAD_SEGMENT.search(example):
                    raise UnsafeUrlError(
                        f"{field}: parameter {param!r}: value {example[:40]!r} is not one "
                        "path segment"
                    )


def check_trace_requests(
    methods: Iterable[Any], paths: Iterable[Any], queries: Iterable[Any], where: str
) -> None:
    """Every captured request is a path on --host (distinct values checked once); else
    UnsafeUrlError naming the trace and the path."""
    for method in set(methods):
        check_method(method, f"{where}: a row")
    for path in set(paths):
        check_path(path, f"{where}: a row's path")
    for query in set(queries):
        check_query(query if isinstance(query, str) else None, f"{where}: a row")


def check_trace_source(trace_path: Path) -> None:
    """`check_trace_requests` over a trace directory, reading only those three columns."""
    table = open_trace(trace_path).to_table(["method", "path", "query"], sort=False)
    columns = [pc.unique(table[name]).to_pylist() for name in ("method", "path", "query")]
    check_trace_requests(columns[0], columns[1], columns[2], str(trace_path))


# ---- model source -------------------------------------------------------------------------


def plan_from_model(
    model: dict[str, Any],
    *,
    scale: float = 1.0,
    duration_s: float | None = None,
    speed: float = 1.0,
    seed: int = 0,
    worker: int = 0,
    workers: int = 1,
    arrivals: str = "stratified",
    profile: str | None = None,
) -> Plan:
    """Sessions synthesized from `model` at `scale` × its arrival curve, `speed` × faster
    (starts and think times compressed), or along a scenario profile's curve (see
    replay/profiles.py); only worker `worker`'s shard gets requests."""
    _check_common(speed, duration_s, worker, workers)
    _check_seed(seed)
    if not math.isfinite(scale) or scale <= 0:
        raise UsageError(f"--scale must be > 0, not {scale!r}")
    check_model_requests(model, "model")
    synth = Synthesizer(model, seed)
    if profile is None:
        starts = synth.session_starts(scale, duration_s, speed=speed, process=arrivals)
        window = duration_s if duration_s is not None else synth.arrivals.span_s / speed
    else:
        shaped = shape(profile, synth.arrivals, scale=scale, speed=speed, duration_s=duration_s)
        starts = synth.session_starts(
            shaped.scale, None, speed=speed, process=arrivals, arrivals=shaped.arrivals
        )
        window = shaped.window_s
    sessions = []
    for index in range(worker, len(starts), workers):
        start_s = float(starts[index])
        requests = tuple(
            PlannedRequest(
                endpoint=r.endpoint,
                method=r.record.method,
                path=r.record.path,
                query=r.record.query,
                headers=tuple(r.record.req_headers or ()),
                body=r.record.req_body,
                think_s=r.think_s / speed,
                path_params=r.path_params,
            )
            for r in synth.session_requests(index, start_s)
        )
        sessions.append(PlannedSession(index, start_s, requests))
    return Plan(tuple(sessions), float(window), "model", float(scale), float(speed), seed)


# ---- trace source -------------------------------------------------------------------------


def plan_from_trace(
    trace_path: Path,
    *,
    scale: int = 1,
    speed: float = 1.0,
    duration_s: float | None = None,
    seed: int = 0,
    jitter_s: float | None = None,
    worker: int = 0,
    workers: int = 1,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
) -> tuple[Plan, TraceKnowledge]:
    """The captured sessions of `trace_path` in captured order, `speed` × faster, plus
    scale − 1 copies of each started within ±`jitter_s` (see MAX_DEFAULT_JITTER_S); the
    worker's shard only, and what correlation needs, fit on the trace."""
    _check_common(speed, duration_s, worker, workers)
    _check_seed(seed)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise UsageError(f"--scale of a trace must be a whole number >= 1, not {scale!r}")
    if jitter_s is not None and not (math.isfinite(jitter_s) and jitter_s >= 0):
        raise UsageError(f"--jitter must be >= 0 seconds, not {jitter_s!r}")
    if session_timeout_s <= 0:
        raise UsageError(f"--session-timeout must be > 0, not {session_timeout_s!r}")

    df = load_requests(Path(trace_path))
    check_trace_requests(df["method"], df["path"], df["query"], str(trace_path))
    templater = Templater.fit(zip(df["method"], df["path"], strict=True))
    sessions = sessionize(add_endpoints(df, templater), session_timeout_s)
    rules = find_correlations(sessions)
    knowledge = TraceKnowledge(templater, rules, find_auth(sessions, rules))

    # sessionize numbers sessions by start and sorts rows by (session_id, t_s).
    ids = sessions["session_id"].to_numpy(np.int64)
    bounds = np.flatnonzero(np.diff(ids)) + 1
    first = np.concatenate([[0], bounds])
    last = np.concatenate([bounds, [len(ids)]])
    original_s = sessions["t_s"].to_numpy(float)[first] / speed
    schedule = _schedule(original_s, scale, seed, jitter_s, duration_s)

    columns = {
        name: sessions[name].tolist()
        for name in ("endpoint", "method", "path", "query", "req_headers", "req_body",
                     "think_s", "path_params")
    }  # fmt: skip
    planned = []
    for index, (start_s, j, copy) in enumerate(schedule):
        if index % workers == worker:
            rows = range(int(first[j]), int(last[j]))
            requests = tuple(_trace_request(columns, row, speed) for row in rows)
            planned.append(PlannedSession(index, start_s, requests, copy=copy))
    span_s = float(df["t_s"].max()) / speed
    window = duration_s if duration_s is not None else span_s
    plan = Plan(tuple(planned), float(window), "trace", float(scale), float(speed), seed)
    return plan, knowledge


def default_jitter_s(starts_s: np.ndarray) -> float:
    """Half the median gap between consecutive session starts, capped; 0 for < 2 sessions."""
    if len(starts_s) < 2:
        return 0.0
    gap = float(np.median(np.diff(np.sort(starts_s))))
    return min(gap / 2.0, MAX_DEFAULT_JITTER_S)


def _schedule(
    original_s: np.ndarray,
    scale: int,
    seed: int,
    jitter_s: float | None,
    duration_s: float | None,
) -> list[tuple[float, int, int]]:
    """(start, captured session, copy) of every planned session, in index order: sorted by
    start, ties by captured session then copy; those starting at or after the window's end
    dropped (a suffix, so indices stay 0..n-1)."""
    n = len(original_s)
    jitter = default_jitter_s(original_s) if jitter_s is None else jitter_s
    # One draw for all copies in a fixed order: every worker gets the same schedule.
    offsets = np.random.default_rng(seed).uniform(-jitter, jitter, size=(n, scale - 1))
    entries = [(float(original_s[j]), j, 0) for j in range(n)]
    for j in range(n):
        for copy in range(1, scale):
            start = max(0.0, float(original_s[j] + offsets[j, copy - 1]))
            entries.append((start, j, copy))
    entries.sort()
    if duration_s is not None:
        entries = [e for e in entries if e[0] < duration_s]
    return entries


def _trace_request(columns: dict[str, list[Any]], row: int, speed: float) -> PlannedRequest:
    path = str(columns["path"][row])
    # pandas turns an all-null column into NaN: anything but text or bytes is "absent".
    query = columns["query"][row] if isinstance(columns["query"][row], str) else None
    think = columns["think_s"][row]
    body = columns["req_body"][row]
    return PlannedRequest(
        endpoint=str(columns["endpoint"][row]),
        method=str(columns["method"][row]),
        path=path,
        query=query or None,
        headers=_kept_headers(columns["req_headers"][row]),
        body=bytes(body) if isinstance(body, bytes | bytearray | memoryview) else None,
        think_s=0.0 if think is None or pd.isna(think) else float(think) / speed,
        path_params=dict(columns["path_params"][row]),
    )


def _kept_headers(pairs: Any) -> tuple[tuple[str, str], ...]:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    if not isinstance(items, Iterable) or isinstance(items, str):
        return ()
    return tuple(
        (str(name), str(value)) for name, value in items if str(name).lower() not in DROPPED_HEADERS
    )
