"""The model's Kaplan-Meier session quantiles (`sessions.length` and `duration_s`) without
scipy's per-value Python list: `session_shape.km_percentiles`' numbers, bit for bit.

`scipy.stats.ecdf` of right-censored data builds a Python list of a 1 and a 0 per value
and sorts the values, then `np.percentile` sorts them again. The estimate is made of whole
numbers per distinct value (at risk, ended) and one cumulative product; here they come
from one sort, shared with the percentiles, and the same product gives the same floats
(tests/models/test_kaplan_meier.py pins both against session_shape's).
"""

from __future__ import annotations

import numpy as np

from .session_shape import km_percentiles as km_percentiles_by_scipy
from .session_shape import km_weights as km_weights_by_scipy

LEFTOVER = 1e-12
"""Survival past the last end below this is rounding, not mass (as `km_weights`; compare's
step CDFs too)."""


def km_weights(lengths: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """`session_shape.km_weights`: per value, its share of the Kaplan-Meier estimate of the
    distribution (right-censored where `censored`); the weights sum to 1."""
    lengths = np.asarray(lengths, dtype=float)
    censored = np.asarray(censored, dtype=bool)
    if not _right_censored(lengths, censored):
        return km_weights_by_scipy(lengths, censored)
    return _estimate(lengths, censored)[1]


def km_percentiles(values: np.ndarray, censored: np.ndarray, q: list[float]) -> np.ndarray:
    """`session_shape.km_percentiles`: percentiles `q` of the Kaplan-Meier estimate of
    `values` (right-censored where `censored`), `np.percentile`'s without censoring.

    With censoring, `np.percentile(values, q, weights=km_weights(...), method=
    "inverted_cdf")` done here on one sort of the values, the estimate's and the
    percentile's: `np.argsort(values)` is the sort `np.percentile` does, so the weights are
    summed in its order (ties included) and its cumulative sums are these."""
    values = np.asarray(values, dtype=float)
    censored = np.asarray(censored, dtype=bool)
    if not censored.any() or not _right_censored(values, censored):
        return km_percentiles_by_scipy(values, censored, q)
    order, weights = _estimate(values, censored)
    ordered = values[order]
    cdf = weights[order].cumsum(dtype=np.float64)
    cdf /= cdf[-1]
    if cdf[0] == 0:
        cdf[cdf == 0] = -1  # (np.percentile's: a leading zero weight is not the 0th)
    quantiles = np.true_divide(q, 100)
    at = np.minimum(np.searchsorted(cdf, quantiles, side="left"), len(values) - 1)
    return np.asarray(ordered[at], dtype=float)


def _right_censored(values: np.ndarray, censored: np.ndarray) -> bool:
    """Whether scipy's estimate is the right-censored one: some values censored and some
    not, every value finite (else session_shape's functions, and their errors, apply)."""
    return bool(censored.any() and not censored.all() and np.isfinite(values).all())


def _estimate(values: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.argsort(values)` and `km_weights` (normalised by their sum in the given order)."""
    order = np.argsort(values)
    weights = np.empty(len(values))
    weights[order] = _sorted_weights(values[order], censored[order])
    weights /= weights.sum()
    return order, weights


def _sorted_weights(ordered: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """`km_weights` before its normalisation, of sorted values and their censoring."""
    starts = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    group = np.cumsum(starts) - 1
    total = np.diff(np.append(np.flatnonzero(starts), len(ordered)))
    observed = ~censored
    ended = np.bincount(group[observed], minlength=len(total))
    cdf = kaplan_meier(ended, total - ended)
    mass = np.diff(np.concatenate([[0.0], cdf]))
    at = group[observed]
    weights = np.zeros(len(ordered))
    weights[observed] = mass[at] / ended[at]
    leftover = 1.0 - float(cdf[-1])
    beyond = censored & (ordered >= ordered[observed].max())
    if leftover > LEFTOVER and beyond.any():
        weights[beyond] = leftover / beyond.sum()
    return weights


def kaplan_meier(ended: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """The Kaplan-Meier CDF at each distinct value from the counts of values that ended
    (`ended`) and were censored (`cut`) there: `scipy.stats.ecdf(CensoredData(...)).cdf`
    at its `quantiles`, by its formula (values with no member count as no event)."""
    total = ended + cut
    at_risk = float(total.sum()) - (np.cumsum(total) - total)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(at_risk > 0, (at_risk - ended) / at_risk, 1.0)
    return np.asarray(1.0 - np.cumprod(factor), dtype=float)
