"""bench_minibatch's comparisons: clusters paired by their common sessions whatever their
numbering, a cluster without a pair counted whole, chain rows of either behavior."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bench.bench_minibatch import behavior_rank, chain_rows, matched_shares


def test_relabelled_clusters_match_exactly() -> None:
    a = np.array([0, 0, 0, 1, 1, 2])
    pp, pairs = matched_shares(a, np.array([2, 2, 2, 0, 0, 1]))
    assert pp == 0.0
    assert sorted(pairs) == [(0, 2), (1, 0), (2, 1)]


def test_share_difference_of_the_paired_clusters() -> None:
    a = np.array([0] * 6 + [1] * 4)
    b = np.array([1] * 5 + [0] * 5)  # one session moved: 60/40 against 50/50
    pp, pairs = matched_shares(a, b)
    assert pp == pytest.approx(10.0)
    assert sorted(pairs) == [(0, 1), (1, 0)]


def test_a_cluster_without_a_pair_counts_whole() -> None:
    a = np.array([0] * 4 + [1] * 4 + [2] * 2)  # 40 / 40 / 20 %
    b = np.array([0] * 4 + [1] * 4 + [0, 1])  # the third split between the others: 50 / 50
    pp, pairs = matched_shares(a, b)
    assert sorted(pairs) == [(0, 0), (1, 1)]
    assert pp == pytest.approx(20.0)  # the unpaired 20 %, not the pairs' 10 pp


def test_behaviors_ranked_largest_first_ties_by_label() -> None:
    assert behavior_rank(np.array([2, 0, 0, 1, 2, 3, 3, 3])) == {3: 0, 0: 1, 2: 2, 1: 3}


def test_chain_rows_cover_either_behavior() -> None:
    one = SimpleNamespace(entry={"a": 1.0}, transitions={"a": {"b": 0.5, "END": 0.5}})
    other = SimpleNamespace(
        entry={"a": 0.9, "b": 0.1},
        transitions={"a": {"b": 0.5, "END": 0.5}, "b": {"END": 1.0}},
    )
    assert chain_rows(one, other) == pytest.approx([0.1, 0.0, 1.0])
