"""Session shape: censoring at the capture's edges, session lengths estimated with it, and
the walk of a Markov chain conditioned on a session's length.

Censoring. A session whose last request ends less than `threshold_s` before the trace's
last response may still have been running when the capture stopped: its end is not seen
(censored at the end). One whose first request starts less than `threshold_s` after the
trace's first request may have begun before the capture (censored at the start). Either
way its length and duration are lower bounds, and its last transition is not an END.
`threshold_s` is the 99th percentile of the pauses seen inside sessions (a session silent
for longer than 99 % of pauses has ended, as far as the trace can tell; the longest pause
would let one coffee break censor every session of its last minutes), capped at the
inactivity timeout that splits sessions.

Lengths. Per behavior, a table of its sessions' (length, tempo) pairs with Kaplan-Meier
weights (`scipy.stats.ecdf` of the lengths as `CensoredData`, right-censored where
censored): an uncensored session of length L weighs the estimated mass at L shared by the
uncensored sessions of length L; the mass the estimate leaves beyond the last uncensored
length goes to the censored sessions at or beyond it (their observed length is the best
lower bound there is). Synthesis draws one row by weight, so a session's length and tempo
come together, as they do in the trace (slow sessions are not shorter than fast ones by
accident), and the pause-weighted tempo, hence the mean think time, is the real one.
Each row also keeps the session's sum of pauses: synthesis scales the pauses it draws
along the walked path to it, so a session's duration follows its length as in the trace
(short sessions pausing longer than long ones, say), which per-transition pauses pooled
over every length do not.

Conditioned walk. Given a length L, the chain is walked conditioned on ending after
exactly L requests: with b_k(s) the probability that, from s, exactly k more requests
come before END (b_0 = P(s → END), b_k = P b_(k-1)), the entry is drawn ∝ entry(s) ·
b_(L-1)(s) and each next endpoint ∝ P(s, s') · b_(r-1)(s') with r requests left. A
logout is then the last request, as in the trace, and the length is the drawn one. Each
b_k is rescaled to max 1 (only ratios at one k are read), so long sessions do not
underflow.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pandas and scipy load where a model is built, not by synthesize
    import pandas as pd

CENSOR_QUANTILE = 0.99
"""Of the pauses inside sessions: a session silent longer than this at an edge ended."""
SESSION_TABLE_ROWS = 1000
"""Rows kept per behavior's (length, tempo) table: a seeded uniform sample beyond it."""


@dataclass(frozen=True)
class Censoring:
    """Which sessions (by session_id) the capture's edges censor."""

    threshold_s: float
    start: np.ndarray
    end: np.ndarray

    @property
    def any(self) -> np.ndarray:
        return np.asarray(self.start | self.end, dtype=bool)

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold_s": float(f"{self.threshold_s:.5g}"),
            "at_start": int(self.start.sum()),
            "at_end": int(self.end.sum()),
            "sessions": int(self.any.sum()),
        }


def censoring(
    sessions: pd.DataFrame,
    timeout_s: float,
    duration_ms: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> Censoring:
    """Censoring of a sessionized frame (session_id 0..n-1, t_s, think_s, and
    duration_ms when known): see the module's docstring. `duration_ms`: the requests'
    durations, read through the frame's `request` column, for a frame without its own
    (the model's: `frame.sessionize_requests(durations=False)`). `starts`: where each
    session's rows start, for a frame of rows session by session in id order without its
    `session_id` column (the model's: `frame.sessions_and_sizes(session_id=False)`; its
    `t_s` without NaN)."""
    from .sessions import run_extremes, session_runs  # (pandas: not loaded by synthesize)

    if sessions.empty:
        empty = np.zeros(0, dtype=bool)
        return Censoring(0.0, empty, empty)
    from .nan_quantiles import nan_quantile

    t = sessions["t_s"].to_numpy(float)
    ends = _Ends.of(sessions, t, duration_ms)
    pauses = sessions["think_s"].to_numpy(float)
    if np.isinf(pauses).any():  # the finite ones: the others as NaN, which the quantile skips
        pauses = np.where(np.isinf(pauses), np.nan, pauses)
    longest = nan_quantile(pauses, CENSOR_QUANTILE)  # (no copy of them all)
    threshold = min(0.0 if np.isnan(longest) else longest, float(timeout_s))
    ids: np.ndarray | None = None
    if starts is None:
        ids = sessions["session_id"].to_numpy()
        n = int(ids.max()) + 1
        runs = session_runs(sessions)
        run_starts, run_ids = (None, None) if runs is None else (runs[1], ids[runs[1]])
    else:  # (each run's id is its number: no id a row read; NaN times as session_runs)
        n = len(starts)
        run_starts, run_ids = (None, None) if np.isnan(t).any() else (starts, np.arange(n))
    first = np.full(n, np.inf)
    last_end = np.full(n, -np.inf)
    found = None if run_starts is None else ends.run_maxima(run_starts)
    if run_starts is not None and found is not None:  # rows by session: no ufunc.at
        first[run_ids] = run_extremes(t, run_starts)[0]
        last_end[run_ids], trace_end = found
    else:
        if ids is None:  # (each row's id, as the frame's column would have it)
            assert starts is not None
            ids = np.repeat(np.arange(n), np.diff(starts, append=len(t)))
        every = ends.part(0, len(t))
        np.minimum.at(first, ids, t)
        np.maximum.at(last_end, ids, every)
        trace_end = float(every.max())
    trace_start = float(t.min())
    return Censoring(
        threshold,
        start=first - trace_start < threshold,
        end=trace_end - last_end < threshold,
    )


ENDS_CHUNK_ROWS = 1 << 16
"""Requests (whole sessions) whose ends `_Ends.run_maxima` makes at a time."""


class _Ends(NamedTuple):
    """Each request's end, t + duration (unknown: 0), made a part at a time: no array of
    every request's end (8 B a request: at real10M 81 MiB at the parent's peak)."""

    t: np.ndarray
    duration_ms: np.ndarray | None
    """In the frame's row order, or the requests' (then read through `request`)."""
    request: np.ndarray | None

    @classmethod
    def of(cls, sessions: pd.DataFrame, t: np.ndarray, duration_ms: np.ndarray | None) -> _Ends:
        if "duration_ms" in sessions.columns:
            duration = sessions["duration_ms"]
            if duration.dtype != np.float64:  # (a nullable one: its NA as NaN)
                duration = duration.fillna(0.0)
            return cls(t, duration.to_numpy(float), None)
        if duration_ms is None:
            return cls(t, None, None)
        return cls(t, np.asarray(duration_ms), sessions["request"].to_numpy())

    def part(self, start: int, stop: int) -> np.ndarray:
        """The ends of rows `start` to `stop` (a fresh array)."""
        if self.duration_ms is None:
            return self.t[start:stop].copy()
        if self.request is None:
            ms = self.duration_ms[start:stop]
        else:
            ms = np.take(self.duration_ms, self.request[start:stop], mode="clip")
        ends: np.ndarray = np.divide(ms, 1000.0, dtype=float)
        np.nan_to_num(ends, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
        ends += self.t[start:stop]
        return ends

    def run_maxima(self, starts: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Each run's (rows from `starts` on) latest end and the latest of all, whole runs
        a chunk at a time; None when some end is NaN (then by `ufunc.at`, as before)."""
        n = len(self.t)
        cuts = np.searchsorted(starts, np.arange(0, n, ENDS_CHUNK_ROWS))
        bounds = np.unique(np.append(cuts, len(starts))).tolist()
        out = np.empty(len(starts))
        latest = -np.inf
        for lo, hi in itertools.pairwise(bounds):
            a, b = int(starts[lo]), int(starts[hi]) if hi < len(starts) else n
            ends = self.part(a, b)
            if np.isnan(ends).any():
                return None
            out[lo:hi] = np.maximum.reduceat(ends, starts[lo:hi] - a)
            latest = max(latest, float(ends.max()))
        return out, latest


def km_weights(lengths: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Per session, its share of the Kaplan-Meier estimate of the length distribution
    (right-censored where `censored`); the weights sum to 1."""
    lengths = np.asarray(lengths, dtype=float)
    censored = np.asarray(censored, dtype=bool)
    weights = np.zeros(len(lengths))
    if not len(lengths):
        return weights
    observed = ~censored
    if not observed.any():
        return np.full(len(lengths), 1.0 / len(lengths))
    from scipy import stats

    data = stats.CensoredData(uncensored=lengths[observed], right=lengths[censored])
    cdf = stats.ecdf(data).cdf
    values = cdf.quantiles
    mass = np.diff(np.concatenate([[0.0], cdf.probabilities]))
    at = np.searchsorted(values, lengths[observed])
    counts = np.bincount(at, minlength=len(values))
    weights[observed] = mass[at] / counts[at]
    leftover = 1.0 - float(cdf.probabilities[-1])
    beyond = censored & (lengths >= lengths[observed].max())
    if leftover > 1e-12 and beyond.any():
        weights[beyond] = leftover / beyond.sum()
    return np.asarray(weights / weights.sum(), dtype=float)


def km_percentiles(values: np.ndarray, censored: np.ndarray, q: list[float]) -> np.ndarray:
    """Percentiles `q` of the Kaplan-Meier estimate of `values` (right-censored where
    `censored`: the model's `sessions.length` and `duration_s`, so --grace, their p99
    duration, is not the length of sessions the capture stopped); without censoring
    `np.percentile`'s (interpolated) ones, as before."""
    values = np.asarray(values, dtype=float)
    censored = np.asarray(censored, dtype=bool)
    if not censored.any():
        return np.asarray(np.percentile(values, q), dtype=float)
    weights = km_weights(values, censored)
    return np.asarray(np.percentile(values, q, weights=weights, method="inverted_cdf"), dtype=float)


class ShapeRow(NamedTuple):
    """One session of a behavior's table: what synthesis draws together."""

    length: int
    tempo: float
    pauses_s: float | None
    """The sum of its pauses (s), None in older models."""


@dataclass(frozen=True)
class SessionTable:
    """(length, tempo, pauses, weight) rows of a behavior's sessions: drawn jointly."""

    length: tuple[int, ...]
    tempo: tuple[float, ...]
    weight: tuple[float, ...]
    censored: int
    """How many of the behavior's sessions were censored (before sampling)."""
    pauses_s: tuple[float, ...] | None = None
    """Per row, the sum of the session's pauses (s); None in models before it."""

    def to_json(self) -> dict[str, Any]:
        extra = {"pauses_s": list(self.pauses_s)} if self.pauses_s is not None else {}
        return {
            "length": list(self.length),
            "tempo": list(self.tempo),
            **extra,
            "weight": list(self.weight),
            "censored": self.censored,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionTable:
        pauses = data.get("pauses_s")
        return cls(
            tuple(int(v) for v in data["length"]),
            tuple(float(v) for v in data["tempo"]),
            tuple(float(v) for v in data["weight"]),
            int(data.get("censored", 0)),
            tuple(float(v) for v in pauses) if pauses is not None else None,
        )

    @classmethod
    def fit(
        cls,
        lengths: np.ndarray,
        tempos: np.ndarray,
        censored: np.ndarray,
        seed: int = 0,
        pauses_s: np.ndarray | None = None,
    ) -> SessionTable:
        """The table of these sessions (tempo NaN: no pause, read as 1; `pauses_s`, each
        session's sum of pauses, kept when given), Kaplan-Meier weighted, on a seeded sample
        of SESSION_TABLE_ROWS when there are more."""
        lengths = np.asarray(lengths, dtype=np.int64)
        tempos = np.nan_to_num(np.asarray(tempos, dtype=float), nan=1.0)
        censored = np.asarray(censored, dtype=bool)
        keep = np.arange(len(lengths))
        if len(keep) > SESSION_TABLE_ROWS:
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(keep), SESSION_TABLE_ROWS, replace=False))
        weights = km_weights(lengths[keep], censored[keep])
        used = weights > 0
        pauses = None
        if pauses_s is not None:
            kept = np.nan_to_num(np.asarray(pauses_s, dtype=float)[keep][used], nan=0.0)
            pauses = tuple(float(f"{v:.4g}") for v in kept)
        return cls(
            tuple(int(v) for v in lengths[keep][used]),
            tuple(float(f"{v:.4g}") for v in tempos[keep][used]),
            tuple(float(f"{v:.6g}") for v in weights[used]),
            int(censored.sum()),
            pauses,
        )

    def row(self, i: int) -> ShapeRow:
        """Row `i`: (length, tempo, sum of pauses); synthesis picks it (models/strata.py)."""
        pauses = self.pauses_s[i] if self.pauses_s is not None else None
        return ShapeRow(self.length[i], self.tempo[i], pauses)


class ConditionedChain:
    """A behavior's chain walked conditioned on its length (module docstring)."""

    def __init__(self, entry: dict[str, float], transitions: dict[str, dict[str, float]]):
        names = sorted({*entry, *transitions, *(b for t in transitions.values() for b in t)})
        names = [n for n in names if n != "END"]
        self.names = names
        index = {n: i for i, n in enumerate(names)}
        size = len(names)
        self.move = np.zeros((size, size))
        self.end = np.zeros(size)
        for a, tos in transitions.items():
            for b, p in tos.items():
                if b == "END":
                    self.end[index[a]] += p
                else:
                    self.move[index[a], index[b]] += p
        # A state with no row (only seen last, censored) neither moves nor ends.
        self.entry = np.zeros(size)
        for a, p in entry.items():
            self.entry[index[a]] = p
        self._b: list[np.ndarray] = [_unit(self.end)]

    def b(self, k: int) -> np.ndarray:
        while len(self._b) <= k:
            self._b.append(_unit(self.move @ self._b[-1]))
        return self._b[k]

    def feasible(self, length: int) -> bool:
        return bool((self.entry * self.b(length - 1)).sum() > 0)

    def walk(self, length: int, rng: np.random.Generator) -> list[str]:
        """`length` endpoints, drawn from the chain conditioned on that length."""
        current = _pick(self.entry * self.b(length - 1), rng)
        path = [current]
        for left in range(length - 1, 0, -1):
            current = _pick(self.move[current] * self.b(left - 1), rng)
            path.append(current)
        return [self.names[i] for i in path]


def _unit(v: np.ndarray) -> np.ndarray:
    top = float(v.max()) if len(v) else 0.0
    return v / top if top > 0 else v


def _pick(weights: np.ndarray, rng: np.random.Generator) -> int:
    cdf = np.cumsum(weights)
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)
