"""Order statistics from counts by value ranges equal numpy's quantiles and medians, bit for
bit, whatever the groups' sizes, ties and spread (models/order_stats.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tracereplay.models import order_stats
from tracereplay.models.behaviors import QUANTILE_POINTS
from tracereplay.models.order_stats import (
    chunked_bincount,
    group_medians,
    group_quantiles,
    lerp,
    order_statistics,
    quantile_points,
)


def groups_of(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Values in groups of 1 to 5,000: lognormal over many decades, exact ties (a script's
    fixed delay), zeros, one group of one value repeated, one empty group."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 2, 3, 7, 20, 21, 99, 5000], size=40)
    sizes[3] = 0
    parts = []
    for g, n in enumerate(sizes.tolist()):
        values = rng.lognormal(0, 3, n)
        if g % 5 == 1:
            values[: n // 2] = 0.25  # ties
        if g % 7 == 2:
            values[: n // 3] = 0.0
        if g == 9:
            values[:] = 3.0
        parts.append(values)
    group = np.repeat(np.arange(len(sizes)), sizes)
    values = np.concatenate(parts)
    shuffle = rng.permutation(len(values))
    return values[shuffle], group[shuffle], len(sizes)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_group_quantiles_are_np_quantile(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_stats, "CHUNK", [1 << 16, 7, 1000][seed - 1])  # keys by chunks
    values, group, groups = groups_of(seed)
    wanted = np.flatnonzero(np.bincount(group, minlength=groups))
    got = group_quantiles(values, group, groups, wanted, QUANTILE_POINTS)
    assert got is not None
    expected = np.array([np.quantile(values[group == g], QUANTILE_POINTS) for g in wanted])
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_group_medians_are_np_median(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_stats, "CHUNK", [1 << 16, 7, 1000][seed - 1])
    values, group, groups = groups_of(seed)
    got = group_medians(values, group, groups)
    assert got is not None
    sizes = np.bincount(group, minlength=groups)
    expected = [np.median(values[group == g]) if sizes[g] else 0.0 for g in range(groups)]
    assert np.array_equal(got, expected)


def test_every_rank_is_the_sorted_value() -> None:
    values, group, groups = groups_of(4)
    wanted = np.concatenate([np.full(n, g) for g, n in enumerate(np.bincount(group).tolist())])
    ranks = np.concatenate([np.arange(n) for n in np.bincount(group).tolist()])
    got = order_statistics(values, group, groups, wanted, ranks)
    expected = np.concatenate([np.sort(values[group == g]) for g in range(groups)])
    assert got is not None and np.array_equal(got, expected)


def test_one_value_and_narrow_ranges() -> None:
    one = group_quantiles(np.array([2.5]), np.array([0]), 1, np.array([0]), QUANTILE_POINTS)
    assert one is not None and np.array_equal(one[0], np.quantile([2.5], QUANTILE_POINTS))
    close = 1.0 + np.arange(300) * 1e-15  # all in one range of values
    got = group_quantiles(close, np.zeros(300, np.int64), 1, np.array([0]), QUANTILE_POINTS)
    assert got is not None and np.array_equal(got[0], np.quantile(close, QUANTILE_POINTS))


@pytest.mark.parametrize("limit", [0, 3, 50])
@pytest.mark.parametrize("seed", [1, 2])
def test_ranges_counted_again_are_the_sorted_values(
    seed: int, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With fewer values sorted at once than the wanted ranges hold, each range's values are
    partitioned at its ranks: the same ranks, every one of them."""
    monkeypatch.setattr(order_stats, "SORT_LIMIT", limit)
    values, group, groups = groups_of(seed)
    sizes = np.bincount(group, minlength=groups)
    wanted = np.concatenate([np.full(n, g) for g, n in enumerate(sizes.tolist())])
    ranks = np.concatenate([np.arange(n) for n in sizes.tolist()])
    got = order_statistics(values, group, groups, wanted, ranks)
    expected = np.concatenate([np.sort(values[group == g]) for g in range(groups)])
    assert got is not None and np.array_equal(got, expected)
    got = group_quantiles(values, group, groups, np.flatnonzero(sizes), QUANTILE_POINTS)
    quantiles = [np.quantile(values[group == g], QUANTILE_POINTS) for g in np.flatnonzero(sizes)]
    assert got is not None and np.array_equal(got, np.array(quantiles))


def test_many_ties_are_not_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A range of values nearly all alike (stretch1M_x8's think times: 7 of 8 the same 1 ms)
    is partitioned, not sorted whole: no sort by value is asked more than SORT_LIMIT values."""
    rng = np.random.default_rng(5)
    values = rng.lognormal(0, 2, 300_000)
    values[rng.random(len(values)) < 0.9] = 0.001
    values[:1000] = np.nextafter(0.001, 1.0)  # the tie's neighbour, in its narrowest range
    group = rng.integers(0, 3, len(values))
    sorted_sizes = []
    lexsort = np.lexsort

    def counted(keys: tuple[np.ndarray, ...]) -> np.ndarray:
        sorted_sizes.append(len(keys[0]))
        return lexsort(keys)

    monkeypatch.setattr(order_stats.np, "lexsort", counted)
    got = group_quantiles(values, group, 3, np.arange(3), QUANTILE_POINTS)
    monkeypatch.undo()
    expected = np.array([np.quantile(values[group == g], QUANTILE_POINTS) for g in range(3)])
    assert got is not None and np.array_equal(got, expected)
    assert max(sorted_sizes, default=0) <= order_stats.SORT_LIMIT


def test_values_with_a_sign_bit_are_refused() -> None:
    group = np.zeros(3, np.int64)
    for values in ([1.0, -2.0, 3.0], [1.0, -0.0, 3.0]):
        assert order_statistics(np.array(values), group, 1, np.array([0]), np.array([1])) is None
        assert group_medians(np.array(values), group, 1) is None


def test_interpolation_is_np_quantiles() -> None:
    rng = np.random.default_rng(0)
    for n in [1, 2, 3, 20, 21, 1001]:
        values = np.sort(rng.lognormal(0, 2, n))
        lo, hi, gamma = quantile_points(np.array([n]), QUANTILE_POINTS)
        got = lerp(values[lo[0]], values[hi[0]], gamma[0])
        assert np.array_equal(got, np.quantile(values, QUANTILE_POINTS)), n


@pytest.mark.parametrize("chunk", [5, 64, 1 << 16])
@pytest.mark.parametrize("kind", [np.uint8, np.int32, np.intp])
def test_chunked_bincount_is_bincount(
    chunk: int, kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(order_stats, "CHUNK", chunk)
    codes = np.random.default_rng(chunk).integers(0, 40, 1003).astype(kind)
    for size in (40, 41, 100):  # the last bins empty, or more bins than CHUNK
        got = chunked_bincount(codes, size)
        assert got.dtype == np.int64 and np.array_equal(got, np.bincount(codes, minlength=size))
    assert np.array_equal(chunked_bincount(codes[:0], 3), [0, 0, 0])
