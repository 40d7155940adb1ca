"""Issue 15 item 1's other way: MiniBatchKMeans over every session against the shipped
sample k-means (`behaviors.choose_clusters`), measured on the same features.

    .venv/bin/python bench/bench_minibatch.py --trace /work/data/real1M \\
        [--seeds 0 1 2] [--batch 1024 4096] [--n-init 3 10] [--memory] \\
        [--exact [SEED ...]] [--a-seeds SEED ...] [--starts N ...] [--inertia SEEDS]

The trace's model is built in this process (`build_model(processes=1, correlations=False)`)
up to its behaviors stage; `fit_behaviors` then runs on that stage's own inputs, with
`behaviors.choose_clusters` wrapped to keep the feature matrix it is given (the features
are the shipped ones, not remade here) and its behaviors compared with the model file's.

Arm A: `choose_clusters(features, seed, MAX_BEHAVIORS, sample)` as `fit_behaviors` calls
it, its fits one after the other (`behaviors._core_free` answers False: one thread).
Arm B: `MiniBatchKMeans(k, batch_size, n_init, random_state)` fitted on every session for
K = 2..max K (max K as `choose_clusters` sets it), a K refused when a cluster holds fewer
than MIN_SESSIONS_PER_BEHAVIOR sessions, K chosen by the best mean silhouette above
MIN_SILHOUETTE on the model's seeded sample of `sample` sessions (the sample A uses, the
shipped `_Silhouette`). Arm C (`--exact`): `KMeans(n_init=10)` fitted on every session,
K by B's rule: what the sample stands for (the first C is a second reference). `--a-seeds`:
A with other seeds (another sample, other starts). `--starts N`: A with `n_init=N` k-means
starts instead of the shipped `KMEANS_STARTS` (10); `--inertia S`:
per K and seed 0..S-1, how much higher the inertia of each `--starts` count is than 10
starts' on A's sample of that seed (and on `_Fits`' test points: 8 overlapping blobs).
BLAS and OpenMP are limited to one thread for the whole run.

Per arm: CPU (`time.process_time`) and wall seconds, the 1-minute load, with `--memory` the
tracemalloc peak of a second run (numpy's arrays are traced), the chosen K, the shares,
and against A (and C): the adjusted Rand index, the largest share difference of clusters matched
by `linear_sum_assignment` on the contingency table, and the chain rows (entry and each
endpoint's transition probabilities, from `fit_behaviors` given the arm's labels) of the
matched behaviors: the largest difference and the rows off by more than 0.01.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MAIN_MODELS = Path("/work/data/models")
CHAIN_TOLERANCE = 0.01


def matched_shares(a: np.ndarray, b: np.ndarray) -> tuple[float, list[tuple[int, int]]]:
    """The clusters of labellings `a` and `b` paired by the most sessions in common
    (`linear_sum_assignment` on the contingency table), and the largest difference of the
    shares of a pair in percentage points; a cluster left without a pair (K differ)
    counts its whole share."""
    from scipy.optimize import linear_sum_assignment

    n = len(a)
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.zeros((ka, kb), dtype=np.int64)
    np.add.at(table, (a, b), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    share_a, share_b = table.sum(axis=1) / n, table.sum(axis=0) / n
    pairs = [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)]
    diffs = [abs(share_a[i] - share_b[j]) for i, j in pairs]
    diffs += [share_a[i] for i in set(range(ka)) - set(rows.tolist())]
    diffs += [share_b[j] for j in set(range(kb)) - set(cols.tolist())]
    return 100 * float(max(diffs)), pairs


def behavior_rank(labels: np.ndarray) -> dict[int, int]:
    """Label → index of its behavior in `fit_behaviors`' list (largest first, ties by
    label)."""
    sizes = np.bincount(labels)
    order = sorted(np.flatnonzero(sizes).tolist(), key=lambda k: (-int(sizes[k]), k))
    return {label: rank for rank, label in enumerate(order)}


def chain_rows(one: Any, other: Any) -> list[float]:
    """Per row of two behaviors' chains (the entry row, then each endpoint's transitions,
    a row of either), the largest difference of its probabilities."""
    rows = [(one.entry, other.entry)]
    for key in sorted(set(one.transitions) | set(other.transitions)):
        rows.append((one.transitions.get(key, {}), other.transitions.get(key, {})))
    return [max(abs(x.get(t, 0.0) - y.get(t, 0.0)) for t in set(x) | set(y)) for x, y in rows]


class _Run:
    """The features and the behaviors' inputs of one trace, and each arm's measures."""

    def __init__(self, trace: Path):
        import models.behaviors as behaviors
        import models.model as model

        self.behaviors = behaviors
        caught: list[Any] = []

        def stop(inputs: Any) -> Any:
            caught.append(inputs)
            raise _Caught

        model._behaviors_and_shape = stop  # type: ignore[assignment]
        with contextlib.suppress(_Caught):
            model.build_model(trace, processes=1, correlations=False)
        (self.inputs,) = caught
        behaviors._core_free = lambda: False  # the sweep's fits one after the other
        self.features: Any = None
        original = behaviors.choose_clusters

        def keep(features: Any, *args: Any) -> np.ndarray:
            # Every session's matrix (the model makes rows when it reads them; arms B and
            # C fit on every row).
            made = isinstance(features, behaviors.SessionFeatures)
            self.features = features.matrix() if made else features
            found: np.ndarray = original(features, *args)
            return found

        behaviors.choose_clusters = keep  # type: ignore[assignment]
        try:
            self.shipped = self.fit_behaviors()
        finally:
            behaviors.choose_clusters = original
        self.n = self.features.shape[0]

    def fit_behaviors(self) -> list[Any]:
        inputs = self.inputs
        found: list[Any] = self.behaviors.fit_behaviors(
            inputs.sessions, seed=inputs.seed, sample=inputs.sample, censored=inputs.censored
        )
        return found

    def chains_of(self, labels: np.ndarray) -> list[Any]:
        """`fit_behaviors`' behaviors with `labels` as its clusters."""
        behaviors, original = self.behaviors, self.behaviors.choose_clusters

        def given(features: Any, seed: int, most: int, sample: int, meanwhile: Any) -> Any:
            meanwhile()
            return labels

        behaviors.choose_clusters = given  # type: ignore[assignment]
        try:
            return self.fit_behaviors()
        finally:
            behaviors.choose_clusters = original

    def arm_a(self, seed: int | None = None) -> np.ndarray:
        """The shipped choice, with the model's seed (or `seed`: another sample too)."""
        b = self.behaviors
        labels: np.ndarray = b.choose_clusters(
            self.features,
            self.inputs.seed if seed is None else seed,
            b.MAX_BEHAVIORS,
            self.inputs.sample,
        )
        return labels

    def arm_starts(self, starts: int) -> np.ndarray:
        """A with `starts` k-means starts for each K (the shipped `_Fits`: KMEANS_STARTS)."""
        from sklearn.cluster import KMeans

        fits, shipped = self.behaviors._Fits, self.behaviors._Fits._fit

        def fit(self: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
            model = KMeans(n_clusters=k, n_init=starts, random_state=self.seed).fit(self.points)
            return model.labels_, model.cluster_centers_

        fits._fit = fit
        try:
            return self.arm_a()
        finally:
            fits._fit = shipped

    def sample_points(self, seed: int) -> np.ndarray:
        """The points `choose_clusters` fits with `seed` (its sample of the sessions)."""
        points: np.ndarray = self.behaviors.cluster_sample(self.features, self.inputs.sample, seed)[
            1
        ]
        return points

    def arm_b(self, seed: int, batch: int, n_init: int) -> np.ndarray:
        """MiniBatchKMeans on every session, K by `choose_clusters`' rule (see above)."""
        from sklearn.cluster import MiniBatchKMeans

        return self.every_session(
            lambda k: MiniBatchKMeans(
                n_clusters=k, batch_size=batch, n_init=n_init, random_state=seed
            )
        )

    def arm_c(self, seed: int) -> np.ndarray:
        """The exact k-means (`KMeans(n_init=10)`) on every session: no sample."""
        from sklearn.cluster import KMeans

        return self.every_session(lambda k: KMeans(n_clusters=k, n_init=10, random_state=seed))

    def every_session(self, estimator: Callable[[int], Any]) -> np.ndarray:
        """Labels of every session by `estimator(k)` fitted on them all, K by the rule."""
        b, features, n = self.behaviors, self.features, self.n
        index, points = b.cluster_sample(features, self.inputs.sample, self.inputs.seed)
        distinct = len({row.tobytes() for row in points + 0.0})
        max_k = min(b.MAX_BEHAVIORS, n // b.MIN_SESSIONS_PER_BEHAVIOR, distinct)
        best: tuple[float, np.ndarray] = (b.MIN_SILHOUETTE, np.zeros(n, dtype=int))
        silhouette = b._Silhouette(points)
        for k in range(2, max_k + 1):
            labels = estimator(k).fit(features).labels_.astype(np.int64)
            if np.bincount(labels, minlength=k).min() < b.MIN_SESSIONS_PER_BEHAVIOR:
                continue
            if len(np.unique(labels[index])) < 2:
                continue
            score = silhouette(labels[index])
            if score > best[0]:
                best = (score, labels)
        return best[1]


class _Caught(Exception):
    pass


def inertia_excess(
    points_of: Callable[[int], np.ndarray], seeds: int, starts: list[int]
) -> dict[int, float]:
    """Per count of `starts`, the largest relative excess of its k-means inertia over 10
    starts', over K = 2..MAX_BEHAVIORS and seeds 0..`seeds`-1 (seed s: the points
    `points_of(s)` and the k-means' `random_state` s, as `choose_clusters` has them)."""
    from sklearn.cluster import KMeans

    from models.behaviors import MAX_BEHAVIORS

    worst = dict.fromkeys(starts, 0.0)
    for seed in range(seeds):
        points = points_of(seed)
        for k in range(2, MAX_BEHAVIORS + 1):
            ten = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points).inertia_
            for n in starts:
                fewer = KMeans(n_clusters=k, n_init=n, random_state=seed).fit(points).inertia_
                worst[n] = max(worst[n], fewer / ten - 1)
    return worst


def blob_points() -> np.ndarray:
    """`test_behaviors_vectorized`'s points for `_Fits`: 8 overlapping blobs of 250."""
    rng = np.random.default_rng(11)
    return rng.normal(size=(2000, 12)) + np.repeat(rng.normal(scale=2, size=(8, 12)), 250, 0)


def measure(arm: Callable[[], np.ndarray], memory: bool) -> dict[str, Any]:
    load = os.getloadavg()[0]
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    labels = arm()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    out: dict[str, Any] = {"cpu_s": cpu, "wall_s": wall, "load": load, "rss_grown_mb": grown / 1024}
    if memory:
        tracemalloc.start()
        again = arm()
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        assert np.array_equal(again, labels)
    out["labels"] = labels
    return out


class _Reference:
    """A labelling the others are compared with, and its behaviors' chains."""

    def __init__(self, run: _Run, labels: np.ndarray):
        self.run, self.labels = run, labels
        self.chains = run.chains_of(labels)
        self.rank = behavior_rank(labels)

    def against(self, labels: np.ndarray, chains: list[Any]) -> str:
        """ARI, max share difference (pp), chain rows' max difference (rows off by more
        than CHAIN_TOLERANCE / rows) of `labels` against this one."""
        from sklearn.metrics import adjusted_rand_score

        ari = adjusted_rand_score(self.labels, labels)
        share_pp, pairs = matched_shares(self.labels, labels)
        rank = behavior_rank(labels)
        diffs = [
            d for i, j in pairs for d in chain_rows(self.chains[self.rank[i]], chains[rank[j]])
        ]  # fmt: skip
        off = sum(d > CHAIN_TOLERANCE for d in diffs)
        return f" {ari:.4f} | {share_pp:.2f} | {max(diffs):.4f} ({off}/{len(diffs)}) |"


def row(name: str, found: dict[str, Any], references: list[_Reference], run: _Run) -> str:
    labels = found["labels"]
    sizes = np.bincount(labels)
    shares = " / ".join(f"{s:.2f}" for s in sorted(100 * sizes[sizes > 0] / len(labels))[::-1])
    memory = f" / {found['traced_peak_mb']:.0f}" if "traced_peak_mb" in found else ""
    same = [r for r in references if np.array_equal(r.labels, labels)]
    chains = same[0].chains if same else run.chains_of(labels)
    return (
        f"| {name} | {found['cpu_s']:.3f} | {found['wall_s']:.3f} | {found['load']:.2f} |"
        f" {found['rss_grown_mb']:.0f}{memory} | {int((sizes > 0).sum())} | {shares} |"
        + "".join(r.against(labels, chains) for r in references)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, nargs="*", default=[1024, 4096])
    parser.add_argument("--n-init", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--memory", action="store_true", help="tracemalloc peaks (runs twice)")
    parser.add_argument(
        "--a-seeds",
        type=int,
        nargs="*",
        default=[],
        metavar="SEED",
        help="also A with each SEED (its sample and its k-means starts)",
    )
    parser.add_argument(
        "--exact",
        type=int,
        nargs="*",
        metavar="SEED",
        help="also C: KMeans(n_init=10) on every session, with each SEED (default: the"
        " model's); the first is the reference C",
    )
    parser.add_argument(
        "--starts",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="also A with N k-means starts for each K (the shipped: 10)",
    )
    parser.add_argument(
        "--inertia",
        type=int,
        default=0,
        metavar="SEEDS",
        help="the inertia of each --starts count against 10 starts', seeds 0..SEEDS-1",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import sklearn.cluster  # (its OpenMP library loaded before the limit)
    import sklearn.metrics  # noqa: F401
    from threadpoolctl import threadpool_limits

    from models.behaviors import KMEANS_STARTS, MAX_BEHAVIORS

    with threadpool_limits(limits=1):
        run = _Run(args.trace)
        name = args.trace.parent.name if args.trace.name == "trace" else args.trace.name
        reference = MAIN_MODELS / f"{name}.main.json"
        same = "not checked"
        if reference.exists():
            kept = json.loads(reference.read_text())["behaviors"]
            same = str([b.to_json() for b in run.shipped] == kept)
        print(f"{args.trace}: {run.n} sessions; fit_behaviors = {reference.name}'s: {same}")
        shipped = f"A KMeans n_init={KMEANS_STARTS} on {run.inputs.sample}"
        a_name = f"{shipped} (seed {run.inputs.seed})"
        first = measure(run.arm_a, args.memory)
        references = [_Reference(run, first["labels"])]
        measured = [(a_name, first)]
        for seed in args.a_seeds:
            found = measure(partial(run.arm_a, seed), args.memory)
            measured.append((f"{shipped} (seed {seed})", found))
        for starts in args.starts:
            found = measure(partial(run.arm_starts, starts), args.memory)
            measured.append((f"A KMeans n_init={starts} on {run.inputs.sample}", found))
        exact_seeds = [run.inputs.seed] if args.exact == [] else args.exact or []
        for seed in exact_seeds:
            exact = measure(partial(run.arm_c, seed), args.memory)
            if len(references) == 1:
                references.append(_Reference(run, exact["labels"]))
            measured.append((f"C KMeans n_init=10 on all (seed {seed})", exact))
        columns = ["ARI", "max share diff pp", "chain rows max diff (> 0.01)"]
        print(
            "| arm | CPU s | wall s | load | RSS peak grown MB"
            + (" / traced peak MB" if args.memory else "")
            + " | K | shares % | "
            + " | ".join(f"{c} vs {r}" for r in "AC"[: len(references)] for c in columns)
            + " |"
        )
        print("|---" * (7 + 3 * len(references)) + "|")
        for label, found in measured:
            print(row(label, found, references, run))
        if args.inertia and args.starts:
            blobs = blob_points()
            for where, points_of in [
                ("A's sample", run.sample_points),
                ("8 overlapping blobs (_Fits' test points)", lambda _seed: blobs),
            ]:
                worst = inertia_excess(points_of, args.inertia, args.starts)
                print(
                    f"inertia above 10 starts' (worst of K=2..{MAX_BEHAVIORS}, seeds 0.."
                    f"{args.inertia - 1}), {where}: "
                    + ", ".join(f"n_init={n} +{100 * w:.3f} %" for n, w in worst.items())
                )
        for seed in args.seeds:
            if seed != args.seeds[0]:  # A again before each seed's B runs (its times vary)
                found = measure(run.arm_a, args.memory)
                assert np.array_equal(found["labels"], references[0].labels)
                print(row(a_name, found, references, run))
            for batch in args.batch:
                for n_init in args.n_init:
                    found = measure(partial(run.arm_b, seed, batch, n_init), args.memory)
                    label = f"B MiniBatch batch={batch} n_init={n_init} seed {seed}"
                    print(row(label, found, references, run))
                    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
