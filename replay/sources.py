"""Replay plans from a model (sessions synthesized, each from its own seed) or from a trace
(captured sessions re-issued in order, plus jittered copies for --scale N).

Both builders compute every session's start time (cheap) in every worker, so indices agree
across processes, and build requests only for the worker's shard (index % workers).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from tracereplay.errors import TraceReplayError, UsageError
from tracereplay.models.addresses import session_address
from tracereplay.models.correlations import (
    AuthInfo,
    CorrelationRule,
    Location,
    auth_from_json,
    correlations_from_json,
    find_auth,
    find_correlations,
    walk_sessions,
)
from tracereplay.models.frame import REQUEST_COLUMNS, requests_frame
from tracereplay.models.ids import IdModel, ids_from_json, learn_ids
from tracereplay.models.model import load_model
from tracereplay.models.outcomes import (
    draw_outcome,
    is_basic,
    login_refused,
    outcomes_from_json,
    session_outcomes,
)
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S, sessionize
from tracereplay.models.synthesize import Synthesizer
from tracereplay.models.templating import Templater, add_endpoints
from tracereplay.trace import open_trace

from .evidence import Saw, session_saw
from .placeholders import BASIC_PLACEHOLDER
from .plan import Plan, PlannedRequest, PlannedSession
from .profiles import shape
from .rewrite import json_values_at
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
     "content-length", "cookie", "authorization", "accept-encoding", "expect",
     # A claimed client address goes only with --spread-addresses (the session's own).
     "x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip", "cf-connecting-ip"}
)  # fmt: skip
_SPREAD_NET = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544 benchmarking addresses


@dataclass(frozen=True)
class Knowledge:
    """What a replay's sessions need beside their plan: correlation rules, how the login
    works, and the id model (producers, creates, what ownership protects)."""

    rules: list[CorrelationRule]
    auth: AuthInfo
    ids: IdModel


@dataclass(frozen=True)
class TraceKnowledge(Knowledge):
    """Knowledge fit on a trace replayed without a model, as `build_model` would."""

    templater: Templater | None = None


def model_knowledge(model: dict[str, Any]) -> Knowledge:
    return Knowledge(
        correlations_from_json(model["correlations"]),
        auth_from_json(model["auth"]),
        ids_from_json(model.get("ids")),
    )


def spread_address(label: str, copy: int = 0) -> str:
    """The X-Forwarded-For of a replayed session: its captured IPv4 pseudonym as is, else
    (and for each --scale copy) an address in 198.18.0.0/15 drawn from a hash of it."""
    try:
        if copy == 0 and ipaddress.ip_address(label).version == 4:
            return label
    except ValueError:
        pass
    digest = hashlib.blake2b(f"{label}/{copy}".encode(), digest_size=4).digest()
    offset = int.from_bytes(digest, "big") % _SPREAD_NET.num_addresses
    return str(_SPREAD_NET.network_address + offset)


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
    outcomes = outcomes_from_json(model.get("outcomes"))
    login = auth_from_json(model.get("auth") or {}).login_endpoint
    basic = frozenset(outcomes.basic_auth)
    if profile is None:
        starts = synth.session_starts(scale, duration_s, speed=speed, process=arrivals)
        window = duration_s if duration_s is not None else synth.arrivals.span_s / speed
    else:
        shaped = shape(profile, synth.arrivals, scale=scale, speed=speed, duration_s=duration_s)
        starts = synth.session_starts(
            shaped.scale, None, speed=speed, process=arrivals, arrivals=shaped.arrivals
        )
        window = shaped.window_s
    # Sessions per address as captured, at every scale (N× adds users, each its address).
    addresses = max(1, round(max(outcomes.addresses, 1) * scale)) if outcomes.addresses else 0
    sessions = []
    shard = np.arange(worker, len(starts), workers)
    drawn = synth.sessions_requests(shard, starts[shard])  # the shard's sessions as arrays
    for index, synthetic in zip(shard.tolist(), drawn, strict=True):
        start_s = float(starts[index])
        requests = tuple(
            PlannedRequest(
                endpoint=r.endpoint,
                method=r.record.method,
                path=r.record.path,
                query=r.record.query,
                headers=tuple(r.record.req_headers or ())
                + ((("Authorization", BASIC_PLACEHOLDER),) if r.endpoint in basic else ()),
                body=r.record.req_body,
                think_s=r.think_s / speed,
                path_params=r.path_params,
            )
            for r in synthetic
        )
        rng = np.random.default_rng([seed, index, 0x0C])  # its own stream: synthesis unchanged
        role, fails = draw_outcome(
            outcomes, synth.behaviors, [r.endpoint for r in requests], login, rng
        )
        requests = _refuse_later_logins(requests, login, outcomes.later_failed_share, rng, fails)
        address = spread_address(f"model/{seed}/{index % addresses if addresses else index}")
        sessions.append(PlannedSession(index, start_s, requests, role, 0, fails, address))
    return Plan(tuple(sessions), float(window), "model", float(scale), float(speed), seed)


def _refuse_later_logins(
    requests: tuple[PlannedRequest, ...],
    login: str | None,
    share: float,
    rng: np.random.Generator,
    first_fails: bool = False,
) -> tuple[PlannedRequest, ...]:
    """A synthesized session's logins after its first, each refused (a wrong password)
    with the captured share of such logins refused (the session's first login follows
    `draw_outcome`; where it fails, the next login is the user's corrected retry and
    signs in). Draws only where there is such a login: other sessions unchanged."""
    if login is None or share <= 0:
        return requests
    places = [i for i, r in enumerate(requests) if r.endpoint == login][2 if first_fails else 1 :]
    if not places:
        return requests
    out = list(requests)
    for i in places:
        if rng.random() < share:
            out[i] = replace(out[i], login_refused=True)
    return tuple(out)


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

    df = _load_trace(Path(trace_path))
    check_trace_requests(df["method"], df["path"], df["query"], str(trace_path))
    templater = Templater.fit(zip(df["method"], df["path"], strict=True))
    sessions = sessionize(add_endpoints(df, templater), session_timeout_s)
    walk = walk_sessions(sessions)
    rules = find_correlations(sessions, walk=walk)
    auth = find_auth(sessions, rules, walk=walk)
    id_model = learn_ids(walk, auth, sessions["endpoint"].unique().tolist())
    knowledge = TraceKnowledge(rules, auth, id_model, templater)
    _, outcomes = session_outcomes(sessions, auth)

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
                     "think_s", "path_params", "status", "resp_body")
    }  # fmt: skip
    addr = sessions["addr"].tolist() if "addr" in sessions.columns else [None] * len(sessions)
    keys = sessions["session_key"].tolist()
    sources = _yield_sources(knowledge)
    planned = []
    saw: dict[int, tuple[Saw, ...]] = {}  # captured session → its evidence (copies share it)
    for index, (start_s, j, copy) in enumerate(schedule):
        if index % workers == worker:
            rows = range(int(first[j]), int(last[j]))
            requests = tuple(
                _trace_request(columns, row, speed, sources, auth.login_endpoint) for row in rows
            )
            if j not in saw:
                statuses = [columns["status"][row] for row in rows]
                bodies = [columns["resp_body"][row] for row in rows]
                saw[j] = session_saw(requests, statuses, bodies, id_model)
            start = int(first[j])
            label, _ = session_address(columns["req_headers"][start], addr[start], keys[start])
            outcome = outcomes[j]
            planned.append(
                PlannedSession(
                    index,
                    start_s,
                    requests,
                    outcome.role,
                    copy,
                    outcome.login == "failed",
                    spread_address(label, copy),
                    saw[j],
                )
            )
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


def _load_trace(path: Path) -> pd.DataFrame:
    """The trace's requests (models/frame.py), with its `addr` column when it has one."""
    trace = open_trace(path)
    names = [c for c in [*REQUEST_COLUMNS, "addr"] if c in trace.dataset.schema.names]
    return requests_frame(trace.to_table(names), source=str(path))


def _yield_sources(knowledge: Knowledge) -> dict[str, list[Location]]:
    """Per endpoint, the JSON places of its answers later requests read (rules, id
    producers): what a captured answer held there is planned beside the request."""
    out: dict[str, set[Location]] = {}
    for rule in knowledge.rules:
        if rule.source.where == "json":
            out.setdefault(rule.source_endpoint, set()).add(rule.source)
    for target in knowledge.ids.targets:
        for producer in target.producers:
            if producer.source.where == "json":
                out.setdefault(producer.endpoint, set()).add(producer.source)
    return {endpoint: sorted(places) for endpoint, places in out.items()}


def _captured_yields(
    status: Any, body: Any, places: Sequence[Location]
) -> tuple[tuple[Location, tuple[str, ...]], ...]:
    if not places or not isinstance(body, bytes | bytearray | memoryview):
        return ()
    if not (isinstance(status, int | float) and 200 <= status < 400):
        return ()
    found = [(p, tuple(str(v) for v in json_values_at(bytes(body), p.key))) for p in places]
    return tuple((p, values) for p, values in found if values)


def _trace_request(
    columns: dict[str, list[Any]],
    row: int,
    speed: float,
    sources: dict[str, list[Location]],
    login: str | None = None,
) -> PlannedRequest:
    endpoint = str(columns["endpoint"][row])
    path = str(columns["path"][row])
    # pandas turns an all-null column into NaN: anything but text or bytes is "absent".
    query = columns["query"][row] if isinstance(columns["query"][row], str) else None
    think = columns["think_s"][row]
    body = columns["req_body"][row]
    return PlannedRequest(
        endpoint=endpoint,
        method=str(columns["method"][row]),
        path=path,
        query=query or None,
        headers=_kept_headers(columns["req_headers"][row]),
        body=bytes(body) if isinstance(body, bytes | bytearray | memoryview) else None,
        think_s=0.0 if think is None or pd.isna(think) else float(think) / speed,
        path_params=dict(columns["path_params"][row]),
        yields=_captured_yields(
            columns["status"][row],
            columns["resp_body"][row],
            sources.get(endpoint, ()),
        ),
        login_refused=endpoint == login and login_refused(columns["status"][row]),
    )


def _kept_headers(pairs: Any) -> tuple[tuple[str, str], ...]:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    if not isinstance(items, Iterable) or isinstance(items, str):
        return ()
    kept = [(str(name), str(value)) for name, value in items]
    basic = any(k.lower() == "authorization" and is_basic(v) for k, v in kept)
    return tuple(
        [(k, v) for k, v in kept if k.lower() not in DROPPED_HEADERS]
        + ([("Authorization", BASIC_PLACEHOLDER)] if basic else [])
    )
