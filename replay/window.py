"""What the source says about a run's window: the real request rate over it (the yardstick
of `achieved_scale`) and how long its sessions last (the default --grace).

The real rate is the real trace's requests in the stretch of its clock the window plays
([0, window × speed), the curve repeating past the trace's end as arrivals do), per wall
second of the window. A model carries its trace's requests per arrival bucket and its
sessions' p99 duration (models/sessions.py); an older model without them gives its mean
request rate and its longest session quantile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.trace import open_trace

MIN_GRACE_S = 1.0


def trace_figures(path: Path) -> tuple[np.ndarray, float]:
    """(request start times from the first one, in seconds; the p99 session duration)."""
    table = open_trace(path).to_table(["ts", "session"], sort=False)
    ts = table["ts"].cast(pa.int64()).to_numpy().astype(np.int64)
    t_s = (ts - ts.min()) / 1e6
    keyed = table.filter(pc.is_valid(table["session"]))
    spans = keyed.group_by("session").aggregate([("ts", "min"), ("ts", "max")])
    if spans.num_rows:
        low = spans["ts_min"].cast(pa.int64()).to_numpy()
        high = spans["ts_max"].cast(pa.int64()).to_numpy()
        p99 = float(np.percentile((high - low) / 1e6, 99))
    else:
        p99 = 0.0
    return np.sort(t_s), p99


def trace_real_rps(t_s: np.ndarray, window_s: float, speed: float) -> float | None:
    """Requests of the trace in [0, window × speed) per wall second of the window."""
    if window_s <= 0 or not len(t_s):
        return None
    span = float(t_s[-1])
    stretch = window_s * speed
    if span <= 0:
        return len(t_s) / window_s
    laps, rest = divmod(stretch, span)
    count = laps * len(t_s) + np.count_nonzero(t_s < rest)
    return float(count) / window_s


def model_real_rps(model: dict[str, Any], window_s: float, speed: float) -> float | None:
    """The same for a model: its trace's requests per arrival bucket, uniform within one."""
    if window_s <= 0:
        return None
    curve = _mapping(_mapping(model.get("sessions")).get("requests"))
    counts, bucket_s = curve.get("counts"), curve.get("bucket_s")
    prov = _mapping(model.get("provenance"))
    span = _finite(prov.get("span_s"))
    bucket = _finite(bucket_s)
    if isinstance(counts, list) and _counts(counts) and bucket and span:
        edges = np.minimum(np.arange(len(counts) + 1) * bucket, span)
        cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=float))])
        laps, rest = divmod(window_s * speed, span)
        count = laps * float(cumulative[-1]) + float(np.interp(rest, edges, cumulative))
        return count / window_s
    rows = _finite(prov.get("rows"))
    if rows and span:  # an older model: the mean rate
        return rows / span * speed
    return None


def model_grace_s(model: dict[str, Any], speed: float) -> float | None:
    """The model's p99 session duration (else its longest quantile), in wall seconds."""
    durations = _mapping(_mapping(model.get("sessions")).get("duration_s"))
    for key in ("p99", "max", "p95"):
        value = _finite(durations.get(key))
        if value is not None:
            return max(MIN_GRACE_S, value / speed)
    return None


def _mapping(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: the model file is user input."""
    return value if isinstance(value, dict) else {}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _counts(values: Any) -> bool:
    return (
        isinstance(values, Sequence)
        and len(values) > 0
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in values
        )
    )


def run_figures(
    source: Path,
    kind: str,
    *,
    window_s: float,
    speed: float,
    grace_s: float | None,
    profile: str | None,
) -> tuple[float, float | None]:
    """(--grace, given or from the source; the real rate over the window, None under a
    profile: its curve is not the trace's)."""
    if kind == "model":
        from tracereplay.models.model import load_model

        model = load_model(source)
        grace = grace_s if grace_s is not None else model_grace_s(model, speed)
        real = None if profile is not None else model_real_rps(model, window_s, speed)
    else:
        t_s, p99 = trace_figures(source)
        grace = grace_s if grace_s is not None else max(MIN_GRACE_S, p99 / speed)
        real = trace_real_rps(t_s, window_s, speed)
    return (grace if grace is not None else DEFAULT_GRACE_S), real


DEFAULT_GRACE_S = 30.0
"""--grace when the source says nothing of its sessions' durations."""
