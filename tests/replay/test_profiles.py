"""Scenario profiles without a target: the curves they shape, the plans they make, and
what they report from given timings (replay/profiles.py, replay/stress.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.models.test_synth_gaps import regular_starts
from tests.replay.stub_server import stub_server
from tests.replay.test_replay_e2e import tiny_model
from tracereplay.cli import main
from tracereplay.compare.slo import parse_slos
from tracereplay.errors import UsageError
from tracereplay.models.arrivals import ArrivalModel, fit_arrivals, sample_arrivals
from tracereplay.replay.profiles import (
    busiest_window,
    latency_drift,
    memory_drift,
    shape,
    spike_report,
)
from tracereplay.replay.run import ReplayOutcome, ReplaySettings, check
from tracereplay.replay.sources import plan_from_model
from tracereplay.replay.stress import (
    DEFAULT_STEPS,
    StressOutcome,
    StressStep,
    parse_steps,
    render_stress,
    run_stress,
    stress_json,
    verdict_line,
)


def curve(rates: list[float], bucket_s: float = 10.0) -> ArrivalModel:
    """A fitted arrival model whose buckets hold exactly rates × bucket_s starts."""
    starts = [
        i * bucket_s + (k + 0.5) * bucket_s / round(r * bucket_s)
        for i, r in enumerate(rates)
        for k in range(round(r * bucket_s))
    ]
    return fit_arrivals(starts, len(rates) * bucket_s, bucket_s=bucket_s)


DAY = curve([0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 2.5, 1.0, 0.5, 0.2, 0.1, 0.1])


def test_peak_picks_the_busiest_window_and_replays_its_curve_at_n() -> None:
    assert busiest_window(DAY, 20.0) == (50.0, pytest.approx(55.0))  # 3.0 and 2.5 /s
    assert busiest_window(DAY, 30.0) == (40.0, pytest.approx(75.0))  # 2.0, 3.0, 2.5
    shaped = shape("peak", DAY, scale=4.0, speed=2.0, duration_s=15.0)  # 30 trace s
    assert shaped.arrivals.rates_per_s == (2.0, 3.0, 2.5)
    assert shaped.scale == 4.0
    assert shaped.window_s == 15.0
    assert shaped.info["trace_window_s"] == [40.0, 70.0]
    assert shaped.info["window_rate_per_s"] == pytest.approx(2.5)


def test_peak_default_window_is_a_twelfth_of_the_span_in_whole_buckets() -> None:
    shaped = shape("peak", DAY, scale=1.0, speed=1.0, duration_s=None)
    assert shaped.window_s == 10.0  # 120 s / 12 = one 10 s bucket
    assert shaped.arrivals.rates_per_s == (3.0,)


def test_peak_window_wider_than_the_span_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="fit the model's span"):
        shape("peak", DAY, scale=1.0, speed=1.0, duration_s=121.0)


def test_spike_is_a_flat_mean_with_an_n_fold_middle_fifth() -> None:
    mean = DAY.sessions / DAY.span_s
    shaped = shape("spike", DAY, scale=5.0, speed=1.0, duration_s=50.0)
    assert shaped.arrivals.rates_per_s == pytest.approx([mean, mean, 5 * mean, mean, mean])
    assert shaped.arrivals.bucket_s == 10.0
    assert shaped.scale == 1.0  # the height is in the curve
    assert shaped.info["spike_s"] == [20.0, 30.0]
    with pytest.raises(UsageError, match="N > 1"):
        shape("spike", DAY, scale=1.0, speed=1.0, duration_s=50.0)


def test_soak_is_flat_at_n_times_the_mean_for_the_whole_window() -> None:
    shaped = shape("soak", DAY, scale=3.0, speed=1.0, duration_s=600.0)
    assert shaped.arrivals.rates_per_s == pytest.approx([DAY.sessions / DAY.span_s])
    assert shaped.arrivals.span_s == 600.0
    assert (shaped.scale, shaped.window_s) == (3.0, 600.0)


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="peak, spike, soak, stress"):
        shape("ramp", DAY, scale=1.0, speed=1.0, duration_s=None)


def test_plans_follow_the_profile_curve(tmp_path: Path) -> None:
    model = json.loads(tiny_model(tmp_path, sessions=40, span_s=8.0).read_text())
    mean = 40 / model["arrivals"]["span_s"]
    soak = plan_from_model(model, scale=2.0, duration_s=20.0, profile="soak")
    assert len(soak.sessions) == pytest.approx(2 * mean * 20, abs=1)
    assert soak.duration_s == 20.0
    assert max(s.start_s for s in soak.sessions) < 20.0
    spike = plan_from_model(model, scale=6.0, duration_s=10.0, profile="spike")
    starts = np.array([s.start_s for s in spike.sessions])
    inside = ((starts >= 4.0) & (starts < 6.0)).sum()
    outside = len(starts) - inside
    # 2 s of 6 × mean inside, 8 s of 1 × mean outside: 12 vs 8 mean-seconds.
    assert inside == pytest.approx(6 * mean * 2, abs=1)
    assert outside == pytest.approx(mean * 8, abs=1)
    # Every worker computes the same starts and keeps its own shard.
    shards = [plan_from_model(model, scale=6.0, duration_s=10.0, profile="spike",
                              worker=w, workers=2) for w in (0, 1)]  # fmt: skip
    assert sorted(s.start_s for p in shards for s in p.sessions) == sorted(starts.tolist())


def test_a_profile_needs_a_model_source(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    trace = tmp_path / "trace"
    settings = ReplaySettings(source=trace, host="http://127.0.0.1:9", out=tmp_path / "o",
                              profile="peak")  # fmt: skip
    with pytest.raises(UsageError, match="replay a model file"):
        check(settings)
    ok = ReplaySettings(source=model, host="http://127.0.0.1:9", out=tmp_path / "o",
                        profile="peak", duration_s=2.0)  # fmt: skip
    assert check(ok).window_s == 2.0


def timing(sent_s: np.ndarray, latency_ms: np.ndarray, status: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sent_s": sent_s,
            "latency_ms": latency_ms,
            "latency_intended_ms": latency_ms,
            "status": np.full(len(sent_s), status),
        }
    )


def test_spike_report_splits_before_during_and_after_the_burst() -> None:
    shaped = shape("spike", DAY, scale=5.0, speed=1.0, duration_s=100.0)  # burst 40..60 s
    t = np.arange(0, 100, 0.5)
    latency = np.where((t >= 40) & (t < 60), 300.0, 10.0)
    frame = timing(1000.0 + t, latency)
    frame.loc[(t >= 40) & (t < 45), "status"] = 503
    report = spike_report(frame, 1000.0, shaped)
    before, during, after = (report["phases"][k] for k in ("before", "during", "after"))
    assert (before["requests"], during["requests"], after["requests"]) == (80, 40, 80)
    assert before["latency_p95_ms"] == after["latency_p95_ms"] == 10.0
    assert during["latency_p95_ms"] == 300.0
    assert during["error_rate"] == 0.25 and before["error_rate"] == 0.0
    assert during["rps"] == 2.0
    assert report["after_vs_before_p95"] == 1.0


def test_latency_drift_flags_a_trend_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    t = np.linspace(0, 600, 2000)
    flat = latency_drift(timing(t, rng.lognormal(3, 0.3, t.size)), 0.0)
    assert len(flat["slices"]) == 10
    assert flat["drifting"] is False
    rising = latency_drift(timing(t, rng.lognormal(3, 0.3, t.size) * (1 + t / 200)), 0.0)
    assert rising["drifting"] is True
    assert rising["change"] > 1.5  # four times slower at the end
    assert rising["slope_low"] > 0
    few = latency_drift(timing(t[:40], np.ones(40)), 0.0)
    assert few["slices"] == [] and few["drifting"] is None


def test_memory_drift_skips_the_warm_up_and_flags_growth() -> None:
    samples = [(t, "locust", int(5e6 if t < 10 else 80e6)) for t in np.arange(0, 120, 0.5)]
    samples += [(t, "pid-1", int(100e6 + 1e6 * t)) for t in np.arange(0, 120, 0.5)]
    report = memory_drift(samples)
    assert report["locust"]["start_mb"] == 80.0  # the 5 MB start-up is not a leak
    assert report["locust"]["drifting"] is False
    assert report["pid-1"]["drifting"] is True
    assert report["pid-1"]["slope"] == pytest.approx(3600.0)  # 1 MB/s in MB per hour
    assert memory_drift([]) == {}


def test_parse_steps() -> None:
    assert parse_steps("1, 2,4.5") == (1.0, 2.0, 4.5)
    for bad, message in (("", "one or more"), ("1,x", "numbers"), ("2,1", "increase"),
                         ("0,1", "> 0")):  # fmt: skip
        with pytest.raises(UsageError, match=message):
            parse_steps(bad)


def step(tmp_path: Path, n: float, failed: list[str], baseline: frozenset[str] = frozenset(),
         p95: float = 100.0) -> StressStep:  # fmt: skip
    names = ["latency", "error_rate", "metrics"]
    results = [
        {"name": name, "metric": "latency_p95_ms" if name == "latency" else "error_rate",
         "op": "<", "threshold": 500 if name == "latency" else 0.01,
         "passed": name not in failed, "value": 1.0, "endpoints": ["*"], "requests": 10}
        for name in names
    ]  # fmt: skip
    summary = {
        "requests": int(10 * n),
        "achieved_rps": 5.0 * n,
        "latency_ms": {"p50": p95 / 3, "p95": p95, "p99": p95 * 1.5},
        "start_lateness_ms": {"p50": 1.0, "p99": 2.0},
    }
    slo = {"passed": not failed, "failed": failed, "results": results}
    return StressStep(n, tmp_path / f"x{n:g}", summary, slo, baseline)


def test_capacity_is_the_highest_step_that_passed(tmp_path: Path) -> None:
    outcome = StressOutcome(
        (step(tmp_path, 1, []), step(tmp_path, 2, []), step(tmp_path, 4, ["latency"], p95=900)),
        False,
        tmp_path,
    )
    assert outcome.capacity == 2.0 and outcome.limit_found
    assert verdict_line(outcome) == "capacity 2× (N = 4 failed: latency)"
    doc = stress_json(outcome)
    assert doc["capacity"] == 2.0
    assert [s["passed"] for s in doc["steps"]] == [True, True, False]
    html = render_stress(outcome)
    for chart in ('id="chart-stress-latency"', 'id="chart-stress-throughput"'):
        assert chart in html
    assert "SLO 500 ms" in html  # the latency threshold drawn across the chart
    assert "<script" not in html and "http" not in html.split("<main>")[1]


def test_slos_failing_at_the_first_step_are_noted_and_the_rest_judged(tmp_path: Path) -> None:
    base = frozenset({"error_rate"})
    some = StressOutcome((step(tmp_path, 1, ["error_rate"], base),), False, tmp_path)
    assert some.capacity == 1.0 and not some.limit_found  # latency and metrics held
    assert "error_rate failed already at N = 1" in verdict_line(some)
    assert verdict_line(some).startswith("capacity ≥ 1× (no step failed")
    everything = frozenset({"latency", "error_rate", "metrics"})
    every = StressOutcome((step(tmp_path, 1, sorted(everything), everything),), False, tmp_path)
    assert every.capacity is None  # nothing left to judge the load by
    assert verdict_line(every).startswith("no capacity: the first step (N = 1) failed")


def test_a_step_where_nothing_could_be_judged_does_not_pass(tmp_path: Path) -> None:
    empty = step(tmp_path, 1, [])
    for result in empty.slo["results"]:
        result["passed"] = None
    assert not empty.passed
    assert StressOutcome((empty,), False, tmp_path).capacity is None


def test_baseline_failures_do_not_end_the_ladder(tmp_path: Path) -> None:
    base = frozenset({"metrics"})
    outcome = StressOutcome(
        (step(tmp_path, 1, ["metrics"], base), step(tmp_path, 8, ["metrics"], base),
         step(tmp_path, 64, ["metrics", "latency"], base)),
        False,
        tmp_path,
    )  # fmt: skip
    assert outcome.capacity == 8.0
    assert outcome.baseline_failed == ["metrics"]
    assert outcome.steps[-1].failed == ["latency"]
    assert verdict_line(outcome).startswith("capacity 8× (N = 64 failed: latency); metrics")


def replay_cli(*args: str) -> int:
    return main(["replay", *args, "--grace", "3s"])


def test_profile_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model(tmp_path)
    host = ("--host", "http://127.0.0.1:9")
    cases = [
        ((str(tmp_path / "trace"), "--profile", "peak"), "replay a model file"),
        ((str(model), "--profile", "ramp"), "choose one of peak, spike, soak, stress"),
        ((str(model), "--profile", "stress", "--steps", "2,1"), "steps must increase"),
        ((str(model), "--profile", "spike", "--scale", "1"), "N > 1"),
        ((str(model), "--profile", "soak", "--watch-pid", "999999999"), "no such process"),
    ]
    for k, (args, message) in enumerate(cases):
        assert replay_cli(*args, *host, "--out", str(tmp_path / f"o{k}")) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not any((tmp_path / f"o{k}").glob("*"))  # nothing started, nothing written


SLO_LATENCY = 'version = 1\n[slo.latency]\nmetric = "latency_p95_ms"\nop = "<"\nthreshold = {}\n'


@pytest.mark.slow
def test_stress_exit_codes_follow_the_capacity(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    loose, tight = tmp_path / "loose.toml", tmp_path / "tight.toml"
    loose.write_text(SLO_LATENCY.format(10_000))
    tight.write_text(SLO_LATENCY.format(0.001))  # no HTTP answer is that fast
    with stub_server() as stub:
        common = (str(model), "--host", stub.url, "--profile", "stress", "--duration", "2s")
        held = replay_cli(*common, "--steps", "1,2", "--slo", str(loose), "--out",
                          str(tmp_path / "held"))  # fmt: skip
        failed = replay_cli(*common, "--steps", "1,2", "--slo", str(tight), "--out",
                            str(tmp_path / "failed"))  # fmt: skip
    assert held == 0
    doc = json.loads((tmp_path / "held" / "stress.json").read_text())
    assert doc["capacity"] == 2.0 and doc["limit_found"] is False
    assert [s["dir"] for s in doc["steps"]] == ["step-01-x1", "step-02-x2"]
    assert failed == 1
    doc = json.loads((tmp_path / "failed" / "stress.json").read_text())
    assert doc["capacity"] is None and doc["baseline_failed_slos"] == ["latency"]
    assert len(doc["steps"]) == 1  # nothing left to judge the load by: the ladder stops


def fake_replays(monkeypatch: pytest.MonkeyPatch, interrupt_at: float | None = None) -> None:
    """run_replay stand-in for the stress ladder: every request of a step at N takes
    10 × N ms; Ctrl-C during the step at `interrupt_at`."""

    def run_replay(settings: ReplaySettings, on_tick: object = None) -> ReplayOutcome:
        if settings.scale == interrupt_at:
            raise KeyboardInterrupt
        settings.out.mkdir(parents=True)
        latency = 10.0 * settings.scale
        pd.DataFrame(
            {"endpoint": ["GET /x"] * 50, "latency_ms": [latency] * 50, "status": [200] * 50,
             "sent_s": np.linspace(0, 5, 50)}
        ).to_parquet(settings.out / "timing.parquet")  # fmt: skip
        summary = {"requests": 50, "achieved_rps": 10.0 * settings.scale,
                   "latency_ms": {"p50": latency, "p95": latency, "p99": latency}}  # fmt: skip
        return ReplayOutcome(summary, False, settings.out)

    monkeypatch.setattr("tracereplay.replay.stress.run_replay", run_replay)


def test_stress_ladder_stops_at_the_first_failure_and_refines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_replays(monkeypatch)
    slos = parse_slos(SLO_LATENCY.format(300))  # passes while 10 × N < 300
    settings = ReplaySettings(source=tiny_model(tmp_path), host="http://127.0.0.1:9",
                              out=tmp_path / "stress")  # fmt: skip
    outcome = run_stress(settings, DEFAULT_STEPS, slos, refine=3)
    assert [s.scale for s in outcome.steps] == [1, 2, 4, 8, 16, 32, 22.6, 26.9, 29.3]
    assert outcome.capacity == 29.3 and outcome.limit_found
    assert outcome.lowest_failure is not None and outcome.lowest_failure.scale == 32
    assert verdict_line(outcome) == "capacity 29.3× (N = 32 failed: latency)"
    doc = json.loads((tmp_path / "stress" / "stress.json").read_text())
    assert doc["capacity"] == 29.3
    assert doc["steps"][-1]["dir"] == "step-09-x29.3"
    assert [s.scale for s in outcome.by_scale][-1] == 32  # charts and tables go by N
    unrefined = run_stress(replace(settings, out=tmp_path / "plain"), DEFAULT_STEPS, slos)
    assert unrefined.capacity == 16 and len(unrefined.steps) == 6


def test_stress_interrupted_keeps_the_steps_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_replays(monkeypatch, interrupt_at=4.0)
    settings = ReplaySettings(source=tiny_model(tmp_path), host="http://127.0.0.1:9",
                              out=tmp_path / "stress")  # fmt: skip
    outcome = run_stress(settings, (1, 2, 4, 8), parse_slos(SLO_LATENCY.format(300)))
    assert outcome.interrupted and [s.scale for s in outcome.steps] == [1, 2]
    doc = json.loads((tmp_path / "stress" / "stress.json").read_text())
    assert doc["interrupted"] is True and doc["capacity"] == 2.0


@pytest.mark.parametrize("profile", ["peak", "soak", "spike"])
def test_profile_starts_keep_the_real_gaps_in_units_of_the_mean_gap(profile: str) -> None:
    # Clockwork starts (a start every second, gap CV ≈ 0.08): a profile's curve must place
    # its starts as the model's synthesis does, not uniformly within a bucket (CV ≈ 1).
    real = fit_arrivals(regular_starts(), 600.0)
    assert real.gap_quantiles is not None
    shaped = shape(profile, real, scale=3.0, speed=1.0, duration_s=300.0)
    starts = sample_arrivals(shaped.arrivals, np.random.default_rng(2), scale=shaped.scale)
    # Each gap in units of its piece's mean gap (a spike's pieces differ in rate); gaps
    # that cross a piece's edge are left out.
    rate = np.array([shaped.arrivals.rate_at(t) for t in starts])
    same = rate[1:] == rate[:-1]
    gaps = (np.diff(starts) * rate[1:] * shaped.scale)[same]
    assert len(gaps) > 200
    assert np.std(gaps) / np.mean(gaps) < 0.35
