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
from .measures import COUNT_CHUNK, failure_masks, small_endpoint_codes
from .slo_file import (
    DEFAULT_SLO_NAME,
    LATENCY_METRICS,
    METRICS,
    RATE_METRICS,
    Slo,
    load_slos,
    parse_slos,
)
from .statuses import transport_errors

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
NULL_ENDPOINT = "nan"
"""A request without an endpoint, as `str` of a null names it: selected by "*" only."""


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
    """What SLOs read of a frame, computed once, per endpoint where a count is enough: the
    requests and failures of each distinct endpoint (one bincount each), and the latency of
    the requests that can give one. An SLO selects endpoints, never requests one by one
    (10 M requests: no string nor Python object per request)."""

    names: list[str]
    """The distinct endpoints (`measures.small_endpoint_codes`)."""
    codes: np.ndarray
    """Each request's index into `names`."""
    requests: np.ndarray
    """Per endpoint: its requests; `outcomes`: of those, per rate metric, how many count."""
    outcomes: dict[str, np.ndarray]
    latency_ms: np.ndarray
    timed: np.ndarray
    """Per request: it got a status and has a finite latency (what latency SLOs read)."""
    timed_requests: np.ndarray
    has_responses: bool
    span_s: float | None
    latency_column: str
    null: int | None = None
    """The index in `names` of requests without an endpoint, when some are."""

    @classmethod
    def of(cls, df: pd.DataFrame, latency_column: str, span_s: float | None) -> _Frame:
        n = len(df)
        status = _floats(df["status"]) if "status" in df.columns else None
        error = transport_errors(df)
        latency = _floats(df[latency_column]) if latency_column in df.columns else None
        if latency is None:
            latency = np.full(n, np.nan)
        # The categorical's own small codes where it has them (`small_endpoint_codes`), and
        # the counts a chunk of requests at a time: no 8-byte code, float status nor
        # failure mask of every request's (10 M requests: ~0.2 GB at once). The counts are
        # whole numbers: the chunks' sums are one bincount's.
        codes, names = small_endpoint_codes(df)
        null = None
        if (codes < 0).any():  # a null endpoint: only "*" selects it, shown as "nan"
            null = len(names)
            codes = np.where(codes < 0, null, codes)
            names = [*names, NULL_ENDPOINT]
        width = len(names)
        requests, client_n, server_n, timed_requests = (np.zeros(width, np.int64) for _ in range(4))
        timed = np.empty(n, bool)
        responses = False
        for start in range(0, n, COUNT_CHUNK):
            part = slice(start, start + COUNT_CHUNK)
            code = codes[part].astype(np.intp)
            part_status = status[part] if status is not None else np.full(code.size, np.nan)
            has_status = ~np.isnan(part_status)
            responses = responses or bool(has_status.any())
            with np.errstate(invalid="ignore"):
                timed[part] = has_status & np.isfinite(latency[part])
            client, server = failure_masks(part_status, error[part])
            requests += np.bincount(code, minlength=width)
            client_n += np.bincount(code[client], minlength=width)
            server_n += np.bincount(code[server], minlength=width)
            timed_requests += np.bincount(code[timed[part]], minlength=width)
        failed_n = client_n + server_n  # disjoint: a client failure is never a server one
        return cls(
            names=names,
            codes=codes,
            requests=requests,
            outcomes={
                "error_rate": failed_n,
                "client_error_rate": client_n,
                "server_error_rate": server_n,
                "success_rate": requests - failed_n,
            },
            latency_ms=latency,
            timed=timed,
            timed_requests=timed_requests,
            # A synthesized trace was never sent: no status and no error anywhere. A
            # replay where everything failed still has errors, and is judged.
            has_responses=bool(responses or error.any()),
            span_s=span_s if span_s is not None else _span_s(df),
            latency_column=latency_column,
            null=null,
        )

    def select(self, slo: Slo, names: frozenset[str] | None) -> np.ndarray | None:
        """Which endpoints (a mask over `names`) the SLO selects: the endpoints `names`
        (exact), else those its patterns match; None: every request ("*")."""
        if names is None and "*" in slo.endpoints:
            return None
        present = [
            name if n and i != self.null else None
            for i, (name, n) in enumerate(zip(self.names, self.requests, strict=True))
        ]
        if names is not None:
            return np.array([e is not None and e in names for e in present], bool)
        return np.array(
            [e is not None and any(fnmatchcase(e, p) for p in slo.endpoints) for e in present],
            bool,
        )

    def latencies(self, chosen: np.ndarray | None) -> np.ndarray:
        """The latencies of the chosen endpoints' timed requests (in request order)."""
        wanted = self.timed
        if chosen is not None:
            wanted = np.empty(len(self.codes), bool)
            for start in range(0, len(wanted), COUNT_CHUNK):  # no 8-byte index of every request
                part = slice(start, start + COUNT_CHUNK)
                np.logical_and(chosen[self.codes[part]], self.timed[part], out=wanted[part])
        found: np.ndarray = self.latency_ms[wanted]
        return found


def _floats(column: pd.Series) -> np.ndarray:
    """A numeric column as floats (NaN: null or not a number), not copied when it is
    numpy floats already (float32 statuses stay float32: the same comparisons)."""
    if column.dtype.kind == "f" and isinstance(column.dtype, np.dtype):
        return column.to_numpy()
    return np.asarray(pd.to_numeric(column, errors="coerce").to_numpy(float))


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
    chosen = frame.select(slo, names)
    every = np.ones(len(frame.names), bool) if chosen is None else chosen
    count = int(frame.requests[every].sum())
    matched = tuple(sorted({frame.names[i] for i in np.flatnonzero(every & (frame.requests > 0))}))
    if count == 0 and len(frame.codes):
        wanted = sorted(names) if names is not None else slo.endpoints
        nothing = f"no request matches {', '.join(wanted)}"
        return SloResult(slo, None, None, 0, nothing, warning=nothing)
    value, reason = _measure(slo.metric, frame, chosen, count)
    if value is None:
        return SloResult(slo, None, None, count, reason, matched)
    return SloResult(slo, value, OPS[slo.op](value, slo.threshold), count, None, matched)


def _measure(
    metric: str, frame: _Frame, chosen: np.ndarray | None, count: int
) -> tuple[float | None, str | None]:
    """The metric over the chosen endpoints' requests (None: all), or why it has no value.
    A rate is its count over `count`, the value the mean of a per-request mask has (both
    exact integers divided once); a latency percentile is `np.quantile` of the selected
    latencies, which depends on their values only, not their order."""
    if count == 0:
        return None, "the trace holds no requests"
    if metric == "throughput_rps":
        span = frame.span_s or 0.0
        return (count / span, None) if span > 0 else (None, NO_SPAN)
    if not frame.has_responses:
        return None, NO_RESPONSES
    every = slice(None) if chosen is None else chosen
    if metric in RATE_METRICS:
        return int(frame.outcomes[metric][every].sum()) / count, None
    if not frame.timed_requests[every].sum():
        return None, f"no {frame.latency_column} among the selected responses"
    latency = np.asarray(frame.latencies(chosen), dtype=float)
    return float(np.quantile(latency, LATENCY_METRICS[metric], overwrite_input=True)), None


def _span_s(df: pd.DataFrame) -> float | None:
    """First to last request start, from t_s, sent_s (timing.parquet) or ts."""
    for column in ("t_s", "sent_s"):
        if column in df.columns:
            values = _floats(df[column])
            # fmax/fmin skip NaNs as dropna would, without a copy of every request's.
            if not values.size or np.isnan(high := np.fmax.reduce(values)):
                return None
            return float(high - np.fmin.reduce(values))
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
