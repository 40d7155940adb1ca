"""The noise floor on a bounded, seeded sample of the real sessions (verdicts.py
`NOISE_SESSIONS`): the whole trace when it is small enough, a floor never below the
whole's when sampled, and a real difference still FAILs on it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.compare.compare_factory import frame, workload
from tests.factories import T0
from tracereplay.compare.compare import (
    compare_frames,
    compare_sessionized,
    compare_traces,
    load_pair,
)
from tracereplay.compare.halves import sample_sessions
from tracereplay.compare.measures import responded
from tracereplay.compare.verdicts import HalfNoise, RealSample, half_noise, sessions_needed
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S, session_table
from tracereplay.trace import TraceMetadata, TraceRecord, open_writer

REAL = frame(workload(1200, seed=1))
OTHER = frame(workload(1200, seed=2, prefix="o"))


def _fidelity(noise_sessions: int) -> dict[str, Any]:
    doc = compare_frames(REAL, OTHER, scale=1, noise_sessions=noise_sessions).to_json()
    fidelity: dict[str, Any] = doc["fidelity"]
    return fidelity


def test_a_bound_at_or_past_the_sessions_is_the_whole_computation() -> None:
    whole = compare_frames(REAL, OTHER, scale=1).to_json()
    assert whole["fidelity"]["bootstrap"] == {
        "rounds": 200, "seed": 0, "split": "real sessions in halves",
    }  # fmt: skip
    assert compare_frames(REAL, OTHER, scale=1, noise_sessions=1200).to_json() == whole
    sampled = _fidelity(1199)
    assert sampled["bootstrap"]["sample_sessions"] == 1199
    assert sampled["noise_floor"] != whole["fidelity"]["noise_floor"]  # the bound is used


def test_a_sampled_floor_is_never_below_the_whole_ones() -> None:
    """Halves of 300 or 600 of the 1,200 sessions: each metric's floor, taken at the
    sample's size, is at least the floor all 1,200 give (the floors were seen equal within
    their noise when the sample's floor is rescaled to 1,200 instead: that one is not
    conservative)."""
    whole = _fidelity(10_000)["noise_floor"]
    for bound in (300, 600):
        floors = _fidelity(bound)["noise_floor"]
        assert set(floors) == set(whole)
        for metric, floor in whole.items():
            assert floor is not None and floors[metric] is not None, metric
            assert floors[metric] >= floor, (bound, metric, floors[metric], floor)


def test_a_real_difference_still_fails_on_a_sampled_floor() -> None:
    """Pauses twice as long, 400 sessions a side, the floor on 100 of REAL's sessions:
    FAIL, as on the whole; on 12 sessions a side (a sample too small to tell): NOISE,
    the floor on 4 of them."""
    for sessions, verdict in ((400, "fail"), (12, "noise")):
        real = frame(workload(sessions, seed=1, think_s=1.0))
        other = frame(workload(sessions, seed=2, think_s=2.0, prefix="o"))
        for bound in (sessions, sessions // 4 if sessions > 100 else 4):
            result = compare_frames(real, other, scale=1, noise_sessions=bound)
            assert result.verdicts()["think_time.ks"] == verdict, (sessions, bound)
            doc = result.to_json()["think_time"]["judged_by"]
            assert doc["noise_floor"] is not None


def test_the_sample_is_seeded_and_of_the_bound() -> None:
    assert sample_sessions(100, 100, 0) == (None, 1.0)
    kept, share = sample_sessions(1000, 250, 0)
    assert kept is not None and int(kept.sum()) == 250 and share == 0.25
    again, _ = sample_sessions(1000, 250, 0)
    other, _ = sample_sessions(1000, 250, 1)
    assert again is not None and other is not None
    assert np.array_equal(kept, again) and not np.array_equal(kept, other)


def test_the_floor_and_sessions_needed_at_the_samples_size() -> None:
    """A floor from a quarter of the sessions is taken at a quarter of the sizes: KS × 2,
    JSD × 4; sessions needed extrapolate from the sample (4,000 sessions: a quarter is
    1,000, a floor twice the goal needs 4 × 1,000)."""
    ks, jsd = HalfNoise(0.1, (50.0, 50.0), 0.5), HalfNoise(0.1, (50.0, 50.0), 1.0)
    assert ks.floor(100, 100) == 0.1 * 0.5**0.5 and jsd.floor(100, 100) == 0.05
    assert HalfNoise(0.1, (50.0, 50.0), 0.5, share=0.25).floor(100, 100) == 0.1 * 2**0.5
    assert HalfNoise(0.1, (50.0, 50.0), 1.0, share=0.25).floor(100, 100) == 0.2
    assert sessions_needed(4000, 0.05, 0.10, 0.5, floor_sessions=1000) == 4000
    assert sessions_needed(4000, 0.05, 0.10, 0.5, critical=0.2, floor_sessions=1000) == 64000


def _trace(path: Path, records: list[TraceRecord], source: str = "test") -> Path:
    meta = TraceMetadata(source=source, capture_start=T0, policy_hash="test-policy")
    with open_writer(path, meta) as writer:
        for record in records:
            writer.write(record)
    return path


def _unsent(records: list[TraceRecord]) -> list[TraceRecord]:
    return [replace(r, status=None, duration_ms=None, error=None) for r in records]


@pytest.mark.parametrize("other_kind", ["capture", "synthetic", "no span"])
def test_reals_floor_before_other_is_read_judges_as_the_floor_made_knowing_other(
    tmp_path: Path, other_kind: str
) -> None:
    """compare_traces computes REAL's floor while OTHER is read, counting statuses and
    arrivals whatever OTHER is, then drops what OTHER cannot be judged by. It equals the
    floor made knowing OTHER (statuses only when OTHER responded, arrivals only on a rate
    curve): a synthetic OTHER has no status floor, one without a span no arrival floor."""
    real = _trace(tmp_path / "real", workload(150, seed=1))
    records = workload(120, seed=2, prefix="o")
    if other_kind == "no span":  # every request at one instant: no rate curve
        records = [replace(r, ts=T0) for r in records]
    if other_kind == "synthetic":
        records = _unsent(records)
    other = _trace(
        tmp_path / "other", records, "synthesize" if other_kind == "synthetic" else "test"
    )
    got = compare_traces(real, other).to_json()
    real_s, other_s = load_pair(real, other)
    table = session_table(real_s)
    plain = compare_sessionized(real_s, other_s, real_noise=({}, None))
    sample = RealSample.of(
        real_s, table, bucket_s=plain.arrival_rate.bucket_s, with_status=responded(other_s),
        censored=censoring(real_s, DEFAULT_SESSION_TIMEOUT_S).any,
    )  # fmt: skip
    want = compare_sessionized(real_s, other_s, real_noise=(half_noise(sample), None)).to_json()
    assert got == want
    floors = got["fidelity"]["noise_floor"]
    assert (floors["status_mix.jsd"] is None) == (other_kind == "synthetic")
    assert (floors["arrival_rate.mape"] is None) == (other_kind == "no span")
    assert floors["think_time.ks"] is not None and floors["endpoint_mix.jsd"] is not None
