"""Scenario profiles (`tracereplay replay MODEL --profile NAME`): the FlowMastery plan's
peak, spike, soak and stress tests, each a reshaping of the model's arrival curve, and what
each one reports afterwards (`profile` in summary.json).

Profiles shape session *arrivals* only; sessions themselves (behaviors, think times,
payloads) are synthesized as in any model replay. Times below are trace seconds (the
model's clock); a replay runs them `--speed` times faster, so its window of session starts
is the trace window / speed. The mean rate m is the model's sessions / span.

* peak: the busiest window of the curve (highest expected session count, bucket-aligned,
  earliest on ties), replayed at N× (`--scale`). Its width is `--duration` × speed, by
  default 1/12 of the span (two hours of a day) rounded to whole buckets.
* spike: a flat m for the window (`--duration`, default the span / speed), with N× m in
  its middle fifth ([40 %, 60 %) of the window): a sudden burst and back. Reports p95
  latency, errors and throughput before, during and after the burst.
* soak: a flat N× m for the window (give a long `--duration`). Reports latency drift (p95
  per tenth of the run; Theil–Sen slope, first vs last tenth) and memory drift (RSS of
  the load generator and of `--watch-pid` processes, sampled every half second, after a
  warm-up of 10 s or the first tenth of the run, the longer).
* stress: peak windows at N = each of `--steps` in turn until an SLO fails (see
  replay/stress.py); the capacity is the highest N that passed.

Drift is flagged ("drifting") when the last tenth is >= 20 % above the first and the
Theil–Sen slope's 95 % interval lies above zero: a trend, not a noisy end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tracereplay.errors import UsageError
from tracereplay.models.arrivals import ArrivalModel

if TYPE_CHECKING:  # the reports' frames; scipy and compare are imported where a report runs
    import pandas as pd

PROFILES = ("peak", "spike", "soak", "stress")
PEAK_DEFAULT_SHARE = 1 / 12
SPIKE_PIECES = 5  # the window is drawn as five equal pieces, the middle one N×
SPIKE_PHASES = (  # the burst, as fractions of the window: [0.4, 0.6)
    (SPIKE_PIECES // 2) / SPIKE_PIECES,
    (SPIKE_PIECES // 2 + 1) / SPIKE_PIECES,
)
DRIFT_SLICES = 10
DRIFT_MIN_REQUESTS = 20  # per slice; fewer slices when the run is small
DRIFT_MIN_CHANGE = 0.20
MEMORY_SAMPLE_S = 0.5
MEMORY_WARMUP_S = 10.0
DIGITS = 4


def _r(value: float | None, digits: int = DIGITS) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


@dataclass(frozen=True)
class Shape:
    """The curve a profile replays: sample `arrivals` at `scale` and the replay's speed."""

    profile: str
    arrivals: ArrivalModel
    scale: float
    speed: float
    window_s: float
    """Wall seconds of planned session starts."""
    info: dict[str, Any] = field(default_factory=dict)


def check_profile(name: str | None) -> str | None:
    if name is not None and name not in PROFILES:
        raise UsageError(f"--profile {name!r}: choose one of {', '.join(PROFILES)}")
    return name


def _curve(
    bucket_s: float, rates: Sequence[float], span_s: float, real: ArrivalModel
) -> ArrivalModel:
    """An arrival curve of `rates` (sessions/s per bucket) over `span_s` trace seconds,
    whose starts keep `real`'s gaps in units of the local mean gap (`gap_shape`,
    `gap_quantiles`: rate-free by construction), as the model's own synthesis does."""
    rates = tuple(float(r) for r in rates)
    widths = [min(bucket_s, span_s - i * bucket_s) for i in range(len(rates))]
    peak = int(np.argmax(rates))
    return ArrivalModel(
        bucket_s=bucket_s,
        rates_per_s=rates,
        span_s=span_s,
        sessions=round(sum(r * w for r, w in zip(rates, widths, strict=True))),
        period_s=None,
        day_profile=None,
        dispersion={},
        peak_rate_per_s=rates[peak],
        peak_bucket=peak,
        bursts=(),
        gap_shape=real.gap_shape,
        gap_quantiles=real.gap_quantiles,
    )


def mean_rate(arrivals: ArrivalModel) -> float:
    """Sessions per trace second over the whole span."""
    return arrivals.sessions / arrivals.span_s if arrivals.span_s > 0 else 0.0


def _window_trace_s(arrivals: ArrivalModel, duration_s: float | None, speed: float) -> float:
    if duration_s is None:
        return arrivals.span_s
    return float(duration_s) * speed


def busiest_window(arrivals: ArrivalModel, width_s: float) -> tuple[float, float]:
    """(start, expected sessions) of the bucket-aligned window of `width_s` trace seconds
    with the most expected sessions; the earliest of equals."""
    if not 0 < width_s <= arrivals.span_s * (1 + 1e-9):
        raise UsageError(
            f"a peak window of {width_s:g} trace seconds (--duration × --speed) must be > 0 "
            f"and fit the model's span of {arrivals.span_s:g} s"
        )
    b = arrivals.bucket_s
    rates = np.asarray(arrivals.rates_per_s, dtype=float)
    edges = np.minimum(np.arange(len(rates) + 1) * b, arrivals.span_s)
    # Expected sessions from 0 to t: piecewise linear through the bucket edges.
    cumulative = np.concatenate([[0.0], np.cumsum(rates * np.diff(edges))])
    starts = np.arange(max(0, math.floor((arrivals.span_s - width_s) / b + 1e-9)) + 1) * b
    expected = np.interp(starts + width_s, edges, cumulative) - np.interp(starts, edges, cumulative)
    best = int(np.argmax(np.round(expected, 9)))  # the first of equal maxima
    return float(starts[best]), float(expected[best])


def default_peak_width_s(arrivals: ArrivalModel) -> float:
    """1/12 of the span rounded to whole buckets (at least one, at most the span)."""
    buckets = max(1, round(arrivals.span_s * PEAK_DEFAULT_SHARE / arrivals.bucket_s))
    return min(buckets * arrivals.bucket_s, arrivals.span_s)


def shape(
    profile: str,
    arrivals: ArrivalModel,
    *,
    scale: float,
    speed: float,
    duration_s: float | None,
) -> Shape:
    """The arrival curve of `profile` (stress: one step, i.e. a peak window at `scale`)."""
    check_profile(profile)
    if not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"--scale must be > 0, not {scale!r}")
    if arrivals.span_s <= 0 or arrivals.sessions == 0:
        raise UsageError("the model has no session arrivals to shape into a profile")
    m = mean_rate(arrivals)
    if profile in ("peak", "stress"):
        width = (
            default_peak_width_s(arrivals)
            if duration_s is None
            else _window_trace_s(arrivals, duration_s, speed)
        )
        start, expected = busiest_window(arrivals, width)
        first = round(start / arrivals.bucket_s)
        rates = arrivals.rates_per_s[first : first + math.ceil(width / arrivals.bucket_s - 1e-9)]
        curve = _curve(arrivals.bucket_s, rates, width, arrivals)
        info = {
            "trace_window_s": [_r(start, 9), _r(start + width, 9)],
            "window_rate_per_s": _r(expected / width),
            "mean_rate_per_s": _r(m),
        }
        return Shape("peak" if profile == "peak" else "stress", curve, scale, speed,
                     width / speed, info)  # fmt: skip
    width = _window_trace_s(arrivals, duration_s, speed)
    if not (math.isfinite(width) and width > 0):
        raise UsageError(f"--duration must be > 0, not {duration_s!r}")
    if profile == "spike":
        if scale <= 1:
            raise UsageError(f"--scale of a spike is its height, N > 1, not {scale:g}")
        piece = width / SPIKE_PIECES
        heights = [m * (scale if i == SPIKE_PIECES // 2 else 1.0) for i in range(SPIKE_PIECES)]
        info = {
            "base_rate_per_s": _r(m),
            "spike_s": [_r(SPIKE_PHASES[0] * width / speed), _r(SPIKE_PHASES[1] * width / speed)],
        }
        return Shape(
            "spike", _curve(piece, heights, width, arrivals), 1.0, speed, width / speed, info
        )
    return Shape(
        "soak",
        _curve(width, [m], width, arrivals),
        scale,
        speed,
        width / speed,
        {"base_rate_per_s": _r(m)},
    )


# --- what a profile run reports --------------------------------------------------------


def _p95(values: Any) -> float | None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return _r(float(np.quantile(v, 0.95))) if v.size else None


def _phase(frame: pd.DataFrame, seconds: float) -> dict[str, Any]:
    from tracereplay.compare.measures import error_rate  # scipy: only for a report

    return {
        "requests": len(frame),
        "rps": _r(len(frame) / seconds) if seconds > 0 else None,
        "latency_p95_ms": _p95(frame["latency_ms"]),
        "latency_intended_p95_ms": _p95(frame["latency_intended_ms"]),
        "error_rate": _r(error_rate(frame)) if len(frame) else None,
    }


def spike_report(timing: pd.DataFrame, zero_s: float, shaped: Shape) -> dict[str, Any]:
    """Before, during and after the burst, by the requests' send times."""
    t = timing["sent_s"].to_numpy(float) - zero_s
    a, b = (f * shaped.window_s for f in SPIKE_PHASES)
    end = max(float(t.max()) if t.size else b, b)
    phases = {
        "before": (t < a, a),
        "during": ((t >= a) & (t < b), b - a),
        "after": (t >= b, end - b),
    }
    out = {name: _phase(timing[mask], seconds) for name, (mask, seconds) in phases.items()}
    before, after = out["before"]["latency_p95_ms"], out["after"]["latency_p95_ms"]
    ratio = after / before if before and after is not None else None
    return {"phases": out, "after_vs_before_p95": _r(ratio)}


def _drift(times_s: np.ndarray, values: np.ndarray, per: float) -> dict[str, Any]:
    """Theil–Sen slope of `values` over `times_s` (per `per` seconds), with its 95 %
    interval, and the change from the first value to the last."""
    if len(values) < 3 or not np.isfinite(values).all():
        return {"slope": None, "slope_low": None, "slope_high": None, "change": None,
                "drifting": None}  # fmt: skip
    from scipy import stats  # ~1 s of imports: only for a soak's report, never in a worker

    slope, _, low, high = stats.theilslopes(values, times_s, alpha=0.95)
    first, last = float(values[0]), float(values[-1])
    change = (last - first) / first if first > 0 else None
    drifting = bool(change is not None and change >= DRIFT_MIN_CHANGE and low > 0)
    return {
        "slope": _r(slope * per),
        "slope_low": _r(low * per),
        "slope_high": _r(high * per),
        "change": _r(change),
        "drifting": drifting,
    }


def latency_drift(timing: pd.DataFrame, zero_s: float) -> dict[str, Any]:
    """p95 latency per slice of the run (up to ten slices of >= 20 requests each)."""
    frame = timing[np.isfinite(timing["latency_ms"].to_numpy(float))]
    t = frame["sent_s"].to_numpy(float) - zero_s
    slices = min(DRIFT_SLICES, len(frame) // DRIFT_MIN_REQUESTS)
    if slices < 3:
        return {"slices": [], **_drift(np.zeros(0), np.zeros(0), 3600.0)}
    edges = np.linspace(float(t.min()), float(t.max()), slices + 1)
    which = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, slices - 1)
    latency = frame["latency_ms"].to_numpy(float)
    mids, p95s = [], []
    for k in range(slices):
        chosen = latency[which == k]
        if chosen.size:
            mids.append((edges[k] + edges[k + 1]) / 2)
            p95s.append(float(np.quantile(chosen, 0.95)))
    drift = _drift(np.asarray(mids), np.asarray(p95s), 3600.0)
    return {
        "slices": [{"t_s": _r(m, 6), "p95_ms": _r(p)} for m, p in zip(mids, p95s, strict=True)],
        "unit": "ms per hour",
        **drift,
    }


def memory_drift(samples: Sequence[tuple[float, str, int]]) -> dict[str, Any]:
    """Per watched process: RSS at the start, end and highest, and its drift (MB/hour),
    after a warm-up (MEMORY_WARMUP_S or the first tenth of the run, the longer): a process
    that is still importing its code or filling its caches is not leaking."""
    out: dict[str, Any] = {}
    if not samples:
        return out
    warmup = max(MEMORY_WARMUP_S, 0.1 * max(t for t, _, _ in samples))
    for label in sorted({label for _, label, _ in samples}):
        rows = [(t, rss) for t, name, rss in samples if name == label and t >= warmup]
        if not rows:
            continue
        times = np.asarray([t for t, _ in rows], dtype=float)
        mb = np.asarray([rss for _, rss in rows], dtype=float) / 1e6
        out[label] = {
            "samples": len(rows),
            "start_mb": _r(float(mb[0])),
            "end_mb": _r(float(mb[-1])),
            "max_mb": _r(float(mb.max())),
            "unit": "MB per hour",
            **_drift(times, mb, 3600.0),
        }
    return out


def soak_report(
    timing: pd.DataFrame, zero_s: float, samples: Sequence[tuple[float, str, int]]
) -> dict[str, Any]:
    return {"latency": latency_drift(timing, zero_s), "memory": memory_drift(samples)}


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:g} ms"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _signed_pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:+.1f} %"


def describe(report: dict[str, Any]) -> str:
    """One or two lines for the console from summary.json's `profile`."""
    name = report.get("name")
    if name in ("peak", "stress"):
        lo, hi = report.get("trace_window_s") or [None, None]
        return (
            f"{name}: the busiest window, trace {lo:g}–{hi:g} s "
            f"({report.get('window_rate_per_s')} sessions/s there, "
            f"{report.get('mean_rate_per_s')} on average) at {report.get('scale'):g}×"
        )
    if name == "spike":
        phases = report.get("phases") or {}
        parts = [
            f"{phase} p95 {_ms(p.get('latency_p95_ms'))}, {p.get('rps')} req/s, "
            f"errors {_pct(p.get('error_rate'))}"
            for phase, p in phases.items()
        ]
        return "spike: " + "; ".join(parts)
    if name == "soak":
        latency = report.get("latency") or {}
        lines = [
            f"soak: latency p95 {_signed_pct(latency.get('change'))} first to last tenth, "
            f"slope {latency.get('slope')} ms/h"
            + (" — DRIFTING" if latency.get("drifting") else "")
        ]
        for label, m in (report.get("memory") or {}).items():
            lines.append(
                f"  memory {label}: {m.get('start_mb')} → {m.get('end_mb')} MB "
                f"(max {m.get('max_mb')}, slope {m.get('slope')} MB/h)"
                + (" — DRIFTING" if m.get("drifting") else "")
            )
        return "\n".join(lines)
    return f"profile {name}"
