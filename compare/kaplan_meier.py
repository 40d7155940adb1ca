"""KS distances between samples sorted once: the comparison's own and those of the noise
floor's random halves, plain (`ks_2samp`'s D) or between Kaplan-Meier estimates of
right-censored samples (`measures.km_ks`).

A `SortedSample` sorts a sample once and numbers its distinct values; a part of it (a
half: a mask over the sample) is then a count per distinct value, one `np.bincount`, so
each of the 200 halves costs O(n) and no sort. The Kaplan-Meier estimate from those counts
is `scipy.stats.ecdf`'s for right-censored data, computed the same way (survival =
cumulative product of (at risk - deaths) / at risk over distinct times) without its
per-sample Python list (`models.kaplan_meier.kaplan_meier`, which the model's session
quantiles use too); the mass left above the last death goes to the censored values at
or past it, as `models.session_shape.km_weights` gives it (tests/compare/test_kaplan_meier.py
pins both equalities on random censored data).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from tracereplay.models.kaplan_meier import LEFTOVER, kaplan_meier


@dataclass(frozen=True)
class SortedSample:
    """Finite values of a sample, sorted once, with the index of each value's distinct
    value; `censored` (in the sorted order) marks lower bounds. With `owner` (each value's
    owner, e.g. a pause's session), parts are masks over owners: a sparse (owner ×
    distinct value) count table turns a mask into counts in one product."""

    distinct: np.ndarray
    group: np.ndarray
    """Per sorted value, its index into `distinct` (empty for an owned sample)."""
    order: np.ndarray
    """Per sorted value, its position in the sample as given (finite values only; empty
    for an owned sample)."""
    censored: np.ndarray
    by_owner: sparse.csr_matrix | None = None
    size_given: int = 0
    """Values in the sample as given (finite or not)."""

    @classmethod
    def of(
        cls, values: np.ndarray, censored: np.ndarray | None = None,
        owner: np.ndarray | None = None, owners: int = 0,
    ) -> SortedSample:  # fmt: skip
        values = np.asarray(values, dtype=float)
        cut = np.zeros(values.size, bool) if censored is None else np.asarray(censored, bool)
        finite = np.flatnonzero(np.isfinite(values))
        order = finite[np.argsort(values[finite], kind="stable")]
        ranked = values[order]
        starts = np.empty(ranked.size, bool)
        starts[:1] = True
        np.not_equal(ranked[1:], ranked[:-1], out=starts[1:])
        group = np.cumsum(starts) - 1
        if owner is None:
            return cls(ranked[starts], group, order, cut[order], None, values.size)
        if cut.any():
            raise ValueError("owned samples are not censored")
        # An owned sample counts through its table only: its per-value order and groups
        # (16 bytes a value) are not kept, and the table is built from 32-bit indices.
        shape = (owners, int(starts.sum()))
        small = np.int32 if max(shape) < 1 << 31 else np.int64
        index = (np.asarray(owner)[order].astype(small), group.astype(small))
        del order
        table = sparse.csr_matrix((np.ones(index[0].size), index), shape=shape)
        none = np.zeros(0, np.int64)
        return cls(ranked[starts], none, none, np.zeros(0, bool), table, values.size)

    @cached_property
    def whole(self) -> tuple[np.ndarray, np.ndarray]:
        """`counts()` of the whole sample, computed once."""
        return self.counts()

    def owned_counts(self, parts: np.ndarray) -> np.ndarray:
        """`counts(part)[0]` of several parts at once (rows of a mask over owners), as
        columns: one sparse product for them all (the counts are whole numbers: exact)."""
        assert self.by_owner is not None, "only an owned sample has counts by owner"
        return np.asarray(self.by_owner.T @ parts.T.astype(float), dtype=float)

    @cached_property
    def _position_codes(self) -> np.ndarray:
        """Per value as given: 2 × its distinct value's index + censored, or 2 × distinct
        for a value left out (not finite)."""
        codes = np.full(self.size_given, 2 * self.distinct.size, np.int64)
        codes[self.order] = 2 * self.group + self.censored
        return codes

    def counts_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`counts(part)` of the part holding the values at these positions of the sample
        as given (each once): one bincount over the part, not a pass over the sample."""
        assert self.by_owner is None, "an owned sample counts by owner"
        k = self.distinct.size
        found = np.bincount(self._position_codes[positions], minlength=2 * k + 1)
        both = found[: 2 * k].reshape(k, 2).astype(float)
        return both[:, 0], both[:, 1]

    def counts(self, part: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ended, censored) counts per distinct value of the part (a mask over the sample
        as given, or over owners; None: all of it)."""
        k = self.distinct.size
        if self.by_owner is not None:
            inside = np.ones(self.by_owner.shape[0]) if part is None else part.astype(float)
            return np.asarray(self.by_owner.T @ inside, dtype=float), np.zeros(k)
        inside = np.ones(self.group.size, bool) if part is None else part[self.order]
        ended = np.bincount(self.group, inside & ~self.censored, minlength=k)
        cut = np.bincount(self.group, inside & self.censored, minlength=k)
        return ended, cut


def step_cdf(ended: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """The CDF at each distinct value of a sample given by its counts there: the empirical
    one without censoring; with it, the Kaplan-Meier estimate, the mass left above the
    last death spread over the censored values at or past it (`km_weights`), normalized
    to end at 1. All zeros for an empty sample."""
    total = ended + cut
    size = float(total.sum())
    if not size:
        return np.zeros(total.size)
    if not cut.any() or not ended.any():  # nothing censored, or nothing known to end
        return np.asarray(np.cumsum(total) / size, dtype=float)
    km = kaplan_meier(ended, cut)
    mass = np.diff(km, prepend=0.0)
    leftover = 1.0 - float(km[-1])
    if leftover > LEFTOVER:
        last_death = int(np.flatnonzero(ended)[-1])
        beyond = cut.astype(float)
        beyond[:last_death] = 0.0
        if beyond.any():
            mass = mass + leftover * beyond / beyond.sum()
    cdf = np.cumsum(mass)
    return np.asarray(cdf / cdf[-1], dtype=float)


def ks_between(
    sample: SortedSample,
    half: np.ndarray | None,
    ended: np.ndarray | None = None,
    counted: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float | None, int, int]:
    """max |F_a - F_b| between a part of one sorted sample (a mask) and the rest,
    Kaplan-Meier estimates where the sample has censored values (None when a part has
    fewer than 2 values), with the two parts' sizes. The part's counts when already
    counted: `ended`, of an owned sample (`owned_counts`), or `counted` (`counts_at`)."""
    whole = sample.whole
    if counted is not None:
        ca = counted
    elif ended is not None:
        ca = (ended, np.zeros(ended.size))
    else:
        assert half is not None, "a part: a mask, or its counts"
        ca = sample.counts(half)
    cb = (whole[0] - ca[0], whole[1] - ca[1])
    na, nb = (round(float(c[0].sum() + c[1].sum())) for c in (ca, cb))
    if na < 2 or nb < 2:
        return None, na, nb
    return float(np.abs(step_cdf(*ca) - step_cdf(*cb)).max()), na, nb


def ks_two(a: SortedSample, b: SortedSample) -> float:
    """max |F_a - F_b| of two sorted samples' step CDFs (`step_cdf`), over the union of
    their values: `ks_2samp`'s D without censoring, `km_ks`'s with it."""
    fa, fb = step_cdf(*a.counts()), step_cdf(*b.counts())
    grid = np.union1d(a.distinct, b.distinct)
    return float(np.abs(_at(a.distinct, fa, grid) - _at(b.distinct, fb, grid)).max())


def km_mean(sample: SortedSample) -> float:
    """The mean of the step CDF's distribution (Σ mass · value)."""
    cdf = step_cdf(*sample.counts())
    return float(np.diff(cdf, prepend=0.0) @ sample.distinct)


def _at(values: np.ndarray, cdf: np.ndarray, grid: np.ndarray) -> np.ndarray:
    at = np.searchsorted(values, grid, side="right") - 1
    return np.where(at >= 0, cdf[np.maximum(at, 0)], 0.0)


KS_BLOCK = 1 << 20
"""Values of a sample `ks_d` merges at a time."""


def ks_d(a: np.ndarray, b: np.ndarray, *, presorted: bool = False, block: int = KS_BLOCK) -> float:
    """`ks_2samp`'s D, to the bit, by a merge of the two sorted samples instead of two
    binary searches (only D is used here): at the last of each run of equal values of the
    merged sample, the counts of a and of b up to it are what `ks_2samp`'s searchsorted
    gives there, divided alike (count / size), so max |F_a - F_b| is the same float.
    `presorted`: a and b are sorted already. Merged `block` values of each at a time (and
    every value equal to the block's last): 10 M pauses a side held ~0.6 GB at once."""
    n, m = a.size, b.size
    if not presorted:
        a, b = np.sort(a), np.sort(b)
    best = 0.0
    i = j = 0
    while i < n or j < m:
        # This block: every value up to x, the block-th next value of a or of b (the
        # smaller), so each run of equal values ends inside one block.
        x = min(a[min(i + block, n) - 1] if i < n else np.inf,
                b[min(j + block, m) - 1] if j < m else np.inf)  # fmt: skip
        i_end = int(np.searchsorted(a, x, side="right")) if i < n else n
        j_end = int(np.searchsorted(b, x, side="right")) if j < m else m
        best = max(best, _block_d(a[i:i_end], b[j:j_end], i, j, n, m))
        i, j = i_end, j_end
    return best


def _block_d(a: np.ndarray, b: np.ndarray, before_a: int, before_b: int, n: int, m: int) -> float:
    """max |F_a - F_b| at the ends of the runs of equal values of two sorted blocks,
    `before_a` and `before_b` values of each sample below them."""
    # Two sorted runs: the stable argsort (timsort) merges them in one pass.
    values = np.concatenate([a, b])
    order = np.argsort(values, kind="stable")
    from_a = order < a.size
    values = values[order]
    del order
    last = np.empty(values.size, bool)
    last[-1] = True
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    del values
    small = np.int32 if n + m < 1 << 31 else np.int64
    ends = np.flatnonzero(last).astype(small)
    up_to_a = np.cumsum(from_a, dtype=small)[ends]
    up_to_b = ends + 1 - up_to_a
    up_to_a += before_a
    up_to_b += before_b
    return float(np.abs(up_to_a / n - up_to_b / m).max())
