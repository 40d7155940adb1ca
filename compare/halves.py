"""What the noise floor's random halves (verdicts.half_noise) count of the real sessions'
starts, computed once per trace so that a half costs one pass over its own sessions
(issue 15): their bucket on the arrival grid (the MAPE), and their order by start (the
interarrival gaps); and which sessions the halves split when there are too many to split
them all (`sample_sessions`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tracereplay.models.arrivals import arrival_rate_mape


@dataclass(frozen=True)
class HalfArrivals:
    """Each session's bucket of `models.arrivals.rate_curve`'s grid over [0, span_s]
    (one past the last for a start outside it, which the curve ignores): a half's curve is
    one bincount of its sessions' buckets and the rest's the whole minus it: the same
    counts, divided by the same widths, as `rate_curve` of each half's starts
    (tests/compare/test_halves.py)."""

    bucket: np.ndarray
    total: np.ndarray
    widths: np.ndarray
    whole: int
    """Whole buckets of the span: the ones the MAPE compares (as compare takes them)."""

    @classmethod
    def of(cls, start_s: np.ndarray, span_s: float, bucket_s: float) -> HalfArrivals:
        t = np.asarray(start_s, dtype=float)
        span = float(span_s)
        # rate_curve's grid: at least one bucket; a span a whole number of buckets long
        # grows no sliver; a zero span is one bucket of rate 0 (its width is 0).
        n = max(1, math.ceil(span / bucket_s - 1e-9))
        edges = np.arange(n, dtype=float) * bucket_s
        widths = np.minimum(edges + bucket_s, span) - edges if span > 0 else np.zeros(1)
        inside = np.isfinite(t) & (t >= 0) & (t <= max(span, 0.0))
        bucket = np.full(t.size, n, np.int64)
        with np.errstate(invalid="ignore"):
            bucket[inside] = np.minimum((t[inside] // bucket_s).astype(np.int64), n - 1)
        total = np.bincount(bucket, minlength=n + 1)[:n]
        whole = max(1, math.floor(span / bucket_s + 1e-9))
        return cls(bucket, total, widths, whole)

    def mape(self, half: np.ndarray) -> float | None:
        """The MAPE between the start rates of the sessions at these positions (each
        once) and of the rest, over the whole buckets; None when undefined."""
        n = self.total.size
        counts_a = np.bincount(self.bucket[half], minlength=n + 1)[:n]
        curves = [self._rates(c)[: self.whole] for c in (counts_a, self.total - counts_a)]
        value = float(arrival_rate_mape(curves[0], curves[1], 1.0))
        return value if math.isfinite(value) else None

    def _rates(self, counts: np.ndarray) -> np.ndarray:
        found = counts.astype(float)
        rates: np.ndarray = np.divide(
            found, self.widths, out=np.zeros_like(found), where=self.widths > 0
        )
        return rates


def sample_sessions(sessions: int, at_most: int, seed: int) -> tuple[np.ndarray | None, float]:
    """Which of `sessions` sessions the noise floor's halves split: all of them (None, 1.0)
    up to `at_most`, else a mask of `at_most` drawn without replacement by a generator of
    its own (seeded: the same trace gives the same sample; the halves' draws are not
    moved), with their share of the sessions."""
    if sessions <= at_most:
        return None, 1.0
    rng = np.random.default_rng([seed, sessions])
    kept = np.zeros(sessions, bool)
    kept[rng.choice(sessions, at_most, replace=False)] = True
    return kept, at_most / sessions
