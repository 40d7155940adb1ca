"""The report's per-request charts reduced one side at a time give the page the plain
way gives: the ECDF chart equals `svg.ecdf_chart`'s, the latency-over-time bins equal
pandas' `groupby(bins).quantile(q)`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracereplay.compare import svg
from tracereplay.compare.report_sections import LOG_FLOOR, bin_quantiles, ecdf_chart


def samples(seed: int, n: int) -> list[np.ndarray]:
    """Think times with zeros, negatives, NaN and inf; an empty and a one-value sample."""
    rng = np.random.default_rng(seed)
    wide = rng.lognormal(0.0, 3.0, n)
    wide[rng.random(n) < 0.1] = 0.0
    wide[rng.random(n) < 0.05] = np.nan
    wide[rng.random(n) < 0.01] = np.inf
    other = np.concatenate([rng.exponential(2.0, n // 3), [-1.0, -np.inf]])
    return [wide, other, np.array([]), np.array([np.nan, 4.5])]


@pytest.mark.parametrize("log_floor", [LOG_FLOOR, None])
@pytest.mark.parametrize("pick", [(0, 1), (1, 0), (0, 2), (2, 3), (3,), (0, 1, 3)])
def test_ecdf_chart_is_svg_ecdf_chart(log_floor: float | None, pick: tuple[int, ...]) -> None:
    found = samples(7, 3_000)  # > svg.ECDF_POINTS: the steps are a subset
    pairs = [(f"s{i}", "#123456", pd.Series(found[i])) for i in pick]
    got = ecdf_chart("c", "T", pairs, "x", log_floor=log_floor)
    assert got == svg.ecdf_chart("c", "T", pairs, "x", log_floor=log_floor)
    assert (got is None) is (pick == (2,))


def test_no_finite_value_is_no_chart() -> None:
    empty = [("a", "#000000", np.array([np.nan])), ("b", "#000000", np.array([]))]
    assert ecdf_chart("c", "T", empty, "x") is None is svg.ecdf_chart("c", "T", empty, "x")


@pytest.mark.parametrize(("seed", "bucket_s"), [(0, 7.5), (1, 7.5), (2, 0.5)])
def test_bin_quantiles_are_pandas_group_quantiles(seed: int, bucket_s: float) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    t_s = rng.random(n) * 300.0
    t_s[(t_s > 100) & (t_s < 130)] = 140.0  # empty bins between full ones
    t_s[:3] = [-8.0, -0.5, 301.0]  # bins below 0 are never read; one bin of one value
    duration = rng.lognormal(4.0, 1.0, n)
    duration[rng.random(n) < 0.2] = np.nan
    duration[:3] = [5.0, 6.0, 42.0]
    got = bin_quantiles(pd.Series(t_s), pd.Series(duration), bucket_s, (0.5, 0.95))
    timed = ~np.isnan(duration)
    bins = np.floor(t_s[timed] / bucket_s).astype(int)
    for q in (0.5, 0.95):
        by_bin = pd.Series(duration[timed]).groupby(bins, sort=True).quantile(q)
        want = [by_bin.get(b) for b in range(bins.max() + 1)]
        assert got[q] == [None if w is None else float(w) for w in want]
        assert got[q][int(301.0 // bucket_s)] == 42.0
        assert None in got[q]
    # np.quantile's arithmetic differs in the last bits on some of 600 small bins (0.5 s).
    assert bin_quantiles([1.0], [np.nan], 1.0, (0.5,)) == {0.5: []}
