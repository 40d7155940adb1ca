"""What compare reads of a replay's summary.json: the load and the skipped counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.compare.compare_factory import session_records
from tests.factories import write_trace
from tracereplay.compare.columns import read_sessionized
from tracereplay.compare.run_summary import (
    FROM_SUMMARY,
    FROM_THROUGHPUT,
    achieved_load,
    pauses_over_skips,
)


def test_sessions_never_started_and_requests_skipped_are_told_apart() -> None:
    summary = {
        "achieved_scale": 4.6,
        "sessions_planned": 50,
        "sessions_started": 48,
        "sessions_cut": 3,
        "sessions_skipped": 2,
        "skipped": {"total": 7, "by_endpoint": {"DELETE /clients/{id}": {"not_owned": 7}}},
    }
    load = achieved_load(summary, 5.0, (10.0, 46.0))
    assert (load.achieved_scale, load.source) == (4.6, FROM_SUMMARY)
    assert (load.sessions_cut, load.sessions_skipped, load.requests_skipped) == (3, 2, 7)


def test_an_older_summary_without_the_counts_is_measured_from_throughput() -> None:
    load = achieved_load({"skipped": 4}, 5.0, (10.0, 40.0))
    assert (load.achieved_scale, load.source) == (4.0, FROM_THROUGHPUT)
    assert (load.sessions_skipped, load.requests_skipped) == (None, 4)


def _replayed_with_timing(tmp_path: Path, seqs: dict[int, list[int]]) -> Path:
    """A replay's replayed/ trace of sessions replay:0000000N, one request every 2 s (the
    pause before each: 2 s less its latency), and its timing.parquet with each sent
    request's place `seq` in the planned session."""
    records, rows = [], []
    for session, places in seqs.items():
        key = f"replay:{session:08d}"
        records += session_records(key, 100.0 * session, ["/api/items"] * len(places))
        rows += [(session, seq, 100.0 * session + 2.0 * i) for i, seq in enumerate(places)]
    run = tmp_path / "run"
    other = write_trace(run / "replayed", records)
    sessions, places, sent = (list(c) for c in zip(*rows, strict=True))
    table = pa.table(
        {"session": pa.array(sessions, pa.int64()), "seq": pa.array(places, pa.int32()),
         "sent_s": sent}
    )  # fmt: skip
    pq.write_table(table, run / "timing.parquet")
    return other


def test_a_pause_over_a_held_back_request_is_not_a_think_time(tmp_path: Path) -> None:
    # Session 0 skipped its planned request 2 (seq jumps 1 -> 3): the pause before its
    # third sent request spans two planned pauses. Session 1 sent all of its requests.
    other = _replayed_with_timing(tmp_path, {0: [0, 1, 3, 4], 1: [0, 1, 2]})
    frame, _ = read_sessionized(other, None, 60.0)
    spans = pauses_over_skips(other, frame)
    assert spans is not None and spans.tolist() == [False] * 2 + [True] + [False] * 4
    think = frame["think_s"].to_numpy()
    assert np.isnan(think).tolist() == [True, False, True, False, True, False, False]
    # Any other trace, or a replay without its timing.parquet: nothing is left out.
    (tmp_path / "run" / "timing.parquet").unlink()
    assert pauses_over_skips(other, frame) is None
    plain = write_trace(tmp_path / "plain", [])
    assert pauses_over_skips(plain, frame) is None
