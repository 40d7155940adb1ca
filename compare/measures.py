"""The measurements `compare` is made of, one trace or a pair at a time: KS tests, mix
divergences, the arrival-rate curve and burstiness, latency percentiles, error rates, and
the comparison records they fill (compare/compare.py documents the definitions).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2, chi2_contingency, ks_2samp, kstwo

from tracereplay.models.arrivals import (
    MIN_WINDOWS,
    arrival_rate_mape,
    dispersion_index,
    fitted_bucket_s,
    rate_curve,
)

from .kaplan_meier import SortedSample, km_mean, ks_d, ks_two
from .statuses import status_codes, status_values, transport_errors

LATENCY_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
KS_EXACT_UP_TO = 10_000
"""`ks_2samp`'s method "auto" is exact up to this size, asymptotic above (`ks`)."""
SIGNIFICANT_DIGITS = 6
NO_STATUS = "other trace has no responses (synthetic): nothing to compare"
NO_DURATION = "other trace has no durations (synthetic): nothing to compare"
SENT_STARTS = "first request sent in each session"
PLANNED_STARTS = "planned session starts (synthetic trace: nothing was sent)"

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
    real_censored: int = 0
    """Of real_n, sessions whose value is a lower bound (cut by the capture's edges)."""
    other_censored: int = 0

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
    pvalue: float | None = None
    """Chi-square test of the two count tables (None when it cannot be computed)."""
    real_n: int = 0
    other_n: int = 0

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
    source: str = SENT_STARTS
    """What OTHER's session starts are: SENT_STARTS or PLANNED_STARTS."""
    pvalue: float | None = None
    """`rates_pvalue` of the bucket counts."""

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
    if max(r.size, o.size) > KS_EXACT_UP_TO:
        # ks_2samp's asymptotic p-value at its D (ks_d: the same float), without its two
        # binary searches of every value (seconds at 10 M pauses).
        r.sort()  # in place: this sample is ours, its mean taken above
        o.sort()
        d = ks_d(r, o, presorted=True)
        m, n = sorted([float(r.size), float(o.size)], reverse=True)
        pvalue = float(np.clip(kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
        return SampleComparison(d, pvalue, mean_r, mean_o, r.size, o.size)
    with warnings.catch_warnings():
        # scipy falls back from the exact p-value to the asymptotic one on some sizes, and
        # says so: the fallback is the documented behaviour, not a problem to report.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        test = ks_2samp(r, o)
    return SampleComparison(
        float(test.statistic), float(test.pvalue), mean_r, mean_o, r.size, o.size
    )


def km_ks(real: Any, real_censored: Any, other: Any, other_censored: Any) -> SampleComparison:
    """KS D between the Kaplan-Meier estimates of two right-censored samples (a censored
    value is a lower bound: a session the capture's edges cut), `ks` when neither side has
    a censored value. The means are the estimates' (Σ weight · value); the p-value is
    the asymptotic two-sample KS one at the uncensored counts (fewer than the samples:
    conservative, a censored value says less than an observed one), 1 when a side has
    none."""
    r, o = np.asarray(real, dtype=float), np.asarray(other, dtype=float)
    rc, oc = np.asarray(real_censored, dtype=bool), np.asarray(other_censored, dtype=bool)
    keep_r, keep_o = np.isfinite(r), np.isfinite(o)
    r, rc, o, oc = r[keep_r], rc[keep_r], o[keep_o], oc[keep_o]
    if not (rc.any() or oc.any()) or not r.size or not o.size:
        return ks(r, o)
    sr, so = SortedSample.of(r, rc), SortedSample.of(o, oc)
    d = ks_two(sr, so)
    n, m = int((~rc).sum()), int((~oc).sum())
    # No ended session on a side: nothing is known of where it ends, nothing can tell.
    pvalue = float(kstwo.sf(d, max(1, round(n * m / (n + m))))) if n and m else 1.0
    return SampleComparison(
        d, pvalue, km_mean(sr), km_mean(so), r.size, o.size,
        real_censored=int(rc.sum()), other_censored=int(oc.sum()),
    )  # fmt: skip


def mix(real: pd.Series, other: pd.Series | None, reason: str | None = None) -> MixComparison:
    real_shares = _shares(real)
    if other is None:
        return MixComparison(None, None, None, real_shares, None, reason, real_n=len(real))
    other_shares = _shares(other)
    labels = sorted(set(real_shares) | set(other_shares))
    real_counts, other_counts = real.map(str).value_counts(), other.map(str).value_counts()
    p = np.array([real_counts.get(k, 0) for k in labels], dtype=float)
    q = np.array([other_counts.get(k, 0) for k in labels], dtype=float)
    errors = np.abs(p / p.sum() - q / q.sum())
    worst = int(np.argmax(errors))  # first of equal maxima: labels are sorted, so stable
    worst_label = labels[worst] if errors[worst] > 0 else None
    return MixComparison(
        jsd(p, q), float(errors[worst]), worst_label, real_shares, other_shares,
        pvalue=counts_pvalue(p, q), real_n=len(real), other_n=len(other),
    )  # fmt: skip


def jsd(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon divergence, base 2 (the squared JS distance: in [0, 1]), of two count
    or share vectors over the same labels."""
    return float(jensenshannon(p_counts, q_counts, base=2) ** 2)


def counts_pvalue(p_counts: np.ndarray, q_counts: np.ndarray) -> float | None:
    """p-value of the chi-square test that two count vectors come from one distribution;
    None when there is nothing to test (one label, or an empty side)."""
    table = np.vstack([p_counts, q_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or not (table.sum(axis=1) > 0).all():
        return None
    return float(chi2_contingency(table).pvalue)


def _shares(labels: pd.Series) -> dict[str, float]:
    counts = labels.value_counts()
    total = float(counts.sum())
    return {str(k): float(v) / total for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))}


def arrival_rate(
    starts_r: np.ndarray,
    span_r: float,
    starts_o: np.ndarray,
    span_o: float,
    scale: float,
    source: str = SENT_STARTS,
) -> ArrivalComparison:
    """Session start rates on REAL's bucket grid; OTHER's starts are its sessions' first
    requests, sent (a replay) or planned (a synthetic trace): `source` says which."""
    if span_r <= 0 or span_o <= 0:
        reason = "a trace spans no time: no rate curve"
        return ArrivalComparison(None, None, (), (), reason, source)
    bucket_s = fitted_bucket_s(starts_r, span_r)
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
        source,
        rates_pvalue(np.rint(real * bucket_s), np.rint(other * bucket_s), scale),
    )


def rates_pvalue(real_counts: np.ndarray, other_counts: np.ndarray, scale: float) -> float | None:
    """p-value that OTHER's starts are N × REAL's rate in every bucket (counts of one
    grid). Given a bucket's total t, OTHER's share of it is Binomial(t, N / (1 + N)) when
    the rates are as claimed; the squared standardized differences, summed over the
    buckets with a start, are chi-square with one degree of freedom per bucket."""
    total = real_counts + other_counts
    used = total > 0
    if not used.any():
        return None
    share = scale / (1.0 + scale)
    expected = total[used] * share
    variance = expected * (1.0 - share)
    statistic = float(np.sum((other_counts[used] - expected) ** 2 / variance))
    return float(chi2.sf(statistic, int(used.sum())))


def dispersion(starts: np.ndarray, span_s: float, window_s: float) -> float | None:
    # As in the model file: an index of dispersion needs several windows to mean anything.
    if span_s < MIN_WINDOWS * window_s:
        return None
    value = float(dispersion_index(starts, span_s, window_s))
    return value if math.isfinite(value) else None


def latency(real: pd.DataFrame, other: pd.DataFrame) -> Json:
    return latency_of(_latency_table(real), other)


def latency_of(real_q: dict[str, dict[str, float]], other: pd.DataFrame) -> Json:
    """`latency` with REAL's side given as its `_latency_table`."""
    other_q = _latency_table(other)
    endpoints = sorted((set(real_q) | set(other_q)) - {"(all)"})
    return {
        "real": real_q.get("(all)"),
        "other": other_q.get("(all)"),
        "by_endpoint": {e: {"real": real_q.get(e), "other": other_q.get(e)} for e in endpoints},
        "reason": None if other_q else NO_DURATION,
    }


@dataclass(frozen=True)
class RequestTables:
    """What the measures read of one trace's `status`, `error` and `duration_ms` columns:
    its error rates, status mix per endpoint and latency quantiles (`error_rates`,
    `status_by_endpoint`'s and `latency`'s side of it), computed from it alone."""

    error_rates: dict[str, float]
    statuses: dict[str, Json]
    latency: dict[str, dict[str, float]]

    @classmethod
    def of(cls, df: pd.DataFrame) -> RequestTables:
        return cls(error_rates(df), _statuses(df), _latency_table(df))


def _latency_table(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Duration quantiles per endpoint and over all requests ("(all)"); {} if none."""
    if "duration_ms" not in df.columns:
        return {}
    durations = df["duration_ms"].to_numpy(float)
    timed = ~np.isnan(durations)
    if not timed.any():
        return {}
    codes, names = small_endpoint_codes(df)
    # Codes of few endpoints sort as int16: numpy's radix sort (the same order: stable).
    # No copies of every request's where all are timed (10 M requests: ~0.4 GB less).
    small = codes.astype(np.int16) if len(names) < 1 << 15 else codes
    del codes
    values, codes = (durations, small) if timed.all() else (durations[timed], small[timed])
    del small
    by_code = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(names)))
    grouped = np.take(values, by_code, mode="clip")
    del by_code, codes
    groups = np.split(grouped, bounds[:-1])
    out: dict[str, dict[str, float]] = {"(all)": {}}
    for code in sorted(np.flatnonzero(np.diff(bounds, prepend=0)), key=lambda c: names[c]):
        out[names[code]] = _quantiles(groups[code])
    del groups
    # Over all requests last, partitioning the grouped copy in place (a quantile is an
    # order statistic: the same float in any order), not a copy of every request's.
    out["(all)"] = _quantiles(grouped, overwrite=True)
    return out


def small_endpoint_codes(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """`endpoint_codes` in the categorical's own (small) integer type when it is one with
    every code set and distinct names: no 8-byte code a request."""
    endpoint = df["endpoint"]
    if isinstance(endpoint.dtype, pd.CategoricalDtype):
        codes = endpoint.cat.codes.to_numpy()
        names = [str(c) for c in endpoint.cat.categories]
        if (codes >= 0).all() and len(set(names)) == len(names):
            return codes, names
    return endpoint_codes(df)


def endpoint_codes(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each request's endpoint as a code into distinct names (str of the endpoint, as a
    groupby over `astype(str)` sees them): a categorical's own codes, never a string per
    request."""
    endpoint = df["endpoint"]
    if isinstance(endpoint.dtype, pd.CategoricalDtype):
        codes = endpoint.cat.codes.to_numpy(np.int64)
        names = [str(c) for c in endpoint.cat.categories]
        if (codes >= 0).all() and len(set(names)) == len(names):
            return codes, names
    found, distinct = pd.factorize(endpoint.astype(str))
    return np.asarray(found, np.int64), [str(n) for n in distinct]


def _quantiles(values: np.ndarray, overwrite: bool = False) -> dict[str, float]:
    """The LATENCY_QUANTILES of a sample: one partition for them all (each the value
    `np.quantile(sample, q)` gives alone); `overwrite`: partition `values` in place."""
    found = np.quantile(
        np.asarray(values, float), list(LATENCY_QUANTILES.values()), overwrite_input=overwrite
    )
    return {name: float(q) for name, q in zip(LATENCY_QUANTILES, found, strict=True)}


def failure_masks(status: np.ndarray, error: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(client, server) failures of each request, as users count them: client = a 4xx;
    server = a 5xx, a transport error or no response at all. `status` is float (NaN: none),
    `error` bool (a transport error was recorded). Failed = client | server."""
    with np.errstate(invalid="ignore"):  # NaN statuses compare False, as wanted
        server = error | np.isnan(status) | (status >= 500)
        client = ~server & (status >= 400)
    return client, server


def _statuses_as_float(df: pd.DataFrame) -> np.ndarray:
    """The `status` column's own float array (float32 as compare reads it: no 8-byte copy
    of every request's), else `status_values`."""
    column = df.get("status")
    if column is not None and column.dtype.kind == "f":
        return column.to_numpy()
    return status_values(df)


def _failure_counts(df: pd.DataFrame) -> tuple[int, int, int]:
    """(failed, client, server) counts of `failure_masks`, a chunk of requests at a time:
    no mask nor float copy of every request's (at 10 M requests ~0.1 GB at once)."""
    status, error = _statuses_as_float(df), transport_errors(df)
    failed = client_n = server_n = 0
    for start in range(0, len(status), COUNT_CHUNK):
        part = slice(start, start + COUNT_CHUNK)
        client, server = failure_masks(status[part], error[part])
        failed += int(np.count_nonzero(client | server))
        client_n += int(np.count_nonzero(client))
        server_n += int(np.count_nonzero(server))
    return failed, client_n, server_n


def error_rate(df: pd.DataFrame) -> float:
    """Share of requests that failed as a user counts it: status >= 400, a transport
    error or no response (what Locust counts as a failure)."""
    return _failure_counts(df)[0] / len(df) if len(df) else math.nan


def error_rates(df: pd.DataFrame) -> dict[str, float]:
    """error_rate beside its two parts, client_error_rate (4xx) and server_error_rate (5xx,
    transport error or no response): counts over requests (what a mask's mean is: its
    sum of ones is exact, then one division)."""
    failed, client, server = _failure_counts(df)
    n = len(df)
    return {
        "error_rate": failed / n if n else math.nan,
        "client_error_rate": client / n if n else math.nan,
        "server_error_rate": server / n if n else math.nan,
    }


def status_by_endpoint(real: pd.DataFrame, other: pd.DataFrame | None) -> list[Json]:
    """Per endpoint, the status mix and error rate of each side, the largest share
    difference first (endpoints one side lacks count as all of their shares); without an
    OTHER (synthetic), REAL's endpoints by name."""
    return status_by_endpoint_of(_statuses(real), other)


def status_by_endpoint_of(real: dict[str, Json], other: pd.DataFrame | None) -> list[Json]:
    """`status_by_endpoint` with REAL's side given as its `_statuses`."""
    sides = {"real": real, "other": _statuses(other) if other is not None else {}}
    rows = []
    for endpoint in sorted(set(sides["real"]) | set(sides["other"])):
        entry: Json = {"endpoint": endpoint}
        for side, table in sides.items():
            entry[side] = table.get(endpoint)
        if other is None:
            entry["other"], entry["difference"], entry["worst_status"] = None, None, None
        else:
            real_shares = (entry["real"] or {}).get("shares", {})
            other_shares = (entry["other"] or {}).get("shares", {})
            gaps = {
                s: abs(real_shares.get(s, 0.0) - other_shares.get(s, 0.0))
                for s in sorted(set(real_shares) | set(other_shares))
            }
            worst = max(gaps, key=lambda s: (gaps[s], s)) if gaps else None
            entry["difference"] = gaps[worst] if worst else 0.0
            entry["worst_status"] = worst
        rows.append(entry)
    if other is not None:
        rows.sort(key=lambda e: (-e["difference"], e["endpoint"]))
    return rows


def _statuses(df: pd.DataFrame) -> dict[str, Json]:
    """Per endpoint: requests, status shares and error rate, as counts of (endpoint code,
    status code) pairs (one bincount, no string per request)."""
    codes, names = small_endpoint_codes(df)
    status, labels = status_codes(df, small=True)
    values, error = _statuses_as_float(df), transport_errors(df)
    width = len(labels)
    pairs = np.zeros(len(names) * width, np.int64)
    failed = np.zeros(len(names))
    # A chunk of requests at a time: no 8-byte pair code, float status nor mask of every
    # request's (10 M requests: ~0.3 GB at once). The counts are whole numbers, so the
    # chunks' sums are the one bincount's.
    for start in range(0, len(codes), COUNT_CHUNK):
        part = slice(start, start + COUNT_CHUNK)
        wide = codes[part].astype(np.int64)
        pairs += np.bincount(wide * width + status[part], minlength=len(names) * width)
        client, server = failure_masks(values[part], error[part])
        failed += np.bincount(wide, weights=client | server, minlength=len(names))
    table = pairs.reshape(len(names), width)
    by_label = sorted(range(width), key=lambda s: labels[s])
    out: dict[str, Json] = {}
    for code in sorted(np.flatnonzero(table.sum(axis=1)), key=lambda c: names[c]):
        counts = table[code]
        total = int(counts.sum())
        out[names[code]] = {
            "requests": total,
            "shares": {labels[s]: int(counts[s]) / float(total) for s in by_label if counts[s]},
            "error_rate": float(failed[code] / total),
        }
    return out


# --- small helpers ------------------------------------------------------------------

COUNT_CHUNK = 1 << 20
"""Requests counted at a time where a count needs a temporary per request (slo.py's
too)."""


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


def responded(df: pd.DataFrame) -> bool:
    """False for a trace whose requests were never sent (synthetic): no status and no
    transport error anywhere. A replay where everything failed still has errors."""
    status = _statuses_as_float(df)
    chunks = range(0, len(status), COUNT_CHUNK)
    if any((~np.isnan(status[at : at + COUNT_CHUNK])).any() for at in chunks):
        return True
    return "error" in df.columns and bool(df["error"].notna().any())


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
