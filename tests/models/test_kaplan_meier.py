"""The session quantiles' Kaplan-Meier estimate on one sort equals session_shape's (scipy's
ecdf, then np.percentile), bit for bit (models/kaplan_meier.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tracereplay.models import kaplan_meier, session_shape

POINTS = [0, 5, 25, 50, 75, 95, 99, 100]


def sample(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Durations with many ties (whole seconds, lengths) and censored values anywhere,
    the smallest ones censored (their weight 0: np.percentile's leading zeros)."""
    rng = np.random.default_rng(seed)
    values = np.where(
        rng.random(size) < 0.5, np.round(rng.lognormal(2, 1, size)), rng.lognormal(2, 1, size)
    )
    censored = rng.random(size) < 0.2
    censored[np.argsort(values)[:3]] = True
    return values, censored


@pytest.mark.parametrize(("seed", "size"), [(1, 7), (2, 50), (3, 2_000), (4, 100_000)])
def test_weights_and_percentiles_are_session_shapes(seed: int, size: int) -> None:
    values, censored = sample(seed, size)
    got = kaplan_meier.km_weights(values, censored)
    assert np.array_equal(got, session_shape.km_weights(values, censored))
    assert np.array_equal(
        kaplan_meier.km_percentiles(values, censored, POINTS),
        session_shape.km_percentiles(values, censored, POINTS),
    )


def test_mass_left_past_the_last_end_goes_to_the_censored_beyond() -> None:
    values = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 8.0])
    censored = np.array([False, True, False, False, True, True, True])
    got = kaplan_meier.km_weights(values, censored)
    assert np.array_equal(got, session_shape.km_weights(values, censored))
    assert got[4:].sum() > 0 and got[1] == 0
    assert np.array_equal(
        kaplan_meier.km_percentiles(values, censored, POINTS),
        session_shape.km_percentiles(values, censored, POINTS),
    )


@pytest.mark.parametrize(
    "censored", [[False, False, False], [True, True, True], [True, False, False]]
)
def test_edges_are_session_shapes(censored: list[bool]) -> None:
    values = np.array([3.0, 1.0, 3.0])
    cut = np.array(censored)
    assert np.array_equal(
        kaplan_meier.km_weights(values, cut), session_shape.km_weights(values, cut)
    )
    assert np.array_equal(
        kaplan_meier.km_percentiles(values, cut, POINTS),
        session_shape.km_percentiles(values, cut, POINTS),
    )


SHAPE_POINTS = np.true_divide([5, 25, 50, 75, 95, 99, 100], 100)


def few_values(seed: int, size: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole numbers 1..top (many ties), some censored: the largest uncensored value
    mostly has censored ties too (the one value whose ties' order can matter)."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, top + 1, size).astype(float), rng.random(size) < 0.3


@pytest.mark.parametrize("seed", range(40))
def test_percentiles_by_value_are_those_of_the_sort(seed: int) -> None:
    values, censored = few_values(seed, 3 + 37 * seed, 2 + seed % 9)
    if seed % 3 == 0:  # millisecond durations: few distinct floats
        values = np.round(np.random.default_rng(seed).lognormal(1, 1, len(values)), 3)
    censored[0] = not censored[1:].all()
    got = kaplan_meier._percentiles_by_value(values, censored, SHAPE_POINTS)
    assert got is not None
    assert np.array_equal(got, kaplan_meier._percentiles_by_sort(values, censored, SHAPE_POINTS))
    assert np.array_equal(
        kaplan_meier.km_percentiles(values, censored, [5, 25, 50, 75, 95, 99, 100]),
        session_shape.km_percentiles(values, censored, [5, 25, 50, 75, 95, 99, 100]),
    )


def test_a_percentile_on_a_boundary_beside_mixed_ties_is_left_to_the_sort() -> None:
    # Weights 1/4 each: the first value's share is 0.5 exactly, and the last value holds
    # an uncensored and a censored tie (whose order the sort alone knows).
    values, censored = np.array([1.0, 1.0, 2.0, 2.0]), np.array([False, False, False, True])
    for q in (0.5, np.nextafter(0.5, 1.0)):  # on it, and just past it
        assert kaplan_meier._percentiles_by_value(values, censored, np.array([q])) is None
    assert kaplan_meier._percentiles_by_value(values, censored, np.array([0.4])) is not None
    assert np.array_equal(
        kaplan_meier.km_percentiles(values, censored, [50]),
        session_shape.km_percentiles(values, censored, [50]),
    )


@pytest.mark.parametrize(
    ("values", "points"),
    [([0.0, -0.0, 1.0, 2.0], [50]), ([1.0, 2.0, 2.0, 3.0], [0, 50])],
)
def test_signed_zeros_and_the_0th_percentile_are_left_to_the_sort(
    values: list[float], points: list[float]
) -> None:
    v, cut = np.array(values), np.array([False, True, False, True])
    assert kaplan_meier._percentiles_by_value(v, cut, np.true_divide(points, 100)) is None
    assert np.array_equal(
        kaplan_meier.km_percentiles(v, cut, points), session_shape.km_percentiles(v, cut, points)
    )


def test_mostly_distinct_values_are_left_to_the_sort() -> None:
    rng = np.random.default_rng(5)
    values, censored = rng.lognormal(2, 1, 40_000), rng.random(40_000) < 0.01
    assert kaplan_meier._percentiles_by_value(values, censored, SHAPE_POINTS) is None
    rounded = np.round(values)
    assert kaplan_meier._percentiles_by_value(rounded, censored, SHAPE_POINTS) is not None
    assert np.array_equal(
        kaplan_meier.km_percentiles(values, censored, [5, 50, 100]),
        session_shape.km_percentiles(values, censored, [5, 50, 100]),
    )
