"""SLOs judged per endpoint (counts per endpoint code, latencies gathered by endpoint)
give exactly what the definitions give request by request (compare/slo.py's docstring),
on a frame of several classes, failures of every kind and latencies without a value."""

from __future__ import annotations

from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
import pytest

from tracereplay.compare.bindings import Learned, _endpoints
from tracereplay.compare.slo import Slo, SloResult, evaluate_slos
from tracereplay.compare.slo_file import LATENCY_METRICS, RATE_METRICS

ENDPOINTS = [
    "POST /api/login",
    "GET /api/items",
    "POST /api/items",
    "GET /api/items/{id}",
    "DELETE /api/items/{id}",
    "GET /api/report",
    "GET /health",
]
LEARNED = Learned(
    "POST /api/login",
    ("DELETE /api/items/{id}", "GET /api/items", "GET /api/items/{id}", "POST /api/items"),
    ("GET /api/report", "GET /api/absent"),
    "real trace",
)
SELECTORS: list[dict[str, object]] = [
    {"endpoints": ("*",)},
    {"endpoints": ("GET /api/*",)},
    {"endpoints": ("POST *", "DELETE *")},
    {"binds": "login", "endpoints": ()},
    {"binds": "crud", "endpoints": ()},
    {"binds": "complex", "endpoints": ()},
]
METRICS = [*LATENCY_METRICS, *RATE_METRICS, "throughput_rps"]


def frame(n: int, categorical: bool, seed: int = 3) -> pd.DataFrame:
    """Requests of every endpoint but the last (unused: a category no request has, and in
    the categorical variant a null endpoint too), statuses 2xx to 5xx or none, transport
    errors, latencies NaN, infinite or spread over decades."""
    rng = np.random.default_rng(seed)
    names = np.array(ENDPOINTS[:-1], dtype=object)[rng.integers(0, len(ENDPOINTS) - 1, n)]
    status = rng.choice([200, 201, 204, 302, 401, 404, 500, 503, -1], n).astype(float)
    status[status < 0] = np.nan
    error = np.where(rng.random(n) < 0.05, "timeout", None)
    error[rng.random(n) < 0.02] = ""  # an empty error is no error
    latency = rng.lognormal(3.0, 1.5, n)
    latency[rng.random(n) < 0.05] = np.nan
    latency[rng.random(n) < 0.01] = np.inf
    endpoint: object = names
    if categorical:
        codes = pd.Categorical(names, categories=ENDPOINTS).codes.copy()
        codes[rng.random(n) < 0.01] = -1
        endpoint = pd.Categorical.from_codes(codes, categories=ENDPOINTS)
    return pd.DataFrame(
        {
            "endpoint": endpoint,
            "t_s": np.sort(rng.random(n) * 600.0),
            "duration_ms": latency,
            "status": status.astype(np.float32)
            if categorical
            else pd.array([None if np.isnan(s) else int(s) for s in status], dtype="Int64"),
            "error": pd.Categorical(error) if categorical else pd.Series(error, dtype=object),
        }
    )


def by_request(slo: Slo, df: pd.DataFrame) -> tuple[float | None, int, tuple[str, ...]]:
    """The SLO's value, requests and matched endpoints, request by request."""
    endpoint = df["endpoint"].astype(object).to_numpy(object)
    named = np.array([isinstance(e, str) for e in endpoint])
    if slo.binds is not None:
        wanted = set(LEARNED.endpoints(slo.binds))
        selected = np.array([e in wanted for e in endpoint])
    elif slo.endpoints == ("*",):
        selected = np.ones(len(endpoint), bool)  # a null endpoint too
    else:
        patterns = slo.endpoints
        selected = named & np.array(
            [any(fnmatchcase(str(e), p) for p in patterns) for e in endpoint]
        )
    status = pd.to_numeric(df["status"], errors="coerce").to_numpy(float)
    error = (df["error"].notna() & (df["error"].astype(object) != "")).to_numpy(bool)
    server = error | np.isnan(status) | (status >= 500)
    client = ~server & (status >= 400)
    count = int(selected.sum())
    matched = tuple(sorted({str(e) for e in endpoint[selected]}))
    if slo.metric == "throughput_rps":
        t_s = df["t_s"].to_numpy(float)
        return count / float(t_s.max() - t_s.min()), count, matched
    rates = {"error_rate": client | server, "client_error_rate": client,
             "server_error_rate": server, "success_rate": ~(client | server)}  # fmt: skip
    if slo.metric in rates:
        return float(rates[slo.metric][selected].mean()), count, matched
    latency = df["duration_ms"].to_numpy(float)[selected & ~np.isnan(status)]
    latency = latency[np.isfinite(latency)]
    value = float(np.quantile(latency, LATENCY_METRICS[slo.metric])) if latency.size else None
    return value, count, matched


@pytest.mark.parametrize("categorical", [True, False], ids=["codes", "strings"])
def test_every_metric_and_selector_equals_the_request_by_request_value(
    categorical: bool,
) -> None:
    df = frame(5_000, categorical)
    slos = [
        Slo(f"{metric}-{i}", metric, "<", 1.0, **selector)  # type: ignore[arg-type]
        for metric in METRICS
        for i, selector in enumerate(SELECTORS)
    ]
    results: list[SloResult] = evaluate_slos(slos, df, learned=LEARNED)
    for slo, result in zip(slos, results, strict=True):
        value, count, matched = by_request(slo, df)
        assert (result.value, result.requests, result.matched) == (value, count, matched), slo
        assert result.value is not None and result.warning is None
    # The frame has what the test is about: several classes, failures of every kind.
    login, crud = results[3], results[4]
    assert login.matched == ("POST /api/login",) and len(crud.matched) == 4
    assert "GET /health" not in results[0].matched  # a category no request has
    assert ("nan" in results[0].matched) is categorical  # a null endpoint: "*" selects it
    assert 0 < results[len(SELECTORS) * 4].value < 1  # error_rate over "*"


def endpoints_by_group(real_s: pd.DataFrame) -> list[tuple[str, bool, float | None, int]]:
    """What the SLO classes are learned from, by a groupby over endpoint names."""
    status = pd.to_numeric(real_s["status"], errors="coerce")
    duration = pd.to_numeric(real_s["duration_ms"], errors="coerce")
    out = []
    for name, index in real_s.groupby(real_s["endpoint"].astype(str), sort=True).groups.items():
        codes = status.loc[index]
        timed = duration.loc[index].dropna().to_numpy(float)
        p95 = float(np.quantile(timed, 0.95)) if timed.size else None
        out.append((str(name), bool(((codes >= 200) & (codes < 300)).any()), p95, timed.size))
    return out


@pytest.mark.parametrize("categorical", [True, False], ids=["codes", "strings"])
def test_what_classes_bind_by_equals_a_groupby_of_endpoint_names(categorical: bool) -> None:
    df = frame(5_000, categorical, seed=5)
    failing = df["endpoint"].astype(object) == "GET /api/report"
    df.loc[failing, "status"] = 500  # an endpoint never answered 2xx
    df.loc[df["endpoint"].astype(object) == "GET /api/items", "duration_ms"] = np.nan  # none timed
    got = [(e.name, e.succeeded, e.p95_ms, e.timed) for e in _endpoints(df)]
    assert got == endpoints_by_group(df)
    assert ("GET /api/report", False) in [g[:2] for g in got]
    assert ("GET /api/items", True, None, 0) in got
