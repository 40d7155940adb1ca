"""The report's per-request charts reduced one side at a time give the page the plain
way gives: `svg.ecdf_chart` equals the chart drawn from every sample at once, the
latency-over-time bins equal pandas' `groupby(bins).quantile(q)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tracereplay.compare import svg
from tracereplay.compare.report_sections import LOG_FLOOR, bin_quantiles


def samples(seed: int, n: int) -> list[np.ndarray]:
    """Think times with zeros, negatives, NaN and inf; an empty and a one-value sample."""
    rng = np.random.default_rng(seed)
    wide = rng.lognormal(0.0, 3.0, n)
    wide[rng.random(n) < 0.1] = 0.0
    wide[rng.random(n) < 0.05] = np.nan
    wide[rng.random(n) < 0.01] = np.inf
    other = np.concatenate([rng.exponential(2.0, n // 3), [-1.0, -np.inf]])
    return [wide, other, np.array([]), np.array([np.nan, 4.5])]


def plain_ecdf_chart(
    chart_id: str,
    title: str,
    samples: Sequence[tuple[str, str, Any]],
    x_label: str,
    *,
    log_floor: float | None = None,
) -> str | None:
    """The chart as `svg.ecdf_chart` drew it before it held one sample at a time (every
    sample's finite values concatenated): the page must not change."""
    arrays = [np.asarray(values, dtype=float) for _, _, values in samples]
    finite = [a[np.isfinite(a)] for a in arrays]
    widths = [2.0 + 1.5 * (len(samples) - 1 - i) for i in range(len(samples))]
    both = np.concatenate(finite)
    if not both.size:
        return None
    hi, positive = float(both.max()), both[both > 0]
    if log_floor is not None:
        low = float(positive.min()) if positive.size else 0.0
        x = svg.log_axis(max(low, log_floor), hi, x_label)
    else:
        x = svg.linear_axis(min(0.0, float(both.min())), hi, x_label)
    series = [
        svg.Series(f"{name} (n={v.size:,})", color, svg.ecdf_points(v, x.hi), step=True, width=w)
        for (name, color, _), v, w in zip(samples, finite, widths, strict=True)
    ]
    return svg.line_chart(chart_id, title, series, x, svg.linear_axis(0, 1, "share ≤ x", 4))


@pytest.mark.parametrize("log_floor", [LOG_FLOOR, None])
@pytest.mark.parametrize("pick", [(0, 1), (1, 0), (0, 2), (2, 3), (3,), (0, 1, 3)])
def test_ecdf_chart_is_the_plain_chart(log_floor: float | None, pick: tuple[int, ...]) -> None:
    found = samples(7, 3_000)  # > svg.ECDF_POINTS: the steps are a subset
    pairs = [(f"s{i}", "#123456", pd.Series(found[i])) for i in pick]
    got = svg.ecdf_chart("c", "T", pairs, "x", log_floor=log_floor)
    assert got == plain_ecdf_chart("c", "T", pairs, "x", log_floor=log_floor)
    assert (got is None) is (pick == (2,))


def test_no_finite_value_is_no_chart() -> None:
    empty = [("a", "#000000", np.array([np.nan])), ("b", "#000000", np.array([]))]
    assert svg.ecdf_chart("c", "T", empty, "x") is None is plain_ecdf_chart("c", "T", empty, "x")


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
