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
with the session's length from the behavior's `session_shape` table (session_shape.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from .session_shape import Censoring, SessionTable

END = "END"
QUANTILE_POINTS = np.linspace(0.0, 1.0, 21)
MIN_THINK_SAMPLES = 20
MAX_BEHAVIORS = 6
# Below this mean silhouette, the clusters are not clearly apart: one behavior is kept.
MIN_SILHOUETTE = 0.25
MIN_SESSIONS_PER_BEHAVIOR = 15
# Shrinkage of a session's tempo toward 1: tempo = exp(sum of log ratios / (pauses + k)),
# so a session with one or two pauses does not get an extreme tempo from them alone.
TEMPO_SHRINK = 2.0
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

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Inverse-CDF draws, linear between the stored quantiles."""
        u = rng.random(size)
        return np.interp(u, QUANTILE_POINTS, np.asarray(self.quantiles_s))


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


def session_paths(sessions: pd.DataFrame) -> list[tuple[list[str], list[float]]]:
    """Per session (by session_id): its endpoints in order and the pauses before each."""
    if sessions.empty:
        return []
    ids = sessions["session_id"].to_numpy()
    order = np.argsort(ids, kind="stable")
    endpoints = sessions["endpoint"].to_numpy(object)[order].tolist()
    thinks = sessions["think_s"].to_numpy(float)[order].tolist()
    cuts = [0, *(np.flatnonzero(np.diff(ids[order]) != 0) + 1).tolist(), len(order)]
    return [(endpoints[a:b], thinks[a:b]) for a, b in pairwise(cuts)]


def transition_counts(paths: list[list[str]]) -> tuple[sparse.csr_matrix, list[tuple[str, str]]]:
    """Per session, its counts of each transition (START→first, a→b, last→END), as a
    sparse matrix over the sorted vocabulary of transitions."""
    labels = sorted({e for path in paths for e in path} | {"START", END})
    code = {name: i for i, name in enumerate(labels)}
    lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
    steps = np.fromiter((code[e] for p in paths for e in p), dtype=np.int64, count=lengths.sum())
    used = lengths > 0
    first = (np.cumsum(lengths) - lengths)[used]
    last = first + lengths[used] - 1
    prev = np.empty_like(steps)
    prev[1:] = steps[:-1]
    prev[first] = code["START"]
    a = np.concatenate([prev, steps[last]])
    b = np.concatenate([steps, np.full(len(last), code[END])])
    rows = np.concatenate([np.repeat(np.arange(len(paths)), lengths), np.flatnonzero(used)])
    width = len(labels)
    pair_codes, cols = np.unique(a * width + b, return_inverse=True)
    # Codes follow the sorted labels, so sorted pair codes are the sorted (a, b) pairs.
    pairs = [(labels[c // width], labels[c % width]) for c in pair_codes.tolist()]
    counts = sparse.csr_matrix(
        (np.ones(len(cols)), (rows, cols.ravel())), shape=(len(paths), len(pairs))
    )
    counts.sum_duplicates()
    return counts, pairs


def transition_features(paths: list[list[str]]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Transition-count vectors (START→first, a→b, last→END), each row normalised to sum 1
    and square-rooted (Hellinger geometry: k-means distances between distributions)."""
    counts, vocab = transition_counts(paths)
    return hellinger(counts).toarray(), vocab


def hellinger(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Each row of counts divided by its sum, square-rooted (exact integer sums, so the
    values equal those of the dense computation bit for bit)."""
    totals = np.asarray(counts.sum(axis=1)).ravel()
    out = counts.copy().astype(float)
    out.data = np.sqrt(out.data / np.repeat(totals, np.diff(out.indptr)))
    return out


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
    paths = session_paths(sessions)
    if not paths:
        return []
    no = np.zeros(len(paths), dtype=bool)
    at_start = censored.start if censored is not None else no
    at_end = censored.end if censored is not None else no
    counts, _ = transition_counts([p for p, _ in paths])
    paths, tempos = _apply_tempo(paths)
    features = sparse.hstack([hellinger(counts), _tempo_feature(tempos)], format="csr")
    labels = choose_clusters(features, seed, max_behaviors, sample)
    all_pauses = [t for _, thinks in paths for t in thinks[1:] if np.isfinite(t)]
    order = sorted(set(labels.tolist()), key=lambda k: (-int((labels == k).sum()), k))
    behaviors = []
    for rank, label in enumerate(order):
        index = np.flatnonzero(labels == label)
        members = [paths[i] for i in index]
        member_tempos = [tempos[i] for i in index if np.isfinite(tempos[i])]
        edges = (at_start[index], at_end[index])
        chain = _chain(f"b{rank + 1}", members, len(paths), all_pauses, member_tempos, edges)
        table = SessionTable.fit(
            np.array([len(p) for p, _ in members]),
            np.asarray(tempos, dtype=float)[index],
            edges[0] | edges[1],
            seed,
        )
        behaviors.append(replace(chain, shape=table))
    return behaviors


def _tempo_feature(tempos: list[float]) -> np.ndarray:
    """log tempo, standardised and weighted by TEMPO_WEIGHT, as one more clustering column
    (0 for sessions without pauses): fast scripts and slow readers become apart."""
    logs = np.log(np.asarray(tempos, dtype=float))
    finite = np.isfinite(logs)
    column = np.zeros(len(logs))
    if finite.sum() >= 2 and np.std(logs[finite]) > 0:
        column[finite] = (logs[finite] - np.mean(logs[finite])) / np.std(logs[finite])
    return (TEMPO_WEIGHT * column)[:, None]


def _apply_tempo(
    paths: list[tuple[list[str], list[float]]],
) -> tuple[list[tuple[list[str], list[float]]], list[float]]:
    """Each session's tempo (NaN without pauses) and its pauses divided by it."""
    by_transition: dict[tuple[str, str], list[float]] = {}
    for path, thinks in paths:
        for a, b, t in zip(path[:-1], path[1:], thinks[1:], strict=True):
            if np.isfinite(t) and t > 0:
                by_transition.setdefault((a, b), []).append(t)
    medians = {k: float(np.median(v)) for k, v in by_transition.items()}
    scaled: list[tuple[list[str], list[float]]] = []
    tempos: list[float] = []
    for path, thinks in paths:
        logs = [
            np.log(t / medians[(a, b)])
            for a, b, t in zip(path[:-1], path[1:], thinks[1:], strict=True)
            if np.isfinite(t) and t > 0
        ]
        if not logs:
            scaled.append((path, thinks))
            tempos.append(float("nan"))
            continue
        tempo = float(np.exp(np.sum(logs) / (len(logs) + TEMPO_SHRINK)))
        scaled.append((path, [t / tempo if np.isfinite(t) else t for t in thinks]))
        tempos.append(tempo)
    return scaled, tempos


def _chain(
    name: str,
    members: list[tuple[list[str], list[float]]],
    total_sessions: int,
    trace_pauses: list[float],
    tempos: list[float],
    edges: tuple[np.ndarray, np.ndarray],
) -> Behavior:
    """The chain of `members`; `edges`: per member, censored at the start (its first
    request is no entry, unless every member is) and at the end (its last is no END)."""
    entry: Counter[str] = Counter()
    moves: dict[str, Counter[str]] = {}
    pauses: dict[tuple[str, str], list[float]] = {}
    fresh_entries = not edges[0].all()
    for (path, thinks), at_start, at_end in zip(members, *edges, strict=True):
        if not (at_start and fresh_entries):
            entry[path[0]] += 1
        steps = path if at_end else [*path, END]
        for i, (a, b) in enumerate(pairwise(steps)):
            moves.setdefault(a, Counter())[b] += 1
            if b != END and np.isfinite(thinks[i + 1]):
                pauses.setdefault((a, b), []).append(float(thinks[i + 1]))
    # A rare transition borrows the pauses of the other rare ones, not those of the
    # frequent ones (a page's asset fetches, milliseconds apart, would swamp a person's
    # rare moves between pages: a mean think 16 % short on a staging capture).
    rare = {k: v for k, v in pauses.items() if len(v) < MIN_THINK_SAMPLES}
    by_target: dict[str, list[float]] = {}
    for (_, b), values in rare.items():
        by_target.setdefault(b, []).extend(values)
    behavior_pauses = [v for values in rare.values() for v in values]
    think: dict[str, dict[str, ThinkTime]] = {}
    for a, tos in moves.items():
        for b in tos:
            if b == END:
                continue
            think.setdefault(a, {})[b] = _think_time(
                [
                    ("transition", pauses.get((a, b), [])),
                    ("endpoint", by_target.get(b, [])),
                    ("behavior", behavior_pauses),
                    ("trace", trace_pauses),
                ]
            )
    lengths = [len(p) for p, _ in members]
    return Behavior(
        name=name,
        share=sig(len(members) / total_sessions),
        sessions=len(members),
        entry=_probabilities(entry),
        transitions={a: _probabilities(tos) for a, tos in sorted(moves.items())},
        think=think,
        mean_length=sig(float(np.mean(lengths))),
        tempo=_tempo(tempos),
    )


def _tempo(tempos: list[float]) -> ThinkTime:
    if not tempos:
        return ThinkTime(tuple(NO_PAUSE_TEMPO for _ in QUANTILE_POINTS), 0, "none")
    q = np.quantile(np.asarray(tempos), QUANTILE_POINTS)
    return ThinkTime(tuple(sig(float(v), 4) for v in q), len(tempos), "sessions")


def _think_time(levels: list[tuple[str, list[float]]]) -> ThinkTime:
    for level, values in levels:
        if len(values) >= MIN_THINK_SAMPLES or (level == "trace" and values):
            q = np.quantile(np.asarray(values), QUANTILE_POINTS)
            return ThinkTime(tuple(sig(float(v), 4) for v in q), len(values), level)
    return ThinkTime(tuple(0.0 for _ in QUANTILE_POINTS), 0, "none")


def _probabilities(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: sig(n / total) for k, n in sorted(counts.items())}
