"""The K sweep's k-means fits on dense rows against the same rows as a CSR matrix (what
`behaviors.fit_input` chooses between: SPARSE_FIT_DENSITY, SPARSE_FIT_COLUMNS), one thread,
K = 2..6, `n_init=10`, as `behaviors._Fits` runs each fit.

    .venv/bin/python bench/bench_sparse_fits.py [--trace TRACE] [--rounds 3]

With --trace, the k-means sample the model of TRACE clusters (built in one process, the
sample taken where `chosen_clusters` gets it), then a grid of synthetic samples (2,000 rows:
6 clusters, each with its own nonzero columns, and noise) over columns and density. Per
sample: its shape and share of nonzeros, the best of --rounds seconds of the sweep on each
input, which `fit_input` picks, and whether the two sweeps give the same labels for every K.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import sparse


def trace_sample(trace: Path) -> np.ndarray:
    """The sample `chosen_clusters` fits when `build_model` models `trace` in one process."""
    from tracereplay.models import behaviors, model

    found: list[np.ndarray] = []
    chosen = behaviors.chosen_clusters

    def keep(points: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        found.append(points.copy())
        return chosen(points, *args, **kwargs)  # type: ignore[arg-type]

    behaviors.chosen_clusters = keep  # type: ignore[assignment]
    try:
        model.build_model(trace, processes=1)
    finally:
        behaviors.chosen_clusters = chosen
    if not found:
        raise SystemExit(f"{trace}: its model clusters no sample")
    return found[0]


def synthetic(rng: np.random.Generator, columns: int, density: float) -> np.ndarray:
    centres = rng.random((6, columns)) * (rng.random((6, columns)) < density * 2)
    rows = centres[rng.integers(0, 6, 2000)] * (rng.random((2000, columns)) < 0.5)
    noise = rng.random((2000, columns)) * 0.1 * (rng.random((2000, columns)) < density / 3)
    return rows + noise


def sweep(points: np.ndarray | sparse.csr_matrix, rounds: int) -> tuple[float, list[np.ndarray]]:
    from sklearn.cluster import KMeans

    best, labels = float("inf"), []
    for _ in range(rounds):
        start = time.perf_counter()
        labels = [
            KMeans(n_clusters=k, n_init=10, random_state=0).fit(points).labels_ for k in range(2, 7)
        ]
        best = min(best, time.perf_counter() - start)
    return best, labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    from tracereplay.models.behaviors import fit_input

    samples: list[tuple[str, np.ndarray]] = []
    if args.trace is not None:
        samples.append((str(args.trace), trace_sample(args.trace)))
    rng = np.random.default_rng(0)
    for columns in (30, 166, 682):
        for density in (0.03, 0.06, 0.15, 0.3):
            samples.append((f"synthetic {columns} × {density}", synthetic(rng, columns, density)))
    with threadpool_limits(limits=1):
        for name, points in samples:
            dense_s, dense_labels = sweep(points, args.rounds)
            csr_s, csr_labels = sweep(sparse.csr_matrix(points), args.rounds)
            picked = "csr" if sparse.issparse(fit_input(points)) else "dense"
            same = all(np.array_equal(a, b) for a, b in zip(dense_labels, csr_labels, strict=True))
            share = np.count_nonzero(points) / points.size
            print(
                f"{name}: {points.shape[0]} × {points.shape[1]}, {share:.3f} nonzero; "
                f"dense {dense_s:.3f} s, csr {csr_s:.3f} s; fit_input: {picked}; "
                f"same labels: {same}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
