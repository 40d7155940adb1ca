"""Grouped quantiles and medians of spilled values equal np.quantile and np.median to the bit,
whatever the signs, ties, infinities, group sizes and gather limit; the spill's directory is
removed on close and on error (models/spilled_quantiles.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tracereplay.models import spilled_quantiles
from tracereplay.models.behaviors import QUANTILE_POINTS
from tracereplay.models.spilled_quantiles import (
    GROUP_LIMIT,
    Ask,
    GroupValues,
    SpilledValues,
    order_keys,
    values_of,
)

POINTS = np.asarray(QUANTILE_POINTS, dtype=np.float64)
LIMITS = [1 << 20, 500, 0]
"""Gather limits: everything gathered in one pass; finer counts for the larger ranges;
nothing gathered (every rank found by counting down to single values)."""


def bits(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).view(np.int64)


def expected(
    values: np.ndarray, groups: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.quantile and np.median of each group's values, numpy's own: the groups of one
    size at a time, as the rows of one array (axis=1; checked against the 1-D calls in
    `test_reference_is_numpys_one_dimensional`)."""
    order = np.lexsort((values, groups))
    values, groups = values[order], groups[order]
    used, starts, sizes = np.unique(groups, return_index=True, return_counts=True)
    q = np.empty((len(used), len(points)))
    m = np.empty(len(used))
    with np.errstate(invalid="ignore", over="ignore"):
        for size in np.unique(sizes).tolist():
            rows = np.flatnonzero(sizes == size)
            block = values[starts[rows][:, None] + np.arange(size)]
            q[rows] = np.quantile(block, points, axis=1).T
            m[rows] = np.median(block, axis=1)
    return used, q, m


def assert_exact(spilled: SpilledValues, values: np.ndarray, groups: np.ndarray) -> None:
    got_q, got_m = spilled.answer(Ask.quantiles(POINTS), Ask.median())
    used, q, m = expected(values, groups, POINTS)
    assert np.array_equal(got_q.groups, used)
    assert np.array_equal(got_m.groups, used)
    assert np.array_equal(got_q.counts, np.unique(groups, return_counts=True)[1])
    assert np.array_equal(bits(got_q.values), bits(q))
    assert np.array_equal(bits(got_m.values), bits(m))


def mixture(seed: int, n: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Values over many decades of both signs, heavy exact ties (a fixed pause), zeros of
    one sign, infinities of both signs, near ties (a fixed pause measured by differences:
    last-bit noise), in groups of very different sizes (many of one value)."""
    rng = np.random.default_rng(seed)
    group = (rng.pareto(1.0, n) * 3).astype(np.int64) % groups
    values = rng.lognormal(0, 4, n) * rng.choice([-1.0, 1.0], n, p=[0.3, 0.7])
    kind = rng.random(n)
    values[kind < 0.3] = 0.001  # ties
    near = (kind >= 0.3) & (kind < 0.45)
    values[near] = (1000.0 + 0.001 + rng.integers(0, 50, near.sum()) * 1e-9) - 1000.0
    values[(kind >= 0.45) & (kind < 0.47)] = 0.0
    values[(kind >= 0.47) & (kind < 0.475)] = np.inf
    values[(kind >= 0.475) & (kind < 0.478)] = -np.inf
    return values, group


def test_order_keys_order_as_the_values_and_invert() -> None:
    x = np.array([-np.inf, -1e308, -1.0, -5e-324, -0.0, 0.0, 5e-324, 1.0, 1e308, np.inf])
    keys = order_keys(x)
    assert (np.diff(keys.astype(object)) > 0).all()  # strictly: -0.0 below +0.0
    assert np.array_equal(bits(values_of(keys)), bits(x))
    rng = np.random.default_rng(0)
    y = rng.standard_cauchy(10_000)
    assert np.array_equal(np.argsort(order_keys(y), kind="stable"), np.argsort(y, kind="stable"))


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("seed", [1, 2])
def test_quantiles_and_medians_are_numpys(seed: int, limit: int) -> None:
    values, group = mixture(seed, 60_000, 300)
    with SpilledValues(gather_limit=limit) as spilled:
        cuts = np.sort(np.random.default_rng(seed).integers(0, len(values), 7))
        for chunk_values, chunk_group in zip(
            np.split(values, cuts), np.split(group, cuts), strict=True
        ):
            spilled.add(chunk_values, chunk_group)  # (one chunk empty at times)
        assert_exact(spilled, values, group)
        report = spilled.report
        assert report.values == len(values)
        assert report.values_gathered <= limit * report.passes
        if limit == 0:
            assert report.values_gathered == 0 and report.levels >= 2


def test_reference_is_numpys_one_dimensional() -> None:
    values, group = mixture(3, 5_000, 40)
    used, q, m = expected(values, group, POINTS)
    with np.errstate(invalid="ignore", over="ignore"):
        for i, g in enumerate(used.tolist()):
            assert np.array_equal(bits(np.quantile(values[group == g], POINTS)), bits(q[i]))
            assert np.array_equal(bits(np.median(values[group == g])), bits(m[i]))


@pytest.mark.parametrize("limit", LIMITS)
def test_dense_values_take_every_level(limit: int) -> None:
    """Consecutive floats (one level-0 range, one range at each level but the last) and
    exact ties: found down to single values, in up to three passes."""
    rng = np.random.default_rng(4)
    n = 40_000
    values = 1.0 + rng.integers(0, 1 << 20, n) * 2.0**-52
    values[: n // 4] = -values[: n // 4]
    values[n // 2 : n // 2 + n // 8] = 1.0 + 2.0**-30  # ties inside the dense range
    group = rng.integers(0, 3, n)
    with SpilledValues(gather_limit=limit) as spilled:
        spilled.add(values, group)
        assert_exact(spilled, values, group)
        if limit < n // 3:
            assert spilled.report.passes == 3 and spilled.report.levels == 4


def test_hundred_thousand_groups_of_few_values() -> None:
    rng = np.random.default_rng(5)
    groups = 100_000
    group = np.concatenate([np.arange(groups), rng.integers(0, groups, 150_000)])
    values = np.round(rng.normal(0, 100, len(group)), 1)  # ties across and within groups
    with SpilledValues(gather_limit=50_000) as spilled:
        spilled.add(values, group)
        assert_exact(spilled, values, group)


def test_also_counts_each_value_in_a_second_group() -> None:
    """Each chunk's values in their own groups and in `also` (the trace's every pause beside
    each transition's); `also` differs between chunks; groups past 2**31 spill as int64."""
    rng = np.random.default_rng(6)
    chunks = []
    with SpilledValues(gather_limit=300) as spilled:
        for i in range(6):
            n = int(rng.integers(1, 4_000))
            values = rng.exponential(2.0, n)
            values[rng.random(n) < 0.5] = 0.25
            group = rng.integers(2, 40, n) + (i == 3) * (1 << 40)
            also = i % 2
            spilled.add(values, group, also=also)
            chunks.append((values, group, np.full(n, also)))
        values = np.concatenate([np.r_[v, v] for v, _, _ in chunks])
        group = np.concatenate([np.r_[g, a] for _, g, a in chunks])
        assert_exact(spilled, values, group)


@pytest.mark.parametrize("values", [[0.77], [0.77, 0.77]])
def test_only_the_also_group_asked(values: list[float]) -> None:
    """The one level-0 cell wanted is the `also` group's (beh40 found it: the wanted cells
    were searched with the lookup's empty-slot sentinel at their end, not sorted)."""
    with SpilledValues() as spilled:
        spilled.add(np.asarray(values), np.ones(len(values), np.int64), also=5)
        (found,) = spilled.answer(Ask.quantiles(POINTS, groups=[5]))
        assert np.array_equal(bits(found.of(5)), bits(np.quantile(values, POINTS)))


def test_asked_groups_and_several_asks_in_one_set_of_passes() -> None:
    rng = np.random.default_rng(7)
    values, group = rng.normal(size=5_000), rng.integers(0, 10, 5_000)
    with SpilledValues(gather_limit=0) as spilled:
        spilled.add(values, group)
        q, m, tail = spilled.answer(
            Ask.quantiles(POINTS, groups=[3, 99, 1]), Ask.median(groups=[5]), Ask.quantiles([0.99])
        )
        together = spilled.report.passes
        apart = [spilled.answer(Ask.median(groups=[5]))[0], spilled.report.passes]
        assert np.array_equal(bits(apart[0].values), bits(m.values))
        assert together == max(apart[1], spilled.answer(Ask.quantiles(POINTS))[0] and
                               spilled.report.passes)  # fmt: skip
        assert q.groups.tolist() == [1, 3]  # 99 has no values
        assert np.array_equal(bits(q.of(3)), bits(np.quantile(values[group == 3], POINTS)))
        assert np.array_equal(bits(m.of(5)), bits(np.median(values[group == 5])))
        assert len(tail.groups) == 10
        with pytest.raises(KeyError):
            q.of(99)
        assert set(m.as_dict()) == {5}
        # More values after an answer: the next answer counts them.
        spilled.add(-values, group)
        both = np.r_[values, -values], np.r_[group, group]
        assert_exact(spilled, *both)


def test_one_value_zeros_of_one_sign_and_extremes() -> None:
    cases = [
        [-0.0], [0.0], [-0.0, -0.0], [-0.0, -0.0, -0.0], [0.0, 0.0, 3.0], [-0.0, -2.0, -0.0],
        [1e308], [1e308, 1.7e308], [-1.7e308, -1e308], [5e-324], [np.inf], [np.inf, np.inf],
        [-np.inf, np.inf], [-np.inf, 1.0], [1.0, np.inf, np.inf, 2.0], [-np.inf],
    ]  # fmt: skip
    values = np.concatenate([np.array(c, dtype=np.float64) for c in cases])
    group = np.repeat(np.arange(len(cases)), [len(c) for c in cases])
    for limit in LIMITS:
        with SpilledValues(gather_limit=limit) as spilled:
            spilled.add(values, group)
            assert_exact(spilled, values, group)


def test_mixed_zeros_equal_in_value() -> None:
    """-0.0 and +0.0 mixed in a group: numpy's partition leaves them in an order of its
    own (the input's), so the sign of a zero it reads is not a function of the values; the
    answer equals numpy's in value (and to the bit away from the zeros)."""
    rng = np.random.default_rng(8)
    values = rng.choice([-0.0, 0.0, 1.0, -1.0], 3_000)
    group = rng.integers(0, 5, 3_000)
    with SpilledValues() as spilled:
        spilled.add(values, group)
        q, m = spilled.answer(Ask.quantiles(POINTS), Ask.median())
    for i in range(5):
        x = values[group == i]
        assert np.array_equal(q.values[i], np.quantile(x, POINTS))
        assert m.values[i] == np.median(x)


def test_without_the_order_keys_negatives_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: raw float bits as keys (the prototype's, without its refusal of
    a sign bit) order negative values backwards and below no positive; answers differ."""
    values, group = mixture(9, 20_000, 20)
    raw = lambda x: np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)  # noqa: E731
    monkeypatch.setattr(spilled_quantiles, "order_keys", raw)
    monkeypatch.setattr(spilled_quantiles, "values_of", lambda k: k.view(np.float64))
    with SpilledValues() as spilled:
        spilled.add(values, group)
        with pytest.raises(AssertionError):
            assert_exact(spilled, values, group)


def test_refused_values_and_groups() -> None:
    with SpilledValues() as spilled:
        with pytest.raises(ValueError, match="NaN"):
            spilled.add(np.array([1.0, np.nan]), np.array([0, 1]))
        with pytest.raises(ValueError, match="groups must be in"):
            spilled.add(np.array([1.0]), np.array([-1]))
        with pytest.raises(ValueError, match="groups must be in"):
            spilled.add(np.array([1.0]), np.array([GROUP_LIMIT]))
        with pytest.raises(ValueError, match="groups must be in"):
            spilled.add(np.array([1.0]), np.array([0]), also=GROUP_LIMIT)
        with pytest.raises(ValueError, match="holds values"):
            spilled.add(np.array([1.0, 2.0]), np.array([0, 1]), also=1)
        with pytest.raises(ValueError, match="integers"):
            spilled.add(np.array([1.0]), np.array([0.5]))
        spilled.add(np.array([2.0]), np.array([GROUP_LIMIT - 1]))
        spilled.add(np.zeros(0), np.zeros(0, np.int64))
        got = spilled.medians()
        assert got.groups.tolist() == [GROUP_LIMIT - 1] and got.values.tolist() == [2.0]
        for points in ([1.5], [-0.1], [np.nan]):
            with pytest.raises(ValueError, match="points must be in"):
                spilled.quantiles(points)
    with pytest.raises(ValueError, match="closed"):
        spilled.add(np.array([1.0]), np.array([0]))
    with SpilledValues() as empty:
        none = empty.quantiles(POINTS)
        assert isinstance(none, GroupValues) and none.values.shape == (0, len(POINTS))


def test_spill_directory_removed_on_close_and_on_error(tmp_path: Path) -> None:
    values = np.arange(1000.0)
    with SpilledValues(tmp_path) as spilled:
        spilled.add(values, np.zeros(1000, np.int64))
        spilled.quantiles([0.5])
        own = spilled.directory
        assert own.parent == tmp_path and any(own.iterdir())
        assert spilled.spill_bytes() > 0
    assert not own.exists() and tmp_path.exists()
    with pytest.raises(RuntimeError), SpilledValues() as failing:
        failing.add(values, np.zeros(1000, np.int64))
        failing.spill_bytes()  # (a file written)
        raise RuntimeError
    assert not failing.directory.exists()
