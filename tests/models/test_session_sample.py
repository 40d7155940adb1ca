"""Correlation finding on a seeded, stratified sample of sessions (issue 15, item 3): the
sample itself, its half check, and the model built on it against the model of all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.factories import T0, make_record, write_trace
from tests.models.test_correlations import api_session, ex, trace, uid
from tracereplay.errors import UsageError
from tracereplay.models.correlations import find_auth, find_correlations, walk_sessions
from tracereplay.models.model import build_model, model_json
from tracereplay.models.session_sample import half_check, part_ranks, sample_sessions, session_keys


def _requests(lengths: list[int], endpoints: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    sid = np.repeat(np.arange(len(lengths)), lengths)
    return sid, np.concatenate([np.asarray(e) for e in endpoints])


def test_keys_are_seeded_and_fixed_per_session() -> None:
    assert np.array_equal(session_keys(50, 3)[:10], session_keys(10, 3))
    assert not np.array_equal(session_keys(10, 3), session_keys(10, 4))
    assert len(set(session_keys(10_000, 0).tolist())) == 10_000


def test_small_traces_are_read_whole() -> None:
    sid, ep = _requests([2, 1, 3], [[0, 1], [0], [2, 2, 0]])
    sample = sample_sessions(sid, ep, per_sample=3)
    assert sample.whole and sample.chosen.tolist() == [True] * 3


def test_every_endpoint_is_read_in_its_quota_of_sessions() -> None:
    rng = np.random.default_rng(1)
    n = 5_000
    lengths = rng.integers(1, 6, n).tolist()
    endpoints = [rng.integers(0, 4, k).tolist() for k in lengths]
    endpoints[4_321] = [9]  # one session calls endpoint 9
    endpoints[17] += [7]
    endpoints[3_000] += [7]
    endpoints[4_999] += [7]  # three call endpoint 7
    sid, ep = _requests([len(e) for e in endpoints], endpoints)
    sample = sample_sessions(sid, ep, per_sample=100, per_endpoint=2, seed=5)
    chosen = np.flatnonzero(sample.chosen)
    assert 100 <= len(chosen) <= 100 + 2 * 6 and not sample.whole
    assert sample.chosen[4_321]  # the only session of a rare endpoint
    assert sum(sample.chosen[[17, 3_000, 4_999]]) >= 2
    uniform = sample_sessions(sid, ep, per_sample=100, per_endpoint=0, seed=5)
    assert uniform.chosen.sum() == 100 and not uniform.chosen[4_321]  # without the quota
    again = sample_sessions(sid, ep, per_sample=100, per_endpoint=2, seed=5)
    other = sample_sessions(sid, ep, per_sample=100, per_endpoint=2, seed=6)
    assert np.array_equal(again.chosen, sample.chosen)
    assert not np.array_equal(other.chosen, sample.chosen)
    first, second = sample.halves()
    assert sorted([*first, *second]) == chosen.tolist() and len(first) and len(second)


def test_the_half_check_sees_a_rule_only_one_half_finds() -> None:
    sessions = [api_session(s) for s in range(8)]
    df = trace(sessions)
    sid = df["session_id"].to_numpy()
    sample = sample_sessions(sid, np.zeros(len(sid), int), per_sample=100)
    walk = walk_sessions(df)
    rules = find_correlations(df, walk=walk)
    auth = find_auth(df, rules, walk=walk)
    note = half_check(df, walk, sample, rules, auth)
    assert note == {"rules_on_both_halves": len(rules), "auth_same_on_halves": True}
    # A flow seen in two sessions of one half only: found on the whole, not on both halves.
    first, _ = sample.halves()
    rare = [
        [*sessions[s][:1],
         ex("GET", "/rare", resp={"code": f"rare-{s}-xxxxxxxx"}),
         ex("GET", "/rare/use", query=f"code=rare-{s}-xxxxxxxx")]
        for s in first[:2]
    ]  # fmt: skip
    df = trace([rare.pop(0) if s in first[:2] else sessions[s] for s in range(8)])
    walk = walk_sessions(df)
    rules = find_correlations(df, walk=walk)
    assert any(r.target_endpoint == "GET /rare/use" for r in rules)
    note = half_check(df, walk, sample, rules, find_auth(df, rules, walk=walk))
    assert note["rules_on_both_halves"] == len(rules) - 1


def _write_api_trace(path: Path, n: int) -> None:
    records = [
        make_record(ts=T0 + timedelta(minutes=s, seconds=i), session=f"s-{s}", **exchange)
        for s in range(n)
        for i, exchange in enumerate(api_session(s, refresh=s % 3 == 0))
    ]
    # Two sessions only share a value through a rare pair of endpoints.
    for s in (n + 1, n + 2):
        code = f"rare-{s}-" + "z" * 12
        records += [
            make_record(ts=T0 + timedelta(minutes=s), session=f"s-{s}", method="GET",
                        path="/rare", resp_body=f'{{"code": "{code}", "id": "{uid(s)}"}}'.encode()),
            make_record(ts=T0 + timedelta(minutes=s, seconds=1), session=f"s-{s}",
                        method="GET", path="/rare/use", query=f"code={code}"),
        ]  # fmt: skip
    write_trace(path, records)


def _rule_keys(model: dict[str, Any]) -> list[Any]:
    return [(r["source"], r["target"]) for r in model["correlations"]]


def test_model_on_a_sample_finds_the_rules_and_auth_of_the_whole(tmp_path: Path) -> None:
    _write_api_trace(tmp_path / "t", 90)
    whole = build_model(tmp_path / "t")
    kw: dict[str, Any] = {"correlation_sample": 24, "correlation_per_endpoint": 4}
    sampled = build_model(tmp_path / "t", **kw)
    assert model_json(sampled) == model_json(build_model(tmp_path / "t", **kw))
    assert _rule_keys(sampled) == _rule_keys(whole) and sampled["auth"] == whole["auth"]
    assert any(r["target"]["endpoint"] == "GET /rare/use" for r in sampled["correlations"])
    note = sampled["provenance"]["sampling"]["correlations"]
    assert note["sessions"] == 92 and 24 < note["sessions_read"] < 92
    assert note["rules"] == len(sampled["correlations"])
    assert note["auth_same_on_halves"] is True
    assert 0 < note["rules_on_both_halves"] < note["rules"]  # the rare pair: one half only
    assert sampled["outcomes"]["addresses"] == whole["outcomes"]["addresses"]
    full_note = whole["provenance"]["sampling"]["correlations"]
    assert full_note["sessions_read"] == 92 and "rules_on_both_halves" not in full_note
    # Without the per-endpoint quota the rare pair is missed: what the quota is for.
    uniform = build_model(tmp_path / "t", correlation_sample=24, correlation_per_endpoint=0)
    assert not any(r["target"]["endpoint"] == "GET /rare/use" for r in uniform["correlations"])


def test_bad_sample_sizes_are_usage_errors(tmp_path: Path) -> None:
    _write_api_trace(tmp_path / "t", 2)
    with pytest.raises(UsageError):
        build_model(tmp_path / "t", correlation_sample=1)
    with pytest.raises(UsageError):
        build_model(tmp_path / "t", correlation_per_endpoint=-1)


def _quota_reference(sid: np.ndarray, ep: np.ndarray, per_sample: int, per_endpoint: int,
                     seed: int, part: np.ndarray) -> np.ndarray:  # fmt: skip
    """sample_sessions as it was: one sort of every request's (endpoint, rank), the
    first part of each session by a scatter."""
    n = int(sid.max()) + 1
    keys, parts = session_keys(n, seed), int(part.max()) + 1
    first = np.full(n, parts, dtype=np.int64)
    np.minimum.at(first, sid, part.astype(np.int64))
    order = np.lexsort((keys, part_ranks(parts, seed)[first]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    chosen = rank < per_sample
    pairs = np.unique(ep.astype(np.int64) * n + rank[sid])
    e, ranks = pairs // n, pairs % n
    starts = np.flatnonzero(np.r_[True, e[1:] != e[:-1]])
    position = np.arange(len(e)) - np.repeat(starts, np.diff(np.r_[starts, len(e)]))
    chosen[order[ranks[position < per_endpoint]]] = True
    return chosen


@pytest.mark.parametrize("per_endpoint", [1, 3, 20])
def test_the_quota_and_the_parts_are_those_of_one_sort_of_every_request(
    per_endpoint: int,
) -> None:
    rng = np.random.default_rng(per_endpoint)
    n = 30_000  # more sessions than the bound below which the quota looks first
    lengths = rng.integers(1, 12, n)
    sid = np.repeat(np.arange(n), lengths)
    # Common endpoints, rare ones (a few sessions each, anywhere) and ones in between.
    ep = np.minimum(rng.zipf(1.3, len(sid)), 60) - 1
    ep[rng.choice(len(sid), 10, replace=False)] = np.arange(60, 70)  # one request each
    part = rng.integers(0, 40, len(sid))  # a session's requests in several parts
    expected = _quota_reference(sid, ep, 500, per_endpoint, 3, part)
    sample = sample_sessions(sid, ep, per_sample=500, per_endpoint=per_endpoint, seed=3, part=part)
    assert np.array_equal(sample.chosen, expected) and expected.sum() > 500
    shuffled = rng.permutation(len(sid))  # rows in any order: the scatter's path
    again = sample_sessions(sid[shuffled], ep[shuffled], per_sample=500,
                            per_endpoint=per_endpoint, seed=3, part=part[shuffled])  # fmt: skip
    assert np.array_equal(again.chosen, expected)
    read = len(set(part[expected[sid]].tolist()))  # parts holding the sample's requests
    assert sample.parts_read == again.parts_read == read > 0
