"""`build_model`: a trace in, a `tracereplay.model/1` document out (plain JSON data), and
the file's reading and writing. Same trace + same options → byte-identical file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracereplay import __version__
from tracereplay.errors import ConfigError, TraceEmptyError
from tracereplay.trace import open_trace

from .arrivals import fit_arrivals
from .behaviors import fit_behaviors, sig
from .correlations import (
    auth_to_json,
    correlations_to_json,
    find_auth,
    find_correlations,
    walk_sessions,
)
from .frame import REQUEST_COLUMNS, requests_frame
from .ids import ids_to_json, learn_ids
from .model_check import check_model
from .outcomes import fit_outcomes, outcomes_to_json
from .params import param_kind
from .payloads import infer_body, infer_query
from .sessions import DEFAULT_SESSION_TIMEOUT_S, session_stats, session_table, sessionize
from .templating import Templater, add_endpoints

MODEL_FORMAT = "tracereplay.model/1"
MAX_MODEL_BYTES = 512 << 20
SENSITIVITY_TIMEOUTS_S = {"15m": 900.0, "30m": 1800.0, "60m": 3600.0}
STAGES = ("read", "templates", "sessions", "behaviors", "arrivals", "payloads", "correlations")

Progress = Callable[[str], None]


def build_model(
    trace_path: Path,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    progress: Progress | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The model of the trace at `trace_path` as JSON-ready data."""
    say = progress or (lambda _stage: None)
    say("read")
    trace = open_trace(trace_path)
    df = requests_frame(trace.to_table(REQUEST_COLUMNS), source=str(trace_path))
    say("templates")
    templater = Templater.fit(zip(df["method"], df["path"], strict=True))
    df = add_endpoints(df, templater)
    say("sessions")
    sessions = sessionize(df, session_timeout_s)
    table = session_table(sessions)
    span_s = float(df["t_s"].iloc[-1])
    say("behaviors")
    behaviors = fit_behaviors(sessions, seed=seed)
    say("arrivals")
    arrivals = fit_arrivals(table["start_s"].to_numpy(float), span_s)
    say("payloads")
    endpoints = _endpoints(sessions, templater)
    say("correlations")
    walk = walk_sessions(sessions)
    rules = find_correlations(sessions, walk=walk)
    auth = find_auth(sessions, rules, walk=walk)
    return {
        "format": MODEL_FORMAT,
        "provenance": {
            "trace": str(trace_path),
            "source": trace.metadata.source,
            "policy_hash": trace.metadata.policy_hash,
            "rows": len(df),
            "sessions": len(table),
            "first_ts": df["ts"].iloc[0].isoformat(),
            "span_s": sig(span_s),
            "tool_version": __version__,
        },
        "sessions": {
            "timeout_s": session_timeout_s,
            "stats": session_stats(sessions).to_json(),
            "length": _quantiles(table["length"].to_numpy(float)),
            "duration_s": _quantiles(table["duration_s"].to_numpy(float)),
            "timeout_sensitivity": {
                name: session_stats(sessionize(df, t)).to_json()
                for name, t in SENSITIVITY_TIMEOUTS_S.items()
            },
        },
        "templates": templater.to_json(),
        "endpoints": endpoints,
        "behaviors": [b.to_json() for b in behaviors],
        "arrivals": arrivals.to_json(),
        "correlations": correlations_to_json(rules),
        "auth": auth_to_json(auth),
        # Additive (issue 10): what replay's ownership rules and role matching read.
        "ids": ids_to_json(learn_ids(walk, auth, endpoints)),
        "outcomes": outcomes_to_json(fit_outcomes(sessions, auth, behaviors)),
    }


def _endpoints(sessions: pd.DataFrame, templater: Templater) -> dict[str, Any]:
    out: dict[str, Any] = {}
    total = len(sessions)
    for endpoint, group in sessions.groupby("endpoint", sort=True):
        method, template = str(endpoint).split(" ", 1)
        params: dict[str, list[str]] = {}
        for m, p in zip(group["method"], group["path"], strict=True):
            for name, value in templater.params(m, p).items():
                params.setdefault(name, []).append(value)
        body = infer_body(list(group["req_body"]), _content_types(group["req_headers"]))
        query = infer_query(list(group["query"]))
        entry: dict[str, Any] = {
            "method": method,
            "template": template,
            "count": len(group),
            "share": sig(len(group) / total),
            "params": {name: param_kind(values) for name, values in sorted(params.items())},
            "query": query.to_json() if query is not None else None,
            "body": body.to_json() if body is not None else None,
        }
        durations = group["duration_ms"].dropna().to_numpy(float)
        if len(durations):
            p50, p95, p99 = np.percentile(durations, [50, 95, 99])
            entry["latency_ms"] = {"p50": sig(p50, 4), "p95": sig(p95, 4), "p99": sig(p99, 4)}
        statuses = group["status"].dropna().astype(int).value_counts(normalize=True)
        entry["status"] = {str(k): sig(float(v), 4) for k, v in sorted(statuses.items())}
        out[str(endpoint)] = entry
    return out


def _content_types(headers: pd.Series) -> list[str | None]:
    out: list[str | None] = []
    for pairs in headers:
        value = None
        for name, v in pairs if pairs is not None else ():
            if str(name).lower() == "content-type":
                value = str(v)
                break
        out.append(value)
    return out


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    points = {"p05": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "max": 100}
    return {k: sig(float(np.percentile(values, q)), 4) for k, q in points.items()}


def model_json(model: dict[str, Any]) -> str:
    """The file's text: indented, keys sorted, so two models diff line by line."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_model(model: dict[str, Any], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(model_json(model), encoding="utf-8")
    tmp.replace(out)
    return out


def load_model(path: Path) -> dict[str, Any]:
    """A model file, checked for its format id, its schema and the ranges of its numbers
    (see `check_model`); ConfigError naming the file and the field otherwise."""
    try:
        if Path(path).stat().st_size > MAX_MODEL_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_MODEL_BYTES >> 20} MiB, not a model file")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such model file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: bad JSON, or an integer too long to convert; RecursionError: nesting.
        raise ConfigError(f"{path}: not a model file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ConfigError(f"{path}: not a {MODEL_FORMAT} file (format {found!r:.60})")
    if not data.get("behaviors"):
        raise TraceEmptyError(f"{path}: the model has no sessions to synthesize from")
    check_model(data, str(path))
    return data


def default_model_path(trace_path: Path) -> Path:
    """traces/NAME → traces/NAME.model.json (DESIGN.md's NAME.model.json)."""
    trace_path = Path(trace_path)
    return trace_path.with_name(f"{trace_path.name}.model.json")
