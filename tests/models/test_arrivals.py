"""Tests of the session arrival model: fitting a rate curve, its shape (period, dispersion,
bursts), the seeded sampler (scale, speed, continuation) and the JSON form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tracereplay.demo.traffic.daycurve import day_curve
from tracereplay.errors import ConfigError, UsageError
from tracereplay.models.arrivals import (
    ArrivalModel,
    arrival_rate_mape,
    default_bucket_s,
    dispersion_index,
    fit_arrivals,
    fitted_bucket_s,
    rate_curve,
    sample_arrivals,
)


def poisson_starts(rates: list[float], bucket_s: float, seed: int = 0) -> np.ndarray:
    """Starts of a Poisson process with a known piecewise-constant rate (per bucket)."""
    rng = np.random.default_rng(seed)
    pieces = [
        i * bucket_s + rng.random(rng.poisson(rate * bucket_s)) * bucket_s
        for i, rate in enumerate(rates)
    ]
    return rng.permutation(np.concatenate(pieces))  # unsorted on purpose


def day_rates(buckets: int, peak_rate: float) -> list[float]:
    """The staging users' compressed day (night, ramp, lunch, 16:15 burst) as rates."""
    return [peak_rate * day_curve((i + 0.5) / buckets) for i in range(buckets)]


# -- fitting -------------------------------------------------------------------------------


def test_fit_recovers_piecewise_rates_within_poisson_error() -> None:
    truth = [2.0, 2.0, 8.0, 8.0, 0.5, 0.5, 4.0, 1.0]
    model = fit_arrivals(poisson_starts(truth, 60.0), 480.0, bucket_s=60.0)
    assert model.bucket_s == 60.0
    assert len(model.rates_per_s) == len(truth)
    for fitted, rate in zip(model.rates_per_s, truth, strict=True):
        assert abs(fitted - rate) <= 4 * math.sqrt(rate / 60.0)
    assert model.peak_bucket in (2, 3)
    assert model.peak_rate_per_s == max(model.rates_per_s)
    assert model.sessions == round(sum(r * 60.0 for r in model.rates_per_s))


@pytest.mark.parametrize(
    ("span_s", "sessions", "bucket_s"),
    [
        (109.55, 104, 5.0),  # the staging trace: 12 buckets win over 20 sessions a bucket
        (86_400.0, 100_000, 900.0),  # a busy day: 96 buckets of ~1,157 sessions
        (86_400.0, 500, 3_600.0),  # a quiet day: 24 buckets of ~21 sessions
        (86_400.0, 100, 3_600.0),  # too quiet for 20 a bucket: the largest that fits
        (600.0, 10_000, 5.0),  # 120 buckets at most
        (8.0, 3, 1.0),  # under 12 s: 1 s
        (10 * 86_400.0, 50, 3_600.0),  # over 5 days: 1 h, more than 120 buckets
    ],
)
def test_default_bucket(span_s: float, sessions: int, bucket_s: float) -> None:
    assert default_bucket_s(span_s, sessions) == bucket_s


def test_default_bucket_keeps_12_to_120_buckets() -> None:
    rng = np.random.default_rng(3)
    for span_s in (30.0, 109.55, 1_000.0, 86_400.0):
        model = fit_arrivals(rng.random(2_000) * span_s, span_s)
        assert 12 <= len(model.rates_per_s) <= 120


def test_rate_curve_divides_the_last_bucket_by_what_it_covers() -> None:
    curve = rate_curve([0.5, 1.5, 10.5, 10.9], 11.0, 10.0)
    assert curve.tolist() == [0.2, 2.0]
    assert rate_curve([5.0, -1.0, 20.0, math.nan], 10.0, 5.0).tolist() == [0.0, 0.2]


def test_fit_captures_the_compressed_day() -> None:
    truth = day_rates(96, peak_rate=40.0)  # 96 quarter hours of a 90 s day, in 1.875 s
    starts = poisson_starts(truth, 90.0 / 96, seed=5)
    model = fit_arrivals(starts, 90.0, bucket_s=90.0 / 24)  # one bucket per hour
    night, lunch = model.rates_per_s[3], model.rates_per_s[12]
    assert night < 0.15 * lunch
    assert model.peak_bucket in (11, 12, 13, 16)  # lunch or the 16:15 burst
    assert arrival_rate_mape(rate_curve(starts, 90.0, 90.0 / 24), model.rates_per_s, 1.0) < 0.01


# -- shape: dispersion, bursts, period -------------------------------------------------------


def test_dispersion_of_a_poisson_process_is_about_one() -> None:
    starts = poisson_starts([5.0] * 100, 60.0, seed=2)
    assert 0.85 < dispersion_index(starts, 6_000.0, 10.0) < 1.15
    model = fit_arrivals(starts, 6_000.0)
    assert set(model.dispersion) == {"1s", "10s", "60s", "300s"}  # 3600 s fits only once
    assert all(0.7 < v < 1.3 for v in model.dispersion.values())


def test_dispersion_of_a_bursty_process_is_above_one() -> None:
    rng = np.random.default_rng(4)
    centres = rng.random(60) * 6_000.0  # clusters of 20 starts within 2 s
    starts = (centres[:, None] + rng.random((60, 20)) * 2.0).ravel()
    assert dispersion_index(starts, 6_002.0, 10.0) > 5


def test_dispersion_undefined_cases() -> None:
    assert math.isnan(dispersion_index([], 100.0, 10.0))
    assert math.isnan(dispersion_index([1.0], 15.0, 10.0))  # one window only
    with pytest.raises(UsageError):
        dispersion_index([1.0], 100.0, 0.0)


def test_burst_detection() -> None:
    rates = [1.0] * 60
    flat = poisson_starts(rates, 10.0, seed=6)
    assert fit_arrivals(flat, 600.0, bucket_s=10.0).bursts == ()
    burst = np.concatenate([flat, 300.0 + np.linspace(0.1, 9.9, 40)])
    model = fit_arrivals(burst, 600.0, bucket_s=10.0)
    assert len(model.bursts) == 1
    found = model.bursts[0]
    assert (found["bucket"], found["buckets"], found["start_s"], found["end_s"]) == (
        30,
        1,
        300,
        310,
    )
    assert found["sessions"] >= 40
    assert found["peak_rate_per_s"] > 2 * found["base_rate_per_s"]
    assert model.peak_bucket == 30


def test_few_sessions_are_never_a_burst() -> None:
    model = fit_arrivals([1.0, 2.0, 3.0, 500.0], 600.0, bucket_s=10.0)
    assert model.bursts == ()


def test_period_found_in_a_multi_day_trace() -> None:
    truth = day_rates(24, 0.5) * 3  # three days, hourly buckets
    model = fit_arrivals(poisson_starts(truth, 3_600.0, seed=7), 3 * 86_400.0)
    assert model.period_s == 86_400.0
    assert model.day_profile is not None and len(model.day_profile) == 24
    assert model.day_profile[3] < 0.1 < model.day_profile[12]
    # Beyond the span the day goes on in phase.
    assert model.rate_at(3.5 * 86_400.0) == model.day_profile[12]


def test_no_period_in_short_or_flat_traces() -> None:
    one_day = fit_arrivals(poisson_starts(day_rates(24, 0.5), 3_600.0), 86_400.0)
    assert one_day.period_s is None and one_day.day_profile is None
    flat = fit_arrivals(poisson_starts([0.2] * 72, 3_600.0, seed=8), 3 * 86_400.0)
    assert flat.period_s is None


# -- sampling ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def day_model() -> ArrivalModel:
    return fit_arrivals(poisson_starts(day_rates(48, 20.0), 2.5, seed=9), 120.0, bucket_s=2.5)


def test_stratified_arrivals_reproduce_the_curve_run_after_run(day_model: ArrivalModel) -> None:
    real = np.array(day_model.rates_per_s)
    for seed, scale in ((1, 1.0), (2, 5.0), (3, 0.5)):
        t = sample_arrivals(day_model, np.random.default_rng(seed), scale=scale)
        counts = rate_curve(t, 120.0, day_model.bucket_s) * day_model.bucket_s
        expected = real * day_model.bucket_s * scale
        assert np.all(np.abs(counts - expected) <= 1.0 + 1e-9)  # expected count ± 1
        assert abs(len(t) - expected.sum()) <= 1.0


def test_sample_scale_adds_sessions_with_the_same_shape(day_model: ArrivalModel) -> None:
    one = sample_arrivals(day_model, np.random.default_rng(1), process="poisson")
    five = sample_arrivals(day_model, np.random.default_rng(2), scale=5.0, process="poisson")
    assert np.all(np.diff(five) >= 0) and five.min() >= 0 and five.max() < 120.0
    assert abs(len(one) - day_model.sessions) < 4 * math.sqrt(day_model.sessions)
    assert abs(len(five) / len(one) - 5.0) < 0.5
    real = np.array(day_model.rates_per_s)
    assert arrival_rate_mape(real, rate_curve(five, 120.0, 2.5), 5.0) < 0.2
    assert arrival_rate_mape(real, rate_curve(one, 120.0, 2.5), 1.0) > arrival_rate_mape(
        real, rate_curve(five, 120.0, 2.5), 5.0
    )


def test_sample_speed_compresses_time_at_the_same_level(day_model: ArrivalModel) -> None:
    fast = sample_arrivals(day_model, np.random.default_rng(3), scale=40.0, speed=4.0)
    assert fast.max() < 30.0
    assert abs(len(fast) / (day_model.sessions * 10.0) - 1.0) < 0.1
    curve = rate_curve(fast, 30.0, 2.5 / 4.0)
    assert arrival_rate_mape(np.array(day_model.rates_per_s), curve, 40.0) < 0.25


def test_sample_beyond_the_span_repeats_the_curve(day_model: ArrivalModel) -> None:
    long = sample_arrivals(day_model, np.random.default_rng(4), scale=5.0, duration_s=300.0)
    assert long.max() < 300.0 and long.max() > 240.0
    assert abs(len(long) / (day_model.sessions * 5 * 2.5) - 1.0) < 0.1
    second = rate_curve(long[(long >= 120.0) & (long < 240.0)] - 120.0, 120.0, 2.5)
    assert arrival_rate_mape(np.array(day_model.rates_per_s), second, 5.0) < 0.25
    assert day_model.rate_at(130.0) == day_model.rate_at(10.0)


def test_sample_is_deterministic(day_model: ArrivalModel) -> None:
    first = sample_arrivals(day_model, np.random.default_rng(11), scale=2.0)
    again = sample_arrivals(day_model, np.random.default_rng(11), scale=2.0)
    other = sample_arrivals(day_model, np.random.default_rng(12), scale=2.0)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_sample_rejects_bad_options(day_model: ArrivalModel) -> None:
    rng = np.random.default_rng(0)
    for bad in ({"scale": -1.0}, {"speed": 0.0}, {"duration_s": -5.0}, {"scale": math.nan}):
        with pytest.raises(UsageError):
            sample_arrivals(day_model, rng, **bad)
    assert len(sample_arrivals(day_model, rng, scale=0.0)) == 0
    assert len(sample_arrivals(day_model, rng, duration_s=0.0)) == 0


def test_rate_at_is_piecewise_constant() -> None:
    model = fit_arrivals([0.5, 1.0, 12.0], 25.0, bucket_s=10.0)
    assert model.rates_per_s == (0.2, 0.1, 0.0)
    assert model.rate_at(0.0) == model.rate_at(9.99) == 0.2
    assert model.rate_at(10.0) == 0.1
    assert model.rate_at(-1.0) == 0.0
    assert model.rate_at(25.5) == 0.2  # the span repeats
    assert model.rate_at(math.inf) == 0.0


# -- degenerate input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starts", "span_s"),
    [([], 100.0), ([3.0], 100.0), ([0.0], 0.0), ([], 0.0), ([0.0, 0.0, 0.0], 0.0)],
)
def test_degenerate_input_gives_a_valid_model(starts: list[float], span_s: float) -> None:
    model = fit_arrivals(starts, span_s)
    assert model.sessions == len(starts)
    assert len(model.rates_per_s) >= 1 and model.bursts == ()
    assert model.peak_rate_per_s == max(model.rates_per_s)
    if span_s == 0:
        assert model.rates_per_s == (0.0,)
    assert ArrivalModel.from_json(json.loads(json.dumps(model.to_json()))) == model
    assert len(sample_arrivals(model, np.random.default_rng(0), duration_s=50.0)) <= 5


def test_bad_span_or_bucket_is_a_usage_error() -> None:
    for span in (-1.0, math.nan, math.inf):
        with pytest.raises(UsageError):
            fit_arrivals([1.0], span)
    with pytest.raises(UsageError):
        fit_arrivals([1.0], 100.0, bucket_s=0.0)
    with pytest.raises(UsageError, match="use a larger bucket"):
        fit_arrivals([1.0], 86_400.0, bucket_s=0.001)


def test_arrival_rate_mape() -> None:
    assert arrival_rate_mape([1.0, 2.0, 0.0], [2.0, 4.0, 5.0], 2.0) == 0.0
    assert arrival_rate_mape([1.0, 2.0], [1.5, 2.0], 1.0) == 0.25
    assert arrival_rate_mape([1.0, 2.0, 4.0], [1.5, 2.0], 1.0) == 0.25  # common buckets
    assert math.isnan(arrival_rate_mape([0.0, 0.0], [1.0, 1.0], 1.0))
    with pytest.raises(UsageError):
        arrival_rate_mape([1.0], [1.0], 0.0)


# -- JSON ---------------------------------------------------------------------------------------


def test_json_round_trip_is_stable_and_rounded(day_model: ArrivalModel) -> None:
    data = day_model.to_json()
    text = json.dumps(data)
    assert ArrivalModel.from_json(json.loads(text)) == day_model
    starts = poisson_starts(day_rates(48, 20.0), 2.5, seed=9)
    again = fit_arrivals(starts[::-1], 120.0, bucket_s=2.5)
    assert json.dumps(again.to_json()) == text
    for value in [*data["rates_per_s"], *data["dispersion"].values()]:
        assert len(f"{value:g}".replace(".", "").lstrip("0")) <= 5
    assert list(data["dispersion"]) == ["1s", "10s"]


def test_from_json_rejects_a_broken_model(day_model: ArrivalModel) -> None:
    data = day_model.to_json()
    for broken in (
        {k: v for k, v in data.items() if k != "rates_per_s"},
        {**data, "rates_per_s": data["rates_per_s"][:-1]},
        {**data, "bucket_s": 0},
        {**data, "period_s": 86_400.0},
        {**data, "rates_per_s": ["x"] * len(data["rates_per_s"])},
    ):
        with pytest.raises(ConfigError):
            ArrivalModel.from_json(broken)


@pytest.mark.parametrize(
    ("count", "span_s"), [(0, 100.0), (3, 0.0), (10, 5.0), (1000, 600.0), (50_000, 86_400.0)]
)
def test_fitted_bucket_is_the_one_fit_arrivals_chooses(count: int, span_s: float) -> None:
    starts = np.sort(np.random.default_rng(count).random(count) * span_s)
    # a start outside the span counts in neither
    starts = np.append(starts, span_s + 1.0)
    assert fitted_bucket_s(starts, span_s) == fit_arrivals(starts, span_s).bucket_s
