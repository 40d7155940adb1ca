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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracereplay.errors import TraceEmptyError, UsageError
from tracereplay.models.arrivals import (
    DISPERSION_WINDOWS_S,
    MIN_WINDOWS,
)
from tracereplay.models.frame import load_requests
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S, session_table, sessionize
from tracereplay.models.templating import Templater, add_endpoints

from .measures import (
    NO_STATUS,
    ArrivalComparison,
    Json,
    MixComparison,
    SampleComparison,
    arrival_rate,
    dispersion,
    error_rate,
    estimate_scale,
    ks,
    latency,
    mix,
    per_s,
    responded,
    round_floats,
    span_s,
    status_labels,
)
from .slo import Slo, SloResult, evaluate_slos, slo_json

FIDELITY_GOALS: dict[str, float] = {
    "endpoint_mix.jsd": 0.01,
    "session_length.ks": 0.05,
    "think_time.ks": 0.05,
    "interarrival.ks": 0.05,
    "arrival_rate.mape": 0.10,
}


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
        rounded: Json = round_floats(doc)
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
    real_span, other_span = span_s(real_s), span_s(other_s)
    n = scale or estimate_scale(len(real_t), real_span, len(other_t), other_span)
    starts_r = np.sort(real_t["start_s"].to_numpy(float))
    starts_o = np.sort(other_t["start_s"].to_numpy(float))
    has_status = responded(other_s)
    return CompareResult(
        requests=(len(real_s), len(other_s)),
        sessions=(len(real_t), len(other_t)),
        scale=n,
        scale_estimated=scale is None,
        endpoint_mix=mix(real_s["endpoint"].map(str), other_s["endpoint"].map(str)),
        session_length=ks(real_t["length"], other_t["length"]),
        session_duration=ks(real_t["duration_s"], other_t["duration_s"]),
        think_time=ks(real_s["think_s"], other_s["think_s"]),
        interarrival=ks(np.diff(starts_r), np.diff(starts_o) * n),
        arrival_rate=arrival_rate(starts_r, real_span, starts_o, other_span, n),
        status_mix=(
            mix(status_labels(real_s), status_labels(other_s))
            if has_status
            else mix(status_labels(real_s), None, NO_STATUS)
        ),
        burstiness=tuple(
            (w, dispersion(starts_r, real_span, w), dispersion(starts_o, other_span, w))
            for w in DISPERSION_WINDOWS_S
            if max(real_span, other_span) >= MIN_WINDOWS * w
        ),
        latency_ms=latency(real_s, other_s),
        errors=(error_rate(real_s), error_rate(other_s) if has_status else None),
        throughput_rps=(per_s(len(real_s), real_span), per_s(len(other_s), other_span)),
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
