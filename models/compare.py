"""How close a synthetic or replayed trace (OTHER) is to a real one (REAL): the numbers of
`tracereplay compare`, their compare.json form and a short rich table.

Definitions (both traces sessionized alike; endpoints from a templater fitted on REAL):
- Jensen-Shannon divergence: `scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2`,
  i.e. the squared JS distance, in [0, 1]; the fidelity goal 0.01 refers to it.
- `max_share_error`: max over endpoints of |share_real - share_other|, in share units.
- KS: the two-sample statistic D of `scipy.stats.ks_2samp`, with its p-value.
- Scale N: given, else estimated as other sessions/s over real sessions/s (each over its
  own trace span), rounded to 2 significant digits.
- Interarrival: gaps between consecutive session starts; OTHER's gaps are multiplied by N
  because N times more sessions arrive N times closer together.
- Arrival rate: session starts per second on the bucket grid of REAL's `fit_arrivals`;
  OTHER's curve divided by N; MAPE (`arrival_rate_mape`, buckets where REAL > 0) over the
  whole buckets both traces cover (each trace's clock starts at its first request, so a
  shorter OTHER is compared over its own length; one bucket when the overlap is shorter).
- Think time: the sessions' `think_s` (NaN dropped); session length in requests, duration
  from first to last request start.
- Status mix: shares of exact status codes ("none" when no response came).
- Error rate: share of requests with a transport error, no response, or status >= 500.
- A synthetic OTHER (no status, no error anywhere) has null status mix, error rate and
  latency, with a reason: never zero.
- Burstiness: `dispersion_index` of session starts per window, as in the model file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from tracereplay.errors import TraceEmptyError, UsageError

from .arrivals import (
    DISPERSION_WINDOWS_S,
    MIN_WINDOWS,
    arrival_rate_mape,
    dispersion_index,
    fit_arrivals,
    rate_curve,
)
from .frame import load_requests
from .sessions import DEFAULT_SESSION_TIMEOUT_S, session_table, sessionize
from .slo import Slo, SloResult, evaluate_slos, slo_json
from .templating import Templater, add_endpoints

FIDELITY_GOALS: dict[str, float] = {
    "endpoint_mix.jsd": 0.01,
    "session_length.ks": 0.05,
    "think_time.ks": 0.05,
    "interarrival.ks": 0.05,
    "arrival_rate.mape": 0.10,
}
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


@dataclass(frozen=True)
class CompareResult:
    """Everything `compare` measured; `to_json` is the compare.json document."""

    requests: tuple[int, int]
    sessions: tuple[int, int]
    scale: float
    scale_estimated: bool
    endpoint_mix: MixComparison
    session_length: SampleComparison
    session_duration: SampleComparison
    think_time: SampleComparison
    interarrival: SampleComparison
    arrival_rate: ArrivalComparison
    status_mix: MixComparison
    burstiness: tuple[tuple[float, float | None, float | None], ...]
    latency_ms: Json
    errors: tuple[float | None, float | None]
    throughput_rps: tuple[float | None, float | None]
    slo_results: tuple[SloResult, ...] | None = None
    """OTHER's requests against the SLOs, when some were given."""

    @property
    def slo(self) -> Json | None:
        return None if self.slo_results is None else slo_json(self.slo_results)

    @property
    def slo_passed(self) -> bool | None:
        return None if self.slo is None else self.slo.get("passed")

    def metric_values(self) -> dict[str, float | None]:
        """The values the fidelity goals refer to, by compare.json key."""
        return {
            "endpoint_mix.jsd": self.endpoint_mix.jsd,
            "session_length.ks": self.session_length.ks,
            "think_time.ks": self.think_time.ks,
            "interarrival.ks": self.interarrival.ks,
            "arrival_rate.mape": self.arrival_rate.mape,
        }

    def fidelity(self) -> dict[str, bool | None]:
        """Per goal: value <= goal; None when the value could not be computed."""
        values = self.metric_values()
        return {
            name: None if (value := values[name]) is None else value <= goal
            for name, goal in FIDELITY_GOALS.items()
        }

    @property
    def fidelity_passed(self) -> bool | None:
        """All computed goals met; None when none could be computed."""
        checked = [ok for ok in self.fidelity().values() if ok is not None]
        return all(checked) if checked else None

    def to_json(self) -> Json:
        doc: Json = {
            "requests": {"real": self.requests[0], "other": self.requests[1]},
            "sessions": {"real": self.sessions[0], "other": self.sessions[1]},
            "scale": self.scale,
            "scale_source": "estimated" if self.scale_estimated else "given",
            "endpoint_mix": self.endpoint_mix.to_json("worst_endpoint"),
            "session_length": self.session_length.to_json(),
            "session_duration": self.session_duration.to_json(),
            "think_time": self.think_time.to_json(),
            "interarrival": self.interarrival.to_json(),
            "arrival_rate": self.arrival_rate.to_json(self.scale),
            "status_mix": self.status_mix.to_json("worst_status"),
            "burstiness": {
                f"{window:g}s": {"real": real, "other": other}
                for window, real, other in self.burstiness
            },
            "latency_ms": self.latency_ms,
            "errors": {
                "real_rate": self.errors[0],
                "other_rate": self.errors[1],
                "reason": None if self.errors[1] is not None else NO_STATUS,
            },
            "throughput_rps": {"real": self.throughput_rps[0], "other": self.throughput_rps[1]},
            "fidelity": {
                "goal": dict(FIDELITY_GOALS),
                "value": self.metric_values(),
                "passed": self.fidelity(),
                "all_passed": self.fidelity_passed,
            },
            "slo": self.slo if self.slo is not None else {"passed": None, "checked": False},
        }
        rounded: Json = _round_floats(doc)
        return rounded


def compare_frames(
    real: pd.DataFrame,
    other: pd.DataFrame,
    *,
    scale: float | None = None,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    templater: Templater | None = None,
    slos: Sequence[Slo] | None = None,
    enable_slos: Sequence[str] = (),
) -> CompareResult:
    """Compare two request frames (from `load_requests`). Endpoints of both come from a
    templater fitted on REAL, so they line up; `scale` defaults to an estimate."""
    for name, frame in (("real", real), ("other", other)):
        if frame.empty:
            raise TraceEmptyError(f"{name}: the trace holds no requests")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"scale must be a positive number, not {scale}")
    real_s, other_s = sessionized_pair(
        real, other, templater=templater, session_timeout_s=session_timeout_s
    )
    return compare_sessionized(real_s, other_s, scale=scale, slos=slos, enable_slos=enable_slos)


def sessionized_pair(
    real: pd.DataFrame,
    other: pd.DataFrame,
    *,
    templater: Templater | None = None,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two request frames with endpoints and sessions, endpoints from a templater fitted
    on REAL unless one is given: what `compare_sessionized` and the report take."""
    if templater is None:
        pairs = zip(real["method"].astype(str), real["path"].fillna("/").astype(str), strict=True)
        templater = Templater.fit(pairs)
    real_s = sessionize(add_endpoints(real, templater), session_timeout_s)
    return real_s, sessionize(add_endpoints(other, templater), session_timeout_s)


def load_pair(real_path: Path, other_path: Path, **kw: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`sessionized_pair` over two trace directories."""
    return sessionized_pair(load_requests(real_path), load_requests(other_path), **kw)


def compare_sessionized(
    real_s: pd.DataFrame,
    other_s: pd.DataFrame,
    *,
    scale: float | None = None,
    slos: Sequence[Slo] | None = None,
    enable_slos: Sequence[str] = (),
) -> CompareResult:
    """`compare_frames` on frames `sessionized_pair` made (so a caller that also renders
    the report reads and sessionizes each trace once)."""
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"scale must be a positive number, not {scale}")
    real_t, other_t = session_table(real_s), session_table(other_s)
    real_span, other_span = _span_s(real_s), _span_s(other_s)
    n = scale or _estimate_scale(len(real_t), real_span, len(other_t), other_span)
    starts_r = np.sort(real_t["start_s"].to_numpy(float))
    starts_o = np.sort(other_t["start_s"].to_numpy(float))
    has_status = _has_status(other_s)
    return CompareResult(
        requests=(len(real_s), len(other_s)),
        sessions=(len(real_t), len(other_t)),
        scale=n,
        scale_estimated=scale is None,
        endpoint_mix=_mix(real_s["endpoint"].map(str), other_s["endpoint"].map(str)),
        session_length=_ks(real_t["length"], other_t["length"]),
        session_duration=_ks(real_t["duration_s"], other_t["duration_s"]),
        think_time=_ks(real_s["think_s"], other_s["think_s"]),
        interarrival=_ks(np.diff(starts_r), np.diff(starts_o) * n),
        arrival_rate=_arrival_rate(starts_r, real_span, starts_o, other_span, n),
        status_mix=(
            _mix(_status_labels(real_s), _status_labels(other_s))
            if has_status
            else _mix(_status_labels(real_s), None, NO_STATUS)
        ),
        burstiness=tuple(
            (w, _dispersion(starts_r, real_span, w), _dispersion(starts_o, other_span, w))
            for w in DISPERSION_WINDOWS_S
            if max(real_span, other_span) >= MIN_WINDOWS * w
        ),
        latency_ms=_latency(real_s, other_s),
        errors=(_error_rate(real_s), _error_rate(other_s) if has_status else None),
        throughput_rps=(_per_s(len(real_s), real_span), _per_s(len(other_s), other_span)),
        slo_results=(
            tuple(evaluate_slos(slos, other_s, enable=enable_slos)) if slos is not None else None
        ),
    )


def compare_traces(real_path: Path, other_path: Path, **kw: Any) -> CompareResult:
    """`compare_frames` over two trace directories."""
    return compare_frames(load_requests(real_path), load_requests(other_path), **kw)


def write_compare(result: CompareResult, out_dir: Path) -> Path:
    """Write out_dir/compare.json (pretty, sorted keys, 6 significant digits)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "compare.json"
    text = json.dumps(result.to_json(), indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


# --- the measurements ---------------------------------------------------------------


def _ks(real: Any, other: Any) -> SampleComparison:
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


def _mix(real: pd.Series, other: pd.Series | None, reason: str | None = None) -> MixComparison:
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


def _arrival_rate(
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


def _dispersion(starts: np.ndarray, span_s: float, window_s: float) -> float | None:
    # As in the model file: an index of dispersion needs several windows to mean anything.
    if span_s < MIN_WINDOWS * window_s:
        return None
    value = float(dispersion_index(starts, span_s, window_s))
    return value if math.isfinite(value) else None


def _latency(real: pd.DataFrame, other: pd.DataFrame) -> Json:
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


def _error_rate(df: pd.DataFrame) -> float:
    status = _status(df)
    failed = status.isna() | (status >= 500)
    if "error" in df.columns:
        failed |= df["error"].notna() & (df["error"].astype(object) != "")
    return float(failed.mean())


# --- small helpers ------------------------------------------------------------------


def _span_s(df: pd.DataFrame) -> float:
    # t_s starts at the trace's time origin (models/frame.py), not at its first request.
    return float(df["t_s"].max())


def _per_s(count: int, span_s: float) -> float | None:
    return count / span_s if span_s > 0 else None


def _estimate_scale(real_n: int, real_span: float, other_n: int, other_span: float) -> float:
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


def _has_status(df: pd.DataFrame) -> bool:
    """False for a trace whose requests were never sent (synthetic): no status and no
    transport error anywhere. A replay where everything failed still has errors."""
    if _status(df).notna().any():
        return True
    return "error" in df.columns and bool(df["error"].notna().any())


def _status_labels(df: pd.DataFrame) -> pd.Series:
    status = _status(df)
    return status.map(lambda s: "none" if math.isnan(s) else str(int(s)))


def _finite(values: Any) -> np.ndarray:
    array: np.ndarray = np.asarray(values, dtype=float)
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def _round_floats(value: Any) -> Any:
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
        return {str(k): _round_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round_floats(v) for v in value]
    return value
