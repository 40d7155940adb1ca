"""The clustering features made when rows are read (`SessionFeatures`: the sample's, then
every session's a chunk at a time) equal the matrix of every session to the bit, and the
K sweep on them chooses the labels it chose on that matrix, in one pass over the sessions
when no K is refused; the order statistics' 32-bit keys are the 64-bit ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import sparse

from tests.models.test_behaviors_vectorized import reference_choose_clusters
from tracereplay.models import behaviors, order_stats
from tracereplay.models.behavior_paths import Pairs, SessionPaths
from tracereplay.models.behaviors import SessionFeatures, choose_clusters, session_features


def paths_with_empty_sessions(seed: int, n: int = 400) -> SessionPaths:
    """Sessions of 0..30 requests (empty ones among them: no END, so `end_column` is not
    one per session) over a dozen endpoints."""
    rng = np.random.default_rng(seed)
    pages = [f"/p{i}" for i in range(12)]
    lists = [
        [pages[int(rng.zipf(1.5)) % len(pages)] for _ in range(int(rng.integers(0, 31)))]
        for _ in range(n)
    ]
    for i in rng.choice(n, 25, replace=False):
        lists[i] = []
    return SessionPaths.of_lists(lists)


def features_of(seed: int) -> tuple[SessionFeatures, sparse.csr_matrix]:
    paths = paths_with_empty_sessions(seed)
    pairs = Pairs.of(paths)
    rng = np.random.default_rng(seed + 10)
    n = len(paths.length)
    column = rng.normal(size=n) * (rng.random(n) < 0.7)  # zeros: no entry
    column[paths.length == 0] = 0.0  # (a sessionized trace has no empty session)
    return SessionFeatures(paths, pairs, column), session_features(paths, pairs, column)


def same_csr(a: sparse.csr_matrix, b: sparse.csr_matrix) -> None:
    assert a.shape == b.shape
    for name in ("indptr", "indices", "data"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.tobytes() == y.tobytes(), name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_and_taken_rows_are_the_matrix_rows_to_the_bit(seed: int) -> None:
    made, whole = features_of(seed)
    assert made.shape == whole.shape
    same_csr(made.matrix(), whole)
    n = whole.shape[0]
    for lo, hi in [(0, n), (0, 1), (17, 18), (5, 211), (300, n)]:
        same_csr(made.rows(lo, hi), whole[lo:hi])
    rng = np.random.default_rng(seed)
    for size in (1, 9, 200, n):
        chosen = np.sort(rng.choice(n, size, replace=False))
        same_csr(made.take(chosen), whole[chosen])
    empty = np.flatnonzero(made.paths.length == 0)
    same_csr(made.take(empty), whole[empty])  # rows of nothing


def blobs(seed: int) -> tuple[SessionFeatures, sparse.csr_matrix]:
    """Three kinds of session, told apart by their transitions and their tempo."""
    rng = np.random.default_rng(seed)
    shapes = [["/a", "/b", "/a"], ["/x", "/y", "/y", "/z"], ["/a", "/x"]]
    picks = rng.choice(3, size=1200, p=[0.5, 0.3, 0.2])
    lists = [shapes[k] + ["/b"] * int(rng.integers(0, 4)) for k in picks]
    paths = SessionPaths.of_lists(lists)
    pairs = Pairs.of(paths)
    column = picks * 1.5 + rng.normal(size=len(picks)) * 0.2
    return SessionFeatures(paths, pairs, column), session_features(paths, pairs, column)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_sweep_on_rows_made_when_read_chooses_the_matrix_labels(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(behaviors, "_ASSIGN_CHUNK", 100)  # chunks cut mid-way
    made, whole = blobs(seed)
    passes: list[list[int]] = []
    each = behaviors.nearest_each

    def counted(features: Any, centres: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        passes.append(sorted(centres))
        return each(features, centres)

    monkeypatch.setattr(behaviors, "nearest_each", counted)
    got = choose_clusters(made, seed, sample=300)
    assert np.array_equal(got, reference_choose_clusters(whole, seed, 300))
    assert np.array_equal(got, choose_clusters(whole, seed, sample=300))
    assert len(np.unique(got)) >= 2
    assert len(passes) == 2  # one pass each: the made rows, then the matrix


def test_a_k_refused_for_a_small_cluster_asks_one_more_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A K whose score leads but one of whose clusters is too small is refused: the K's
    the first pass left out (their score below the refused one's) are assigned in a
    second pass, and the labels are those of every K assigned."""
    made, whole = blobs(0)
    real_silhouette = behaviors._Silhouette.__call__
    scores = {2: 0.5, 3: 0.9, 4: 0.6, 5: 0.4, 6: 0.3}

    def scored(self: Any, labels: np.ndarray) -> float:
        real_silhouette(self, labels)
        return scores[len(np.unique(labels))]

    monkeypatch.setattr(behaviors._Silhouette, "__call__", scored)
    monkeypatch.setattr(behaviors, "MIN_SESSIONS_PER_BEHAVIOR", 15)
    passes: list[list[int]] = []
    each = behaviors.nearest_each

    def refusing(features: Any, centres: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        passes.append(sorted(centres))
        found = each(features, centres)
        if 3 in found:  # K = 3 put every session but one in its first two clusters
            found[3] = np.minimum(found[3], 1)
            found[3][0] = 2
        return found

    monkeypatch.setattr(behaviors, "nearest_each", refusing)
    got = choose_clusters(made, 0, sample=300)
    assert passes == [[2, 3], [4]]  # K = 4 beat 0.5 once K = 3 was refused
    expected = behaviors.nearest(whole, fitted_centres(whole, 0, 300, 4))
    assert np.array_equal(got, expected)


def fitted_centres(features: sparse.csr_matrix, seed: int, sample: int, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    _, points = behaviors.cluster_sample(features, sample, seed)
    with threadpool_limits(limits=1):
        return np.asarray(
            KMeans(n_clusters=k, n_init=behaviors.KMEANS_STARTS, random_state=seed)
            .fit(points)
            .cluster_centers_
        )


def test_bin_keys_are_32_bit_where_they_fit_and_equal_the_64_bit_ones() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=order_stats.CHUNK * 2 + 77)
    bits = values.view(np.int64)
    group = rng.integers(0, 9, len(values)).astype(np.int16)
    low, shift, width = int(bits.min()), 40, 1 << 13
    expected = ((bits - low) >> shift) + group.astype(np.int64) * width
    narrow = order_stats._bin_keys(bits, low, shift, group, width, 9 * width)
    assert narrow.dtype == np.int32 and np.array_equal(narrow, expected)
    wide = order_stats._bin_keys(bits, low, shift, group, width, (1 << 31) + 1)
    assert wide.dtype == np.int64 and np.array_equal(wide, expected)
