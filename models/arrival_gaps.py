"""The gaps between session starts in units of their bucket's mean gap, as percentiles per
class of the bucket's rate: where the sampler puts a bucket's starts (arrivals.py).

Each gap between consecutive starts times the rate of the bucket it starts in is a gap in
units of the local mean gap (mean 1). Real ones are not one gamma: on the staging captures
their tail is lighter than the fitted gamma's (q99 3.9–4.1 mean gaps vs 4.4–4.7) and their
shape moves with the bucket's rate (gamma shape by rate tercile 1.10 / 0.93 / 0.92 on
capC), so a single `gap_shape` left the synthetic gaps × N 0.027–0.031 (KS) from the real
ones at every N. `GapQuantiles` keeps, per class of bucket rate (classes of equal gap
counts, one per GAPS_PER_CLASS gaps, at most MAX_CLASSES), the 101 percentiles of the
class's normalized gaps (÷ their mean); the sampler draws a bucket's gaps from its rate's
class by inverse CDF (linear between percentiles). A model without the key (older files)
samples as before, by `gap_shape`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tracereplay.errors import ConfigError

POINTS = 101  # percentiles 0, 1, ..., 100
GAPS_PER_CLASS = 400
MAX_CLASSES = 4
MIN_GAPS = 20
DIGITS = 4
RATE_DIGITS = 5  # as the model's rates_per_s: a bucket's class is the same read back


def _sig(x: float, digits: int = DIGITS) -> float:
    return float(f"{x:.{digits}g}")


@dataclass(frozen=True)
class GapQuantiles:
    """`quantiles[k]`: the POINTS percentiles of the normalized gaps of buckets whose rate
    r has searchsorted(rate_edges, r, "right") == k."""

    rate_edges: tuple[float, ...]
    quantiles: tuple[tuple[float, ...], ...]

    def to_json(self) -> dict[str, Any]:
        return {"rate_edges": list(self.rate_edges), "quantiles": [list(q) for q in self.quantiles]}

    @classmethod
    def from_json(cls, d: Any) -> GapQuantiles:
        try:
            edges = tuple(float(e) for e in d["rate_edges"])
            quantiles = tuple(tuple(float(v) for v in q) for q in d["quantiles"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"arrivals: not valid gap quantiles ({exc!r})") from None
        if len(quantiles) != len(edges) + 1 or np.any(np.diff(edges) <= 0):
            raise ConfigError("arrivals: gap quantiles need one class more than rate edges")
        for q in quantiles:
            v = np.asarray(q)
            if len(v) < 2 or not np.all(np.isfinite(v)) or v[0] < 0 or np.any(np.diff(v) < 0):
                raise ConfigError("arrivals: gap quantiles must be >= 2 rising numbers >= 0")
            if v[-1] <= 0:
                raise ConfigError("arrivals: gap quantiles must not all be 0")
        return cls(edges, quantiles)

    def draw(self, piece_rates: np.ndarray, piece: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Gaps for uniform numbers `u`, gap i of piece `piece[i]` (rate piece_rates[...])."""
        which = np.searchsorted(np.asarray(self.rate_edges), piece_rates, side="right")[piece]
        gaps = np.empty(len(u))
        for k, q in enumerate(self.quantiles):
            mine = which == k
            gaps[mine] = np.interp(u[mine], np.linspace(0.0, 1.0, len(q)), q)
        return gaps


def fit_gap_quantiles(gaps: np.ndarray, rates: np.ndarray) -> GapQuantiles | None:
    """The percentiles of `gaps` (already in units of their bucket's mean gap) per class of
    their bucket's rate `rates`; None under MIN_GAPS gaps > 0."""
    distinct, bucket = np.unique(rates, return_inverse=True)
    return bucket_gap_quantiles(gaps, bucket.ravel(), distinct)


def bucket_gap_quantiles(
    gaps: np.ndarray, bucket: np.ndarray, bucket_rates: np.ndarray
) -> GapQuantiles | None:
    """`fit_gap_quantiles(gaps, bucket_rates[bucket])`, with each gap's bucket given: the
    rates' classes are judged per bucket, not per gap, and their quantiles on the rates
    sorted by counting, not by sorting a rate per gap (real10M's 1 M gaps: 0.11 -> 0.05 s)."""
    keep = gaps > 0
    z = gaps[keep]
    if len(z) < MIN_GAPS:
        return None
    at = bucket[keep]
    rate = np.array([_sig(float(v), RATE_DIGITS) for v in np.asarray(bucket_rates).tolist()])
    # The gaps' rates (`rate[at]`) in ascending order, made from each rate's count: the
    # quantiles of a multiset do not depend on the order of its values.
    values, which_value = np.unique(rate, return_inverse=True)
    counts = np.bincount(which_value.ravel()[at], minlength=len(values))
    ordered = np.repeat(values, counts)
    for classes in range(min(MAX_CLASSES, max(1, len(z) // GAPS_PER_CLASS)), 0, -1):
        cuts = np.quantile(ordered, np.arange(1, classes) / classes)
        edges = np.unique([_sig(float(c), RATE_DIGITS) for c in cuts])
        which = np.searchsorted(edges, rate, side="right")[at]
        sizes = np.bincount(which, minlength=len(edges) + 1)
        if len(edges) == classes - 1 and sizes.min() >= MIN_GAPS:
            break
    quantiles = []
    for k in range(len(edges) + 1):
        mine = z[which == k]
        q = np.quantile(mine / mine.mean(), np.linspace(0.0, 1.0, POINTS))
        quantiles.append(tuple(_sig(float(v)) for v in q))
    return GapQuantiles(tuple(float(e) for e in edges), tuple(quantiles))
