"""Which behavior and which (length, tempo) row a synthetic session gets: stratified.

A plan's request count is the sum of its sessions' lengths. Drawn one by one, the
lengths of a few hundred sessions (a 10-minute capture at 1×) put that sum 5–10 % off
the model's mean in one seed of two, so a 1× replay offered 0.88× or 1.11× of the real
rate by chance alone. Here one uniform number picks both the behavior and its row, from
one table of every (behavior, row) pair ordered by behavior and then by length, and
consecutive sessions share the unit interval: within a block of `STRATA` consecutive
session indices, each session's number falls in its own slice of [0, 1) (a seeded
permutation of the slices per block, a uniform position inside the slice; both from
counter-based numbers, models/counters.py). So a block
holds the behaviors and, within each, short and long sessions in proportion, while every
single session is still drawn from the model's distribution (its number is uniform).
Session i still depends on (seed, i) alone — the block's permutation comes from (seed,
block) — so replay workers can draw their own sessions. bench/README.md, "Achieved
scale", has the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import counters
from .behaviors import Behavior

STRATA = 64
"""Sessions per block; each block covers the unit interval once."""


def stratified_uniforms(seed: int, index: np.ndarray) -> np.ndarray:
    """Each session's number in [0, 1): its block's slice for it, the position inside the
    slice from its own counter stream (models/counters.py). A block's order of slices is
    the argsort of 64 counter numbers of (seed, block): a uniform random permutation."""
    index = np.asarray(index, dtype=np.int64)
    block, position = np.divmod(index, STRATA)
    blocks, which = np.unique(block, return_inverse=True)
    keys = counters.session_keys(seed, counters.SLICES, blocks)
    order = counters.words(keys[:, None], np.arange(STRATA, dtype=np.uint64)[None, :])
    slices = np.argsort(order, axis=1, kind="stable")
    inside = counters.uniforms(counters.session_keys(seed, counters.STRATUM, index), 0)
    return np.asarray((slices[which.ravel(), position] + inside) / STRATA, dtype=float)


class JointShapes:
    """Every (behavior, shape row) pair with its probability, behavior share × the row's
    share of its behavior's weight, ordered by behavior and then by length. A behavior
    without a shape table (an older model) is one entry with no row."""

    def __init__(self, behaviors: Sequence[Behavior], shares: np.ndarray) -> None:
        entries: list[tuple[int, int | None]] = []
        weights: list[float] = []
        for b, behavior in enumerate(behaviors):
            table = behavior.shape
            row_weights = np.asarray(table.weight, dtype=float) if table is not None else None
            if table is None or row_weights is None or row_weights.sum() <= 0:
                entries.append((b, None))
                weights.append(float(shares[b]))
                continue
            row_weights = row_weights / row_weights.sum()
            for row in np.argsort(np.asarray(table.length), kind="stable"):
                entries.append((b, int(row)))
                weights.append(float(shares[b] * row_weights[row]))
        cdf = np.cumsum(weights)
        self.entries = entries
        self.cdf = cdf / cdf[-1]

    def picks(self, u: np.ndarray) -> np.ndarray:
        """Index into `entries` of the pair whose slice of [0, 1) holds each of `u`."""
        at = np.searchsorted(self.cdf, u, side="right")
        return np.minimum(at, len(self.entries) - 1)
