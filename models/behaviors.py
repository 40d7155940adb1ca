"""Behaviors: sessions clustered by their transitions, each a first-order Markov chain over
endpoints (entry, transitions, exit) with empirical think-time quantiles per transition.

Think times are kept as empirical quantiles (21 points, 0 %..100 %) rather than a fitted
family: real pauses mix several regimes (reading a page, a script's fixed delay, a human
coming back) that one lognormal or gamma misses in the tails, and quantiles stay readable.
A transition with fewer than `MIN_THINK_SAMPLES` pauses borrows the pooled pauses of the
other rare transitions into its target endpoint in the behavior, then of the behavior's
rare transitions, then of the whole trace.

Session tempo: pauses within one session are not independent (a person reading slowly is
slow all session; a script is fast all session), so drawing every pause independently
would make session durations too alike. Each session gets a tempo, the shrunk geometric
mean of its pauses relative to the trace-wide median of each transition; the stored
think-time quantiles are of pause / tempo, and each behavior keeps its tempo quantiles.
Synthesis draws one tempo per session and multiplies every pause by it; the tempo comes
with the session's length and sum of pauses from the behavior's `session_shape` table
(session_shape.py), and the pauses are then scaled to that sum.

Every step is numpy over endpoint codes (paths, counts and tempo: behavior_paths.py; the
chains: `_Moves`), so the fit costs a few sorts of the requests, not Python per request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .behavior_paths import END as END  # noqa: PLC0414 (re-exported: synthesize, outcomes)
from .behavior_paths import SessionPaths, counted, grouped, session_tempo, transition_counts
from .session_shape import Censoring, SessionTable

if TYPE_CHECKING:  # pandas, scipy and sklearn load where a model is built: synthesize needs none
    import pandas as pd
    from scipy import sparse

QUANTILE_POINTS = np.linspace(0.0, 1.0, 21)
MIN_THINK_SAMPLES = 20
MAX_BEHAVIORS = 6
# Below this mean silhouette, the clusters are not clearly apart: one behavior is kept.
MIN_SILHOUETTE = 0.25
MIN_SESSIONS_PER_BEHAVIOR = 15
NO_PAUSE_TEMPO = 1.0
# Weight of the standardised log tempo beside the transition vector (unit length) when
# clustering: one standard deviation of tempo counts like a very different path.
TEMPO_WEIGHT = 1.0
# K is chosen by k-means and silhouette on at most this many sessions (seeded, uniform);
# every session is then assigned to its nearest behavior. A trace with fewer sessions is
# clustered whole, as before sampling existed.
CLUSTER_SAMPLE_SESSIONS = 2000
_ASSIGN_CHUNK = 1 << 16


def sig(x: float, digits: int = 5) -> float:
    """`x` rounded to `digits` significant digits (stable JSON, readable numbers)."""
    if x == 0 or not np.isfinite(x):
        return 0.0 if not np.isfinite(x) else float(x)
    return float(f"{x:.{digits}g}")


@dataclass(frozen=True)
class ThinkTime:
    quantiles_s: tuple[float, ...]
    samples: int
    pooled_from: str
    """"transition", "endpoint", "behavior" or "trace": where the pauses came from."""

    def to_json(self) -> dict[str, Any]:
        return {"q": list(self.quantiles_s), "n": self.samples, "from": self.pooled_from}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThinkTime:
        return cls(tuple(float(v) for v in data["q"]), int(data["n"]), str(data["from"]))


@dataclass(frozen=True)
class Behavior:
    name: str
    share: float
    sessions: int
    entry: dict[str, float]
    transitions: dict[str, dict[str, float]]
    """from endpoint → {to endpoint or END: probability}."""
    think: dict[str, dict[str, ThinkTime]]
    """from endpoint → {to endpoint: think time before the `to` request}."""
    mean_length: float
    tempo: ThinkTime
    """Session tempo (dimensionless multiplier of every pause), drawn once per session."""
    shape: SessionTable | None = None
    """(length, tempo) of its sessions, Kaplan-Meier weighted (None in older models)."""

    def to_json(self) -> dict[str, Any]:
        extra = {"session_shape": self.shape.to_json()} if self.shape is not None else {}
        return {
            **extra,
            "tempo": self.tempo.to_json(),
            "name": self.name,
            "share": self.share,
            "sessions": self.sessions,
            "mean_length": self.mean_length,
            "entry": self.entry,
            "transitions": self.transitions,
            "think_s": {
                a: {b: t.to_json() for b, t in sorted(tos.items())}
                for a, tos in sorted(self.think.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behavior:
        return cls(
            name=str(data["name"]),
            share=float(data["share"]),
            sessions=int(data["sessions"]),
            entry={k: float(v) for k, v in data["entry"].items()},
            transitions={
                a: {b: float(p) for b, p in tos.items()} for a, tos in data["transitions"].items()
            },
            think={
                a: {b: ThinkTime.from_json(t) for b, t in tos.items()}
                for a, tos in data["think_s"].items()
            },
            mean_length=float(data["mean_length"]),
            tempo=ThinkTime.from_json(data["tempo"]),
            shape=SessionTable.from_json(shape) if (shape := data.get("session_shape")) else None,
        )


def transition_features(paths: list[list[str]]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Transition-count vectors (START→first, a→b, last→END), each row normalised to sum 1
    and square-rooted (Hellinger geometry: k-means distances between distributions)."""
    counts, vocab = transition_counts(SessionPaths.of_lists(paths))
    return hellinger(counts).toarray(), vocab


def hellinger(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Each row of counts divided by its sum, square-rooted (exact integer sums, so the
    values equal those of the dense computation bit for bit)."""
    totals = np.asarray(counts.sum(axis=1)).ravel()
    out = counts.copy().astype(float)
    out.data = np.sqrt(out.data / np.repeat(totals, np.diff(out.indptr)))
    return out


def with_column(matrix: sparse.csr_matrix, column: np.ndarray) -> sparse.csr_matrix:
    """`sparse.hstack([matrix, column[:, None]], format="csr")` of a canonical CSR matrix
    (its zeros left out, each row's columns sorted): each row's entries moved by the
    column's entries before it, the column's put last (10 M requests: 0.2-0.5 s less)."""
    from scipy import sparse

    extra = column != 0
    per_row = np.diff(matrix.indptr)
    indptr = np.zeros(len(per_row) + 1, dtype=np.int64)
    np.cumsum(per_row + extra, out=indptr[1:])
    before = np.cumsum(extra) - extra
    at = np.arange(matrix.nnz) + np.repeat(before, per_row)
    indices = np.empty(indptr[-1], dtype=matrix.indices.dtype)
    data = np.empty(indptr[-1], dtype=matrix.data.dtype)
    indices[at], data[at] = matrix.indices, matrix.data
    ends = indptr[1:][extra] - 1
    indices[ends], data[ends] = matrix.shape[1], column[extra]
    shape = (matrix.shape[0], matrix.shape[1] + 1)
    return sparse.csr_matrix((data, indices, indptr), shape=shape)


def choose_clusters(
    features: np.ndarray | sparse.spmatrix,
    seed: int = 0,
    max_behaviors: int = MAX_BEHAVIORS,
    sample: int = CLUSTER_SAMPLE_SESSIONS,
) -> np.ndarray:
    """Cluster labels; K chosen by the best mean silhouette over 2..max_behaviors, or 1.

    With more than `sample` sessions, k-means and the silhouette run on a seeded uniform
    sample of `sample` sessions, then every session goes to its nearest centre; a K is
    refused when a cluster of the whole trace holds fewer than MIN_SESSIONS_PER_BEHAVIOR."""
    from scipy import sparse
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    n = features.shape[0]
    labels = np.zeros(n, dtype=int)
    whole = n <= sample
    index = np.arange(n) if whole else np.sort(np.random.default_rng(seed).choice(n, sample, False))
    chosen: Any = features[index]
    points = chosen.toarray() if sparse.issparse(chosen) else np.asarray(chosen)
    distinct = len(np.unique(points, axis=0))
    max_k = min(max_behaviors, n // MIN_SESSIONS_PER_BEHAVIOR, distinct)
    if max_k < 2:
        return labels
    best = (MIN_SILHOUETTE, labels)
    # One thread: OpenMP's partial sums depend on the thread count (so would the labels,
    # in a tie), and on a busy machine the threads cost more than they save (7.5 s
    # against 1.3 s for one K sweep on 2,000 sessions, 2 shared cores).
    with threadpool_limits(limits=1):
        for k in range(2, max_k + 1):
            model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points)
            assigned = model.labels_ if whole else nearest(features, model.cluster_centers_)
            if np.bincount(assigned, minlength=k).min() < MIN_SESSIONS_PER_BEHAVIOR:
                continue
            score = float(silhouette_score(points, model.labels_, random_state=seed))
            if score > best[0]:
                best = (score, assigned.astype(int))
    return best[1]


def nearest(features: np.ndarray | sparse.spmatrix, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of each row, in chunks of rows."""
    out = np.empty(features.shape[0], dtype=np.int64)
    centre_sq = (centres**2).sum(axis=1)
    for lo in range(0, features.shape[0], _ASSIGN_CHUNK):
        rows = features[lo : lo + _ASSIGN_CHUNK]
        dots = np.asarray(rows @ centres.T)
        out[lo : lo + len(dots)] = np.argmin(centre_sq - 2 * dots, axis=1)
    return out


def fit_behaviors(
    sessions: pd.DataFrame,
    seed: int = 0,
    max_behaviors: int = MAX_BEHAVIORS,
    sample: int = CLUSTER_SAMPLE_SESSIONS,
    censored: Censoring | None = None,
) -> list[Behavior]:
    """Behaviors of a sessionized frame with an `endpoint` column, largest first;
    clustering as `choose_clusters` (on at most `sample` sessions). Sessions `censored`
    at the capture's start give no entry, at its end no END (session_shape.py)."""

    if sessions.empty:
        return []
    paths = SessionPaths.of(sessions)
    n = len(paths.length)
    no = np.zeros(n, dtype=bool)
    at_start = censored.start if censored is not None else no
    at_end = censored.end if censored is not None else no
    counts, _ = transition_counts(paths)
    tempos, scaled = session_tempo(paths)
    pause_sums = np.bincount(
        paths.session, weights=np.nan_to_num(paths.think_s, nan=0.0), minlength=n
    )
    features = with_column(hellinger(counts), _tempo_feature(tempos)[:, 0])
    del counts
    labels = choose_clusters(features, seed, max_behaviors, sample)
    del features
    paths = replace(paths, think_s=scaled)
    moves = _Moves.of(paths, labels, at_start, at_end)
    sizes = np.bincount(labels)
    order = sorted(np.flatnonzero(sizes).tolist(), key=lambda k: (-int(sizes[k]), k))
    behaviors = []
    for rank, label in enumerate(order):
        index = np.flatnonzero(labels == label)
        chain = moves.chain(f"b{rank + 1}", label, paths.length[index], n, tempos[index])
        table = SessionTable.fit(
            paths.length[index],
            tempos[index],
            at_start[index] | at_end[index],
            seed,
            pause_sums[index],
        )
        behaviors.append(replace(chain, shape=table))
    return behaviors


def _tempo_feature(tempos: np.ndarray) -> np.ndarray:
    """log tempo, standardised and weighted by TEMPO_WEIGHT, as one more clustering column
    (0 for sessions without pauses): fast scripts and slow readers become apart."""
    logs = np.log(np.asarray(tempos, dtype=float))
    finite = np.isfinite(logs)
    column = np.zeros(len(logs))
    if finite.sum() >= 2 and np.std(logs[finite]) > 0:
        column[finite] = (logs[finite] - np.mean(logs[finite])) / np.std(logs[finite])
    return (TEMPO_WEIGHT * column)[:, None]


@dataclass(frozen=True)
class _Moves:
    """Every behavior's entries, transitions and pauses, counted in one pass over arrays:
    `code` is (behavior, from, to) as one integer (to = END for a session's end)."""

    width: int
    labels: list[str]
    entries: np.ndarray
    """(behavior, endpoint) → sessions entering there."""
    codes: np.ndarray
    counts: np.ndarray
    """Distinct (behavior, from, to) codes, sorted, and their counts."""
    pause_codes: np.ndarray
    pauses: np.ndarray
    """Per pause, its (behavior, from, to) code; both sorted by code."""
    trace_pauses: np.ndarray
    fresh: np.ndarray
    """Per behavior, whether some session of it is not censored at the start."""

    @classmethod
    def of(
        cls, paths: SessionPaths, labels: np.ndarray, at_start: np.ndarray, at_end: np.ndarray
    ) -> _Moves:
        width, first = len(paths.labels), paths.first
        k = int(labels.max()) + 1
        fresh = np.bincount(labels, weights=~at_start, minlength=k) > 0
        entered = ~(at_start & fresh[labels])
        entries = np.bincount(
            labels[entered] * width + paths.step[first[entered]], minlength=k * width
        ).reshape(k, width)
        within = np.ones(len(paths.step), dtype=bool)
        within[first] = False
        size = k * width * width
        kind = np.int32 if size < 1 << 31 else np.int64
        code = np.repeat((labels * width).astype(kind), paths.length)  # in place from here
        code += paths.previous()
        code *= width
        code += paths.step
        ended = np.flatnonzero(~at_end)
        last = first[ended] + paths.length[ended] - 1
        ends = (labels[ended] * width + paths.step[last]) * width + paths.code(END)
        # A first request's code has START as its "from": entries, counted above.
        codes, counts = counted(np.concatenate([code, ends]), size)
        moves = (codes // width) % width != paths.code("START")
        paused = within & np.isfinite(paths.think_s)
        pause_codes = code[paused]
        del code
        by_code = grouped(pause_codes, size)
        pauses = paths.think_s[paused][by_code]
        return cls(
            width=width,
            labels=paths.labels,
            entries=entries,
            codes=codes[moves],
            counts=counts[moves],
            pause_codes=pause_codes[by_code],
            pauses=pauses,
            trace_pauses=pauses,  # every pause inside a session (quantiles: any order)
            fresh=fresh,
        )

    def chain(
        self, name: str, label: int, lengths: np.ndarray, total: int, tempos: np.ndarray
    ) -> Behavior:
        """The chain of behavior `label`: its sessions' `lengths` and `tempos`, of `total`
        sessions in all."""
        width, labels, end = self.width, self.labels, self.labels.index(END)
        span = np.searchsorted(self.codes, [label * width * width, (label + 1) * width * width])
        codes, counts = self.codes[span[0] : span[1]], self.counts[span[0] : span[1]]
        a, b = (codes // width) % width, codes % width
        lo = np.searchsorted(self.pause_codes, codes)
        hi = np.searchsorted(self.pause_codes, codes, side="right")
        n_pauses = hi - lo
        # A rare transition borrows the pauses of the other rare ones, not those of the
        # frequent ones (a page's asset fetches, milliseconds apart, would swamp a person's
        # rare moves between pages: a mean think 16 % short on a staging capture).
        rare = (n_pauses > 0) & (n_pauses < MIN_THINK_SAMPLES)
        rare_pauses = [self.pauses[i:j] for i, j in zip(lo[rare], hi[rare], strict=True)]
        behavior_pauses = np.concatenate(rare_pauses) if rare_pauses else np.zeros(0)
        fallback: dict[int, ThinkTime] = {}
        think: dict[str, dict[str, ThinkTime]] = {}
        for i in np.flatnonzero(b != end).tolist():
            if n_pauses[i] >= MIN_THINK_SAMPLES:
                found = _think_time([("transition", self.pauses[lo[i] : hi[i]])])
            else:
                if b[i] not in fallback:
                    into = rare & (b == b[i])
                    target = [self.pauses[j:k] for j, k in zip(lo[into], hi[into], strict=True)]
                    fallback[b[i]] = _think_time(
                        [
                            ("endpoint", np.concatenate(target) if target else np.zeros(0)),
                            ("behavior", behavior_pauses),
                            ("trace", self.trace_pauses),
                        ]
                    )
                found = fallback[b[i]]
            think.setdefault(labels[a[i]], {})[labels[b[i]]] = found
        transitions: dict[str, dict[str, int]] = {}
        for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            transitions.setdefault(labels[x], {})[labels[y]] = int(counts[i])
        entry = {labels[e]: int(c) for e, c in enumerate(self.entries[label].tolist()) if c}
        return Behavior(
            name=name,
            share=sig(len(lengths) / total),
            sessions=len(lengths),
            entry=_probabilities(entry),
            transitions={x: _probabilities(tos) for x, tos in sorted(transitions.items())},
            think=think,
            mean_length=sig(float(np.mean(lengths))),
            tempo=_tempo(tempos[np.isfinite(tempos)]),
        )


def _tempo(tempos: np.ndarray) -> ThinkTime:
    if not len(tempos):
        return ThinkTime(tuple(NO_PAUSE_TEMPO for _ in QUANTILE_POINTS), 0, "none")
    q = np.quantile(tempos, QUANTILE_POINTS)
    return ThinkTime(tuple(sig(float(v), 4) for v in q), len(tempos), "sessions")


def _think_time(levels: list[tuple[str, np.ndarray]]) -> ThinkTime:
    """The quantiles of the first level with MIN_THINK_SAMPLES pauses (the trace's: any)."""
    for level, values in levels:
        if len(values) >= MIN_THINK_SAMPLES or (level == "trace" and len(values)):
            q = np.quantile(values, QUANTILE_POINTS)
            return ThinkTime(tuple(sig(float(v), 4) for v in q), len(values), level)
    return ThinkTime(tuple(0.0 for _ in QUANTILE_POINTS), 0, "none")


def _probabilities(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: sig(n / total) for k, n in sorted(counts.items())}
