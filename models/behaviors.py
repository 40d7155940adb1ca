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

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .behavior_paths import END as END  # noqa: PLC0414 (re-exported: synthesize, outcomes)
from .behavior_paths import (
    SESSION_CHUNK,
    Pairs,
    Pauses,
    SessionPaths,
    column_type,
    transition_counts,
)
from .order_stats import chunked_bincount, group_quantiles
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
KMEANS_STARTS = 10
"""Seeded k-means++ starts of each K's fit (`n_init`), the least inertia kept. Not 3
(tried at stop 47: `choose_clusters` on real1M's 2,000-session sample 0.125 CPU s, not
0.248; 1 start, sklearn's "auto": 0.090): on a staging capture of the demo 3 starts moved
a behavior's share 2.7 pp (0.57333 -> 0.54667; 1 start the same), past issue 15's 1 pp
against the old code (tests/models/test_model_scale.py failed on it in the clean-clone
suite), and fit up to 10 % worse than 10 starts on 8 overlapping blobs (bench/README.md,
"No scipy before the fork, three k-means starts")."""
FIT_THREADS = 2
"""Threads the K sweep's k-means fits run on, where a core is free (`_core_free`)."""
SPARSE_FIT_DENSITY = 0.1
SPARSE_FIT_COLUMNS = 64
"""The K sweep's k-means fits take the sample as a CSR matrix where at most this share of
its entries are nonzero and it has at least this many columns (`fit_input`): sklearn's
Lloyd iterations then go over the nonzeros only. Sessions' transition features are mostly
zeros (real1M's 2,000 × 166 sample: 6 %; one thread, K = 2..6: 0.18 CPU s, not 0.42);
on few columns or denser rows the dense fits are the faster (bench/README.md)."""
_COUNTED_QUANTILES = 1 << 14
"""Values from which `_quantile_points` counts by value ranges rather than partitions."""


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


def session_features(paths: SessionPaths, pairs: Pairs, column: np.ndarray) -> sparse.csr_matrix:
    """Per session, the clustering features: `hellinger` of its transition counts with
    `column` appended (zeros left out), as `sparse.hstack` would append it, bit for bit.
    Made in place over the counts' own arrays (`Pairs.counts` with `column`: one sort of
    each row), a chunk of rows at a time (no whole-length temporaries). The model reads
    them as `SessionFeatures`: rows when asked, never the whole matrix."""
    return _scaled(pairs.counts(paths, column), paths.length, column)


def _scaled(counts: sparse.csr_matrix, length: np.ndarray, column: np.ndarray) -> sparse.csr_matrix:
    """`session_features` from the counts of sessions of `length` requests with `column`
    as their extra column (both the sessions'), in place."""
    extra = (counts.indptr[1:] - 1)[column != 0]
    kept = counts.data[extra]
    # A row's counts sum to its requests' transitions and its END: whole numbers, exact.
    totals = (length + (length > 0)).astype(float)
    data, indptr = counts.data, counts.indptr
    for lo in range(0, len(totals), SESSION_CHUNK):
        hi = min(lo + SESSION_CHUNK, len(totals))
        a, b = indptr[lo], indptr[hi]
        part = data[a:b]
        part /= np.repeat(totals[lo:hi], np.diff(indptr[lo : hi + 1]))
        with np.errstate(invalid="ignore"):  # the extra's, negative ones too: replaced below
            np.sqrt(part, out=part)
    data[extra] = kept
    return counts


@dataclass(frozen=True)
class SessionFeatures:
    """Every session's clustering features (`session_features`' rows), made when rows
    are read: the k-means sample's (`take`), then every session's a chunk at a time where
    they are assigned to the nearest centres (`nearest_each`). The matrix of every session
    is never held: at real10M it was 127 MB, and ~160 MB more while it was made, on the
    behaviors' path. Each row is made from its own session's requests, so any row equals
    the whole matrix's to the bit."""

    paths: SessionPaths
    pairs: Pairs
    column: np.ndarray
    """Per session, the extra column's value (`_tempo_feature`)."""

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.paths.length), len(self.pairs.codes) + 1)

    def rows(self, lo: int, hi: int) -> sparse.csr_matrix:
        """Sessions lo..hi-1's rows."""
        counts = self.pairs.rows(self.paths, lo, hi, self.column)
        return _scaled(counts, self.paths.length[lo:hi], self.column[lo:hi])

    def take(self, sessions: np.ndarray) -> sparse.csr_matrix:
        """The rows of `sessions`, in their order."""
        counts = self.pairs.take(self.paths, sessions, self.column)
        return _scaled(counts, self.paths.length[sessions], self.column[sessions])

    def matrix(self) -> sparse.csr_matrix:
        """Every session's rows (benches and tests: what the model no longer holds)."""
        return session_features(self.paths, self.pairs, self.column)


Assign = Callable[[dict[int, np.ndarray]], dict[int, np.ndarray]]
"""Every session's nearest centre for each K asked (K → its centres): one pass over the
sessions (`nearest_each` over their features, or over key partitions)."""


def choose_clusters(
    features: np.ndarray | sparse.spmatrix | SessionFeatures,
    seed: int = 0,
    max_behaviors: int = MAX_BEHAVIORS,
    sample: int = CLUSTER_SAMPLE_SESSIONS,
    meanwhile: Callable[[], object] | None = None,
) -> np.ndarray:
    """Cluster labels; K chosen by the best mean silhouette over 2..max_behaviors, or 1.

    With more than `sample` sessions, k-means and the silhouette run on a seeded uniform
    sample of `sample` sessions, then every session goes to its nearest centre; a K is
    refused when a cluster of the whole trace holds fewer than MIN_SESSIONS_PER_BEHAVIOR.
    `meanwhile` (other work of the caller's) is called once, while the fits run where
    they run on threads (`_Fits`: a core free), else before them."""
    _, points = cluster_sample(features, sample, seed)
    return chosen_clusters(
        points, features.shape[0], partial(nearest_each, features), seed, max_behaviors,
        meanwhile,
    )  # fmt: skip


def chosen_clusters(
    points: np.ndarray,
    n: int,
    assign: Assign,
    seed: int = 0,
    max_behaviors: int = MAX_BEHAVIORS,
    meanwhile: Callable[[], object] | None = None,
) -> np.ndarray:
    """`choose_clusters`' labels of `n` sessions from its sample's feature rows `points`
    (every session when there are as many), every session assigned to the centres of the
    K's it asks by `assign` (models/partition_behaviors.py: a pass over key partitions)."""
    from sklearn.cluster import KMeans  # noqa: F401 (loads its OpenMP library: see below)
    from threadpoolctl import ThreadpoolController

    labels = np.zeros(n, dtype=int)
    whole = n <= len(points)
    # Distinct rows by their bytes (+ 0.0: -0.0 is 0.0, as np.unique(axis=0) has it).
    distinct = len({row.tobytes() for row in points + 0.0})
    max_k = min(max_behaviors, n // MIN_SESSIONS_PER_BEHAVIOR, distinct)
    if max_k < 2:
        if meanwhile is not None:
            meanwhile()
        return labels
    ks = range(2, max_k + 1)
    silhouette = _Silhouette(points)
    # One thread per k-means: OpenMP's partial sums depend on the thread count (so would
    # the labels, in a tie), and on a busy machine its threads cost more than they save
    # (7.5 s against 1.3 s for one K sweep on 2,000 sessions, 2 shared cores). The K's
    # fits are independent (each its own seeded starts): `_Fits` runs them side by side.
    # The controller limits the libraries loaded when it is made: sklearn's OpenMP is
    # imported above, before it (made first, the fits here ran with the default thread
    # count: other floats, and at load 3-4 on 2 cores 5-13 s of spinning, not 0.7).
    threads = ThreadpoolController()
    fitted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    scores: dict[int, float | None] = {}
    with threads.limit(limits=1), _Fits(points, seed, ks, threads) as fits:
        if fits.beside:  # the distances while the fits run (a K's score needs them)
            silhouette.distances()
        if meanwhile is not None:
            meanwhile()
        for k in ks:
            fitted[k] = fits.result(k)
            # On a sample, the silhouette first: every session is assigned to the centres
            # (a pass over the whole trace) only for a K that would be chosen by its score.
            # Sample labels of one cluster keep the old order (the silhouette refuses them).
            early = not whole and len(np.unique(fitted[k][0])) > 1
            scores[k] = silhouette(fitted[k][0]) if early else None
        assigned = _Assignments(assign, fitted, scores)
        best = (MIN_SILHOUETTE, labels)
        for k in ks:
            score = scores[k]
            if score is not None and score <= best[0]:
                continue
            found = fitted[k][0] if whole else assigned.of(k, best[0])
            if np.bincount(found, minlength=k).min() < MIN_SESSIONS_PER_BEHAVIOR:
                continue
            score = silhouette(fitted[k][0]) if score is None else score
            if score > best[0]:
                best = (score, found.astype(int))
    return best[1]


@dataclass
class _Assignments:
    """Every session's nearest centre for the K's `chosen_clusters` asks, each pass of
    `assign` serving every K the sweep will go on to ask from there: those whose score
    beats the best so far, if each were chosen (a pass over the sessions' features, made a
    chunk at a time: `SessionFeatures`; a K refused for a small cluster may ask one more
    pass)."""

    assign: Assign
    fitted: dict[int, tuple[np.ndarray, np.ndarray]]
    scores: dict[int, float | None]
    done: dict[int, np.ndarray] = field(default_factory=dict)
    passes: int = 0

    def of(self, k: int, best: float) -> np.ndarray:
        if k not in self.done:
            wanted = []
            for j, score in self.scores.items():
                if j == k or (j > k and (score is None or score > best)):
                    wanted.append(j)
                    best = best if score is None else max(best, score)
            self.done.update(self.assign({j: self.fitted[j][1] for j in wanted}))
            self.passes += 1
        return self.done[k]


def cluster_sample(
    features: np.ndarray | sparse.spmatrix | SessionFeatures, sample: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The sessions `choose_clusters` fits k-means on (every one, else a seeded uniform
    sample of `sample`, in order) and their feature rows as a dense array."""
    from scipy import sparse

    n = features.shape[0]
    index = (
        np.arange(n)
        if n <= sample
        else np.sort(np.random.default_rng(seed).choice(n, sample, False))
    )
    if isinstance(features, SessionFeatures):
        return index, features.take(index).toarray()
    chosen: Any = features[index]
    return index, chosen.toarray() if sparse.issparse(chosen) else np.asarray(chosen)


class _Fits:
    """The labels and centres of `KMeans(n_clusters=k, n_init=KMEANS_STARTS,
    random_state=seed).fit(fit_input(points))` for each k of `ks`. Where a core is free,
    every fit starts at once on FIT_THREADS threads (the largest K first), each with an
    OpenMP thread count of 1 (the count is per thread: the caller's limit does not reach a
    new one; `controller` sets it) and BLAS's 1 (one setting for the process: the caller's
    limit). Lloyd's iterations run without the GIL, so two fits use two cores; each is the
    same computation on its own copy of the points, so the same labels and centres as one
    after the other. Else (a busy machine, one core), each fit when its result is asked
    for."""

    def __init__(self, points: np.ndarray, seed: int, ks: range, controller: Any):
        self.points, self.seed = fit_input(points), seed
        self.pool: Any = None
        self.pending: dict[int, Any] = {}
        self.beside = len(ks) > 1 and _core_free()
        if self.beside:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(FIT_THREADS, thread_name_prefix="kmeans")
            # The largest K first: mostly the longest fits (real1M's K = 2..6, CPU s: 0.035,
            # 0.057, 0.132, 0.139, 0.109), so the last to start are short.
            for k in reversed(ks):
                self.pending[k] = self.pool.submit(self._on_a_thread, controller, k)

    def __enter__(self) -> _Fits:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            for future in self.pending.values():
                future.cancel()
            self.pool.shutdown(wait=True)

    def result(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k in self.pending:
            found: tuple[np.ndarray, np.ndarray] = self.pending.pop(k).result()
            return found
        return self._fit(k)

    def _on_a_thread(self, controller: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        with controller.limit(limits=1, user_api="openmp"):
            return self._fit(k)

    def _fit(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=KMEANS_STARTS, random_state=self.seed).fit(self.points)
        return model.labels_, model.cluster_centers_


def fit_input(points: np.ndarray) -> np.ndarray | sparse.csr_matrix:
    """The sample's rows as the k-means fits take them: a CSR matrix where they are sparse
    (SPARSE_FIT_DENSITY, SPARSE_FIT_COLUMNS), else the dense rows. The same fits either
    way (the same k-means, the same labels wherever compared: bench/bench_sparse_fits.py),
    but not the same floats: sklearn centres dense rows on their mean before its iterations
    and leaves sparse ones as they are."""
    from scipy import sparse

    rows, columns = points.shape
    nonzero = np.count_nonzero(points)
    if columns < SPARSE_FIT_COLUMNS or nonzero > SPARSE_FIT_DENSITY * rows * columns:
        return points
    return sparse.csr_matrix(points)


def _core_free() -> bool:
    """Whether a core idles beside this process (`forked.free_processes`' rule, the
    1-minute load; in the model's forked child, beside its caller too): where none does, a
    second thread of fits only takes CPU from the other work (real1M's child at load 5.4 on
    2 cores: +0.03-0.05 CPU s, no less wall; quiet, beside the caller's payload reads on
    the other core, `build_model` 1.04-1.39 s with it against 1.06-1.22 without)."""
    from .forked import free_processes, in_forked_child

    return free_processes(beside=1 if in_forked_child() else 0) > 1


class _Silhouette:
    """`silhouette_score(points, labels)` of several labellings of the same points, the
    distances between the points computed once (`distances`: the numbers the score reads)
    and each labelling's score from them by sklearn's `silhouette_samples` formula, step
    by step: per point, its distances summed by cluster in the points' order (its
    `np.bincount` of each row: here the rows of the transposed matrix added in that order,
    each a vector over the points), then its means, its intra and nearest other cluster,
    their mean. Without its checks of the whole matrix and its `np.bincount` per row:
    ~10 ms a labelling of 2,000 points, not ~35."""

    def __init__(self, points: np.ndarray):
        self.points = points
        self.by_column: np.ndarray | None = None

    def distances(self) -> np.ndarray:
        """The transpose of the distance matrix `silhouette_score` reads, computed when
        first asked: made transposed rather than transposed after, where sklearn makes
        it in one chunk of float64.

        Those distances are `euclidean_distances(X, X)`'s: d[i, j] = sqrt(max(0, (-2 g[i, j]
        + n[i]) + n[j])), g = X @ X.T, n the squared row norms, the diagonal 0. numpy
        makes the product of a matrix with its own transpose by BLAS syrk, one triangle
        mirrored: g is symmetric to the bit, so the transpose's [j, i] is (-2 g[j, i] +
        n[i]) + n[j], the same float operations on the same operands, done in place over
        g (real1M's 2,000 points: 0.023 CPU s, not 0.039 for the matrix and its transposed
        copy; tests/models/test_child_path.py holds it to sklearn's matrix, bit for bit)."""
        if self.by_column is None:
            import sklearn
            from sklearn.utils.extmath import row_norms

            points, n = self.points, len(self.points)
            # `pairwise_distances_chunked`'s rows a chunk (each row 8 n bytes).
            one_chunk = sklearn.get_config()["working_memory"] * 2**20 // (8 * n) >= n
            if not (one_chunk and points.dtype == np.float64 and points.flags.c_contiguous):
                return self._by_sklearn()
            by_column = points @ points.T
            by_column *= -2
            norms = row_norms(points, squared=True)
            by_column += norms  # [j, i] is given n[i] first, as d[i, j] its row's norm
            by_column += norms[:, None]
            np.maximum(by_column, 0, out=by_column)
            np.fill_diagonal(by_column, 0)
            self.by_column = np.sqrt(by_column, out=by_column)
        return self.by_column

    def _by_sklearn(self) -> np.ndarray:
        """The transposed matrix from sklearn's chunks (more than ~11,500 points, or
        points not C-ordered float64)."""
        from sklearn.metrics import pairwise_distances_chunked

        chunks = list(pairwise_distances_chunked(self.points, metric="euclidean"))
        distances = chunks[0] if len(chunks) == 1 else np.vstack(chunks)
        self.by_column = np.ascontiguousarray(distances.T)
        return self.by_column

    def __call__(self, labels: np.ndarray) -> float:
        by_column = self.distances()
        classes, codes = np.unique(labels, return_inverse=True)  # (its LabelEncoder's)
        n, k = len(codes), len(classes)
        if not 2 <= k <= n - 1:
            raise ValueError(f"Number of labels is {k}. Valid values are 2 to n_samples - 1")
        sizes = np.bincount(codes)
        by_cluster = np.zeros((k, n))
        for row, code in zip(by_column, codes.tolist(), strict=True):
            by_cluster[code] += row  # [c, i]: i's distances to c, summed in the points' order
        cluster_distances = np.ascontiguousarray(by_cluster.T)
        own = (np.arange(n), codes)
        intra = cluster_distances[own]
        cluster_distances[own] = np.inf
        cluster_distances /= sizes
        inter = cluster_distances.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            intra /= (sizes - 1).take(codes, mode="clip")
            samples = inter - intra
            samples /= np.maximum(intra, inter)
        return float(np.mean(np.nan_to_num(samples)))


def nearest(
    features: np.ndarray | sparse.spmatrix | SessionFeatures, centres: np.ndarray
) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of each row, in chunks of rows."""
    return nearest_each(features, {0: centres})[0]


def nearest_each(
    features: np.ndarray | sparse.spmatrix | SessionFeatures, centres: dict[int, np.ndarray]
) -> dict[int, np.ndarray]:
    """`nearest(features, c)` for each set of centres c, in one pass over chunks of rows
    (of a CSR matrix: views of its arrays, not copies; of `SessionFeatures`: made for the
    chunk)."""
    from scipy import sparse

    matrix: Any = features
    n = matrix.shape[0]
    out = {key: np.empty(n, dtype=np.int64) for key in centres}
    squares = {key: (c**2).sum(axis=1) for key, c in centres.items()}
    made = isinstance(matrix, SessionFeatures)
    csr = not made and sparse.issparse(matrix) and matrix.format == "csr"
    for lo in range(0, n, _ASSIGN_CHUNK):
        hi = min(lo + _ASSIGN_CHUNK, n)
        if made:
            rows = matrix.rows(lo, hi)
        elif csr:
            a, b = matrix.indptr[lo], matrix.indptr[hi]
            rows = sparse.csr_matrix(
                (matrix.data[a:b], matrix.indices[a:b], matrix.indptr[lo : hi + 1] - a),
                shape=(hi - lo, matrix.shape[1]),
            )
        else:
            rows = matrix[lo:hi]
        for key, c in centres.items():
            dots = np.asarray(rows @ c.T)
            out[key][lo:hi] = np.argmin(squares[key] - 2 * dots, axis=1)
    return out


def fit_behaviors(
    sessions: pd.DataFrame,
    seed: int = 0,
    max_behaviors: int = MAX_BEHAVIORS,
    sample: int = CLUSTER_SAMPLE_SESSIONS,
    censored: Censoring | None = None,
    meanwhile: Callable[[], object] | None = None,
    clustered: Callable[[], object] | None = None,
) -> list[Behavior]:
    """Behaviors of a sessionized frame with an `endpoint` column, largest first;
    clustering as `choose_clusters` (on at most `sample` sessions). Sessions `censored`
    at the capture's start give no entry, at its end no END (session_shape.py).
    `meanwhile` is called once, while the k-means fits run (`choose_clusters`);
    `clustered` once the clusters are chosen and what only they read let go."""

    if sessions.empty:
        if meanwhile is not None:
            meanwhile()
        return []
    paths = SessionPaths.of(sessions)
    n = len(paths.length)
    no = np.zeros(n, dtype=bool)
    at_start = censored.start if censored is not None else no
    at_end = censored.end if censored is not None else no
    pairs = Pairs.of(paths)
    pauses = Pauses.of(paths, pairs)
    tempos = pauses.tempo
    features = SessionFeatures(paths, pairs, _tempo_feature(tempos)[:, 0])
    # What needs no labels, beside the fits (on two cores): the pauses' sums, the caller's.
    beside: list[np.ndarray] = []
    while_fitting = partial(_sums_then, beside, pauses, paths, meanwhile)
    labels = choose_clusters(features, seed, max_behaviors, sample, while_fitting)
    del features, while_fitting
    if clustered is not None:
        clustered()
    (pause_sums,) = beside
    moves = _Moves.of(paths, pairs, pauses, labels, at_start, at_end)
    del pauses
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


def _sums_then(
    found: list[np.ndarray],
    pauses: Pauses,
    paths: SessionPaths,
    then: Callable[[], object] | None,
) -> None:
    """Each session's sum of pauses into `found`, then `then`."""
    found.append(pauses.sums(paths))
    if then is not None:
        then()


def _tempo_feature(tempos: np.ndarray) -> np.ndarray:
    """log tempo, standardised and weighted by TEMPO_WEIGHT, as one more clustering column
    (0 for sessions without pauses): fast scripts and slow readers become apart."""
    logs = np.log(np.asarray(tempos, dtype=float))
    finite = np.isfinite(logs)
    column = np.zeros(len(logs))
    if finite.sum() >= 2 and np.std(logs[finite]) > 0:
        column[finite] = (logs[finite] - np.mean(logs[finite])) / np.std(logs[finite])
    return (TEMPO_WEIGHT * column)[:, None]


@dataclass
class _Moves:
    """Every behavior's entries, transitions and pauses, counted over arrays: a cell
    (behavior × columns + column) is a behavior's transition (`Pairs`: its (from, to))."""

    width: int
    labels: list[str]
    pairs: np.ndarray
    """Per column, its (from × width + to) code."""
    entries: np.ndarray
    """(behavior, endpoint) → sessions entering there."""
    counts: np.ndarray
    """(behavior, column) → its transitions (a session censored at the end has no END)."""
    sizes: np.ndarray
    """Per cell, its pauses."""
    quantiles: dict[int, np.ndarray]
    """Per cell of MIN_THINK_SAMPLES pauses or more, their QUANTILE_POINTS quantiles."""
    rare: tuple[np.ndarray, np.ndarray]
    """The pauses of the other cells with pauses (their cells, their values)."""
    pauses: np.ndarray
    """Every pause inside a session, divided by its session's tempo (any order)."""
    fresh: np.ndarray
    """Per behavior, whether some session of it is not censored at the start."""
    trace_think: ThinkTime | None = None

    @classmethod
    def of(
        cls,
        paths: SessionPaths,
        pairs: Pairs,
        pauses: Pauses,
        labels: np.ndarray,
        at_start: np.ndarray,
        at_end: np.ndarray,
    ) -> _Moves:
        width, first = len(paths.labels), paths.first
        k, columns = int(labels.max()) + 1, len(pairs.codes)
        fresh = np.bincount(labels, weights=~at_start, minlength=k) > 0
        entered = ~(at_start & fresh[labels])
        entries = np.bincount(
            labels[entered] * width + paths.step[first[entered]], minlength=k * width
        ).reshape(k, width)
        # A behavior's transitions: its sessions' transitions, less the END of its sessions
        # censored at the end.
        moved = _transitions_by_label(paths, pairs, labels, k)
        cut = np.flatnonzero(at_end)
        moved -= np.bincount(
            labels[cut] * columns + pairs.end_column[cut], minlength=k * columns
        ).reshape(k, columns)
        # Per pause, its cell in the narrowest type (real10M: 9 M of them).
        cell = np.repeat((labels * columns).astype(column_type(k * columns)), pauses.per_session)
        cell += pauses.column
        scaled = pauses.scaled()
        finite = np.isfinite(scaled)
        if not finite.all():  # a pause the tempo made overflow is no pause
            cell, scaled = cell[finite], scaled[finite]
        del finite
        sizes = chunked_bincount(cell, k * columns)
        frequent = np.flatnonzero(sizes >= MIN_THINK_SAMPLES)
        rare = (sizes > 0) & (sizes < MIN_THINK_SAMPLES)
        picked = np.flatnonzero(rare[cell])
        quantiles = _quantiles(scaled, cell, frequent, sizes)
        return cls(
            width=width,
            labels=paths.labels,
            pairs=pairs.codes,
            entries=entries,
            counts=moved,
            sizes=sizes,
            quantiles=dict(zip(frequent.tolist(), quantiles, strict=True)),
            rare=(cell[picked], scaled[picked]),
            pauses=scaled,
            fresh=fresh,
        )

    def chain(
        self, name: str, label: int, lengths: np.ndarray, total: int, tempos: np.ndarray
    ) -> Behavior:
        """The chain of behavior `label`: its sessions' `lengths` and `tempos`, of `total`
        sessions in all."""
        width, labels, end = self.width, self.labels, self.labels.index(END)
        columns = len(self.pairs)
        row = self.counts[label]
        moved = np.flatnonzero((row > 0) & (self.pairs // width != labels.index("START")))
        counts, a, b = row[moved], self.pairs[moved] // width, self.pairs[moved] % width
        cells = label * columns + moved
        n_pauses = self.sizes[cells]
        # A rare transition borrows the pauses of the other rare ones, not those of the
        # frequent ones (a page's asset fetches, milliseconds apart, would swamp a person's
        # rare moves between pages: a mean think 16 % short on a staging capture).
        rare = (n_pauses > 0) & (n_pauses < MIN_THINK_SAMPLES)
        rare_cell, rare_pauses = self.rare
        mine = (rare_cell >= label * columns) & (rare_cell < (label + 1) * columns)
        behavior_pauses = rare_pauses[mine]
        fallback: dict[int, ThinkTime] = {}
        think: dict[str, dict[str, ThinkTime]] = {}
        for i in np.flatnonzero(b != end).tolist():
            if n_pauses[i] >= MIN_THINK_SAMPLES:
                q = self.quantiles[int(cells[i])]
                found = ThinkTime(
                    tuple(sig(float(v), 4) for v in q), int(n_pauses[i]), "transition"
                )
            else:
                if b[i] not in fallback:
                    into = cells[rare & (b == b[i])]
                    target = rare_pauses[np.isin(rare_cell, into)]
                    fallback[b[i]] = (
                        _think_time([("endpoint", target), ("behavior", behavior_pauses)])
                        or self.trace()
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

    def trace(self) -> ThinkTime:
        """The quantiles of every pause of the trace (computed once, when first asked)."""
        if self.trace_think is None:
            self.trace_think = _think_time([("trace", self.pauses)]) or _NO_THINK
        return self.trace_think


def _transitions_by_label(
    paths: SessionPaths, pairs: Pairs, labels: np.ndarray, k: int
) -> np.ndarray:
    """(label, column) → the transitions of the sessions of that label (their requests'
    and their ENDs), counted SESSION_CHUNK sessions at a time (no label per request)."""
    columns = len(pairs.codes)
    bins = k * columns
    base = labels.astype(np.int64) * columns
    moved = np.bincount(base[paths.length > 0] + pairs.end_column, minlength=bins)
    n, bounds = len(paths.length), paths.bounds
    chunk = SESSION_CHUNK if bins <= 1 << 16 else max(n, 1)  # (many bins: one count)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        cells = np.repeat(base[lo:hi], paths.length[lo:hi])
        cells += pairs.column[bounds[lo] : bounds[hi]]
        moved += np.bincount(cells, minlength=bins)
    return moved.reshape(k, columns)


def _quantiles(
    values: np.ndarray, group: np.ndarray, wanted: np.ndarray, sizes: np.ndarray
) -> list[np.ndarray]:
    """np.quantile(values[group == g], QUANTILE_POINTS) for each g in `wanted` (`sizes`:
    every group's count of values)."""
    found = group_quantiles(values, group, len(sizes), wanted, QUANTILE_POINTS, sizes)
    if found is not None:
        return list(found)
    order = np.argsort(group, kind="stable")  # values with a sign bit: partitions
    bounds = np.searchsorted(group[order], np.stack([wanted, wanted + 1]))
    return [np.quantile(values[order[i:j]], QUANTILE_POINTS) for i, j in bounds.T.tolist()]


def _tempo(tempos: np.ndarray) -> ThinkTime:
    if not len(tempos):
        return ThinkTime(tuple(NO_PAUSE_TEMPO for _ in QUANTILE_POINTS), 0, "none")
    q = _quantile_points(tempos)
    return ThinkTime(tuple(sig(float(v), 4) for v in q), len(tempos), "sessions")


def _quantile_points(values: np.ndarray) -> np.ndarray:
    """np.quantile(values, QUANTILE_POINTS), bit for bit: by counts over value ranges
    (`group_quantiles`, one group) for many values (the trace's pauses at real1M: ~8 ms,
    not np.quantile's ~30 ms of partitions), else (or for values with a sign bit) numpy's."""
    if len(values) >= _COUNTED_QUANTILES:
        one = np.zeros(len(values), dtype=np.uint8)
        found = group_quantiles(values, one, 1, np.zeros(1, np.int64), QUANTILE_POINTS)
        if found is not None:
            return np.asarray(found[0])
    return np.asarray(np.quantile(values, QUANTILE_POINTS))


_NO_THINK = ThinkTime(tuple(0.0 for _ in QUANTILE_POINTS), 0, "none")


def _think_time(levels: list[tuple[str, np.ndarray]]) -> ThinkTime | None:
    """The quantiles of the first level with MIN_THINK_SAMPLES pauses (the trace's: any),
    None without one."""
    for level, values in levels:
        if len(values) >= MIN_THINK_SAMPLES or (level == "trace" and len(values)):
            q = _quantile_points(values)
            return ThinkTime(tuple(sig(float(v), 4) for v in q), len(values), level)
    return None


def _probabilities(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: sig(n / total) for k, n in sorted(counts.items())}
