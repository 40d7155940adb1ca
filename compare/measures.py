"""The measurements `compare` is made of, one trace or a pair at a time: KS tests, mix
divergences, the arrival-rate curve and burstiness, latency percentiles, error rates, and
the comparison records they fill (compare/compare.py documents the definitions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from tracereplay.models.arrivals import (
    MIN_WINDOWS,
    arrival_rate_mape,
    dispersion_index,
    fit_arrivals,
    rate_curve,
)

LATENCY_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
SIGNIFICANT_DIGITS = 6
NO_STATUS = "other trace has no responses (synthetic): nothing to compare"
NO_DURATION = "other trace has no durations (synthetic): nothing to compare"

Json = dict[str, Any]


@dataclass(frozen=True)
class SampleComparison:
    """One quantity sampled in both traces, compared by the two-sample KS statistic D."""

    ks: float | None
    pvalue: float | None
    real_mean: float | None
    other_mean: float | None
    real_n: int
    other_n: int
    reason: str | None = None

    def to_json(self) -> Json:
        return asdict(self)


@dataclass(frozen=True)
class MixComparison:
    """Two categorical distributions (shares by label); `other` is None when unknown."""

    jsd: float | None
    max_share_error: float | None
    worst: str | None
    real: Mapping[str, float]
    other: Mapping[str, float] | None
    reason: str | None = None

    def to_json(self, worst_key: str) -> Json:
        doc = asdict(self)
        doc[worst_key] = doc.pop("worst")
        return doc


@dataclass(frozen=True)
class ArrivalComparison:
    mape: float | None
    bucket_s: float | None
    real: tuple[float, ...]
    other_scaled: tuple[float, ...]
    reason: str | None = None

    def to_json(self, scale: float) -> Json:
        return {**asdict(self), "scale": scale}


# --- the measurements ---------------------------------------------------------------


def ks(real: Any, other: Any) -> SampleComparison:
    r, o = _finite(real), _finite(other)
    mean_r = float(r.mean()) if r.size else None
    mean_o = float(o.mean()) if o.size else None
    if not r.size or not o.size:
        side = "real" if not r.size else "other"
        return SampleComparison(None, None, mean_r, mean_o, r.size, o.size, f"no {side} samples")
    test = ks_2samp(r, o)
    return SampleComparison(
        float(test.statistic), float(test.pvalue), mean_r, mean_o, r.size, o.size
    )


def mix(real: pd.Series, other: pd.Series | None, reason: str | None = None) -> MixComparison:
    real_shares = _shares(real)
    if other is None:
        return MixComparison(None, None, None, real_shares, None, reason)
    other_shares = _shares(other)
    labels = sorted(set(real_shares) | set(other_shares))
    p = np.array([real_shares.get(k, 0.0) for k in labels])
    q = np.array([other_shares.get(k, 0.0) for k in labels])
    jsd = float(jensenshannon(p, q, base=2) ** 2)
    errors = np.abs(p - q)
    worst = int(np.argmax(errors))  # first of equal maxima: labels are sorted, so stable
    worst_label = labels[worst] if errors[worst] > 0 else None
    return MixComparison(jsd, float(errors[worst]), worst_label, real_shares, other_shares)


def _shares(labels: pd.Series) -> dict[str, float]:
    counts = labels.value_counts()
    total = float(counts.sum())
    return {str(k): float(v) / total for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))}


def arrival_rate(
    starts_r: np.ndarray, span_r: float, starts_o: np.ndarray, span_o: float, scale: float
) -> ArrivalComparison:
    if span_r <= 0 or span_o <= 0:
        return ArrivalComparison(None, None, (), (), "a trace spans no time: no rate curve")
    bucket_s = float(fit_arrivals(starts_r, span_r).bucket_s)
    real = np.asarray(rate_curve(starts_r, span_r, bucket_s), dtype=float)
    other = np.asarray(rate_curve(starts_o, span_o, bucket_s), dtype=float)
    # Whole buckets of the overlap only: a last bucket cut short by one span holds too few
    # seconds to say much, and would be cut at another place in the other trace.
    common = max(1, math.floor(min(span_r, span_o) / bucket_s + 1e-9))
    real, other = real[:common], other[:common]
    mape = float(arrival_rate_mape(real, other, scale))
    scaled = other / scale
    return ArrivalComparison(
        mape if math.isfinite(mape) else None,
        bucket_s,
        tuple(float(x) for x in real),
        tuple(float(x) for x in scaled),
        None if math.isfinite(mape) else "MAPE undefined (real rate is zero everywhere)",
    )


def dispersion(starts: np.ndarray, span_s: float, window_s: float) -> float | None:
    # As in the model file: an index of dispersion needs several windows to mean anything.
    if span_s < MIN_WINDOWS * window_s:
        return None
    value = float(dispersion_index(starts, span_s, window_s))
    return value if math.isfinite(value) else None


def latency(real: pd.DataFrame, other: pd.DataFrame) -> Json:
    real_q = _latency_table(real)
    other_q = _latency_table(other)
    endpoints = sorted((set(real_q) | set(other_q)) - {"(all)"})
    return {
        "real": real_q.get("(all)"),
        "other": other_q.get("(all)"),
        "by_endpoint": {e: {"real": real_q.get(e), "other": other_q.get(e)} for e in endpoints},
        "reason": None if other_q else NO_DURATION,
    }


def _latency_table(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Duration quantiles per endpoint and over all requests ("(all)"); {} if none."""
    if "duration_ms" not in df.columns:
        return {}
    timed = df.loc[df["duration_ms"].notna(), ["endpoint", "duration_ms"]]
    if timed.empty:
        return {}
    timed = timed.assign(endpoint=timed["endpoint"].astype(str))
    out = {"(all)": _quantiles(timed["duration_ms"])}
    for endpoint, group in timed.groupby("endpoint", sort=True):
        out[str(endpoint)] = _quantiles(group["duration_ms"])
    return out


def _quantiles(values: pd.Series) -> dict[str, float]:
    sample = values.to_numpy(float)
    return {name: float(np.quantile(sample, q)) for name, q in LATENCY_QUANTILES.items()}


def error_rate(df: pd.DataFrame) -> float:
    status = _status(df)
    failed = status.isna() | (status >= 500)
    if "error" in df.columns:
        failed |= df["error"].notna() & (df["error"].astype(object) != "")
    return float(failed.mean())


# --- small helpers ------------------------------------------------------------------


def span_s(df: pd.DataFrame) -> float:
    # t_s starts at the trace's time origin (models/frame.py), not at its first request.
    return float(df["t_s"].max())


def per_s(count: int, span_s: float) -> float | None:
    return count / span_s if span_s > 0 else None


def estimate_scale(real_n: int, real_span: float, other_n: int, other_span: float) -> float:
    """other sessions/s over real sessions/s, to 2 significant digits; 1 when a trace
    spans no time (nothing better to say)."""
    if real_span <= 0 or other_span <= 0:
        return 1.0
    ratio = (other_n / other_span) / (real_n / real_span)
    return float(f"{ratio:.2g}")


def _status(df: pd.DataFrame) -> pd.Series:
    if "status" not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df["status"], errors="coerce").astype(float)


def responded(df: pd.DataFrame) -> bool:
    """False for a trace whose requests were never sent (synthetic): no status and no
    transport error anywhere. A replay where everything failed still has errors."""
    if _status(df).notna().any():
        return True
    return "error" in df.columns and bool(df["error"].notna().any())


def status_labels(df: pd.DataFrame) -> pd.Series:
    status = _status(df)
    return status.map(lambda s: "none" if math.isnan(s) else str(int(s)))


def _finite(values: Any) -> np.ndarray:
    array: np.ndarray = np.asarray(values, dtype=float)
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def round_floats(value: Any) -> Any:
    """Floats to SIGNIFICANT_DIGITS significant digits, non-finite ones to None, so the
    JSON is byte-identical across runs and platforms."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        return float(f"{number:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(number) else None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): round_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [round_floats(v) for v in value]
    return value
