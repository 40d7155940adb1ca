"""The recorder hands exchanges to its workers in batches (one pickle and one pipe write per
batch, not per exchange): a batch leaves on time when traffic stops, at once when full or
when the capture closes, and the backlog bound and the order hold as before."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.factories import make_record
from tracereplay.capture import recorder as recorder_module
from tracereplay.capture.exchange import Exchange
from tracereplay.capture.recorder import BATCH_MAX, Recorder, RecorderStats, exchange_bytes
from tracereplay.capture.workers import Anonymized
from tracereplay.trace import TRACE_SCHEMA, MemorySink, TraceWriter


@dataclass(frozen=True)
class PlainSpec:
    """Anonymizes to a plain row of the exchange's path, after `delay_s` (± `jitter_s`;
    `slow_s` for a path ending in /slow)."""

    delay_s: float = 0.0
    jitter_s: float = 0.0
    slow_s: float = 0.0

    def build(self) -> Callable[[int, Exchange], Anonymized]:
        rng = random.Random(1)

        def anonymize(seq: int, ex: Exchange) -> Anonymized:
            slow = self.slow_s if ex.path.endswith("/slow") else 0.0
            time.sleep(self.delay_s + rng.uniform(0, self.jitter_s) + slow)
            return Anonymized(seq, make_record(path=ex.path))

        return anonymize


def exchange(path: str) -> Exchange:
    return Exchange(ts=datetime.now(UTC), method="GET", path=path, status=200)


def recording(spec: PlainSpec, **kwargs: int) -> tuple[Recorder, MemorySink]:
    sink = MemorySink(TRACE_SCHEMA)
    writer = TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=0.05)
    return Recorder(spec, writer, **kwargs), sink


def wait_for(recorder: Recorder, done: Callable[[RecorderStats], bool], limit_s: float) -> float:
    """Seconds until `done(stats)` (at most `limit_s`)."""
    start = time.monotonic()
    while not done(recorder.stats()) and time.monotonic() - start < limit_s:
        time.sleep(0.01)
    return time.monotonic() - start


def test_a_batch_leaves_on_time_when_traffic_stops() -> None:
    recorder, sink = recording(PlainSpec(), workers=1)
    try:
        assert recorder.submit(exchange("/warm"))  # the worker process is up
        assert wait_for(recorder, lambda s: s.rows == 1, 60) < 60
        for path in ("/a", "/b", "/c"):  # far fewer than a full batch, then nothing
            assert recorder.submit(exchange(path))
        waited = wait_for(recorder, lambda s: s.rows == 4 and s.backlog == 0, 5)
        assert waited < 5, "a partial batch never left without more traffic"
    finally:
        recorder.close()
    assert sink.table()["path"].to_pylist() == ["/warm", "/a", "/b", "/c"]


def test_a_full_batch_leaves_at_once_and_close_sends_what_is_batched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recorder_module, "BATCH_WINDOW_S", 3600.0)  # only fullness or close
    recorder, sink = recording(PlainSpec(), workers=1)
    paths = [f"/p{i}" for i in range(BATCH_MAX + 2)]
    assert recorder.submit(exchange(paths[0]))
    time.sleep(0.2)  # the feeder has woken for the batch and waits for its window
    for path in paths[1:BATCH_MAX]:
        assert recorder.submit(exchange(path))
    # A full batch leaves at once (the worker's start-up included) ...
    assert wait_for(recorder, lambda s: s.rows == BATCH_MAX, 60) < 60
    for path in paths[BATCH_MAX:]:
        assert recorder.submit(exchange(path))
    time.sleep(0.5)  # ... a partial one waits for its (hour-long) window or the close
    assert recorder.stats().rows == BATCH_MAX
    closing = time.monotonic()
    stats = recorder.close()
    assert time.monotonic() - closing < 10  # not the window
    assert stats.rows == BATCH_MAX + 2 and stats.backlog == 0 and stats.dropped_backlog == 0
    assert sink.table()["path"].to_pylist() == paths


def test_the_backlog_bound_counts_what_it_leaves_out() -> None:
    one = exchange_bytes(exchange("/x0"))
    recorder, sink = recording(PlainSpec(delay_s=0.2), workers=1, max_backlog_bytes=3 * one)
    taken = [recorder.submit(exchange(f"/x{i}")) for i in range(10)]  # faster than 0.2 s each
    stats = recorder.close()
    assert taken == [True] * 3 + [False] * 7
    assert stats.flows == 10 and stats.dropped_backlog == 7 and stats.rows == 3
    assert sink.table()["path"].to_pylist() == ["/x0", "/x1", "/x2"]


def test_rows_keep_the_submission_order_across_workers_and_batches() -> None:
    recorder, sink = recording(PlainSpec(jitter_s=0.002, slow_s=1.0), workers=2)
    paths = ["/warm-a", "/warm-b"] + [
        f"/o{i}" + ("/slow" if i % 50 == 0 else "") for i in range(200)
    ]
    recorder.submit(exchange(paths[0]))
    recorder.submit(exchange(paths[1]))
    assert wait_for(recorder, lambda s: s.rows == 2, 60) < 60  # both workers are up
    for i, path in enumerate(paths[2:]):
        assert recorder.submit(exchange(path))
        if i % 50 == 0:
            time.sleep(0.05)  # a batch of its own: the others overtake it on the other worker
    stats = recorder.close()
    assert stats.rows == 202 and stats.dropped == 0
    assert sink.table()["path"].to_pylist() == paths
