"""Synthesis as arrays: counter-based numbers, path values by kind, the chunked walk
against ConditionedChain's own, and the bounded pools of query strings and bodies."""

from __future__ import annotations

import uuid
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from tracereplay.models import counters, synth_walk
from tracereplay.models.behaviors import END, QUANTILE_POINTS, Behavior, ThinkTime
from tracereplay.models.params import fresh_values
from tracereplay.models.payloads import QueryModel
from tracereplay.models.session_shape import ConditionedChain, SessionTable
from tracereplay.models.synth_columns import POOL_SIZE, _Pool
from tracereplay.models.synth_walk import WalkTables


def test_counter_numbers_are_uniform_and_independent_of_the_batch() -> None:
    keys = counters.session_keys(3, counters.WALK, np.arange(200_000))
    first = counters.uniforms(keys, 0)
    assert stats.kstest(first, "uniform").pvalue > 0.001
    # Along k within sessions, and between two streams: uniform, and not the same numbers.
    along = counters.uniforms(keys[:1000, None], np.arange(300, dtype=np.uint64)[None, :])
    assert stats.kstest(along.ravel(), "uniform").pvalue > 0.001
    other = counters.uniforms(counters.session_keys(3, counters.PAUSE, np.arange(200_000)), 0)
    assert abs(stats.pearsonr(first, other).statistic) < 0.01
    # Session 12345 drawn alone gets its numbers in the batch.
    alone = counters.uniforms(counters.session_keys(3, counters.WALK, np.array([12345])), 0)
    assert alone[0] == first[12345]
    assert first.min() >= 0.0 and first.max() < 1.0


def test_fresh_values_keep_their_kind() -> None:
    keys = counters.session_keys(1, counters.VALUES, np.arange(2000))
    ids = fresh_values({"kind": "uuid"}, keys, 0).to_pylist()
    assert all(str(uuid.UUID(v)) == v and uuid.UUID(v).version == 4 for v in ids)
    assert len(set(ids)) == 2000
    ints = fresh_values({"kind": "int", "digits": [2, 5]}, keys, 64).to_pylist()
    assert {len(v) for v in ints} == {2, 3, 4, 5} and all(v[0] != "0" and v.isdigit() for v in ints)
    hexes = fresh_values({"kind": "hex", "length": 21}, keys, 128).to_pylist()
    assert all(len(v) == 21 and int(v, 16) >= 0 for v in hexes) and len(set(hexes)) == 2000
    picked = Counter(fresh_values({"kind": "other", "examples": ["a", "b"]}, keys, 0).to_pylist())
    assert set(picked) == {"a", "b"} and abs(picked["a"] - 1000) < 150


def test_the_chunked_walk_follows_the_conditioned_chain() -> None:
    """Paths of a drawn length: the arrays' walk and ConditionedChain.walk (the reference)
    give the same distribution of whole paths (chi-square over the paths seen)."""
    moves = {"a": {"b": 0.5, "c": 0.3, END: 0.2}, "b": {"a": 0.4, "c": 0.2, END: 0.4},
             "c": {"a": 0.3, "b": 0.3, END: 0.4}}  # fmt: skip
    entry = {"a": 0.7, "c": 0.3}
    flat = ThinkTime(tuple(1.0 for _ in QUANTILE_POINTS), 50, "transition")
    table = SessionTable((4,), (1.0,), (1.0,), 0, (3.0,))
    behavior = Behavior("b1", 1.0, 9, entry, moves, {}, 4.0, flat, table)
    names = ["a", "b", "c"]
    walked = WalkTables([behavior], np.array([1.0]), {n: i for i, n in enumerate(names)}).draw(
        5, np.arange(30_000), np.zeros(30_000)
    )
    assert (walked.lengths == 4).all()
    ours = Counter("".join(names[c] for c in path) for path in walked.endpoint.reshape(-1, 4))
    chain, rng = ConditionedChain(entry, moves), np.random.default_rng(1)
    theirs = Counter("".join(chain.walk(4, rng)) for _ in range(30_000))
    paths = sorted(set(ours) | set(theirs))
    table_ = np.array([[ours[p] for p in paths], [theirs[p] for p in paths]])
    assert stats.chi2_contingency(table_).pvalue > 0.001
    # Broken on purpose (no conditioning on the length: paths ending early are cut), the
    # same check fails: it can tell.
    cut = Counter()
    for _ in range(30_000):
        path = [chain.names[int(rng.choice(3, p=chain.entry))]]
        while len(path) < 4:
            row = chain.move[chain.names.index(path[-1])]
            path.append(chain.names[int(rng.choice(3, p=row / row.sum()))])
        cut["".join(path)] += 1
    paths = sorted(set(ours) | set(cut))
    wrong = np.array([[ours[p] for p in paths], [cut[p] for p in paths]])
    assert stats.chi2_contingency(wrong).pvalue < 1e-6


def test_a_pool_bounds_the_distinct_values_and_is_seeded_per_endpoint() -> None:
    from faker import Faker

    query = QueryModel({"k": "obj", "fields": [{"key": "q", "k": "text", "min": 8, "max": 12,
                                               "style": "word"}]})  # fmt: skip
    entries = np.random.default_rng(0).integers(0, POOL_SIZE, 20_000)
    pool = _Pool("GET /s", query, 1, Faker())
    values = pool.take(entries).to_pylist()
    assert len(set(values)) <= POOL_SIZE < len(values)
    assert len(set(values)) > POOL_SIZE * 0.9  # the pool is (nearly) all distinct values
    # Same seed and endpoint: the same pool, whatever entries were asked first.
    again = _Pool("GET /s", query, 1, Faker())
    assert again.take(entries[::-1]).to_pylist() == values[::-1]
    assert _Pool("GET /t", query, 1, Faker()).take(entries[:50]).to_pylist() != values[:50]
    with pytest.raises(IndexError):
        pool.take(np.array([POOL_SIZE]))


def test_the_table_of_weights_draws_what_the_steps_multiply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cumulative weights made once (small models) and multiplied at each step (large
    ones) give the same rows, for a behavior with a shape table and one without."""
    moves = {"a": {"b": 0.5, "c": 0.3, END: 0.2}, "b": {"a": 0.4, "c": 0.2, END: 0.4},
             "c": {"a": 0.3, "b": 0.3, END: 0.4}}  # fmt: skip
    slow = ThinkTime(tuple(np.linspace(0.5, 4.0, len(QUANTILE_POINTS))), 50, "transition")
    think = {a: {b: slow for b in "abc"} for a in "abc"}
    table = SessionTable((2, 4, 7), (1.0, 2.0, 0.5), (1.0, 2.0, 1.0), 0, (3.0, 9.0, 4.0))
    shaped = Behavior("b1", 0.6, 9, {"a": 0.7, "c": 0.3}, moves, think, 4.0, slow, table)
    older = Behavior("b2", 0.4, 9, {"b": 1.0}, moves, think, 4.0, slow)
    codes = {"a": 0, "b": 1, "c": 2}
    fast = WalkTables([shaped, older], np.array([0.6, 0.4]), codes)
    monkeypatch.setattr(synth_walk, "TABLE_FLOATS", 0)
    slow_tables = WalkTables([shaped, older], np.array([0.6, 0.4]), codes)
    assert fast.flat is not None and slow_tables.flat is None
    index, starts = np.arange(5_000), np.zeros(5_000)
    a, b = fast.draw(2, index, starts), slow_tables.draw(2, index, starts)
    for field in ("session", "endpoint", "step", "think_s", "t_s", "lengths"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert set(np.unique(a.lengths)) > {2, 4, 7}  # the older behavior's lengths too


@pytest.mark.parametrize("n", [1, 2, 3, 8, 29, 64])
def test_the_binary_search_counts_what_the_comparison_counts(n: int) -> None:
    """Rows of rising cumulative weights with zero weights (ties), draws landing exactly on
    a value and rounding up to the whole: the search's count is the comparison's."""
    rng = np.random.default_rng(n)
    weights = rng.choice([0.0, 0.1, 0.25, 1.0], size=(500, n))
    weights[:3] = 0.0  # a row that cannot go on
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(500)
    u[3:50] = 1.0 - 2.0**-53  # the largest draw: rounds up to the whole
    u[50:100] = cdf[50:100, rng.integers(0, n)] / np.where(cdf[50:100, -1] > 0, cdf[50:100, -1], 1)
    found, whole = synth_walk._search(cdf.ravel(), np.arange(500) * n, n, u)
    assert np.array_equal(whole, cdf[:, -1])
    assert np.array_equal(found, (cdf <= synth_walk._below(u, cdf[:, -1])[:, None]).sum(axis=1))
