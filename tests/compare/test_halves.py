"""The noise floor's halves counted once per trace (compare/halves.py, kaplan_meier's
`counts_at`) and status codes counted, not sorted (compare/statuses.py): the same numbers,
to the bit, as the per-half computations they replace."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from tracereplay.compare.halves import HalfArrivals
from tracereplay.compare.kaplan_meier import SortedSample, ks_between
from tracereplay.compare.measures import jsd
from tracereplay.compare.statuses import code_statuses, status_codes, transport_errors
from tracereplay.compare.verdicts import FLOOR_QUANTILE, SEED, RealSample, half_noise
from tracereplay.models.arrivals import arrival_rate_mape, rate_curve


def _mape_of_starts(a: np.ndarray, b: np.ndarray, span: float, bucket: float) -> float | None:
    """What the noise floor computed before: `rate_curve` of each half's starts."""
    whole = max(1, math.floor(span / bucket + 1e-9))
    curves = [np.asarray(rate_curve(s, span, bucket), float)[:whole] for s in (a, b)]
    value = float(arrival_rate_mape(curves[0], curves[1], 1.0))
    return value if math.isfinite(value) else None


@pytest.mark.parametrize("case", range(40))
def test_a_halfs_mape_from_bucket_counts_is_rate_curves(case: int) -> None:
    rng = np.random.default_rng(case)
    n = int(rng.integers(4, 400))
    span = float(rng.choice([0.0, 59.9, 60.0, 600.0, 3599.5, float(rng.uniform(1, 5000))]))
    bucket = float(rng.choice([1.0, 60.0, 300.0, 7.3]))
    starts = rng.uniform(-5, span * 1.1 + 1, n)
    starts[rng.random(n) < 0.05] = np.nan
    starts[rng.random(n) < 0.1] = span  # on the end of the span
    starts[rng.random(n) < 0.1] = 0.0
    if span > 0:
        starts[rng.random(n) < 0.1] = np.floor(span / bucket) * bucket  # on an edge
    part = rng.permutation(n)[: n // 2]
    mask = np.zeros(n, bool)
    mask[part] = True
    want = _mape_of_starts(starts[mask], starts[~mask], span, bucket)
    got = HalfArrivals.of(starts, span, bucket).mape(part)
    assert got == want or (got is None and want is None)


def test_a_halfs_mape_sees_which_sessions_are_in_it() -> None:
    # Fails if the half's counts were not its own (e.g. the first half of the positions).
    starts = np.array([1.0, 2.0, 61.0, 62.0, 121.0, 122.0, 5.0, 65.0])
    arrivals = HalfArrivals.of(starts, 180.0, 60.0)
    assert arrivals.mape(np.array([0, 2, 4, 6])) != arrivals.mape(np.array([0, 1, 6, 7]))
    assert arrivals.mape(np.array([0, 2, 4, 6])) == _mape_of_starts(
        starts[[0, 2, 4, 6]], starts[[1, 3, 5, 7]], 180.0, 60.0
    )


@pytest.mark.parametrize("case", range(30))
def test_counts_at_positions_are_the_counts_of_the_mask(case: int) -> None:
    rng = np.random.default_rng(100 + case)
    n = int(rng.integers(2, 300))
    values = rng.integers(0, int(rng.integers(1, 40)), n).astype(float)
    values[rng.random(n) < 0.05] = np.nan
    censored = rng.random(n) < 0.3
    sample = SortedSample.of(values, censored)
    part = rng.permutation(n)[: n // 2]
    mask = np.zeros(n, bool)
    mask[part] = True
    for got, want in zip(sample.counts_at(part), sample.counts(mask), strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("case", range(30))
def test_status_codes_are_np_uniques(case: int) -> None:
    rng = np.random.default_rng(200 + case)
    n = int(rng.integers(0, 500))
    status = rng.choice([200.0, 201.0, 204.0, 404.0, 500.0, 503.0, 0.0, np.nan], n)
    if case % 5 == 1:
        status = status + 0.5  # not whole numbers: np.unique's way
    if case % 5 == 2:
        status[: min(n, 2)] = [70000.0, 100.0][: min(n, 2)]  # a span past the table
    if case % 5 == 3:
        status[:1] = np.inf
    distinct, inverse = np.unique(status, return_inverse=True)
    labels = ["none" if math.isnan(s) else str(int(s)) for s in distinct if not np.isinf(s)]
    if np.isinf(distinct).any():
        with pytest.raises(OverflowError):
            code_statuses(status)
        return
    codes, got = code_statuses(status)
    assert got == labels
    assert np.array_equal(codes, inverse.reshape(-1))


def test_a_frames_status_column_drops_the_labels_a_part_of_it_lacks() -> None:
    status = np.array([200.0, 404.0, np.nan, 200.0, 500.0])
    codes, labels = code_statuses(status)
    frame = pd.DataFrame(
        {
            "status": status,
            "status_label": pd.Categorical.from_codes(codes, categories=pd.Index(labels)),
        }
    )
    part = frame.iloc[[0, 3, 4]]
    assert status_codes(part)[1] == ["200", "500"]
    assert np.array_equal(status_codes(part)[0], [0, 0, 1])
    assert status_codes(frame)[1] == ["200", "404", "500", "none"]


def test_transport_errors_per_category_are_per_request() -> None:
    error = pd.Series(["", "reset", None, "timeout", "", None], dtype=object)
    plain = (error.notna() & (error != "")).to_numpy(bool)
    for column in (error, error.astype("category")):
        assert np.array_equal(transport_errors(pd.DataFrame({"error": column})), plain)
    assert not transport_errors(pd.DataFrame({"status": [1.0, 2.0]})).any()


@pytest.mark.parametrize("case", range(30))
def test_latency_quantiles_in_one_call_are_each_alone(case: int) -> None:
    from tracereplay.compare.measures import LATENCY_QUANTILES, _quantiles

    rng = np.random.default_rng(300 + case)
    n = int(rng.integers(1, 2000))
    values = rng.lognormal(3, 1, n).round(int(rng.integers(0, 4)))
    alone = {name: float(np.quantile(values, q)) for name, q in LATENCY_QUANTILES.items()}
    assert _quantiles(values) == alone


@pytest.mark.parametrize("sizes", [(10_001, 300), (20_000, 20_000), (12_345, 10_001)])
def test_ks_of_large_samples_is_ks_2samps_d_and_pvalue(sizes: tuple[int, int]) -> None:
    from tracereplay.compare.measures import ks

    rng = np.random.default_rng(sizes[0])
    a = rng.exponential(2.0, sizes[0]).round(2)  # ties, within and across the samples
    b = rng.exponential(2.1, sizes[1]).round(2)
    b[:5] = np.nan  # dropped, as ks drops them
    test = ks_2samp(a, b[5:])
    got = ks(a, b)
    assert (got.ks, got.pvalue) == (float(test.statistic), float(test.pvalue))
    assert (got.real_n, got.other_n) == (a.size, b.size - 5)


def _reference_half_noise(sample: RealSample, rounds: int) -> dict[str, list[float]]:
    """The noise floor's values round by round, each half a mask over the sample as
    given, its arrival curve `rate_curve` of its starts: no counts shared, no thread."""
    rng = np.random.default_rng(SEED)
    n = sample.length.size
    owner = sample.session_of_request
    plain = {
        "session_length.ks": SortedSample.of(sample.length, sample.censored),
        "session_duration.ks": SortedSample.of(sample.duration_s, sample.censored),
        "think_time.ks": SortedSample.of(sample.think_s),
    }
    starts_sorted = np.sort(sample.start_s)
    by_start = np.argsort(sample.start_s, kind="stable")
    values: dict[str, list[float]] = {}
    for _ in range(rounds):
        in_a = np.zeros(n, bool)
        in_a[rng.permutation(n)[: n // 2]] = True
        found = {
            name: ks_between(s, in_a[owner] if name == "think_time.ks" else in_a)[0]
            for name, s in plain.items()
        }
        a, b = starts_sorted[in_a[by_start]], starts_sorted[~in_a[by_start]]
        found["interarrival.ks"] = float(ks_2samp(np.diff(a), np.diff(b), method="asymp").statistic)
        found["arrival_rate.mape"] = _mape_of_starts(a, b, sample.span_s, sample.bucket_s or 1)
        for name, codes in (("endpoint_mix.jsd", sample.endpoint_codes),
                            ("status_mix.jsd", sample.status_codes)):  # fmt: skip
            counts = [np.bincount(codes[side[owner]], minlength=codes.max() + 1)
                      for side in (in_a, ~in_a)]  # fmt: skip
            found[name] = jsd(counts[0], counts[1])
        for name, value in found.items():
            if value is not None and math.isfinite(value):
                values.setdefault(name, []).append(value)
    return values


@pytest.mark.parametrize("case", range(4))
def test_the_noise_floor_is_its_rounds_computed_one_by_one(case: int) -> None:
    rng = np.random.default_rng(400 + case)
    sessions = int(rng.integers(30, 200))
    length = rng.integers(1, 8, sessions)
    owner = np.repeat(np.arange(sessions), length)
    think = rng.exponential(5, owner.size).round(1)
    think[np.r_[0, np.cumsum(length)[:-1]]] = np.nan  # a session's first request
    start = np.sort(rng.uniform(0, 3000, sessions)).round(2)
    sample = RealSample(
        session_of_request=owner,
        endpoint_codes=rng.integers(0, 6, owner.size),
        status_codes=rng.integers(0, 3, owner.size),
        think_s=think,
        length=length.astype(float),
        duration_s=rng.exponential(60, sessions).round(0),
        start_s=start,
        span_s=3000.0,
        bucket_s=300.0,
        censored=rng.random(sessions) < 0.2,
    )
    rounds = 25  # three chunks of draws, the last one short
    want = _reference_half_noise(sample, rounds)
    got = half_noise(sample, rounds=rounds)
    assert sorted(got) == sorted(want)
    for name, noise in got.items():
        assert noise.q95 == float(np.quantile(want[name], FLOOR_QUANTILE)), name
    other_seed = half_noise(sample, rounds=rounds, seed=1)
    assert any(other_seed[m].q95 != got[m].q95 for m in got)
