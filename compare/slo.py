"""SLOs: thresholds on latency percentiles, error and success rates and throughput, per
endpoint pattern or overall, read from a TOML file (default_slo.toml documents it), judged.

Definitions (over the requests an SLO selects; see default_slo.toml for the file format):
- latency_pNN_ms: `np.quantile` (linear) of the latency column over selected requests
  that got a response (a status) and have a finite latency.
- error_rate: share with a transport error, no response, or status >= 500 (as in
  compare.json's error rate); 4xx are client errors, left to success_rate.
- success_rate: share with a response, no transport error and status < 400.
- throughput_rps: selected requests over the run's span (`span_s`, else first to last
  request start of the whole frame).
An SLO is not checkable (passed None, with a reason) when it selects no request, or when
the frame has no responses at all (a synthesized trace), or its metric has no samples.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from tracereplay.config import parse_toml, read_config_text
from tracereplay.errors import ConfigError, UsageError

DEFAULT_SLO_NAME = "default_slo.toml"
LATENCY_METRICS = {"latency_p50_ms": 0.50, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}
RATE_METRICS = ("error_rate", "success_rate")
METRICS = (*LATENCY_METRICS, *RATE_METRICS, "throughput_rps")
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
NO_RESPONSES = "the trace has no responses (synthetic?): nothing to judge"
DISABLED = "disabled: measured, not judged unless enabled by name"
SIGNIFICANT_DIGITS = 6

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_KEYS = {"metric", "op", "threshold", "endpoints", "enabled"}


@dataclass(frozen=True)
class Slo:
    """One threshold: `metric op threshold` over the requests `endpoints` select."""

    name: str
    metric: str
    op: str
    threshold: float
    endpoints: tuple[str, ...] = ("*",)
    """Glob patterns over "METHOD /template"; "*" selects every request."""
    enabled: bool = True

    def describe(self) -> str:
        """The threshold as people write it: "< 500 ms", ">= 99 %", ">= 1000 req/s"."""
        if self.metric in RATE_METRICS:
            return f"{self.op} {_g(self.threshold * 100)} %"
        unit = "req/s" if self.metric == "throughput_rps" else "ms"
        return f"{self.op} {_g(self.threshold)} {unit}"


@dataclass(frozen=True)
class SloResult:
    """The measured value and verdict of one SLO; passed None when not checkable."""

    slo: Slo
    value: float | None
    passed: bool | None
    requests: int
    """How many requests the SLO's endpoints selected."""
    reason: str | None


# --- the file ---------------------------------------------------------------------------


def load_slos(path: Path | None = None) -> list[Slo]:
    """The SLOs in `path`, or the default ones; ConfigError on anything unusable."""
    text, source = read_config_text(
        path, label="SLO file", package=__package__ or "", default_name=DEFAULT_SLO_NAME
    )
    return parse_slos(text, source=source)


def parse_slos(text: str, *, source: str = "<string>") -> list[Slo]:
    """SLOs from TOML text, in file order; checked strictly (unknown keys are errors)."""
    where = f"SLO file {source}"
    raw = parse_toml(text, where)
    extra = sorted(set(raw) - {"version", "slo"})
    if extra:
        raise ConfigError(f"{where}: unknown key {extra[0]!r} (want version and [slo.NAME])")
    if raw.get("version", 1) != 1:
        raise ConfigError(f"{where}: version {raw['version']!r} not supported (want 1)")
    tables = raw.get("slo")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{where}: no [slo.NAME] tables")
    return [_slo(name, table, where) for name, table in tables.items()]


def _slo(name: str, table: Any, where: str) -> Slo:
    key = f"slo.{name}"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: SLO name {name!r} must be letters, digits, _ or -")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {key} must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {key}.{unknown[0]}")
    for required in ("metric", "op", "threshold"):
        if required not in table:
            raise ConfigError(f"{where}: missing {key}.{required}")
    metric, op, threshold = table["metric"], table["op"], table["threshold"]
    if metric not in METRICS:
        raise ConfigError(f"{where}: {key}.metric {metric!r} unknown (known: {', '.join(METRICS)})")
    if op not in OPS:
        raise ConfigError(f"{where}: {key}.op {op!r} unknown (known: {', '.join(OPS)})")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ConfigError(f"{where}: {key}.threshold must be a number")
    threshold = float(threshold)
    if metric in RATE_METRICS and not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"{where}: {key}.threshold must be a fraction in [0, 1] (0.01 = 1 %)")
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ConfigError(f"{where}: {key}.threshold must be a finite number >= 0")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: {key}.enabled must be true or false")
    endpoints = table.get("endpoints", ["*"])
    if not isinstance(endpoints, list) or not endpoints:
        raise ConfigError(f"{where}: {key}.endpoints must be a non-empty list of patterns")
    patterns = tuple(_pattern(p, f"{where}: {key}.endpoints") for p in endpoints)
    return Slo(name, metric, op, threshold, patterns, enabled)


def _pattern(pattern: Any, where: str) -> str:
    """A "*" or a "METHOD /path" glob, its method upper-cased as endpoint names have it."""
    if pattern == "*":
        return "*"
    method, _, path = pattern.partition(" ") if isinstance(pattern, str) else ("", "", "")
    if not method or not path.startswith(("/", "*")) or " " in path:
        raise ConfigError(
            f'{where}: {pattern!r} must be "*" or look like "METHOD /path" (e.g. "POST */login")'
        )
    return f"{method.upper()} {path}"


# --- judging ----------------------------------------------------------------------------


def evaluate_slos(
    slos: Sequence[Slo],
    requests: pd.DataFrame,
    *,
    latency_column: str = "duration_ms",
    enable: Sequence[str] = (),
    span_s: float | None = None,
) -> list[SloResult]:
    """Measure and judge each SLO over `requests` (columns: endpoint "METHOD /template",
    the latency column, status, error, and t_s, sent_s or ts for throughput). `enable`
    turns disabled SLOs on by name; `span_s` overrides the run's span for throughput."""
    names = {slo.name for slo in slos}
    unknown = [name for name in enable if name not in names]
    if unknown:
        raise UsageError(f"unknown SLO {unknown[0]!r} (known: {', '.join(sorted(names))})")
    if "endpoint" not in requests.columns:
        raise ValueError("evaluate_slos needs an 'endpoint' column (see add_endpoints)")
    frame = _Frame.of(requests, latency_column, span_s)
    results = []
    for slo in slos:
        result = _evaluate(slo, frame)
        if not (slo.enabled or slo.name in enable):
            result = SloResult(slo, result.value, None, result.requests, DISABLED)
        results.append(result)
    return results


@dataclass(frozen=True)
class _Frame:
    """The columns SLOs need, as plain arrays, computed once per frame."""

    endpoints: np.ndarray
    latency_ms: np.ndarray
    has_status: np.ndarray
    failed: np.ndarray
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
        with np.errstate(invalid="ignore"):  # NaN statuses compare False, as wanted
            failed = error | ~has_status | (status >= 500)
            ok = ~error & has_status & (status < 400)
        return cls(
            endpoints=df["endpoint"].astype(str).to_numpy(object),
            latency_ms=latency,
            has_status=has_status,
            failed=failed,
            ok=ok,
            # A synthesized trace was never sent: no status and no error anywhere. A
            # replay where everything failed still has errors, and is judged.
            has_responses=bool(has_status.any() or error.any()),
            span_s=span_s if span_s is not None else _span_s(df),
            latency_column=latency_column,
        )

    def select(self, patterns: Sequence[str]) -> np.ndarray:
        if "*" in patterns:
            return np.ones(len(self.endpoints), dtype=bool)
        # Endpoints repeat: match each distinct name once.
        names = {str(e) for e in self.endpoints}
        chosen = {e for e in names if any(fnmatchcase(e, p) for p in patterns)}
        return np.fromiter((e in chosen for e in self.endpoints), bool, len(self.endpoints))


def _evaluate(slo: Slo, frame: _Frame) -> SloResult:
    selected = frame.select(slo.endpoints)
    count = int(selected.sum())

    def unchecked(reason: str) -> SloResult:
        return SloResult(slo, None, None, count, reason)

    if count == 0:
        if not len(frame.endpoints):
            return unchecked("the trace holds no requests")
        return unchecked(f"no request matches {', '.join(slo.endpoints)}")
    if slo.metric == "throughput_rps":
        if frame.span_s is None or not frame.span_s > 0:
            return unchecked("the trace spans no time: no throughput")
        value = count / frame.span_s
    elif not frame.has_responses:
        return unchecked(NO_RESPONSES)
    elif slo.metric == "error_rate":
        value = float(frame.failed[selected].mean())
    elif slo.metric == "success_rate":
        value = float(frame.ok[selected].mean())
    else:
        latency = frame.latency_ms[selected & frame.has_status]
        latency = latency[np.isfinite(latency)]
        if not latency.size:
            return unchecked(f"no {frame.latency_column} among the selected responses")
        value = float(np.quantile(latency, LATENCY_METRICS[slo.metric]))
    return SloResult(slo, value, OPS[slo.op](value, slo.threshold), count, None)


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
    checked, then checked is false), and one entry per SLO in file order."""
    verdicts = [r.passed for r in results if r.passed is not None]
    return {
        "passed": all(verdicts) if verdicts else None,
        "checked": bool(verdicts),
        "failed": [r.slo.name for r in results if r.passed is False],
        "results": [
            {
                "name": r.slo.name,
                "metric": r.slo.metric,
                "op": r.slo.op,
                "threshold": r.slo.threshold,
                "endpoints": list(r.slo.endpoints),
                "enabled": r.slo.enabled,
                "value": _round(r.value),
                "passed": r.passed,
                "requests": r.requests,
                "reason": r.reason,
            }
            for r in results
        ],
    }


def render_slos(results: Sequence[SloResult], console: Console) -> None:
    """A table: slo, endpoints, requests, value, threshold, verdict; then the reasons."""
    table = Table(title="SLOs")
    for column in ("slo", "endpoints", "requests", "value", "threshold", "verdict"):
        table.add_column(column, justify="left" if column in ("slo", "endpoints") else "right")
    for r in results:
        verdict = {True: "pass", False: "[red]FAIL[/red]", None: "n/a"}[r.passed]
        if r.reason == DISABLED:
            verdict = "off"
        table.add_row(
            r.slo.name,
            ", ".join(r.slo.endpoints),
            str(r.requests),
            _value(r.slo, r.value),
            r.slo.describe(),
            verdict,
        )
    console.print(table)
    for r in results:
        if r.reason and r.reason != DISABLED:
            console.print(f"[dim]{r.slo.name}: {r.reason}[/dim]")


def _value(slo: Slo, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.4g} %" if slo.metric in RATE_METRICS else f"{value:.4g}"


def _round(value: float | None) -> float | None:
    # Same rounding as compare.json, so the document is byte-identical across runs.
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _g(number: float) -> str:
    return f"{number:g}"
