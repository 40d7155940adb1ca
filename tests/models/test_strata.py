"""models/strata.py: one stratified number per session picks its behavior and row."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from tracereplay.models.behaviors import Behavior, ThinkTime
from tracereplay.models.session_shape import SessionTable
from tracereplay.models.strata import STRATA, JointShapes, stratified_uniforms

FLAT = ThinkTime(tuple(1.0 for _ in range(21)), 10, "transition")


def behavior(name: str, share: float, lengths: list[int], weights: list[float]) -> Behavior:
    table = SessionTable(tuple(lengths), tuple(1.0 for _ in lengths), tuple(weights), censored=0)
    return Behavior(name, share, len(lengths), {}, {}, {}, float(np.mean(lengths)), FLAT, table)


def session_u(seed: int, index: int) -> float:
    return float(stratified_uniforms(seed, np.array([index]))[0])


def test_a_block_covers_every_slice_once_and_a_session_depends_on_its_index_alone() -> None:
    block = [session_u(7, i) for i in range(STRATA, 2 * STRATA)]
    assert sorted(int(u * STRATA) for u in block) == list(range(STRATA))
    # Drawn alone (as a replay worker that holds only this session would), the same number;
    # and drawn with other blocks in any order.
    assert session_u(7, STRATA + 5) == block[5]
    mixed = stratified_uniforms(7, np.array([3 * STRATA + 1, STRATA + 5, 2]))
    assert mixed[1] == block[5] and mixed[2] == session_u(7, 2)
    # Another seed, another order of the slices.
    assert [int(session_u(8, i) * STRATA) for i in range(STRATA, 2 * STRATA)] != [
        int(u * STRATA) for u in block
    ]


def test_every_pair_has_its_probability() -> None:
    shapes = JointShapes(
        [behavior("a", 3, [9, 1, 4], [1, 1, 2]), behavior("b", 1, [2], [5])],
        np.array([0.75, 0.25]),
    )
    # Ordered by behavior, then by length: a's rows 1 (len 1), 2 (len 4), 0 (len 9), then b.
    assert shapes.entries == [(0, 1), (0, 2), (0, 0), (1, 0)]
    grid = (np.arange(100_000) + 0.5) / 100_000
    picks = [shapes.entries[i] for i in shapes.picks(grid)]
    share = {e: picks.count(e) / len(grid) for e in shapes.entries}
    expected = {(0, 1): 0.1875, (0, 2): 0.375, (0, 0): 0.1875, (1, 0): 0.25}
    assert all(abs(share[e] - p) < 1e-4 for e, p in expected.items())
    # A behavior without a table (an older model) is one entry with no row.
    old = dataclasses.replace(behavior("c", 1, [3], [1]), shape=None)
    alone = JointShapes([old], np.array([1.0]))
    assert alone.entries[int(alone.picks(np.array([0.4]))[0])] == (0, None)


def test_a_plan_of_a_few_hundred_sessions_holds_the_mean_length() -> None:
    # 300 sessions of log-normal lengths (mean 9.5, up to 96 requests), as a capture's
    # table holds them: independent draws of 192 sessions miss the mean by more than 5 %
    # in 10 of 20 seeds (up to 14 %); stratified ones stay within 3.3 %.
    lengths = [int(v) for v in np.ceil(np.random.default_rng(0).lognormal(1.8, 0.9, 300))]
    shapes = JointShapes([behavior("a", 1, lengths, [1.0] * len(lengths))], np.array([1.0]))
    mean = float(np.mean(lengths))

    def off(numbers: Iterable[float]) -> float:
        rows = [shapes.entries[i][1] for i in shapes.picks(np.fromiter(numbers, float))]
        return abs(float(np.mean([lengths[r] for r in rows if r is not None])) / mean - 1)

    stratified = [off(session_u(s, i) for i in range(192)) for s in range(1, 21)]
    independent = [off(np.random.default_rng([s, 99]).random(192)) for s in range(1, 21)]
    assert max(stratified) < 0.04
    assert sum(o > 0.05 for o in independent) >= 7
