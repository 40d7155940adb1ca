"""The behaviors' child's own path: its imports frozen out of the collector's passes, and
the silhouette's distances made transposed, sklearn's numbers to the bit."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from tracereplay.models import behaviors
from tracereplay.models.forked import forked


def _probe_tracked(_inputs: None) -> tuple[bool, bool]:
    """In the child: whether the probe module's dict is still in a collected generation,
    and whether the collector runs."""
    table = sys.modules["child_gc_probe"].TABLE
    return any(obj is table for obj in gc.get_objects()), gc.isenabled()


def test_the_childs_imports_are_frozen_out_of_its_collections(tmp_path: Path) -> None:
    """What the child imports before its inputs come is never traversed again by its
    collector (frozen: in no generation), which still runs for what the work makes."""
    (tmp_path / "child_gc_probe.py").write_text("TABLE = {'rows': [[1], [2]]}\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with forked(_probe_tracked, imports=["child_gc_probe"]) as pending:
            pending.send(None)
            tracked, collecting = pending.result()
        assert not tracked and collecting
        assert gc.isenabled() and gc.get_freeze_count() == 0  # the caller's as it was
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("child_gc_probe", None)


def _features(seed: int, rows: int) -> np.ndarray:
    """Rows like the clustering's: square-rooted shares of a few of 60 columns (most 0),
    a standardised column last, some rows repeated."""
    rng = np.random.default_rng(seed)
    counts = sparse.random(rows, 60, density=0.08, random_state=seed, format="csr")
    counts.data = np.ceil(counts.data * 5)
    dense = counts.toarray()
    dense[dense.sum(axis=1) == 0, 0] = 1.0
    dense = np.sqrt(dense / dense.sum(axis=1, keepdims=True))
    dense = np.hstack([dense, rng.normal(size=(rows, 1))])
    dense[rng.integers(0, rows, size=rows // 10)] = dense[0]
    return dense


@pytest.mark.parametrize(
    ("seed", "rows", "blas_threads"), [(0, 2000, 1), (1, 733, 1), (2, 1500, None)]
)
def test_the_distances_are_sklearns_matrix_transposed_to_the_bit(
    seed: int, rows: int, blas_threads: int | None
) -> None:
    """`_Silhouette.distances` (g = X @ X.T, made transposed in place) is the transpose of
    `pairwise_distances_chunked`'s matrix, every float the same, with BLAS on one thread
    (as the K sweep runs it) or on its default."""
    from sklearn.metrics import pairwise_distances_chunked
    from threadpoolctl import threadpool_limits

    points = _features(seed, rows)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        expected = np.vstack(list(pairwise_distances_chunked(points, metric="euclidean"))).T
        got = behaviors._Silhouette(points).distances()
    assert got.flags.c_contiguous
    assert np.array_equal(got.view(np.int64), np.ascontiguousarray(expected).view(np.int64))


def test_sklearns_chunks_where_it_would_make_more_than_one() -> None:
    """Where sklearn's working memory splits the matrix (here: 1 MiB), or the points are
    not C-ordered float64, the distances are its chunks' (the scores its own too)."""
    import sklearn
    from sklearn.metrics import silhouette_score

    points = _features(3, 700)
    labels = np.random.default_rng(3).integers(0, 3, size=700)
    with sklearn.config_context(working_memory=1):
        chunked = behaviors._Silhouette(points)
        assert chunked(labels) == float(silhouette_score(points, labels))
        assert np.array_equal(chunked.distances(), behaviors._Silhouette(points)._by_sklearn())
    in_columns = np.asfortranarray(points)
    fortran = behaviors._Silhouette(in_columns)
    assert np.array_equal(fortran.distances(), behaviors._Silhouette(in_columns)._by_sklearn())
    assert fortran(labels) == float(silhouette_score(in_columns, labels))


@pytest.mark.parametrize("seed", [4, 5])
def test_scores_of_the_features_are_sklearns(seed: int) -> None:
    """On rows like the clustering's, each labelling's score is `silhouette_score`'s."""
    from sklearn.metrics import silhouette_score

    points = _features(seed, 900)
    silhouette = behaviors._Silhouette(points)
    rng = np.random.default_rng(seed)
    for k in (2, 4, 6):
        labels = rng.integers(0, k, size=900)
        assert silhouette(labels) == float(silhouette_score(points, labels))
