"""The array-based behavior fit gives the same behaviors, bit for bit, as the per-session
Python it replaced (kept here, in its plainest form, as the reference)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from tracereplay.models import behavior_paths, behaviors
from tracereplay.models.behavior_paths import TEMPO_SHRINK, group_sums
from tracereplay.models.behaviors import (
    END,
    MIN_THINK_SAMPLES,
    NO_PAUSE_TEMPO,
    QUANTILE_POINTS,
    Behavior,
    ThinkTime,
    _tempo_feature,
    choose_clusters,
    fit_behaviors,
    hellinger,
    session_features,
    sig,
    transition_features,
)
from tracereplay.models.session_shape import Censoring, SessionTable, censoring
from tracereplay.models.sessions import sessionize

Path = tuple[list[str], list[float]]


def reference_behaviors(sessions: pd.DataFrame, censored: Censoring | None) -> list[Behavior]:
    """fit_behaviors as it was: Python lists per session, loops per request."""
    ids = sessions["session_id"].to_numpy()
    order = np.argsort(ids, kind="stable")
    endpoints = sessions["endpoint"].to_numpy(object)[order].tolist()
    thinks = sessions["think_s"].to_numpy(float)[order].tolist()
    cuts = [0, *(np.flatnonzero(np.diff(ids[order]) != 0) + 1).tolist(), len(order)]
    paths: list[Path] = [(endpoints[a:b], thinks[a:b]) for a, b in pairwise(cuts)]
    no = np.zeros(len(paths), dtype=bool)
    at_start = censored.start if censored is not None else no
    at_end = censored.end if censored is not None else no
    features = reference_features([p for p, _ in paths])
    pause_sums = [sum(t if np.isfinite(t) else 0.0 for t in ts) for _, ts in paths]
    paths, tempos = reference_tempo(paths)
    tempo_column = _tempo_feature(np.asarray(tempos))
    labels = choose_clusters(sparse.csr_matrix(np.hstack([features, tempo_column])), 0)
    all_pauses = [t for _, ts in paths for t in ts[1:] if np.isfinite(t)]
    order_k = sorted(set(labels.tolist()), key=lambda k: (-int((labels == k).sum()), k))
    out = []
    for rank, label in enumerate(order_k):
        index = np.flatnonzero(labels == label)
        members = [paths[i] for i in index]
        member_tempos = [tempos[i] for i in index if np.isfinite(tempos[i])]
        edges = (at_start[index], at_end[index])
        chain = reference_chain(f"b{rank + 1}", members, len(paths), all_pauses, member_tempos,
                                edges)  # fmt: skip
        table = SessionTable.fit(
            np.array([len(p) for p, _ in members]),
            np.asarray(tempos, dtype=float)[index],
            edges[0] | edges[1],
            0,
            np.asarray(pause_sums)[index],
        )
        out.append(replace(chain, shape=table))
    return out


def reference_features(paths: list[list[str]]) -> np.ndarray:
    """Per session, the square roots of its transitions' shares (START→first, a→b, last→END)
    over the sorted transitions."""
    counts = [Counter(pairwise(["START", *path, END])) for path in paths]
    vocab = sorted(set().union(*counts))
    dense = np.array([[c[pair] for pair in vocab] for c in counts], dtype=float)
    return np.sqrt(dense / dense.sum(axis=1, keepdims=True))


def reference_tempo(paths: list[Path]) -> tuple[list[Path], list[float]]:
    by_transition: dict[tuple[str, str], list[float]] = {}
    for path, thinks in paths:
        for a, b, t in zip(path[:-1], path[1:], thinks[1:], strict=True):
            if np.isfinite(t) and t > 0:
                by_transition.setdefault((a, b), []).append(t)
    medians = {k: float(np.median(v)) for k, v in by_transition.items()}
    scaled: list[Path] = []
    tempos: list[float] = []
    for path, thinks in paths:
        logs = [np.log(t / medians[(a, b)])
                for a, b, t in zip(path[:-1], path[1:], thinks[1:], strict=True)
                if np.isfinite(t) and t > 0]  # fmt: skip
        if not logs:
            scaled.append((path, thinks))
            tempos.append(float("nan"))
            continue
        tempo = float(np.exp(np.sum(logs) / (len(logs) + TEMPO_SHRINK)))
        scaled.append((path, [t / tempo if np.isfinite(t) else t for t in thinks]))
        tempos.append(tempo)
    return scaled, tempos


def reference_chain(
    name: str,
    members: list[Path],
    total: int,
    trace_pauses: list[float],
    tempos: list[float],
    edges: tuple[np.ndarray, np.ndarray],
) -> Behavior:
    entry: Counter[str] = Counter()
    moves: dict[str, Counter[str]] = {}
    pauses: dict[tuple[str, str], list[float]] = {}
    fresh = not edges[0].all()
    for (path, thinks), at_start, at_end in zip(members, *edges, strict=True):
        if not (at_start and fresh):
            entry[path[0]] += 1
        steps = path if at_end else [*path, END]
        for i, (a, b) in enumerate(pairwise(steps)):
            moves.setdefault(a, Counter())[b] += 1
            if b != END and np.isfinite(thinks[i + 1]):
                pauses.setdefault((a, b), []).append(float(thinks[i + 1]))
    rare = {k: v for k, v in pauses.items() if len(v) < MIN_THINK_SAMPLES}
    by_target: dict[str, list[float]] = {}
    for (_, b), values in rare.items():
        by_target.setdefault(b, []).extend(values)
    behavior_pauses = [v for values in rare.values() for v in values]
    think: dict[str, dict[str, ThinkTime]] = {}
    for a, tos in moves.items():
        for b in tos:
            if b != END:
                think.setdefault(a, {})[b] = reference_think(
                    [("transition", pauses.get((a, b), [])), ("endpoint", by_target.get(b, [])),
                     ("behavior", behavior_pauses), ("trace", trace_pauses)]
                )  # fmt: skip

    def probabilities(counts: Counter[str]) -> dict[str, float]:
        return {k: sig(n / sum(counts.values())) for k, n in sorted(counts.items())}

    if tempos:
        q = np.quantile(np.asarray(tempos), QUANTILE_POINTS)
        tempo = ThinkTime(tuple(sig(float(v), 4) for v in q), len(tempos), "sessions")
    else:
        tempo = ThinkTime(tuple(NO_PAUSE_TEMPO for _ in QUANTILE_POINTS), 0, "none")
    return Behavior(
        name=name,
        share=sig(len(members) / total),
        sessions=len(members),
        entry=probabilities(entry),
        transitions={a: probabilities(tos) for a, tos in sorted(moves.items())},
        think=think,
        mean_length=sig(float(np.mean([len(p) for p, _ in members]))),
        tempo=tempo,
    )


def reference_think(levels: list[tuple[str, list[float]]]) -> ThinkTime:
    for level, values in levels:
        if len(values) >= MIN_THINK_SAMPLES or (level == "trace" and values):
            q = np.quantile(np.asarray(values), QUANTILE_POINTS)
            return ThinkTime(tuple(sig(float(v), 4) for v in q), len(values), level)
    return ThinkTime(tuple(0.0 for _ in QUANTILE_POINTS), 0, "none")


def random_sessions(seed: int) -> pd.DataFrame:
    """Two kinds of session (a browsing one, a script's), lengths 1..300 (numpy sums 8 and
    more values by pairwise blocks, over 128 by halves), pauses that are zero, unknown or
    lognormal, rare transitions among frequent ones, a few unseen endpoints."""
    rng = np.random.default_rng(seed)
    pages = [f"GET /p{i}" for i in range(12)] + ["POST /login", "DELETE /x"]
    rows = []
    t0 = 0.0
    for s in range(260):
        script = s % 3 == 0
        n = int(
            rng.choice(
                [1, 2, 5, 9, 17, 40, 130, 300], p=[0.2, 0.2, 0.2, 0.15, 0.1, 0.1, 0.03, 0.02]
            )
        )
        t = t0 + float(rng.uniform(0, 5))
        t0 += float(rng.exponential(20))
        for j in range(n):
            page = pages[j % 3] if script else pages[int(rng.zipf(1.6)) % len(pages)]
            duration = float("nan") if rng.random() < 0.05 else float(rng.uniform(0, 400))
            rows.append((f"k{s}", t, page, duration))
            gap = 0.0 if rng.random() < 0.1 else float(rng.lognormal(-2 if script else 1, 1))
            t += gap + (0.0 if np.isnan(duration) else duration / 1000)
    frame = pd.DataFrame(rows, columns=["session_key", "t_s", "endpoint", "duration_ms"])
    return sessionize(frame, 1800)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("censor", [False, True])
def test_fit_behaviors_equals_the_per_session_reference(
    seed: int, censor: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sessions worked 7 at a time (a chunk boundary inside the data) or all at once.
    monkeypatch.setattr(behaviors, "SESSION_CHUNK", 7 if seed % 2 else 1 << 13)
    monkeypatch.setattr(behavior_paths, "SESSION_CHUNK", 7 if seed % 2 else 1 << 13)
    sessions = random_sessions(seed)
    edges = censoring(sessions, 60.0) if censor else None
    if censor:
        assert edges is not None and edges.start.any() and edges.end.any()
    expected = [b.to_json() for b in reference_behaviors(sessions, edges)]
    as_category = sessions.assign(endpoint=sessions["endpoint"].astype("category"))
    for frame in (sessions, as_category):
        got = [b.to_json() for b in fit_behaviors(frame, censored=edges)]
        assert got == expected
    sources = {t["from"] for b in expected for tos in b["think_s"].values() for t in tos.values()}
    assert {"transition", "endpoint"} <= sources  # both the direct and the pooled levels


def test_tempo_equals_the_reference_bit_for_bit() -> None:
    sessions = random_sessions(4)
    paths = behavior_paths.SessionPaths.of(sessions)
    tempo, scaled = behavior_paths.session_tempo(paths)
    steps = np.asarray(paths.labels, dtype=object)[paths.step].tolist()
    cuts = np.concatenate([paths.first, [len(steps)]]).tolist()
    lists = [(steps[a:b], paths.think_s[a:b].tolist()) for a, b in pairwise(cuts)]
    ref_paths, ref_tempo = reference_tempo(lists)
    assert np.array_equal(tempo, np.asarray(ref_tempo), equal_nan=True)
    ref_scaled = np.concatenate([np.asarray(t) for _, t in ref_paths])
    assert np.array_equal(scaled, ref_scaled, equal_nan=True)
    assert (paths.length > 128).any() and np.isnan(tempo).any()


@pytest.mark.parametrize("chunk", [1, 7, 1 << 13])
def test_tempo_of_every_pause_positive_equals_the_reference(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request but the first a positive pause: the logs summed in the requests'
    layout (`_log_ratio_sums`, sessions `chunk` at a time) are numpy's sums all the same."""
    monkeypatch.setattr(behavior_paths, "SESSION_CHUNK", chunk)
    paths = behavior_paths.SessionPaths.of(random_sessions(4))
    rng = np.random.default_rng(4)
    think = rng.lognormal(0, 2, len(paths.think_s))
    think[paths.first] = np.nan
    paths = replace(paths, think_s=think)
    tempo, scaled = behavior_paths.session_tempo(paths)
    steps = np.asarray(paths.labels, dtype=object)[paths.step].tolist()
    cuts = np.concatenate([paths.first, [len(steps)]]).tolist()
    lists = [(steps[a:b], think[a:b].tolist()) for a, b in pairwise(cuts)]
    ref_paths, ref_tempo = reference_tempo(lists)
    assert np.array_equal(tempo, np.asarray(ref_tempo), equal_nan=True)
    assert np.array_equal(scaled, np.concatenate([t for _, t in ref_paths]), equal_nan=True)
    assert (paths.length > 128).any() and (paths.length == 1).any()


def test_group_sums_are_numpys_sums_not_a_running_sum() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.choice([0, 1, 3, 8, 9, 16, 129, 257, 1000], size=400)
    values = rng.normal(size=int(sizes.sum())) * rng.lognormal(0, 4, size=int(sizes.sum()))
    starts = np.cumsum(sizes) - sizes
    expected = np.array(
        [np.sum(list(values[a : a + n])) for a, n in zip(starts, sizes, strict=True)]
    )
    assert np.array_equal(group_sums(values, sizes), expected)
    used = sizes > 0
    running = np.add.reduceat(values, starts[used])  # what this must not be
    assert not np.array_equal(running, expected[used])


@pytest.mark.parametrize("size", [50, 1 << 17, 1 << 23])  # radix / bincount, merge / unique
def test_counted_and_grouped_agree_whatever_the_code_range(size: int) -> None:
    codes = np.random.default_rng(size).integers(0, size, 5000) // 7 * 7
    distinct, counts = behavior_paths.counted(codes, size)
    expected, how_often = np.unique(codes, return_counts=True)
    assert np.array_equal(distinct, expected) and np.array_equal(counts, how_often)
    order = behavior_paths.grouped(codes, size)
    assert np.array_equal(order, np.argsort(codes, kind="stable"))


def test_transition_counts_are_the_per_session_counts() -> None:
    sessions = random_sessions(5)
    paths = behavior_paths.SessionPaths.of(sessions)
    steps = np.asarray(paths.labels, dtype=object)[paths.step].tolist()
    cuts = np.concatenate([paths.first, [len(steps)]]).tolist()
    lists = [steps[a:b] for a, b in pairwise(cuts)]
    counts, vocab = behavior_paths.transition_counts(paths)
    expected = [Counter(pairwise(["START", *path, END])) for path in lists]
    assert vocab == sorted(set().union(*expected))
    assert np.array_equal(counts.toarray(), [[c[p] for p in vocab] for c in expected])
    assert counts.has_canonical_format  # each row's columns sorted, none repeated
    features, _ = transition_features(lists)
    assert np.array_equal(features, reference_features(lists))


def test_session_features_are_hellinger_and_the_column_as_hstack_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions = random_sessions(6)
    paths = behavior_paths.SessionPaths.of(sessions)
    pairs = behavior_paths.Pairs.of(paths)
    rng = np.random.default_rng(2)
    n = len(paths.length)
    column = rng.normal(size=n) * (rng.random(n) < 0.6)  # zeros: no entry
    monkeypatch.setattr(behaviors, "SESSION_CHUNK", 7)  # rows in chunks, one cut mid-way
    features = session_features(paths, pairs, column)
    plain, _ = behavior_paths.transition_counts(paths)
    expected = sparse.hstack([hellinger(plain), column[:, None]], format="csr")
    assert features.shape == expected.shape and features.nnz == expected.nnz
    assert np.array_equal(features.indptr, expected.indptr)
    assert np.array_equal(features.indices, expected.indices)
    assert np.array_equal(features.data, expected.data)
    counts = pairs.counts(paths, column)
    assert np.array_equal(counts.toarray(), np.hstack([plain.toarray(), column[:, None]]))


def reference_choose_clusters(features: sparse.csr_matrix, seed: int, sample: int) -> np.ndarray:
    """choose_clusters as it was: every session assigned for every K, then the score."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    n = features.shape[0]
    index = np.sort(np.random.default_rng(seed).choice(n, sample, False))
    points = features[index].toarray()
    best = (0.25, np.zeros(n, dtype=int))
    with threadpool_limits(limits=1):
        for k in range(2, min(6, n // 15, len(np.unique(points, axis=0))) + 1):
            model = KMeans(n_clusters=k, n_init=behaviors.KMEANS_STARTS, random_state=seed).fit(
                points
            )
            centres = model.cluster_centers_
            dots = np.asarray(features @ centres.T)
            assigned = np.argmin((centres**2).sum(axis=1) - 2 * dots, axis=1)
            if np.bincount(assigned, minlength=k).min() < 15:
                continue
            score = float(silhouette_score(points, model.labels_, random_state=seed))
            if score > best[0]:
                best = (score, assigned.astype(int))
    return best[1]


@pytest.mark.parametrize(("seed", "few"), [(0, False), (1, False), (2, True)])
def test_sampled_clusters_are_those_of_the_k_sweep_as_it_was(
    seed: int, few: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The silhouette first on a sample (the assignment only for a K it would choose), on
    distances computed once, the assignment in chunks of rows, distinct rows counted by
    their bytes (`few`: 4 distinct rows, so K stops at 4): the same labels."""
    monkeypatch.setattr(behaviors, "_ASSIGN_CHUNK", 128)
    rng = np.random.default_rng(seed)
    shapes = [["/a", "/b", "/a"], ["/x", "/y", "/y", "/z"], ["/a", "/x"], ["/q"]]
    picks = rng.choice(4, size=1500, p=[0.4, 0.3, 0.2, 0.1])
    paths = [shapes[k] + ["/b"] * (0 if few else int(rng.integers(0, 4))) for k in picks]
    counts, _ = behavior_paths.transition_counts(behavior_paths.SessionPaths.of_lists(paths))
    tempo = np.zeros((1500, 1)) if few else rng.normal(size=(1500, 1))
    features = sparse.hstack([hellinger(counts), tempo], format="csr")
    got = choose_clusters(features, seed, sample=400)
    assert np.array_equal(got, reference_choose_clusters(features, seed, 400))
    assert len(np.unique(got)) >= 2


@pytest.mark.parametrize("case", ["blobs", "ties", "one_alone", "gaps", "two"])
def test_the_silhouette_is_sklearns_to_the_bit(case: str) -> None:
    """`_Silhouette` (distances once, sums by cluster in the points' order) gives
    `silhouette_score`'s float for every labelling: clusters apart or mixed, repeated
    points (zero distances), a cluster of one (its score 0), labels with gaps."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(len(case))
    points = rng.normal(size=(700, 9)) + np.repeat(rng.normal(scale=3, size=(7, 9)), 100, 0)
    if case == "ties":
        points = points[rng.integers(0, 40, size=700)]
    silhouette = behaviors._Silhouette(points)
    for k in (2, 3, 6):
        labels = rng.integers(0, k, size=700)
        if case == "blobs":
            labels = np.repeat(np.arange(7), 100) % k
        if case == "one_alone":
            labels[labels == 0] = 1
            labels[5] = 0
        if case == "gaps":
            labels = labels * 3 + 2
        if case == "two":
            labels = (points[:, 0] > 0).astype(int)
        assert silhouette(labels) == float(silhouette_score(points, labels))


@pytest.mark.parametrize("case", ["spread", "ties", "zeros", "signed", "few"])
def test_the_trace_and_tempo_quantiles_are_numpys(case: str) -> None:
    """`_quantile_points` (counts over value ranges for many values) is np.quantile's
    QUANTILE_POINTS to the bit: values spread or tied, zeros among them, a sign bit (then
    numpy's own), fewer values than the counting takes."""
    rng = np.random.default_rng(3)
    values = rng.lognormal(size=50_000)
    if case == "ties":
        values = np.round(values, 1)
    if case == "zeros":
        values[rng.random(50_000) < 0.3] = 0.0
    if case == "signed":
        values[7] = -0.0
    if case == "few":
        values = values[:100]
    got = behaviors._quantile_points(values)
    assert np.array_equal(got, np.quantile(values, QUANTILE_POINTS))


def test_session_bounds_are_each_sessions_first_request_then_the_end() -> None:
    """`SessionPaths.bounds` (what the chunked passes slice the requests by): each session's
    first request, then the requests' count; an empty session starts where the next does."""
    paths = behavior_paths.SessionPaths.of_lists([["/a", "/b"], [], ["/c"], ["/a"] * 4, []])
    expected = np.append(np.cumsum(paths.length) - paths.length, len(paths.step))
    assert np.array_equal(paths.bounds, expected) and paths.bounds.dtype == np.int64
    assert np.array_equal(paths.first, expected[:-1])
    assert behavior_paths.SessionPaths.of_lists([]).bounds.tolist() == [0]


def test_negative_and_zero_pauses_fit_as_the_reference() -> None:
    """Overlapping requests give negative pauses: no tempo from them, and their quantiles
    by partitions (the counts by value ranges refuse a sign bit)."""
    sessions = random_sessions(7)
    rng = np.random.default_rng(7)
    think = sessions["think_s"].to_numpy(float).copy()
    flip = rng.random(len(think)) < 0.1
    think[flip] = -think[flip]
    sessions["think_s"] = think
    expected = [b.to_json() for b in reference_behaviors(sessions, None)]
    assert [b.to_json() for b in fit_behaviors(sessions)] == expected


def test_pause_sums_are_bincounts_of_every_value_nan_as_0(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A running sum by session of np.nan_to_num(think_s): of the pauses alone when every
    other value is NaN, else of every value (a NaN pause, a first request's finite think,
    an inf)."""
    sessions = random_sessions(8)
    paths = behavior_paths.SessionPaths.of(sessions)
    first = np.zeros(len(paths.think_s), dtype=bool)
    first[paths.first] = True
    # Full mantissas (the trace's pauses are differences of times: sums often exact).
    rng = np.random.default_rng(8)
    every = np.where(first, np.nan, rng.lognormal(0, 2, len(first)))  # NaN: firsts
    at = np.arange(len(every))
    variants = {
        "pauses alone": every,
        "a NaN pause": np.where(np.isnan(paths.think_s), np.nan, every),
        "a first's think": np.where(at % 97 == 0, 2.5, every),
        "an inf": np.where(at % 89 == 5, np.inf, every),
    }
    for (name, think), chunk in zip(variants.items(), [1, 7, 1 << 13, 7], strict=True):
        monkeypatch.setattr(behavior_paths, "SESSION_CHUNK", chunk)
        changed = replace(paths, think_s=think)
        pauses = behavior_paths.Pauses.of(changed, behavior_paths.Pairs.of(changed))
        expected = np.bincount(changed.session, weights=np.nan_to_num(think, nan=0.0))
        assert np.array_equal(pauses.sums(changed), expected), name


def test_the_fits_on_threads_are_the_fits_one_after_the_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_Fits` on threads (forced, as where two cores are free) gives every K's labels and
    centres of `KMeans(...).fit` in this thread, to the bit: each fit is limited to one
    OpenMP thread on its own thread (its partial sums: in 2,000 points' 8 chunks)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import ThreadpoolController, threadpool_limits

    rng = np.random.default_rng(11)
    points = rng.normal(size=(2000, 12)) + np.repeat(rng.normal(scale=2, size=(8, 12)), 250, 0)
    monkeypatch.setattr(behaviors, "_core_free", lambda: True)
    threads = ThreadpoolController()
    with threads.limit(limits=1), behaviors._Fits(points, 3, range(2, 7), threads) as fits:
        assert fits.beside
        got = {k: fits.result(k) for k in range(2, 7)}
    with threadpool_limits(limits=1):
        for k, (labels, centres) in got.items():
            model = KMeans(n_clusters=k, n_init=behaviors.KMEANS_STARTS, random_state=3).fit(points)
            assert np.array_equal(labels, model.labels_)
            assert np.array_equal(centres, model.cluster_centers_)


def sparse_blobs(rng: np.random.Generator, columns: int, clusters: int) -> np.ndarray:
    """2,000 rows like sessions' transition features: each cluster's few columns (8 of
    `columns`) nonzero in every row of it, 1-2 of the others now and then, unit length."""
    active = [rng.choice(columns, 8, replace=False) for _ in range(clusters)]
    points = np.zeros((2000, columns))
    for row, cluster in enumerate(rng.integers(0, clusters, 2000)):
        points[row, active[cluster]] = rng.random(8) + 0.5
        points[row, rng.integers(0, columns, 2)] += rng.random(2) * 0.2
    return points / np.linalg.norm(points, axis=1)[:, None]


def test_fit_input_is_csr_only_for_sparse_and_wide_rows() -> None:
    rng = np.random.default_rng(4)
    wide = sparse_blobs(rng, 166, 3)
    fitted = behaviors.fit_input(wide)
    assert sparse.issparse(fitted) and fitted.format == "csr"
    assert np.array_equal(fitted.toarray(), wide)
    narrow = wide[:, : behaviors.SPARSE_FIT_COLUMNS - 1]
    assert behaviors.fit_input(narrow) is narrow
    dense = wide + 0.01 * (rng.random(wide.shape) < 2 * behaviors.SPARSE_FIT_DENSITY)
    assert behaviors.fit_input(dense) is dense


def test_sparse_fits_are_sklearns_on_the_csr_rows_with_the_dense_fits_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On sparse rows, `_Fits` (on threads) gives `KMeans(...).fit` of their CSR matrix to
    the bit, and the clusters of the dense rows' fit: the same labels, centres equal to
    rounding (sklearn centres the dense rows on their mean first)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import ThreadpoolController, threadpool_limits

    points = sparse_blobs(np.random.default_rng(5), 166, 4)
    monkeypatch.setattr(behaviors, "_core_free", lambda: True)
    threads = ThreadpoolController()
    with threads.limit(limits=1), behaviors._Fits(points, 3, range(2, 7), threads) as fits:
        got = {k: fits.result(k) for k in range(2, 7)}
    with threadpool_limits(limits=1):
        for k, (labels, centres) in got.items():
            on_csr = KMeans(n_clusters=k, n_init=behaviors.KMEANS_STARTS, random_state=3).fit(
                sparse.csr_matrix(points)
            )
            assert np.array_equal(labels, on_csr.labels_)
            assert np.array_equal(centres, on_csr.cluster_centers_)
            dense = KMeans(n_clusters=k, n_init=behaviors.KMEANS_STARTS, random_state=3).fit(points)
            assert np.array_equal(labels, dense.labels_)
            assert np.allclose(centres, dense.cluster_centers_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 13])
def test_pauses_are_held_as_which_requests_and_scaled_in_place(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mem21: `Pauses` holds which requests are pauses (the sessions' think times and the
    pairs' columns themselves, not copies) and makes the pauses when asked; `scaled`
    divides them in place a chunk of sessions at a time: bit for bit the pauses over their
    sessions' tempos repeated (NaN tempo: 1), as often as asked."""
    monkeypatch.setattr(behavior_paths, "SESSION_CHUNK", chunk)
    sessions = random_sessions(9)
    paths = behavior_paths.SessionPaths.of(sessions)
    pairs = behavior_paths.Pairs.of(paths)
    pauses = behavior_paths.Pauses.of(paths, pairs)
    assert pauses.think is paths.think_s and pauses.columns is pairs.column
    within = np.isfinite(paths.think_s)
    within[paths.first] = False
    assert np.array_equal(pauses.pause, paths.think_s[within])
    assert np.array_equal(pauses.column, pairs.column[within])
    assert np.isnan(pauses.tempo).any() and not np.isnan(pauses.tempo).all()
    tempo = np.where(np.isnan(pauses.tempo), 1.0, pauses.tempo)
    want = paths.think_s[within] / np.repeat(tempo, pauses.per_session)
    assert np.array_equal(pauses.scaled(), want)
    assert np.array_equal(pauses.scaled(), want)  # the pauses themselves untouched
