"""results.result_batch: what a request's row records (headers kept, derived columns)."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tracereplay.replay.results import (
    Inline,
    RequestResult,
    ResultWriter,
    _KeptHeaders,
    result_batch,
)


def _row(seq: int, headers: object, status: int | None = 200) -> RequestResult:
    return RequestResult(
        1, seq, "GET /a", "GET", "/a", None, 100.0, 100.5, 2.0, status, None,
        headers, 0, 10,  # type: ignore[arg-type]  # a list too: what a caller may pass
    )  # fmt: skip


def test_each_row_keeps_only_its_own_recorded_headers() -> None:
    shared = (("Accept", "application/json"), ("Authorization", "Bearer x"))
    other = (("User-Agent", "ua"), ("Cookie", "c=1"), ("content-type", "text/plain"))
    rows = [
        _row(0, shared),
        _row(1, other),
        _row(2, shared),  # the same headers again: the same answer
        _row(3, [("ACCEPT", "*/*"), ("X-Api-Key", "k")]),  # a list (not hashable)
        _row(4, ()),
        _row(5, other, status=None),
    ]
    batch = result_batch(rows).to_pydict()
    assert batch["req_headers"] == [
        [("Accept", "application/json")],
        [("User-Agent", "ua"), ("content-type", "text/plain")],
        [("Accept", "application/json")],
        [("ACCEPT", "*/*")],
        [],
        [("User-Agent", "ua"), ("content-type", "text/plain")],
    ]
    assert batch["latency_intended_ms"] == [502.0] * 6
    assert batch["ok"] == [True] * 5 + [False]


def test_a_list_of_headers_is_filtered_once_per_batch_as_its_tuple() -> None:
    # `prepare` sends lists: as a key a list raised, and every row was filtered anew.
    kept = _KeptHeaders()
    first = kept([("Accept", "*/*"), ("Cookie", "c=1")])
    again = kept([("Accept", "*/*"), ("Cookie", "c=1")])
    assert first == [("Accept", "*/*")] and again is first
    assert kept((("Accept", "*/*"), ("Cookie", "c=1"))) is first and len(kept) == 1


def test_the_derived_columns_are_each_rows_own_values_bit_for_bit() -> None:
    # result_batch computes latency_intended_ms and ok on the Arrow columns (once per
    # batch, not a Python pass per row): the values must be what RequestResult's own
    # properties give for each row, to the last bit, over epoch-sized times.
    rng = random.Random(7)
    statuses = (None, 100, 200, 204, 302, 399, 400, 404, 500, 599)
    errors = (None, None, None, "timeout: no complete answer", "ConnectionRefusedError: x")
    rows = []
    for seq in range(2000):
        intended = 1.7e9 + rng.uniform(0, 86_400)
        sent = intended + rng.choice((0.0, rng.uniform(0, 1e-3), rng.uniform(0, 30)))
        latency = rng.choice((0.0, rng.uniform(0, 5), rng.expovariate(0.01)))
        result = RequestResult(
            seq % 7, seq, "GET /a", "GET", "/a", None, intended, sent, latency,
            rng.choice(statuses), rng.choice(errors), (), 0, 10,
        )  # fmt: skip
        rows.append(result)
    batch = result_batch(rows).to_pydict()
    bits = [struct.pack("<d", r.latency_intended_ms) for r in rows]
    assert [struct.pack("<d", v) for v in batch["latency_intended_ms"]] == bits
    assert batch["ok"] == [r.ok for r in rows]
    assert any(batch["ok"]) and not all(batch["ok"])


class _Recording(Inline):
    """Inline, but `run` first appends a lateness as a session the quitting path cut
    would, while the counts are being written."""

    def __init__(self, writer: list[ResultWriter]) -> None:
        self.writer, self.runs = writer, 0

    def run(self, work: Callable[[], None]) -> None:
        self.runs += 1
        self.writer[0].sessions.lateness_ms.append(99.0)
        work()


def test_the_end_counts_are_written_through_the_background_as_they_were_at_close(
    tmp_path: Path,
) -> None:
    """The counts a replay writes at its end are formatted off the sending loop
    (`Background.run`: a long run's lateness list held the hub over 10 ms), from a copy
    taken at close: what is appended meanwhile is not half in the file."""
    holder: list[ResultWriter] = []
    background = _Recording(holder)
    writer = ResultWriter(tmp_path, host="127.0.0.1:1", scheme="http",
                          start=datetime.now(UTC), background=background)  # fmt: skip
    holder.append(writer)
    writer.sessions.lateness_ms.extend([0.5] * 20_000)
    writer.sessions.started = writer.sessions.completed = 20_000
    writer.safety.foreign_sent["10.0.0.1"] = 1
    writer.close()
    assert background.runs == 1
    counts = json.loads((tmp_path / "sessions.json").read_text())
    assert counts["lateness_ms"] == [0.5] * 20_000
    assert counts["completed"] == 20_000
    assert json.loads((tmp_path / "safety.json").read_text())["foreign_sent"] == {"10.0.0.1": 1}
