"""Session length and duration when the capture's edges cut sessions (issue 11): compare
judges them on the Kaplan-Meier estimates (a cut session's length is a lower bound), so
long sessions that ran past the capture's end neither pass for short ones nor vanish."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from tests.compare.compare_factory import frame
from tests.factories import T0, make_record
from tracereplay.compare.compare import compare_frames
from tracereplay.compare.kaplan_meier import SortedSample, ks_two
from tracereplay.compare.measures import km_ks, ks

SPAN_S = 600.0


def long_sessions(
    count: int, *, seed: int, mean_length: float = 40.0, cut_at: float | None = SPAN_S,
    prefix: str = "s", responded: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """`count` sessions starting uniformly over SPAN_S, 1 + geometric requests each, 5 s
    mean pauses; requests after `cut_at` are not in the trace (a capture that stopped).
    `responded=False`: no status or duration (a synthetic trace, whose sessions are whole)."""
    rng = np.random.default_rng(seed)
    records = []
    fields = {} if responded else {"status": None, "duration_ms": None}
    for i, start in enumerate(np.sort(rng.uniform(0, SPAN_S, count))):
        length = 1 + int(rng.geometric(1 / mean_length))
        t = start + np.concatenate([[0.0], np.cumsum(rng.exponential(5.0, length - 1))])
        for when in t if cut_at is None else t[t <= cut_at]:
            ts = T0 + timedelta(seconds=float(when))
            records.append(make_record(ts=ts, path="/api/items", session=f"{prefix}{i}", **fields))
    return frame(records)


def test_km_ks_is_ks_without_censoring_and_sees_through_it() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.geometric(0.1, 300).astype(float), rng.geometric(0.1, 500).astype(float)
    plain = km_ks(a, np.zeros(300, bool), b, np.zeros(500, bool))
    assert plain == ks(a, b)
    d = ks_2samp(a, b).statistic
    assert ks_two(SortedSample.of(a), SortedSample.of(b)) == pytest.approx(d, abs=1e-12)
    # Lengths right-censored at random: seen as they are, the sample looks short (FAIL);
    # by Kaplan-Meier it is the distribution it was drawn from.
    length = rng.geometric(0.05, 800).astype(float)
    cut = rng.uniform(0, 60, 800)
    seen, censored = np.minimum(length, cut), length > cut
    whole = rng.geometric(0.05, 2000).astype(float)
    naive = ks(seen, whole)
    assert (naive.ks or 0) > 0.1 and (naive.pvalue or 1) < 1e-6
    fair = km_ks(seen, censored, whole, np.zeros(2000, bool))
    assert fair.real_censored == int(censored.sum()) > 100
    assert (fair.ks or 1) < 0.06 and (fair.pvalue or 0) > 0.05
    assert fair.real_mean == pytest.approx(whole.mean(), rel=0.1)
    # Truly other lengths (mean 1/0.08 vs 1/0.05) still fail, censored or not.
    off = km_ks(seen, censored, rng.geometric(0.08, 2000).astype(float), np.zeros(2000, bool))
    assert (off.ks or 0) > 0.1 and (off.pvalue or 1) < 1e-6


def test_sessions_past_the_captures_end_are_judged_as_lower_bounds() -> None:
    # ~200 s sessions in a 600 s capture: about a third run past its end (one seeded draw).
    real = long_sessions(400, seed=2)
    same = long_sessions(1200, seed=12, cut_at=None, prefix="o", responded=False)
    doc = compare_frames(real, same, scale=3).to_json()
    length = doc["session_length"]
    assert length["real_censored"] > 100 and length["other_censored"] == 0
    assert length["verdict"] == "pass", length
    assert doc["session_duration"]["ks"] < 0.08
    # What the old measure said of the same pair: the cut sessions read as short ones.
    naive = ks(real.groupby("session").size(), same.groupby("session").size())
    assert (naive.ks or 0) > 0.1 and (naive.pvalue or 1) < 1e-4
    # Sessions that really are longer (mean 60 requests, not 40) fail all the same.
    longer = long_sessions(1200, seed=22, mean_length=60, cut_at=None, prefix="o", responded=False)
    doc = compare_frames(real, longer, scale=3).to_json()
    assert doc["session_length"]["verdict"] == "fail", doc["session_length"]
    # Too few sessions to tell the same difference: NOISE, not FAIL.
    tiny_real = long_sessions(8, seed=4)
    tiny = long_sessions(8, seed=5, mean_length=60, cut_at=None, prefix="o", responded=False)
    doc = compare_frames(tiny_real, tiny, scale=1).to_json()
    assert doc["session_length"]["real_censored"] > 0
    assert doc["session_length"]["verdict"] == "noise", doc["session_length"]


def test_a_capture_compared_with_itself_is_censored_alike() -> None:
    real = long_sessions(200, seed=6)
    doc = compare_frames(real, real.copy(), scale=1).to_json()
    assert doc["session_length"]["real_censored"] == doc["session_length"]["other_censored"] > 0
    assert doc["session_length"]["ks"] == 0.0 and doc["session_duration"]["ks"] == 0.0
