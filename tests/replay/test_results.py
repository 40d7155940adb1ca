"""results.result_batch: what a request's row records (headers kept, derived columns)."""

from __future__ import annotations

import random
import struct

from tracereplay.replay.results import RequestResult, _KeptHeaders, result_batch


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
