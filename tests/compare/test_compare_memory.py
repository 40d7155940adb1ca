"""What compare holds less of gives the same answers (issue 15, bench/README.md cmp24):
REAL's error rates, status tables and latencies computed before OTHER's read and the
columns only they read let go (`read_compared(lean=True)`); status and failure counts a
chunk of requests at a time; the noise floor's sample let go once sorted; ECDF steps of a
sample sorted once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.compare.compare_factory import workload
from tests.factories import T0, make_table
from tracereplay.allocator import give_back_freed
from tracereplay.compare import measures, svg
from tracereplay.compare.compare import (
    RealSessions,
    compare_sessionized,
    noise_of_real,
    read_compared,
    sessionized_pair,
)
from tracereplay.compare.measures import (
    error_rate,
    error_rates,
    failure_masks,
    responded,
    status_by_endpoint,
)
from tracereplay.compare.report import render_report
from tracereplay.compare.statuses import (
    STATUS_LABEL,
    status_codes,
    status_column,
    transport_errors,
)
from tracereplay.compare.verdicts import RealSample, half_noise, sample_noise
from tracereplay.models.arrivals import fitted_bucket_s
from tracereplay.models.frame import requests_frame
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.trace import TraceMetadata, TraceRecord, open_writer


def _requests(n: int, seed: int) -> pd.DataFrame:
    """Requests as compare's frames hold them: endpoints and errors categorical (an unused
    endpoint, a null and an empty error), float32 statuses with none, 4xx and 5xx."""
    rng = np.random.default_rng(seed)
    names = ["GET /a", "POST /b", "GET /c/{id}", "DELETE /d"]  # /d never used
    status = rng.choice(np.array([200, 201, 302, 404, 429, 500, 503, np.nan], np.float32), n)
    errors = pd.Categorical.from_codes(
        rng.choice([-1, -1, -1, -1, 0, 1], n), categories=pd.Index(["", "timeout"], dtype=object)
    )
    frame = pd.DataFrame(
        {
            "endpoint": pd.Categorical.from_codes(rng.integers(0, 3, n), categories=names),
            "status": status,
            "error": errors,
            "duration_ms": np.where(np.isnan(status), np.nan, rng.exponential(50.0, n)),
        }
    )
    frame[STATUS_LABEL] = status_column(status.astype(float))
    return frame


def _whole_counts(df: pd.DataFrame) -> tuple[dict[str, float], dict[str, dict]]:
    """Error rates and the per-endpoint status table as one pass over every request gave
    them (masks' means, one bincount of (endpoint, status) pairs)."""
    status = df["status"].to_numpy(float)
    client, server = failure_masks(status, transport_errors(df))
    rates = {
        "error_rate": float((client | server).mean()),
        "client_error_rate": float(client.mean()),
        "server_error_rate": float(server.mean()),
    }
    codes = df["endpoint"].cat.codes.to_numpy(np.int64)
    names = [str(c) for c in df["endpoint"].cat.categories]
    labels_codes, labels = status_codes(df)
    width = len(labels)
    table = np.bincount(codes * width + labels_codes, minlength=len(names) * width)
    table = table.reshape(len(names), width)
    failed = np.bincount(codes, weights=client | server, minlength=len(names))
    out: dict[str, dict] = {}
    for code in sorted(np.flatnonzero(table.sum(axis=1)), key=lambda c: names[c]):
        counts, total = table[code], int(table[code].sum())
        out[names[code]] = {
            "requests": total,
            "shares": {
                labels[s]: int(counts[s]) / float(total)
                for s in sorted(range(width), key=lambda s: labels[s])
                if counts[s]
            },
            "error_rate": float(failed[code] / total),
        }
    return rates, out


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_counts_a_chunk_at_a_time_equal_one_pass(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Error rates, the status table per endpoint and whether a trace responded, counted
    a chunk of requests at a time (chunks of 7 over 2,503 requests: the last one short),
    are one pass's to the bit."""
    monkeypatch.setattr(measures, "COUNT_CHUNK", chunk)
    df = _requests(2503, seed=1)
    rates, table = _whole_counts(df)
    assert error_rates(df) == rates
    assert error_rate(df) == rates["error_rate"]
    assert measures._statuses(df) == table
    rows = status_by_endpoint(df, df)
    assert [r["real"] for r in rows] == [table[r["endpoint"]] for r in rows]
    assert responded(df)
    # A trace that responded only in its last request; one that never did.
    unsent = df.drop(columns="error").assign(status=np.float32(np.nan))
    assert not responded(unsent)
    last = unsent["status"].to_numpy().copy()
    last[-1] = 200.0
    assert responded(unsent.assign(status=last))


def test_small_status_codes_are_the_codes() -> None:
    """`status_codes(small=True)`: the same codes and labels in a small type, also for a
    part of a trace that lacks some labels (renumbered in order)."""
    df = _requests(500, seed=2)
    for part in (df, df[df["status"].to_numpy() != 404]):
        codes, labels = status_codes(part)
        small, small_labels = status_codes(part, small=True)
        assert small_labels == labels and small.itemsize == 1
        assert np.array_equal(small.astype(np.int64), codes) and codes.dtype == np.int64


def _trace(path: Path, records: list[TraceRecord]) -> Path:
    meta = TraceMetadata(source="test", capture_start=T0, policy_hash="test-policy")
    with open_writer(path, meta) as writer:
        for record in records:
            writer.write(record)
    return path


def _failing(records: list[TraceRecord], seed: int) -> list[TraceRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for record in records:
        pick = int(rng.integers(0, 10))
        if pick == 0:
            changed = {"status": 503, "duration_ms": float(rng.exponential(300))}
        elif pick == 1:
            changed = {"status": None, "duration_ms": None, "error": "timeout"}
        elif pick == 2:
            changed = {"status": 404, "duration_ms": float(rng.exponential(20))}
        else:
            changed = {"duration_ms": float(rng.exponential(40))}
        out.append(replace(record, **changed))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("real_kind", ["responded", "no durations"])
def test_a_lean_read_compares_and_reports_as_the_whole(tmp_path: Path, real_kind: str) -> None:
    """`read_compared(lean=True)` lets go REAL's `status`, `error` (and `duration_ms` when
    it holds none) once REAL's tables are computed: compare.json and the report are those
    of the whole frames."""
    records = _failing(workload(160, seed=1), seed=3)
    if real_kind == "no durations":
        records = [replace(r, duration_ms=None) for r in records]
    real = _trace(tmp_path / "real", records)
    other = _trace(tmp_path / "other", _failing(workload(140, seed=2, prefix="o"), seed=4))
    whole = read_compared(real, other)
    lean = read_compared(real, other, lean=True)
    gone = {"status", "error"} | ({"duration_ms"} if real_kind == "no durations" else set())
    assert set(whole.real_s.columns) - set(lean.real_s.columns) == gone
    assert lean.real.tables is not None and whole.real.tables is None
    docs = []
    for pair in (whole, lean):
        result = compare_sessionized(
            pair.real_s, pair.other_s, real=pair.real, real_noise=pair.real_noise
        )
        doc = result.to_json()
        docs.append((doc, render_report(doc, pair.real_s, pair.other_s, title="t")))
    assert docs[0] == docs[1]
    assert docs[0][0]["errors"]["error_rate"]["real"] > 0
    assert (docs[0][0]["latency_ms"]["real"] is None) == (real_kind == "no durations")


@pytest.mark.parametrize("at_most", [40, 10_000])
def test_the_noise_floor_without_its_sample_held(at_most: int) -> None:
    """`sample_noise` (the sample let go once sorted) is `half_noise` of the sample, with
    the sessions it split (None: all of them)."""
    real = _trace_frame()
    sessions = RealSessions.of(real, DEFAULT_SESSION_TIMEOUT_S)
    starts = np.sort(sessions.table["start_s"].to_numpy(float))
    bucket_s = fitted_bucket_s(starts, float(real["t_s"].max()))
    kw = dict(bucket_s=bucket_s, with_status=True, censored=sessions.censored, at_most=at_most)
    sample = RealSample.of(real, sessions.table, **kw)  # type: ignore[arg-type]
    got = sample_noise(real, sessions.table, rounds=30, **kw)
    assert got == (half_noise(sample, rounds=30), 40 if at_most == 40 else None)
    assert noise_of_real(real, sessions, rounds=30, noise_sessions=at_most) == got


def _trace_frame() -> pd.DataFrame:
    table = make_table(_failing(workload(120, seed=5), seed=6))
    real, _ = sessionized_pair(requests_frame(table), requests_frame(table))
    return real


def test_ecdf_steps_of_a_sorted_sample_are_the_sorted_copys() -> None:
    values = np.random.default_rng(7).exponential(1.0, 5000)
    values[::50] = values[1::50]  # ties
    for n in (0, 1, 300, 5000):
        part = values[:n]
        want = svg.ecdf_points(part, 9.0)
        assert svg.ecdf_points(np.sort(part), 9.0, presorted=True) == want


def test_giving_back_freed_memory_is_harmless() -> None:
    kept = np.arange(1000)
    give_back_freed()
    assert kept.sum() == 499500


@pytest.mark.parametrize("nulls", [True, False], ids=["null endpoints", "small codes"])
def test_slos_counted_a_chunk_at_a_time_equal_request_by_request(
    monkeypatch: pytest.MonkeyPatch, nulls: bool
) -> None:
    """Every SLO metric × selector, counted over small endpoint codes a chunk of requests
    at a time (chunks of 7 over 3,001 requests), is the request-by-request value."""
    from tests.compare import test_slo_by_endpoint as by_endpoint
    from tracereplay.compare import slo as slo_module

    df = by_endpoint.frame(3001, categorical=True)
    if not nulls:
        df["endpoint"] = df["endpoint"].fillna("GET /api/items")
    whole = slo_module._Frame.of(df, "duration_ms", None)
    monkeypatch.setattr(slo_module, "COUNT_CHUNK", 7)
    chunked = slo_module._Frame.of(df, "duration_ms", None)
    for name in ("requests", "timed_requests", "timed", "codes"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name)), name
    assert chunked.outcomes.keys() == whole.outcomes.keys()
    assert all(np.array_equal(chunked.outcomes[k], whole.outcomes[k]) for k in whole.outcomes)
    assert chunked.has_responses and chunked.names == whole.names
    assert (chunked.codes.itemsize == 1) is not nulls
    slos = [
        slo_module.Slo(f"{metric}-{i}", metric, "<", 1.0, **selector)  # type: ignore[arg-type]
        for metric in by_endpoint.METRICS
        for i, selector in enumerate(by_endpoint.SELECTORS)
    ]
    results = slo_module.evaluate_slos(slos, df, learned=by_endpoint.LEARNED)
    for slo, result in zip(slos, results, strict=True):
        value, count, matched = by_endpoint.by_request(slo, df)
        assert (result.value, result.requests, result.matched) == (value, count, matched), slo
    assert ("nan" in results[0].matched) is nulls
