"""Which behavior and which (length, tempo) row a synthetic session gets: stratified.

A plan's request count is the sum of its sessions' lengths. Drawn one by one, the
lengths of a few hundred sessions (a 10-minute capture at 1×) put that sum 5–10 % off
the model's mean in one seed of two, so a 1× replay offered 0.88× or 1.11× of the real
rate by chance alone. Here one uniform number picks both the behavior and its row, from
one table of every (behavior, row) pair ordered by behavior and then by length, and
consecutive sessions share the unit interval: within a block of `STRATA` consecutive
session indices, each session's number falls in its own slice of [0, 1) (a seeded
permutation of the slices per block, a uniform position inside the slice). So a block
holds the behaviors and, within each, short and long sessions in proportion, while every
single session is still drawn from the model's distribution (its number is uniform).
Session i still depends on (seed, i) alone — the block's permutation comes from (seed,
block) — so replay workers can draw their own sessions. bench/README.md, "Achieved
scale", has the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .behaviors import Behavior

STRATA = 64
"""Sessions per block; each block covers the unit interval once."""

_STRATA_KEY = 0x5757  # keeps the blocks' generators apart from the sessions' (seed, index)


def stratified_uniform(seed: int, index: int, rng: np.random.Generator) -> float:
    """Session `index`'s number in [0, 1): its block's slice for it, the position inside
    the slice from the session's own `rng`."""
    block, position = divmod(index, STRATA)
    slices = np.random.default_rng(np.random.SeedSequence([seed, block, _STRATA_KEY]))
    return (int(slices.permutation(STRATA)[position]) + float(rng.random())) / STRATA


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

    def pick(self, u: float) -> tuple[int, int | None]:
        """The (behavior index, row index or None) whose slice of [0, 1) holds `u`."""
        at = int(np.searchsorted(self.cdf, u, side="right"))
        return self.entries[min(at, len(self.entries) - 1)]
