"""The behaviors made from key partitions equal `fit_behaviors` of the whole frame, to the
bit: chains, think-time quantiles, tempo quantiles and session tables, whatever the number
of partitions, the clustering (sampled or whole) and the censoring."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.models.test_behaviors_vectorized import random_sessions
from tests.models.test_sessions_behaviors import chain_trace
from tracereplay.models import partition_behavior_inputs as pp
from tracereplay.models import partition_behaviors as pb
from tracereplay.models.behavior_paths import Pairs, Pauses, SessionPaths
from tracereplay.models.behaviors import (
    MAX_BEHAVIORS,
    SessionFeatures,
    _Moves,
    _tempo_feature,
    choose_clusters,
    chosen_clusters,
    cluster_sample,
    fit_behaviors,
)
from tracereplay.models.partition_behavior_inputs import PartitionRequests
from tracereplay.models.partition_behaviors import partition_behaviors
from tracereplay.models.session_shape import censoring
from tracereplay.models.spilled_quantiles import SpilledValues


def split(
    frame: pd.DataFrame, partitions: int, seed: int, by_time: bool = True
) -> tuple[list[PartitionRequests], list[str]]:
    """The frame's sessions dealt at random to `partitions` partitions, each partition's
    requests in time order (sessions interleaved, as a key partition's are), else session
    by session (ids ascending: read without a sort)."""
    codes, names = pd.factorize(frame["endpoint"].to_numpy(object))
    session = frame["session_id"].to_numpy()
    ids = np.unique(session)
    home = np.random.default_rng(seed).integers(partitions, size=len(ids))
    of_row = home[np.searchsorted(ids, session)]
    times = frame["t_s"].to_numpy(float)
    order = np.argsort(times if by_time else session, kind="stable")
    think = frame["think_s"].to_numpy(float)
    parts = []
    for p in range(partitions):
        rows = order[of_row[order] == p]
        parts.append(PartitionRequests(session[rows], codes[rows], think[rows]))
    return parts, [str(n) for n in names]


def as_json(behaviors: list[Any]) -> list[dict[str, Any]]:
    return [b.to_json() for b in behaviors]


CASES = {  # (frame, sample, seed): 6, 2, 2 and 6 behaviors
    "random_sampled": lambda: (random_sessions(1), 40, 0),
    "random_whole": lambda: (random_sessions(1), 2000, 3),
    "random_sampled_two": lambda: (random_sessions(3), 120, 0),
    "chain_sampled": lambda: (chain_trace(300, seed=2), 40, 0),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("partitions", [1, 3, 7])
@pytest.mark.parametrize("censor", [False, True])
def test_partition_behaviors_equal_the_whole_frame_fit_to_the_bit(
    case: str, partitions: int, censor: bool, tmp_path: Any
) -> None:
    frame, sample, seed = CASES[case]()
    edges = censoring(frame, 60.0) if censor else None
    expected = as_json(fit_behaviors(frame, seed=seed, sample=sample, censored=edges))
    parts, names = split(frame, partitions, seed=partitions)
    found = partition_behaviors(
        parts, names, seed=seed, sample=sample, censored=edges, directory=tmp_path
    )
    assert as_json(found) == expected
    assert len(expected) >= 1 and all(b["session_shape"]["length"] for b in expected)
    assert list(tmp_path.iterdir()) == []  # (the spills removed)


def test_the_cases_reach_every_part_of_the_fit() -> None:
    """The cases above reach what each pass makes: several behaviors from a sample (the
    assignment pass) and from the whole, and think times of every origin (a transition's,
    pooled by endpoint, by behavior, the trace's)."""
    behaviors, origins = {}, set()
    for case, make in CASES.items():
        frame, sample, seed = make()
        found = as_json(fit_behaviors(frame, seed=seed, sample=sample))
        behaviors[case] = len(found)
        origins |= {t["from"] for b in found for tos in b["think_s"].values() for t in tos.values()}
    assert behaviors == {
        "random_sampled": 6, "random_whole": 2, "random_sampled_two": 2, "chain_sampled": 6
    }  # fmt: skip
    assert origins == {"transition", "endpoint", "behavior", "trace"}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def stages_equal(case: str, partitions: int, tmp_path: Any, budget: int = 0) -> bool:
    """Each pass's sessions-sized answer equals the whole-frame fit's, to the bit: the
    columns, every session's tempo, sum of pauses and the sample's feature rows, the labels,
    and `_Moves`' counts, pause counts and think-time quantiles (before any rounding);
    partitions kept between passes up to `budget` bytes."""
    frame, sample, seed = CASES[case]()
    edges = censoring(frame, 60.0)
    paths = SessionPaths.of(frame)
    pairs = Pairs.of(paths)
    pauses = Pauses.of(paths, pairs)
    column = _tempo_feature(pauses.tempo)[:, 0]
    features = SessionFeatures(paths, pairs, column)
    index, points = cluster_sample(features, sample, seed)
    labels = choose_clusters(features, seed, sample=sample)
    moves = _Moves.of(paths, pairs, pauses, labels, edges.start, edges.end)
    moves.trace()

    parts, names = split(frame, partitions, seed=partitions)
    with SpilledValues(tmp_path) as spilled:
        trace, columns, median, made = pb.pass_a(parts, names, spilled)
    locals_ = pb._Locals(parts, trace, columns, budget)
    pb._tempos(locals_, columns, median, made, index)
    found_column = _tempo_feature(made.tempo)[:, 0]
    made.points[:, -1] = found_column[index] + 0.0
    assign = partial(pb._nearest, locals_, found_column)
    found_labels = chosen_clusters(made.points, len(trace.ids), assign, seed, MAX_BEHAVIORS)
    with SpilledValues(tmp_path) as spilled:
        found = pb._moves(locals_, trace, columns, made, labels, edges.start, edges.end, spilled)
    quantiles_equal = found.quantiles.keys() == moves.quantiles.keys() and all(
        same_bits(found.quantiles[c], np.asarray(moves.quantiles[c])) for c in moves.quantiles
    )
    rare = [np.lexsort((v, c)) for c, v in (found.rare, moves.rare)]
    return (
        trace.labels == paths.labels
        and same_bits(columns.codes, pairs.codes.astype(np.int64))
        and same_bits(made.tempo, pauses.tempo)
        and same_bits(made.pause_sums, pauses.sums(paths))
        and same_bits(made.length, paths.length.astype(np.int64))
        and same_bits(made.first_step, paths.step[paths.first].astype(np.int32))
        and same_bits(made.end_column, pairs.end_column.astype(np.int32))
        and same_bits(made.points, points)
        and same_bits(found_labels, labels)
        and same_bits(found.entries, moves.entries)
        and same_bits(found.counts, moves.counts)
        and same_bits(found.sizes, moves.sizes)
        and same_bits(found.fresh, moves.fresh)
        and quantiles_equal
        and same_bits(
            found.rare[0][rare[0]].astype(np.int64), moves.rare[0][rare[1]].astype(np.int64)
        )
        and same_bits(found.rare[1][rare[0]], moves.rare[1][rare[1]])
        and found.trace() == moves.trace()
    )


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("partitions", [1, 3, 7])
@pytest.mark.parametrize("budget", [0, 20_000, 1 << 30])
def test_every_pass_equals_the_fits_own_arrays_to_the_bit(
    case: str, partitions: int, budget: int, tmp_path: Any
) -> None:
    """None kept (each pass reads every partition), some, every one."""
    assert stages_equal(case, partitions, tmp_path, budget)


class Reads(list[PartitionRequests]):
    """Partitions that count their reads (made on the passes' threads)."""

    reads = 0
    lock = threading.Lock()

    def __getitem__(self, p: Any) -> Any:
        with self.lock:
            self.reads += 1
        return super().__getitem__(p)


@pytest.mark.parametrize("budget", [0, 20_000, 1 << 30])
def test_partitions_kept_between_passes_are_read_once_and_fit_the_budget(
    budget: int, tmp_path: Any
) -> None:
    frame = CASES["random_sampled"]()[0]
    parts, names = split(frame, 7, seed=7)
    with SpilledValues(tmp_path) as spilled:
        trace, columns, *_ = pb.pass_a(parts, names, spilled)
    locals_ = pb._Locals(Reads(parts), trace, columns, budget)
    first = [local.where for local, _ in locals_.each(lambda local: None)]
    again = [local.where for local, _ in locals_.each(lambda local: local.where[:1])]
    kept = len(locals_.kept)
    assert locals_.used <= budget and locals_.parts.reads == 7 + 7 - kept  # type: ignore[attr-defined]
    assert kept == {0: 0, 20_000: kept, 1 << 30: 7}[budget] and (0 < kept < 7 or budget != 20_000)
    assert all(same_bits(a, b) for a, b in zip(first, again, strict=True))


@pytest.mark.parametrize("broken", ["median_off", "sums_bit_off"])
def test_a_broken_pass_is_seen(broken: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The tempo's reference medians 0.1 % off (a median of some partitions' pauses would
    be further) change the behaviors; each session's pauses summed in another order
    changes their last bits: the tests above would fail on either."""
    frame, sample, seed = CASES["random_sampled"]()
    parts, names = split(frame, 3, seed=3)
    real = pb.pass_a
    if broken == "median_off":

        def off(*args: Any) -> Any:
            trace, columns, median, made = real(*args)
            return trace, columns, median * 1.001, made

        monkeypatch.setattr(pb, "pass_a", off)
        expected = as_json(fit_behaviors(frame, seed=seed, sample=sample))
        assert as_json(partition_behaviors(parts, names, seed=seed, sample=sample)) != expected
        return

    def bit_off(*args: Any) -> Any:
        trace, columns, median, made = real(*args)
        made.pause_sums = np.nextafter(made.pause_sums, np.inf)
        return trace, columns, median, made

    assert stages_equal("random_sampled", 3, tmp_path)
    monkeypatch.setattr(pb, "pass_a", bit_off)
    assert not stages_equal("random_sampled", 3, tmp_path)


def test_no_sessions_no_behaviors() -> None:
    assert partition_behaviors([], []) == []


@pytest.mark.parametrize("shift", [10**12, -(10**6)])
def test_ids_far_apart_or_negative_give_the_same_behaviors(shift: int) -> None:
    """Session ids are the sessions' order, whatever their values (`_Marks` falls back to
    `np.unique` beyond a marked array's reach)."""
    frame, sample, seed = CASES["random_sampled"]()
    frame = frame.assign(session_id=frame["session_id"] * 7 + shift)
    expected = as_json(fit_behaviors(frame, seed=seed, sample=sample))
    parts, names = split(frame, 3, seed=1)
    assert as_json(partition_behaviors(parts, names, seed=seed, sample=sample)) == expected


def test_columns_by_search_equal_columns_by_lookup() -> None:
    codes = np.array([3, 17, 40, 41, 399], dtype=np.int64)
    pairs = np.random.default_rng(0).choice(codes, 1000)
    by_lookup = pp.Columns.of(codes, 400)
    by_search = pp.Columns.of(codes, 1 << 23)
    assert by_lookup.lookup is not None and by_search.lookup is None
    assert same_bits(by_lookup(pairs), by_search(pairs))


@pytest.mark.parametrize("case", list(CASES))
def test_rows_given_session_by_session_give_the_same_behaviors(case: str) -> None:
    frame, sample, seed = CASES[case]()
    edges = censoring(frame, 60.0)
    expected = as_json(fit_behaviors(frame, seed=seed, sample=sample, censored=edges))
    parts, names = split(frame, 3, seed=2, by_time=False)
    found = partition_behaviors(parts, names, seed=seed, sample=sample, censored=edges)
    assert as_json(found) == expected
    with SpilledValues() as spilled:
        trace, columns, *_ = pb.pass_a(parts, names, spilled)
    assert all(shape.ordered for shape in trace.shapes)  # each partition read as given:
    assert all(  # no sort, no copy
        np.shares_memory(pb._Local.of(part, trace, p, columns).paths.think_s, part.think_s)
        for p, part in enumerate(parts)
    )


EDGES = {  # frames at the fit's edges
    "one_request_each": lambda f: f.groupby("session_id").head(1).assign(endpoint="GET /only"),
    "zero_pauses": lambda f: f.assign(think_s=f["think_s"].where(f["think_s"].isna(), 0.0)),
    "one_session": lambda f: f[f["session_id"] == f["session_id"].iloc[0]],
}


@pytest.mark.parametrize("edge", list(EDGES))
@pytest.mark.parametrize("partitions", [1, 3])
def test_frames_at_the_fits_edges_give_the_same_behaviors(edge: str, partitions: int) -> None:
    """One behavior (no K to try), no pause (tempos NaN, no think-time quantile: nothing
    asked of the spill), a single session."""
    frame = EDGES[edge](chain_trace(300, seed=2))
    expected = as_json(fit_behaviors(frame, seed=0, sample=40))
    parts, names = split(frame, partitions, seed=5)
    assert as_json(partition_behaviors(parts, names, seed=0, sample=40)) == expected


def test_marks_equal_np_unique_whatever_the_reach() -> None:
    """Chunks beyond the marked array's reach at first (a partition's ids spread over every
    session's), negative or far values: the same distinct values as `np.unique`."""
    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 3 << 20, 50_000) for _ in range(40)]
    chunks += [np.array([-5, 7]), np.array([10**12]), np.zeros(0, np.int64)]
    marks = pp.Marks()
    for chunk in chunks:
        marks.add(chunk)
    assert len(marks.other) > 2 and len(marks.marked) >= 3 << 20
    assert same_bits(marks.found(), np.unique(np.concatenate(chunks)))
    assert len(marks.other) == 2  # (the first chunks marked: the negative and far kept)
