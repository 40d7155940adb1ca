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
