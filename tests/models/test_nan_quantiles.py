"""`nan_quantiles`: the median and quantile of an array's non-NaN values are numpy's, to the
bit, whether the sampled band finds the ranks or numpy's partition of them all does."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tracereplay.models import nan_quantiles
from tracereplay.models.nan_quantiles import nan_median, nan_quantile


def _values(case: int) -> np.ndarray:
    rng = np.random.default_rng(case)
    n = [0, 1, 2, 3, 10, 1000, 300_001, 300_002][case % 8]
    kind = case // 8 % 6
    if kind == 0:
        x = rng.exponential(size=n)
    elif kind == 1:  # few distinct values: long ties across the band's edges
        x = rng.integers(0, 5, n).astype(float)
    elif kind == 2:  # in order: the strided sample is exact
        x = np.sort(rng.normal(size=n))
    elif kind == 3:
        x = rng.exponential(size=n)
        x[rng.random(n) < 0.3] = np.nan
    elif kind == 4:  # nearly all NaN: the sample may hold none
        x = np.full(n, np.nan)
        x[rng.random(n) < 0.001] = 1.5
    else:  # half zeros (think times of requests sent at once)
        x = np.where(rng.random(n) < 0.5, 0.0, rng.exponential(size=n))
    if n and case % 7 == 0:
        x[0] = np.inf
    if n and case % 11 == 0:
        x[-1] = -np.inf
    return x


def _same(got: float, want: float) -> bool:
    return got == want or (np.isnan(got) and np.isnan(want))


@pytest.mark.parametrize("case", range(48))
def test_median_and_quantiles_are_numpys(case: int) -> None:
    x = _values(case)
    kept = x[~np.isnan(x)]
    with warnings.catch_warnings():  # (numpy's own interpolation of infinities warns)
        warnings.simplefilter("ignore", RuntimeWarning)
        for q in (0.99, 0.5, 0.01, 0.0, 1.0, 0.3333):
            want = float(np.quantile(kept, q)) if len(kept) else np.nan
            assert _same(nan_quantile(x, q), want), q
        assert _same(nan_median(x), float(np.median(kept)) if len(kept) else np.nan)
    assert np.array_equal(x, _values(case), equal_nan=True)  # read, never written


def test_a_band_that_misses_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Periodic values the strided sample reads only the smallest of: its band misses.
    x = np.tile(np.arange(nan_quantiles.SAMPLE // 64, dtype=float), 64 * 8)
    x[:: len(x) // nan_quantiles.SAMPLE] = -1.0
    partitioned = []
    real = nan_quantiles._partitioned
    monkeypatch.setattr(nan_quantiles, "_partitioned", lambda *a: partitioned.append(1) or real(*a))
    assert nan_median(x) == float(np.median(x))
    assert nan_quantile(x, 0.99) == float(np.quantile(x, 0.99))
    assert len(partitioned) == 2
