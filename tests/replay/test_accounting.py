"""What a replay achieved: one achieved_rps formula for one process and for P, the
session accounting, the real rate over the window (achieved_scale's yardstick), the
default --grace and the final line."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.factories import T0, make_record, write_trace
from tracereplay.replay.accounting import SessionLog, final_line, summarize
from tracereplay.replay.results import TIMING_SCHEMA
from tracereplay.replay.window import (
    model_grace_s,
    model_real_rps,
    trace_figures,
    trace_real_rps,
)

ZERO = 1_800_000_000.0


def timing(sent_s: list[float]) -> pa.Table:
    n = len(sent_s)
    return pa.Table.from_pydict(
        {
            "session": list(range(n)), "seq": [0] * n, "endpoint": ["GET /"] * n,
            "intended_s": sent_s, "sent_s": sent_s, "latency_ms": [1.0] * n,
            "latency_intended_ms": [1.0] * n, "status": [200] * n, "ok": [True] * n,
            "timed_out": [False] * n, "truncated": [False] * n,
        },
        schema=TIMING_SCHEMA,
    )  # fmt: skip


def worker_log(**values: object) -> dict[str, object]:
    log = SessionLog(zero_s=ZERO, window_s=10.0, **values)  # type: ignore[arg-type]
    return asdict(log)


def test_achieved_rps_is_requests_sent_in_the_common_window_over_its_length() -> None:
    # One process: 40 requests in [zero, zero + 10), 5 after the window (grace), 1 before.
    sent = [ZERO + 0.25 * i for i in range(40)] + [ZERO + 10.0 + i for i in range(5)]
    sent.append(ZERO - 0.5)
    one = SessionLog()
    one.merge(worker_log(planned=4, started=4, completed=4, offered=40))
    s = summarize(timing(sent), one, 10.0, real_rps=2.0)
    assert (s["requests"], s["requests_in_window"]) == (46, 40)
    assert s["achieved_rps"] == 4.0 and s["offered_rps"] == 4.0
    assert s["achieved_scale"] == 2.0
    # Two processes on the same zero: the same requests split between them give the same
    # figure (not the sum of two per-process rates, nor requests / first-to-last span).
    two = SessionLog()
    two.merge(worker_log(planned=2, started=2, completed=2, offered=20))
    two.merge(worker_log(planned=2, started=2, completed=2, offered=20))
    s2 = summarize(timing(sent), two, 10.0, real_rps=2.0)
    assert (s2["achieved_rps"], s2["offered_rps"], s2["achieved_scale"]) == (4.0, 4.0, 2.0)
    assert s2["sessions_planned"] == 4 and s2["sessions_skipped"] == 0
    # Half the requests sent late (a slow worker): the figure drops, it is not hidden.
    late = [ZERO + 0.25 * i for i in range(20)] + [ZERO + 10.0 + 0.1 * i for i in range(20)]
    s3 = summarize(timing(late), two, 10.0, real_rps=2.0)
    assert s3["achieved_rps"] == 2.0 and s3["achieved_scale"] == 1.0


def test_cut_and_skipped_sessions_are_counted_listed_and_in_the_final_line() -> None:
    log = SessionLog()
    log.merge(worker_log(planned=5, started=3, completed=1, cut=2, cut_sessions=[4, 1]))
    s = summarize(timing([ZERO + 1.0]), log, 10.0)
    assert s["sessions_cut"] == 2 and s["sessions_skipped"] == 2
    assert s["sessions_cut_keys"] == ["replay:00000001", "replay:00000004"]
    assert s["real_rps"] is None and s["achieved_scale"] is None
    line = final_line(s, Path("out"))
    assert "sessions 5 planned: 3 started, 1 completed, 2 cut, 2 skipped" in line
    assert "5/5" not in line and "real" not in line
    done = SessionLog()
    done.merge(worker_log(planned=5, started=5, completed=5))
    line = final_line(summarize(timing([ZERO + 1.0]), done, 10.0, real_rps=0.05), "out")
    assert "5 completed, 0 cut, 0 skipped" in line and "(real 0.1 req/s: 2×)" in line


def test_the_real_rate_counts_the_trace_over_the_window_played(tmp_path: Path) -> None:
    # 10 requests in the first 10 s, then 2 in the next 10 s; sessions of 9 s and 19 s.
    times = [float(i) for i in range(10)] + [12.0, 19.0]
    records = [
        make_record(ts=T0 + timedelta(seconds=t), session="a" if t < 10 else "b") for t in times
    ]
    records.append(make_record(ts=T0, session="b"))
    t_s, p99 = trace_figures(write_trace(tmp_path / "t", records))
    assert len(t_s) == 13 and t_s[0] == 0.0 and t_s[-1] == 19.0
    assert p99 == pytest.approx(9 + 0.99 * (19 - 9))
    assert trace_real_rps(t_s, 10.0, 1.0) == 1.1  # 11 requests before t = 10
    assert trace_real_rps(t_s, 5.0, 2.0) == 2.2  # the same stretch, twice as fast
    # Past the end the trace repeats (as the arrivals do): 2 laps of 13 + the 3 in [0, 2).
    assert trace_real_rps(t_s, 40.0, 1.0) == pytest.approx(29 / 40)
    assert trace_real_rps(np.zeros(0), 10.0, 1.0) is None


def test_the_real_rate_and_grace_of_a_model() -> None:
    model = {
        "provenance": {"span_s": 20.0, "rows": 30},
        "sessions": {
            "requests": {"bucket_s": 10.0, "counts": [20, 10]},
            "duration_s": {"p95": 8.0, "p99": 12.0, "max": 15.0},
        },
    }
    assert model_real_rps(model, 10.0, 1.0) == 2.0
    assert model_real_rps(model, 5.0, 1.0) == 2.0  # uniform within a bucket
    assert model_real_rps(model, 15.0, 1.0) == pytest.approx(25 / 15)
    assert model_real_rps(model, 40.0, 1.0) == pytest.approx(60 / 40)  # two laps
    assert model_grace_s(model, 1.0) == 12.0 and model_grace_s(model, 4.0) == 3.0
    older = {"provenance": {"span_s": 20.0, "rows": 30}, "sessions": {}}
    assert model_real_rps(older, 10.0, 1.0) == 1.5 and model_grace_s(older, 1.0) is None
    bad = {"provenance": {"span_s": 20.0}, "sessions": {"requests": {"counts": [-1]}}}
    assert model_real_rps(bad, 10.0, 1.0) is None


def test_grace_defaults_to_the_sources_p99_session_duration(tmp_path: Path) -> None:
    from tests.replay.test_replay_e2e import tiny_model
    from tracereplay.models.model import load_model
    from tracereplay.replay.window import MIN_GRACE_S, run_figures

    model = tiny_model(tmp_path, sessions=30, span_s=6.0)  # every session lasts 0.6 s
    p99 = load_model(model)["sessions"]["duration_s"]["p99"]
    assert p99 == pytest.approx(0.6)

    def grace_of(source: Path, kind: str, grace_s: float | None, speed: float = 0.25) -> float:
        return run_figures(source, kind, window_s=6.0, speed=speed, grace_s=grace_s, profile=None)[
            0
        ]

    assert grace_of(model, "model", None) == pytest.approx(p99 / 0.25)
    assert grace_of(model, "model", 7.0) == 7.0
    trace = tmp_path / "trace"
    assert grace_of(trace, "trace", None) == pytest.approx(0.6 / 0.25)
    assert grace_of(trace, "trace", None, speed=4.0) == MIN_GRACE_S
    real = run_figures(model, "model", window_s=6.0, speed=1.0, grace_s=None, profile=None)[1]
    assert real is not None and real > 0
