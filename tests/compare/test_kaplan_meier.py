"""The sorted-once KS and Kaplan-Meier of compare/kaplan_meier.py against what they stand
for: `scipy.stats.ecdf` on `CensoredData`, `ks_2samp`, and the per-session weights of
`models.session_shape.km_weights` (which compare used before)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tracereplay.compare.kaplan_meier import SortedSample, km_mean, ks_between, ks_two
from tracereplay.models.kaplan_meier import kaplan_meier
from tracereplay.models.session_shape import km_weights


def _sample(rng: np.random.Generator, *, integers: bool) -> tuple[np.ndarray, np.ndarray]:
    size = int(rng.integers(2, 400))
    if integers:  # session lengths: many ties
        values = rng.integers(1, 30, size).astype(float)
    else:  # durations, some rounded so that ties happen
        values = np.round(rng.exponential(20.0, size), int(rng.integers(0, 3)))
    return values, rng.random(size) < rng.uniform(0.0, 0.7)


def _weighted_cdf_distance(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> float:
    grid = np.union1d(a, b)
    fa = np.cumsum(np.bincount(np.searchsorted(grid, a), wa, minlength=grid.size))
    fb = np.cumsum(np.bincount(np.searchsorted(grid, b), wb, minlength=grid.size))
    return float(np.abs(fa - fb).max())


@pytest.mark.parametrize("integers", [True, False])
def test_kaplan_meier_is_scipy_ecdf_on_random_censored_data(integers: bool) -> None:
    rng = np.random.default_rng(7 if integers else 8)
    checked = 0
    for _ in range(200):
        values, censored = _sample(rng, integers=integers)
        if censored.all() or not censored.any():
            continue
        data = stats.CensoredData(uncensored=values[~censored], right=values[censored])
        cdf = stats.ecdf(data).cdf
        sample = SortedSample.of(values, censored)
        np.testing.assert_array_equal(sample.distinct, cdf.quantiles)
        np.testing.assert_allclose(kaplan_meier(*sample.counts()), cdf.probabilities, atol=1e-14)
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("integers", [True, False])
def test_distances_and_means_are_the_weighted_ones(integers: bool) -> None:
    rng = np.random.default_rng(9 if integers else 10)
    for _ in range(200):
        (a, ca), (b, cb) = _sample(rng, integers=integers), _sample(rng, integers=integers)
        wa, wb = km_weights(a, ca), km_weights(b, cb)
        before = _weighted_cdf_distance(a, wa, b, wb)
        sa, sb = SortedSample.of(a, ca), SortedSample.of(b, cb)
        assert ks_two(sa, sb) == pytest.approx(before, abs=1e-12)
        assert km_mean(sa) == pytest.approx(float(wa @ a), rel=1e-12)
        # The same two samples as halves of one sorted sample (the noise floor's way).
        both = SortedSample.of(np.concatenate([a, b]), np.concatenate([ca, cb]))
        first = np.arange(a.size + b.size) < a.size
        d, na, nb = ks_between(both, first)
        assert d == pytest.approx(before, abs=1e-12) and (na, nb) == (a.size, b.size)


def test_plain_halves_are_ks_2samp_and_too_small_halves_say_nothing() -> None:
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.normal(0, 1, 500), [np.nan] * 5])
    half = rng.random(values.size) < 0.5
    sample = SortedSample.of(values)
    finite = np.isfinite(values)
    d = stats.ks_2samp(values[half & finite], values[~half & finite]).statistic
    assert ks_between(sample, half)[0] == pytest.approx(d, abs=1e-12)
    shifted = SortedSample.of(np.concatenate([values[:250], values[250:] + 0.5]))
    assert (ks_between(shifted, np.arange(values.size) < 250)[0] or 0) > 0.15
    one = np.zeros(values.size, bool)
    one[0] = True
    assert ks_between(sample, one)[0] is None


def test_halves_of_owners_are_halves_of_their_values() -> None:
    """Pauses split by session: the sparse (session × value) counts give the D and sizes
    that masking every pause by its session's half gives."""
    rng = np.random.default_rng(12)
    sessions = 300
    owner = np.sort(rng.integers(0, sessions, 4000))
    pauses = np.round(rng.exponential(3.0, owner.size), 1)
    pauses[rng.random(owner.size) < 0.1] = np.nan  # a session's first request: no pause
    in_a = rng.random(sessions) < 0.5
    by_request = in_a[owner]
    d, na, nb = ks_between(SortedSample.of(pauses, owner=owner, owners=sessions), in_a)
    plain = ks_between(SortedSample.of(pauses), by_request)
    assert plain[0] is not None and d == pytest.approx(plain[0], abs=1e-12)
    timed = np.isfinite(pauses)
    expected = (int((by_request & timed).sum()), int((~by_request & timed).sum()))
    assert (na, nb) == plain[1:] == expected
