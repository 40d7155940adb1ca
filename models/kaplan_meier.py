"""The model's Kaplan-Meier session quantiles (`sessions.length` and `duration_s`) without
scipy's per-value Python list: `session_shape.km_percentiles`' numbers, bit for bit.

`scipy.stats.ecdf` of right-censored data builds a Python list of a 1 and a 0 per value
and sorts the values, then `np.percentile` sorts them again. The estimate is made of whole
numbers per distinct value (at risk, ended) and one cumulative product; here they come
from one sort, shared with the percentiles, and the same product gives the same floats
(tests/models/test_kaplan_meier.py pins both against session_shape's).

The percentiles need no sort of the values at all when they are few distinct ones (the
sessions' lengths; durations in whole milliseconds: ~9,000 of 1 M at real10M): counted
per distinct value (`pd.factorize`, a hash), the weights summed per value in the sort's
order are those of the sort but for the order of ties, which changes no sum of equal
weights and moves one value's sum by at most a rounding where two weights meet: then
the sort decides, unless every percentile is further than that from a boundary.
"""

from __future__ import annotations

import numpy as np

from .session_shape import km_percentiles as km_percentiles_by_scipy
from .session_shape import km_weights as km_weights_by_scipy

_TIES = 8 * 2.0**-53
"""Per value summed, the most two orders of ties can move a share of the total (module
docstring): 2·n·u, with room for the division by the total."""
_HEAD, _MOSTLY_DISTINCT = 1 << 14, 0.5
"""Values counted per distinct value only when the first _HEAD have at most this share of
distinct ones (real10M: 0.3 of its durations, 0.003 of its lengths): 1 M distinct values
took 0.31-0.55 s counted so, against the sort's 0.19-0.22 (the answer is the same either way)."""
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
    quantiles = np.true_divide(q, 100)
    found = _percentiles_by_value(values, censored, quantiles)
    return found if found is not None else _percentiles_by_sort(values, censored, quantiles)


def _countable(values: np.ndarray, quantiles: np.ndarray) -> bool:
    """Whether `_percentiles_by_value` may answer: not for q = 0 (np.percentile's rule for
    leading zero weights), nor with a -0.0 (it ties 0.0, and the sort says which one is
    answered), nor for values nearly all distinct (the hash costs more than the sort)."""
    import pandas as pd

    zero = values == 0
    head = values[:_HEAD]
    return bool(
        ((quantiles > 0) & (quantiles <= 1)).all()
        and not (zero.any() and np.signbit(values[zero]).any())
        and (len(values) <= len(head) or len(pd.unique(head)) <= _MOSTLY_DISTINCT * len(head))
    )


def _percentiles_by_sort(
    values: np.ndarray, censored: np.ndarray, quantiles: np.ndarray
) -> np.ndarray:
    """`km_percentiles` (right-censored values) on `np.argsort(values)`."""
    order, weights = _estimate(values, censored)
    ordered = values[order]
    cdf = weights[order].cumsum(dtype=np.float64)
    cdf /= cdf[-1]
    if cdf[0] == 0:
        cdf[cdf == 0] = -1  # (np.percentile's: a leading zero weight is not the 0th)
    at = np.minimum(np.searchsorted(cdf, quantiles, side="left"), len(values) - 1)
    return np.asarray(ordered[at], dtype=float)


def _percentiles_by_value(
    values: np.ndarray, censored: np.ndarray, quantiles: np.ndarray
) -> np.ndarray | None:
    """`_percentiles_by_sort`'s answer from counts per distinct value, or None where it
    could differ (module docstring) or would cost more (`_countable`). Its cumulative sum
    runs over the sorted values, a value's ties in an order only the sort knows; the sum
    at the end of a value's run does not depend on that order when the run's weights are
    one weight and zeros (adding 0 is exact), which is so for every value but the largest
    uncensored one, whose censored ties take the mass left past the last end. There the
    two orders' sums differ by at most 2·n·u of the total (recursive summation of n
    non-negative terms, u = 2^-53), so a percentile further than `_TIES` from every
    value's share has one answer."""
    import pandas as pd

    if not _countable(values, quantiles):
        return None
    codes, distinct = pd.factorize(values)
    by_value = np.argsort(distinct)
    rank = np.empty(len(by_value), dtype=np.int64)
    rank[by_value] = np.arange(len(by_value))
    group = rank[codes]
    del codes
    observed = ~censored
    total = np.bincount(group, minlength=len(distinct))
    ended = np.bincount(group[observed], minlength=len(distinct))
    share, last, beyond = _value_weights(ended, total)
    weights = np.zeros(len(values))
    weights[observed] = share[group[observed]]
    late = (total - ended) * (np.arange(len(total)) >= last) if beyond else 0 * total
    if beyond:
        weights[censored & (group >= last)] = beyond
    whole = weights.sum()  # `_estimate`'s, over the same array in the same order
    if not whole > 0:
        return None
    # The cumulative sum as the sort's order has it: per value its uncensored weights,
    # then its censored ones (only the largest uncensored value can hold both).
    addend = np.stack([share / whole, np.full(len(total), beyond / whole)], axis=1)
    times = np.stack([ended, late], axis=1)
    running = np.concatenate([[0.0], np.repeat(addend.ravel(), times.ravel()).cumsum()])
    cdf = running[np.cumsum(times.sum(axis=1))]
    cdf /= running[-1]
    at = np.minimum(np.searchsorted(cdf, quantiles, side="left"), len(cdf) - 1)
    if beyond and ended[last] and late[last]:
        ties = _TIES * len(values)
        below = np.where(at > 0, cdf[np.maximum(at - 1, 0)], -1.0)
        if (below >= quantiles - ties).any():
            return None
        if ((at < len(cdf) - 1) & (cdf[at] < quantiles + ties)).any():
            return None
    return np.asarray(distinct[by_value][at], dtype=float)


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
    share, last, beyond = _value_weights(ended, total)
    weights = np.zeros(len(ordered))
    weights[observed] = share[group[observed]]
    if beyond:
        weights[censored & (group >= last)] = beyond
    return weights


def _value_weights(ended: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Per distinct value (ascending; `ended` of its `total` values uncensored, some of
    them somewhere): the weight of each of its uncensored values; the largest value with
    one; the weight of each censored value at or past it (0.0: none), the estimate's mass
    left past the last end shared among them."""
    cdf = kaplan_meier(ended, total - ended)
    mass = np.diff(np.concatenate([[0.0], cdf]))
    with np.errstate(invalid="ignore", divide="ignore"):  # (values without an end: unread)
        share = mass / ended
    last = int(np.flatnonzero(ended)[-1])
    leftover = 1.0 - float(cdf[-1])
    cut = (total - ended)[last:].sum()
    beyond = float(leftover / cut) if leftover > LEFTOVER and cut else 0.0
    return share, last, beyond


def kaplan_meier(ended: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """The Kaplan-Meier CDF at each distinct value from the counts of values that ended
    (`ended`) and were censored (`cut`) there: `scipy.stats.ecdf(CensoredData(...)).cdf`
    at its `quantiles`, by its formula (values with no member count as no event)."""
    total = ended + cut
    at_risk = float(total.sum()) - (np.cumsum(total) - total)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(at_risk > 0, (at_risk - ended) / at_risk, 1.0)
    return np.asarray(1.0 - np.cumprod(factor), dtype=float)
