"""The model's "sessions" section made one key partition at a time
(models/partitioned_sessions.py) is `build_model`'s, on traces written as Parquet: its
statistics, censoring, statistics at other timeouts and request curve, at 1, 3 and 16
partitions; the pauses' statistics are `HeldPauses`' to the bit; spills are removed."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from tests.factories import T0, make_record, write_trace
from tracereplay.models.light_columns import read_light_columns
from tracereplay.models.model import SENSITIVITY_TIMEOUTS_S, build_model
from tracereplay.models.partition_sessions import HeldPauses, TracePauses
from tracereplay.models.partitioned_sessions import SpilledPauses, partitioned_sessions
from tracereplay.models.sessionized import _model_sessions
from tracereplay.models.sessions import session_table
from tracereplay.models.source import ParquetSource
from tracereplay.models.spilled_quantiles import SpilledValues

GAPS_S = [0.0, 1.0, 4.0, 30.0, 700.0, 1500.0, 2400.0, 5000.0]
"""Pauses inside a key's requests: ties, short, and past 10 min, 15, 30 and 60 (cut at some
timeouts, not at others)."""


def _write(path: Path, seed: int, *, failing: bool = False) -> Path:
    """A trace of faker-named sessions (some non-ASCII; some requests with no session, keyed
    by their client) over a few hours, integer-second times (ties across keys), durations
    known or not, some 401s but no key failing throughout unless `failing`."""
    fake = Faker(["en_US", "ja_JP", "de_DE"])
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    records = []
    for k in range(int(rng.integers(40, 70))):
        session = None if k % 9 == 4 else f"{fake.user_name()}-{k}"
        client = f"{fake.name()}-{k % 5}" if session is None else f"c-{k}"
        t = float(rng.integers(0, 4 * 3600))
        for i in range(int(rng.integers(1, 40))):
            t += float(rng.choice(GAPS_S, p=[0.1, 0.3, 0.3, 0.2, 0.04, 0.03, 0.02, 0.01]))
            duration = None if rng.random() < 0.2 else float(rng.choice([0.0, 35.5, 2500.0]))
            status = 401 if (failing and k == 3) or (i and rng.random() < 0.1) else 200
            records.append(
                make_record(ts=T0 + timedelta(seconds=t), session=session, client=client,
                            conn=f"conn-{k // 2}" if failing else None,
                            path=f"/api/items/{int(rng.integers(0, 30))}",
                            duration_ms=duration, status=status)
            )  # fmt: skip
    return write_trace(path, records)


@pytest.fixture(scope="module", params=[1, 2])
def trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("psec") / "t", request.param)


def _section(trace: Path, timeout_s: float, censor_edges: bool) -> dict[str, object]:
    model = build_model(trace, session_timeout_s=timeout_s, censor_edges=censor_edges,
                        processes=1, correlations=False)  # fmt: skip
    return dict(model["sessions"])


@pytest.mark.parametrize("timeout_s", [600.0, 1800.0])
def test_the_section_is_the_models_at_any_partition_count(
    trace: Path, tmp_path: Path, timeout_s: float
) -> None:
    for censor_edges in (True, False):
        want = _section(trace, timeout_s, censor_edges)
        cut = want["censored"]["sessions"]  # type: ignore[index]
        assert cut > 0 if censor_edges else cut == 0  # (what is compared is there)
        for partitions in (1, 3, 16):
            got = partitioned_sessions(
                ParquetSource.open(trace), session_timeout_s=timeout_s, partitions=partitions,
                directory=tmp_path, censor_edges=censor_edges,
            )  # fmt: skip
            assert got.section() == want, (partitions, censor_edges)  # (every field)
            ids = np.concatenate(got.merged.ids)  # each session one global id
            assert np.array_equal(np.sort(ids), np.arange(len(got.merged.table)))
            assert list(tmp_path.iterdir()) == []  # every spill removed


def test_the_session_table_is_the_models(trace: Path) -> None:
    """The merged table (what the arrivals and later stages read): the model's, in its
    session-id order, to the bit."""
    requests = read_light_columns(ParquetSource.open(trace))
    frame, starts, _, _ = _model_sessions(None, [requests], 600.0, SENSITIVITY_TIMEOUTS_S)  # type: ignore[arg-type]
    want = session_table(frame, starts)
    for partitions in (1, 16):
        got = partitioned_sessions(ParquetSource.open(trace), session_timeout_s=600.0,
                                   partitions=partitions).merged.table  # fmt: skip
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_the_timeouts_cut_differently(trace: Path) -> None:
    """(The statistics at other timeouts differ: the test above compares something.)"""
    sensitivity = _section(trace, 1800.0, True)["timeout_sensitivity"]
    assert len({s["sessions"] for s in sensitivity.values()}) == len(SENSITIVITY_TIMEOUTS_S)  # type: ignore[attr-defined]


@pytest.mark.parametrize("partitions", [1, 3, 16])
def test_a_key_failing_auth_throughout_is_joined_as_the_model_joins_it(
    tmp_path: Path, partitions: int
) -> None:
    trace = _write(tmp_path / "t", 3, failing=True)
    want = _section(trace, 1800.0, True)  # (the model joins it: the pandas path)
    spills = tmp_path / "spills"
    spills.mkdir()
    got = partitioned_sessions(ParquetSource.open(trace), session_timeout_s=1800.0,
                               partitions=partitions, directory=spills)  # fmt: skip
    assert got.section() == want
    assert list(spills.iterdir()) == []


def _bits(pauses: TracePauses) -> list[str]:
    return [
        x.hex() for x in (pauses.median_s, pauses.censor_s, *pauses.median_by_timeout_s.values())
    ]


@pytest.mark.parametrize("seed", range(8))
def test_spilled_pauses_are_held_pauses_to_the_bit(tmp_path: Path, seed: int) -> None:
    """Partitions' pauses (ties, near ties, infinities, a timeout with none, timeouts
    equal to the model's or to another, given the same pauses as `partition_sessions`
    gives them) to both sinks: the same medians and censoring quantile, bit for bit."""
    rng = np.random.default_rng(seed)
    timeouts = {"a": 60.0, "b": 90.0, "own": 30.0, "none": 120.0, "again": 60.0}
    held = HeldPauses()
    with SpilledValues(tmp_path, gather_limit=[1 << 20, 16][seed % 2]) as values:
        spilled = SpilledPauses(values, timeouts, 30.0)
        once = 0  # (the pauses spilled: each timeout's once, not those it equals)
        for _ in range(int(rng.integers(1, 6))):
            n = int(rng.integers(0, 400))
            own = rng.choice([0.5, 1.0, 0.1 + 0.2, 0.3]) + rng.exponential(5.0, n) * (seed % 3)
            if seed % 4 == 1:
                own[rng.integers(0, 6, n) == 0] = math.inf
            given = {None: own, "a": own[::2], "b": own[1::3], "own": own, "none": own[:0],
                     "again": own[::2]}  # fmt: skip
            for name, pauses in given.items():
                held(name, pauses)
                spilled(name, pauses)
            once += sum(len(given[name]) for name in (None, "a", "b", "none"))
        got, want = spilled.statistics(), held.statistics()
        assert values.report.values == once
    assert _bits(got) == _bits(want)
    assert list(got.median_by_timeout_s) == list(timeouts)
    assert spilled.spilled == {"a": 3, "b": 4, "none": 6}  # (the others: not again)
