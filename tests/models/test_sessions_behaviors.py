"""Sessionization edges and Markov estimates recovered from traces of a known chain."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.factories import T0, make_record
from tracereplay.errors import TraceEmptyError
from tracereplay.models.behaviors import END, choose_clusters, fit_behaviors, transition_features
from tracereplay.models.frame import requests_frame
from tracereplay.models.sessions import session_stats, session_table, sessionize
from tracereplay.trace import records_to_batch


def frame(rows: list[tuple[str, float, str]], duration_ms: float | None = None) -> pd.DataFrame:
    """A requests frame from (session key, seconds after T0, path) triples."""
    records = [
        make_record(session=key, ts=T0 + timedelta(seconds=t), path=path, duration_ms=duration_ms)
        for key, t, path in rows
    ]
    return requests_frame(pa.Table.from_batches([records_to_batch(records)]))


def test_timeout_splits_and_think_times() -> None:
    df = frame(
        [("a", 0, "/x"), ("a", 10, "/y"), ("a", 10 + 1801, "/x"), ("b", 5, "/x"), ("b", 6, "/y")],
        duration_ms=500,
    )
    s = sessionize(df, timeout_s=1800)
    assert s["session_id"].nunique() == 3
    assert s.groupby("session_id")["session_key"].first().tolist() == ["a", "b", "a"]
    first = s[s["session_id"] == 0]
    assert np.isnan(first["think_s"].iloc[0]) and first["think_s"].iloc[1] == pytest.approx(9.5)
    assert s[s["session_id"] == 1]["think_s"].iloc[1] == pytest.approx(0.5)
    assert sessionize(df, timeout_s=3600)["session_id"].nunique() == 2
    table = session_table(s)
    assert table["length"].tolist() == [2, 2, 1] and table["duration_s"].tolist() == [10, 1, 0]


def test_gap_exactly_at_timeout_stays_in_session_and_unknown_durations() -> None:
    df = frame([("a", 0, "/x"), ("a", 60, "/y"), ("a", 61, "/z")])
    df["duration_ms"] = np.nan
    s = sessionize(df, timeout_s=60)
    assert s["session_id"].nunique() == 1
    assert s["think_s"].tolist()[1:] == [60.0, 1.0]  # start to start without durations
    with pytest.raises(ValueError, match="timeout"):
        sessionize(df, timeout_s=0)


def test_single_request_and_empty_trace() -> None:
    s = sessionize(frame([("a", 0, "/x")]))
    stats = session_stats(s)
    assert stats.sessions == 1 and stats.mean_length == 1 and stats.median_think_s == 0
    with pytest.raises(TraceEmptyError):
        requests_frame(pa.Table.from_batches([records_to_batch([make_record()])]).slice(0, 0))


CHAIN = {
    "START": {"/login": 1.0},
    "/login": {"/list": 0.7, "/item": 0.3},
    "/list": {"/item": 0.5, "/list": 0.2, END: 0.3},
    "/item": {"/list": 0.4, END: 0.6},
}


def chain_trace(n_sessions: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, float, str]] = []
    for i in range(n_sessions):
        t, state = float(i * 7), "START"
        while True:
            options = CHAIN[state]
            state = str(rng.choice(list(options), p=list(options.values())))
            if state == END:
                break
            rows.append((f"s{i}", t, state))
            t += float(rng.lognormal(0.0, 0.5))
    df = sessionize(frame(rows))
    df["endpoint"] = "GET " + df["path"]
    return df


def test_markov_estimates_recover_the_chain_within_sampling_error() -> None:
    df = chain_trace(800, seed=3)
    (behavior,) = fit_behaviors(df, max_behaviors=1)  # the estimator, not the clustering
    assert behavior.entry == {"GET /login": 1.0}
    for state, options in CHAIN.items():
        if state == "START":
            continue
        estimated = behavior.transitions[f"GET {state}"]
        visits = int((df["endpoint"] == f"GET {state}").sum())
        for nxt, p in options.items():
            key = nxt if nxt == END else f"GET {nxt}"
            tolerance = 4 * np.sqrt(p * (1 - p) / visits)  # 4 standard errors
            assert abs(estimated.get(key, 0.0) - p) <= tolerance, (state, nxt)
    think = behavior.think["GET /login"]["GET /list"]
    assert think.pooled_from == "transition" and think.samples > 100
    median = think.quantiles_s[10]
    assert median == pytest.approx(1.0, rel=0.15)  # lognormal(0, 0.5) has median 1


def test_two_distinct_behaviors_are_found() -> None:
    paths = [["/a", "/b", "/a", "/b"]] * 40 + [["/x", "/y", "/y", "/y", "/z"]] * 30
    features, vocab = transition_features(paths)
    assert ("START", "/a") in vocab
    labels = choose_clusters(features)
    assert len(set(labels[:40])) == 1 and len(set(labels[40:])) == 1
    assert labels[0] != labels[40]
    rows = [
        (f"s{i}", i * 10.0 + j, path)
        for i, steps in enumerate(paths)
        for j, path in enumerate(steps)
    ]
    df = sessionize(frame(rows))
    df["endpoint"] = "GET " + df["path"]
    behaviors = fit_behaviors(df)
    assert [b.sessions for b in behaviors] == [40, 30]
    assert [b.share for b in behaviors] == [
        pytest.approx(40 / 70, abs=1e-5),
        pytest.approx(30 / 70, abs=1e-5),
    ]
