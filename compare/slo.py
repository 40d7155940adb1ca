"""SLOs judged: thresholds on latency percentiles, error and success rates and throughput,
per endpoint pattern or SLO class or overall (the file: slo_file.py, default_slo.toml).

Definitions (over the requests an SLO selects):
- latency_pNN_ms: `np.quantile` (linear) of the latency column over selected requests
  that got a response (a status) and have a finite latency.
- error_rate: share that failed as a user counts it: status >= 400, a transport error or
  no response (what Locust counts as a failure); client_error_rate: the 4xx;
  server_error_rate: 5xx, transport errors and no response (compare.json's, measures.py).
- success_rate: share with a response, no transport error and status < 400.
- throughput_rps: selected requests over the run's span (`span_s`, else first to last
  request start of the whole frame).
An SLO that binds to a class (login, crud, complex) and names no endpoints selects the
endpoints `learned` holds for that class (bindings.py). An SLO that selects no endpoint
(or whose class nothing was learned for) is a WARN: shown, with a warning, never silent.
An SLO is not checkable (passed None, with a reason) when the frame has no responses at
all (a synthesized trace), or its metric has no samples.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from tracereplay.errors import UsageError

from .bindings import Learned
from .measures import failure_masks
from .slo_file import (
    DEFAULT_SLO_NAME,
    LATENCY_METRICS,
    METRICS,
    RATE_METRICS,
    Slo,
    load_slos,
    parse_slos,
)

__all__ = [
    "DEFAULT_SLO_NAME",
    "DISABLED",
    "METRICS",
    "NO_RESPONSES",
    "Slo",
    "SloResult",
    "evaluate_slos",
    "load_slos",
    "needs_binding",
    "parse_slos",
    "render_slos",
    "slo_json",
]

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
NO_RESPONSES = "the trace has no responses (synthetic?): nothing to judge"
DISABLED = "disabled: measured, not judged unless enabled by name"
NO_SPAN = "the trace spans no time: no throughput"
SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class SloResult:
    """The measured value and verdict of one SLO; passed None when not checkable."""

    slo: Slo
    value: float | None
    passed: bool | None
    requests: int
    """How many requests the SLO's endpoints selected."""
    reason: str | None
    matched: tuple[str, ...] = ()
    """The endpoints it selected (those present in the frame), by name."""
    warning: str | None = None
    """Set when the SLO selects nothing: a WARN row and a line on stderr."""

    @property
    def verdict(self) -> str:
        """pass, fail, warn (selects nothing), off (disabled) or n/a (not checkable)."""
        if self.warning:
            return "warn"
        if self.reason == DISABLED:
            return "off"
        return {True: "pass", False: "fail", None: "n/a"}[self.passed]


def needs_binding(slos: Sequence[Slo]) -> bool:
    """Whether any SLO selects by class, so something must be learned first."""
    return any(slo.needs_binding for slo in slos)


# --- judging ----------------------------------------------------------------------------


def evaluate_slos(
    slos: Sequence[Slo],
    requests: pd.DataFrame,
    *,
    latency_column: str = "duration_ms",
    enable: Sequence[str] = (),
    span_s: float | None = None,
    learned: Learned | None = None,
) -> list[SloResult]:
    """Measure and judge each SLO over `requests` (columns: endpoint "METHOD /template",
    the latency column, status, error, and t_s, sent_s or ts for throughput). `enable`
    turns disabled SLOs on by name; `span_s` overrides the run's span for throughput;
    `learned` gives the endpoints of the SLO classes."""
    names = {slo.name for slo in slos}
    unknown = [name for name in enable if name not in names]
    if unknown:
        raise UsageError(f"unknown SLO {unknown[0]!r} (known: {', '.join(sorted(names))})")
    if "endpoint" not in requests.columns:
        raise ValueError("evaluate_slos needs an 'endpoint' column (see add_endpoints)")
    frame = _Frame.of(requests, latency_column, span_s)
    results = []
    for slo in slos:
        result = _evaluate(slo, frame, learned)
        if not (slo.enabled or slo.name in enable) and result.warning is None:
            result = SloResult(slo, result.value, None, result.requests, DISABLED, result.matched)
        results.append(result)
    return results


@dataclass(frozen=True)
class _Frame:
    """The columns SLOs need, as plain arrays, computed once per frame."""

    endpoints: np.ndarray
    latency_ms: np.ndarray
    has_status: np.ndarray
    failed: np.ndarray
    client_failed: np.ndarray
    server_failed: np.ndarray
    ok: np.ndarray
    has_responses: bool
    span_s: float | None
    latency_column: str

    @classmethod
    def of(cls, df: pd.DataFrame, latency_column: str, span_s: float | None) -> _Frame:
        n = len(df)
        status = (
            pd.to_numeric(df["status"], errors="coerce").to_numpy(float)
            if "status" in df.columns
            else np.full(n, np.nan)
        )
        error = np.zeros(n, dtype=bool)
        if "error" in df.columns:
            error = (df["error"].notna() & (df["error"].astype(object) != "")).to_numpy(bool)
        has_status = ~np.isnan(status)
        latency = (
            pd.to_numeric(df[latency_column], errors="coerce").to_numpy(float)
            if latency_column in df.columns
            else np.full(n, np.nan)
        )
        client, server = failure_masks(status, error)
        return cls(
            endpoints=df["endpoint"].astype(str).to_numpy(object),
            latency_ms=latency,
            has_status=has_status,
            failed=client | server,
            client_failed=client,
            server_failed=server,
            ok=~(client | server),
            # A synthesized trace was never sent: no status and no error anywhere. A
            # replay where everything failed still has errors, and is judged.
            has_responses=bool(has_status.any() or error.any()),
            span_s=span_s if span_s is not None else _span_s(df),
            latency_column=latency_column,
        )

    def select(self, slo: Slo, names: frozenset[str] | None) -> np.ndarray:
        """Requests of the endpoints `names` (exact), else of the SLO's patterns."""
        if names is None and "*" in slo.endpoints:
            return np.ones(len(self.endpoints), dtype=bool)
        # Endpoints repeat: match each distinct name once.
        present = {str(e) for e in self.endpoints}
        if names is not None:
            chosen = present & names
        else:
            chosen = {e for e in present if any(fnmatchcase(e, p) for p in slo.endpoints)}
        return np.fromiter((e in chosen for e in self.endpoints), bool, len(self.endpoints))


def _bind(slo: Slo, learned: Learned | None) -> tuple[frozenset[str] | None, str | None]:
    """The endpoint names a class SLO binds to (None: the SLO selects by its patterns), or
    why it cannot bind."""
    if not slo.needs_binding:
        return None, None
    if learned is None:
        return None, f"binds to {slo.binds}, but nothing was learned to bind it to"
    names = frozenset(learned.endpoints(str(slo.binds)))
    if not names:
        return None, f"binds to {slo.binds}: the {learned.source} has no {slo.binds} endpoint"
    return names, None


def _evaluate(slo: Slo, frame: _Frame, learned: Learned | None) -> SloResult:
    names, unbound = _bind(slo, learned)
    if unbound:
        return SloResult(slo, None, None, 0, unbound, warning=unbound)
    selected = frame.select(slo, names)
    count = int(selected.sum())
    matched = tuple(sorted({str(e) for e in frame.endpoints[selected]}))
    if count == 0 and len(frame.endpoints):
        wanted = sorted(names) if names is not None else slo.endpoints
        nothing = f"no request matches {', '.join(wanted)}"
        return SloResult(slo, None, None, 0, nothing, warning=nothing)
    value, reason = _measure(slo.metric, frame, selected, count)
    if value is None:
        return SloResult(slo, None, None, count, reason, matched)
    return SloResult(slo, value, OPS[slo.op](value, slo.threshold), count, None, matched)


def _measure(
    metric: str, frame: _Frame, selected: np.ndarray, count: int
) -> tuple[float | None, str | None]:
    """The metric over the selected requests, or why it has no value."""
    if count == 0:
        return None, "the trace holds no requests"
    if metric == "throughput_rps":
        span = frame.span_s or 0.0
        return (count / span, None) if span > 0 else (None, NO_SPAN)
    if not frame.has_responses:
        return None, NO_RESPONSES
    if metric in RATE_METRICS:
        column = {"error_rate": frame.failed, "client_error_rate": frame.client_failed,
                  "server_error_rate": frame.server_failed, "success_rate": frame.ok}  # fmt: skip
        return float(column[metric][selected].mean()), None
    latency = frame.latency_ms[selected & frame.has_status]
    latency = latency[np.isfinite(latency)]
    if not latency.size:
        return None, f"no {frame.latency_column} among the selected responses"
    return float(np.quantile(latency, LATENCY_METRICS[metric])), None


def _span_s(df: pd.DataFrame) -> float | None:
    """First to last request start, from t_s, sent_s (timing.parquet) or ts."""
    for column in ("t_s", "sent_s"):
        if column in df.columns:
            values = pd.to_numeric(df[column], errors="coerce").dropna()
            return float(values.max() - values.min()) if len(values) else None
    if "ts" in df.columns:
        ts = pd.to_datetime(df["ts"], errors="coerce").dropna()
        return float((ts.max() - ts.min()).total_seconds()) if len(ts) else None
    return None


# --- output -----------------------------------------------------------------------------


def slo_json(results: Sequence[SloResult]) -> dict[str, Any]:
    """compare.json's "slo": passed is all checked SLOs held (None when none could be
    checked, then checked is false), the names of the failed and the warned ones, and one
    entry per SLO in file order."""
    verdicts = [r.passed for r in results if r.passed is not None]
    return {
        "passed": all(verdicts) if verdicts else None,
        "checked": bool(verdicts),
        "failed": [r.slo.name for r in results if r.passed is False],
        "warnings": [r.slo.name for r in results if r.warning],
        "results": [
            {
                "name": r.slo.name,
                "metric": r.slo.metric,
                "op": r.slo.op,
                "threshold": r.slo.threshold,
                "endpoints": list(r.slo.endpoints),
                "binds": r.slo.binds,
                "matched": list(r.matched),
                "enabled": r.slo.enabled,
                "value": _round(r.value),
                "passed": r.passed,
                "verdict": r.verdict,
                "requests": r.requests,
                "reason": r.reason,
                "warning": r.warning,
            }
            for r in results
        ],
    }


def slo_warnings(results: Sequence[SloResult]) -> list[str]:
    """One line per SLO that selects nothing, for stderr."""
    return [f"warning: SLO {r.slo.name!r} {r.warning}" for r in results if r.warning]


def render_slos(results: Sequence[SloResult], console: Console) -> None:
    """A table: slo, endpoints (what it matched), requests, value, threshold, verdict;
    then the reasons."""
    table = Table(title="SLOs", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("slo", no_wrap=True)
    table.add_column("endpoints", overflow="fold")
    for column in ("requests", "value", "threshold", "verdict"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in results:
        verdict = {"pass": "pass", "fail": "[red]FAIL[/red]", "warn": "[yellow]WARN[/yellow]",
                   "off": "off", "n/a": "n/a"}[r.verdict]  # fmt: skip
        table.add_row(
            r.slo.name, _where(r), str(r.requests), _value(r.slo, r.value), r.slo.describe(),
            verdict,
        )  # fmt: skip
    console.print(table)
    for r in results:
        if r.slo.needs_binding and r.matched:
            bound = ", ".join(r.matched)
            console.print(f"[dim]{r.slo.name}: {r.slo.binds} = {bound}[/dim]", highlight=False)
        if r.reason and r.reason != DISABLED:
            console.print(f"[dim]{r.slo.name}: {r.reason}[/dim]", highlight=False)


def _where(r: SloResult) -> str:
    """The SLO's selector: its patterns, or its class and how many endpoints that bound to
    (listed under the table)."""
    if r.slo.needs_binding:
        return f"{r.slo.binds} ({len(r.matched)})"
    return "\n".join(r.slo.endpoints)


def _value(slo: Slo, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.4g} %" if slo.metric in RATE_METRICS else f"{value:.4g}"


def _round(value: float | None) -> float | None:
    # Same rounding as compare.json, so the document is byte-identical across runs.
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
