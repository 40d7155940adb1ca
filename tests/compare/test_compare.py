"""compare: endpoint mix, session and arrival distances, null sections, JSON and table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from tests.compare.compare_factory import (
    frame,
    session_records,
    session_records_list,
    sessions_frame,
)
from tests.factories import write_trace
from tracereplay.compare.compare import (
    FIDELITY_GOALS,
    compare_frames,
    compare_traces,
    write_compare,
)
from tracereplay.compare.compare_render import render_compare
from tracereplay.compare.measures import PLANNED_STARTS, SENT_STARTS
from tracereplay.compare.run_summary import (
    CUT_ESTIMATED,
    CUT_LISTED,
    FROM_RATES,
    FROM_SUMMARY,
    FROM_THROUGHPUT,
)
from tracereplay.errors import TraceEmptyError, UsageError

REQUIRED_KEYS = (
    "endpoint_mix.jsd",
    "endpoint_mix.max_share_error",
    "session_length.ks",
    "think_time.ks",
    "interarrival.ks",
    "arrival_rate.mape",
    "status_mix.jsd",
    "slo.passed",
)


def _get(doc: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def test_identical_traces_are_at_distance_zero() -> None:
    real = sessions_frame(40)
    result = compare_frames(real, real.copy())
    doc = result.to_json()
    assert doc["scale"] == 1.0 and doc["scale_source"] == "estimated"
    assert doc["endpoint_mix"]["jsd"] == 0.0
    assert doc["endpoint_mix"]["max_share_error"] == 0.0
    assert doc["endpoint_mix"]["worst_endpoint"] is None
    for name in ("session_length", "session_duration", "think_time", "interarrival"):
        assert doc[name]["ks"] == 0.0, name
    assert doc["arrival_rate"]["mape"] == 0.0
    assert doc["status_mix"]["jsd"] == 0.0
    assert doc["fidelity"]["passed"] == dict.fromkeys(FIDELITY_GOALS, True)
    assert result.fidelity_passed is True
    assert doc["slo"] == {"passed": None, "checked": False}
    for key in REQUIRED_KEYS:
        _get(doc, key)  # present


def test_doubled_endpoint_share_gives_hand_computed_divergence() -> None:
    real = frame(session_records("s", 0, ["/api/a", "/api/b", "/api/b", "/api/b"]))
    other = frame(session_records("s", 0, ["/api/a", "/api/a", "/api/b", "/api/b"]))
    mix = compare_frames(real, other, scale=1).endpoint_mix
    # P = (1/4, 3/4), Q = (1/2, 1/2), M = (3/8, 5/8); divergence in bits.
    kl_pm = 0.25 * math.log2(0.25 / 0.375) + 0.75 * math.log2(0.75 / 0.625)
    kl_qm = 0.5 * math.log2(0.5 / 0.375) + 0.5 * math.log2(0.5 / 0.625)
    assert mix.jsd == pytest.approx((kl_pm + kl_qm) / 2)
    assert mix.jsd == pytest.approx(0.048794, abs=1e-6)
    assert mix.max_share_error == pytest.approx(0.25)
    assert mix.worst == "GET /api/a"  # ties broken by the sorted label
    assert mix.real == {"GET /api/a": 0.25, "GET /api/b": 0.75}
    assert mix.other == {"GET /api/a": 0.5, "GET /api/b": 0.5}


def test_endpoint_only_in_other_counts_against_it() -> None:
    real = frame(session_records("s", 0, ["/api/a", "/api/a"]))
    other = frame(session_records("s", 0, ["/api/a", "/api/zzz"]))
    mix = compare_frames(real, other, scale=1).endpoint_mix
    assert mix.other == {"GET /api/a": 0.5, "GET /api/zzz": 0.5}
    assert mix.max_share_error == pytest.approx(0.5)
    assert 0 < (mix.jsd or 0) <= 1


def test_twice_the_sessions_matches_after_scaling() -> None:
    real = sessions_frame(40, every_s=10)
    # The same sessions twice, the copies 5 s later: 2x the sessions, same shapes.
    doubled = session_records_list(40, every_s=10, prefix="a") + session_records_list(
        40, every_s=10, offset_s=5, prefix="b"
    )
    result = compare_frames(real, frame(doubled))
    assert result.scale == 2.0 and result.scale_estimated
    assert result.sessions == (40, 80)
    # Each trace's first and last sessions are censored by its edges (2 of 40 vs 2 of 80),
    # so the Kaplan-Meier estimates differ by a little; every session's shape matches.
    assert (result.session_length.real_censored, result.session_length.other_censored) == (2, 2)
    assert (result.session_length.ks or 1) < 0.03
    # Microsecond timestamps make equal gaps differ in the last float bits.
    assert (result.think_time.ks or 0) < 0.02 and result.think_time.real_mean == pytest.approx(
        result.think_time.other_mean
    )
    assert result.interarrival.ks == 0.0  # other's 5 s gaps x 2 = real's 10 s gaps
    assert result.arrival_rate.mape is not None and result.arrival_rate.mape < 0.05
    assert result.endpoint_mix.jsd == 0.0
    # Unscaled, the same traces are far apart on rates and gaps.
    unscaled = compare_frames(real, frame(doubled), scale=1)
    assert unscaled.arrival_rate.mape == pytest.approx(1.0, abs=0.05)
    assert unscaled.interarrival.ks == 1.0
    assert unscaled.fidelity_passed is False


def test_burstiness_compares_counts_divided_by_n() -> None:
    """Each real session three times over at the same instants: every window holds 3× the
    starts, so the index of dispersion is 3× (var 9×, mean 3×); divided by N it is REAL's."""
    rng = np.random.default_rng(3)
    starts = np.cumsum(rng.exponential(4.0, 150))
    real = [r for i, s in enumerate(starts) for r in session_records(f"s{i}", s, ["/api/a"])]
    tripled = [
        r for k in range(3) for i, s in enumerate(starts)
        for r in session_records(f"c{k}-{i}", s, ["/api/a"])
    ]  # fmt: skip
    doc = compare_frames(frame(real), frame(tripled), scale=3).to_json()
    burst = [b for b in doc["burstiness"].values() if b["real"] is not None]
    assert len(burst) >= 2
    for b in burst:
        assert b["other"] == pytest.approx(3 * b["real"], rel=1e-4)
        assert b["other_scaled"] == pytest.approx(b["real"], rel=1e-4)


@pytest.mark.parametrize(("other_count", "other_every_s", "expected"), [(40, 5, 1.9), (30, 3, 3.1)])
def test_scale_is_estimated_to_two_significant_digits(
    other_count: int, other_every_s: float, expected: float
) -> None:
    # 20 sessions over 194 s; 40 over 199 s (1.95 rounds down), 30 over 93 s (3.13).
    real = sessions_frame(20, every_s=10)
    other = sessions_frame(other_count, every_s=other_every_s)
    real_rate = 20 / real["t_s"].max()
    other_rate = other_count / other["t_s"].max()
    assert float(f"{other_rate / real_rate:.2g}") == expected  # the example is what we think
    result = compare_frames(real, other)
    assert result.scale == expected
    assert result.to_json()["scale_source"] == "estimated"
    assert compare_frames(real, other, scale=5).to_json()["scale_source"] == "given"


def test_synthetic_other_has_null_status_errors_and_latency() -> None:
    real = sessions_frame(12)
    other = sessions_frame(12, status=None, duration_ms=None, resp_body=None)
    doc = compare_frames(real, other, scale=1).to_json()
    assert doc["status_mix"]["jsd"] is None
    assert doc["status_mix"]["other"] is None
    assert doc["status_mix"]["real"] == {"200": 1.0}
    assert "synthetic" in doc["status_mix"]["reason"]
    for key in ("error_rate", "client_error_rate", "server_error_rate"):
        assert doc["errors"][key] == {"real": 0.0, "other": None}, key
    assert doc["errors"]["reason"]
    assert doc["load"] is None  # nothing was sent: no load to speak of
    assert doc["arrival_rate"]["source"] == PLANNED_STARTS
    assert doc["latency_ms"]["other"] is None and doc["latency_ms"]["reason"]
    assert doc["latency_ms"]["real"] == {"p50": 12.5, "p95": 12.5, "p99": 12.5}
    by_endpoint = doc["latency_ms"]["by_endpoint"]
    assert sorted(by_endpoint) == ["GET /api/items", "GET /api/orders", "GET /api/users"]
    assert all(v["other"] is None for v in by_endpoint.values())


def test_status_codes_and_errors_are_compared_exactly() -> None:
    ok = session_records_list(3, status=200)
    failing = session_records("x", 100, ["/api/items"], status=503)
    lost = session_records("y", 101, ["/api/items"], status=None, error="connect refused")
    doc = compare_frames(frame(ok), frame(ok + failing + lost), scale=1).to_json()
    other = doc["status_mix"]["other"]
    assert set(other) == {"200", "503", "none"}
    assert doc["status_mix"]["jsd"] > 0
    assert doc["status_mix"]["worst_status"] == "200"
    assert doc["errors"]["error_rate"]["other"] == pytest.approx(2 / 9)
    assert doc["errors"]["server_error_rate"]["other"] == pytest.approx(2 / 9)
    assert doc["errors"]["client_error_rate"]["other"] == 0.0
    assert doc["arrival_rate"]["source"] == SENT_STARTS


def test_errors_count_4xx_as_users_do() -> None:
    """error_rate = 4xx + 5xx + no response (as Locust counts failures), with its two
    parts beside it; the status-per-endpoint table puts the largest difference first."""
    real = session_records_list(4, status=200)
    other = session_records_list(4, status=200, prefix="o")
    other += session_records("x", 100, ["/api/orders", "/api/orders"], status=401)
    other += session_records("y", 101, ["/api/users"], status=404)
    other += session_records("z", 102, ["/api/users"], status=502)
    other += session_records("w", 103, ["/api/users"], status=None, error="reset")
    doc = compare_frames(frame(real), frame(other), scale=1).to_json()
    n = 10 + 5  # four sessions of SHAPES hold 10 requests
    errors = doc["errors"]
    assert errors["client_error_rate"] == {"real": 0.0, "other": pytest.approx(3 / n, rel=1e-5)}
    assert errors["server_error_rate"] == {"real": 0.0, "other": pytest.approx(2 / n, rel=1e-5)}
    assert errors["error_rate"] == {"real": 0.0, "other": pytest.approx(5 / n, rel=1e-5)}
    rows = doc["status_by_endpoint"]
    assert [r["endpoint"] for r in rows] == ["GET /api/orders", "GET /api/users", "GET /api/items"]
    orders = rows[0]
    assert orders["worst_status"] == "401" and orders["difference"] == pytest.approx(2 / 4)
    assert orders["other"]["shares"] == {"200": 0.5, "401": 0.5}
    assert orders["other"]["error_rate"] == 0.5 and orders["real"]["error_rate"] == 0.0
    assert rows[-1]["difference"] == 0.0
    assert doc["fidelity"]["goal"]["status_mix.jsd"] == 0.01


def test_json_is_deterministic_and_rounded(tmp_path: Path) -> None:
    real = sessions_frame(30, every_s=7)
    other = sessions_frame(50, every_s=3.3, status=201)
    first = write_compare(compare_frames(real, other), tmp_path / "a")
    second = write_compare(compare_frames(real.copy(), other.copy()), tmp_path / "b" / "c")
    assert first.name == "compare.json" and first.read_bytes() == second.read_bytes()
    doc = json.loads(first.read_text())
    assert list(doc) == sorted(doc)
    for value in _floats(doc):
        assert value == float(f"{value:.6g}")
    for key in REQUIRED_KEYS:
        _get(doc, key)


def test_render_mentions_every_metric() -> None:
    real = sessions_frame(20)
    other = sessions_frame(20, status=None, duration_ms=None)
    console = Console(record=True, width=200)
    render_compare(compare_frames(real, other, scale=1), console)
    text = console.export_text()
    for metric in (
        *REQUIRED_KEYS,
        "session_duration.ks",
        "errors.error_rate",
        "errors.client_error_rate",
        "errors.server_error_rate",
        "throughput_rps",
    ):
        assert metric in text, metric
    assert "pass" in text and "not checked" in text and "synthetic" in text


def test_degenerate_traces_give_nulls_not_crashes(tmp_path: Path) -> None:
    one = frame(session_records("s", 0, ["/api/a"]))
    result = compare_frames(one, one.copy())
    doc = result.to_json()
    assert doc["interarrival"]["ks"] is None and doc["interarrival"]["reason"]
    assert doc["think_time"]["ks"] is None
    assert doc["arrival_rate"]["mape"] is None and doc["arrival_rate"]["reason"]
    assert doc["session_length"]["ks"] == 0.0
    assert doc["throughput_rps"] == {"real": None, "other": None}
    assert result.fidelity()["interarrival.ks"] is None
    write_compare(result, tmp_path)
    render_compare(result, Console(record=True, width=200))


def test_bad_input_is_a_clear_error() -> None:
    real = sessions_frame(3)
    with pytest.raises(TraceEmptyError, match="other"):
        compare_frames(real, real.iloc[0:0])
    with pytest.raises(UsageError, match="scale"):
        compare_frames(real, real, scale=0)


def test_compare_traces_reads_directories(tmp_path: Path) -> None:
    records = session_records_list(8)
    real = write_trace(tmp_path / "real", records)
    other = write_trace(tmp_path / "other", records)
    result = compare_traces(real, other, session_timeout_s=60)
    assert result.requests == (len(records), len(records))
    assert result.endpoint_mix.jsd == 0.0


def _replay_run(tmp_path: Path, summary: dict[str, Any] | None) -> tuple[Path, Path]:
    """A real trace, and a replay of it (reports/RUN/replayed) whose two longest sessions
    were cut short: both the last to send, as cut sessions are."""
    real = write_trace(tmp_path / "real", session_records_list(12, every_s=10))
    records = session_records_list(12, every_s=10, prefix="r")
    records += session_records("cut-a", 130, ["/api/items"])
    records += session_records("cut-b", 131, ["/api/items"])
    run = tmp_path / "run"
    other = write_trace(run / "replayed", records)
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    return real, other


def test_a_replays_summary_gives_the_load_and_the_cut_sessions(tmp_path: Path) -> None:
    summary = {"sessions_planned": 14, "sessions_started": 14, "sessions_completed": 12,
               "sessions_cut": 2, "achieved_rps": 0.5, "achieved_scale": 0.96}  # fmt: skip
    real, other = _replay_run(tmp_path, summary)
    doc = compare_traces(real, other, scale=1, session_timeout_s=60).to_json()
    load = doc["load"]
    assert (load["achieved_scale"], load["source"]) == (0.96, FROM_SUMMARY)
    assert (load["sessions_planned"], load["sessions_cut"]) == (14, 2)
    cut = doc["cut_sessions"]
    assert (cut["count"], cut["how"]) == (2, CUT_ESTIMATED)
    assert cut["session_keys"] == ["cut-a", "cut-b"]
    # Left out of length and duration only: 12 sessions there, 14 everywhere else.
    assert doc["session_length"]["other_n"] == doc["session_duration"]["other_n"] == 12
    assert doc["sessions"]["other"] == 14
    # The twelve finished ones are the real shapes; the real trace's first and last
    # sessions are lower bounds (its edges cut them), so 12 sessions cannot tell.
    assert doc["session_length"]["real_censored"] == 2
    assert doc["session_length"]["other_censored"] == 0  # a replay's sessions are whole
    assert doc["session_length"]["verdict"] == "noise"
    text = Console(record=True, width=200)
    render_compare(compare_traces(real, other, scale=1, session_timeout_s=60), text)
    assert "achieved 0.96× (summary.json achieved_scale)" in text.export_text()


def test_listed_cut_sessions_and_the_other_sources_of_the_load(tmp_path: Path) -> None:
    summary = {"sessions_cut": 1, "sessions_cut_keys": ["cut-a"], "offered_rps": 2.0,
               "achieved_rps": 1.5}  # fmt: skip
    real, other = _replay_run(tmp_path, summary)
    doc = compare_traces(real, other, scale=2, session_timeout_s=60).to_json()
    assert (doc["cut_sessions"]["how"], doc["cut_sessions"]["session_keys"]) == (
        CUT_LISTED, ["cut-a"],
    )  # fmt: skip
    assert doc["load"]["achieved_scale"] == 1.5 and doc["load"]["source"] == FROM_RATES
    # No summary.json: the throughput ratio, labelled as such; nothing is called cut.
    real, other = _replay_run(tmp_path / "none", None)
    doc = compare_traces(real, other, scale=1, session_timeout_s=60).to_json()
    assert doc["load"]["source"] == FROM_THROUGHPUT
    assert doc["load"]["achieved_scale"] == pytest.approx(
        doc["throughput_rps"]["other"] / doc["throughput_rps"]["real"], rel=1e-4
    )
    assert doc["cut_sessions"]["count"] == 0


def test_status_and_latency_tables_equal_a_groupby_over_the_names() -> None:
    """The bincount tables (endpoint and status codes) against pandas' groupby over the
    names, with the endpoint categorical (as read) and as plain strings."""
    from tracereplay.compare.measures import _latency_table, _statuses
    from tracereplay.compare.statuses import status_labels

    rng = np.random.default_rng(3)
    n = 3000
    names = np.array(["GET /b", "POST /a", "GET /a/{id}", "DELETE /c"], dtype=object)
    endpoint = names[rng.integers(0, 3, n)]  # "DELETE /c" never used
    status = rng.choice([200.0, 201.0, 404.0, 500.0, np.nan], n)
    status[endpoint == "GET /b"] = 200.0  # statuses one endpoint never had: no share
    plain = pd.DataFrame(
        {
            "endpoint": endpoint,
            "status": status,
            "error": np.where(rng.random(n) < 0.05, "timeout", None),
            "duration_ms": np.where(np.isnan(status), np.nan, rng.exponential(80.0, n)),
        }
    )
    categorical = plain.assign(endpoint=pd.Categorical(plain["endpoint"], categories=names))
    expected: dict = {}
    labels = status_labels(plain).astype(str)
    failed = plain["error"].notna() | status_labels(plain).isin(["404", "500", "none"])
    for endpoint, group in plain.groupby("endpoint", sort=True):
        shares = labels[group.index].value_counts() / len(group)
        expected[endpoint] = {
            "requests": len(group),
            "shares": {k: float(shares[k]) for k in sorted(shares.index)},
            "error_rate": float(failed[group.index].mean()),
        }
    timed = plain[plain["duration_ms"].notna()]
    quantiles = {
        e: {q: float(np.quantile(g["duration_ms"], v)) for q, v in LATENCY_Q.items()}
        for e, g in timed.groupby("endpoint")
    }
    for frame_ in (plain, categorical):
        assert _statuses(frame_) == expected
        table = _latency_table(frame_)
        assert {k: v for k, v in table.items() if k != "(all)"} == quantiles


LATENCY_Q = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
