"""The correlation sample bounded in requests (models/session_sample.py, `requests`): long
sessions are read by their first and last requests, so a trace of few, long sessions is not
read whole; the heavy columns of many rows gathered without Arrow's 2 GiB overflow
(models/source.py `_taken`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests.factories import T0, make_record, write_trace
from tests.models.test_correlations import ex, login, uid
from tracereplay.errors import UsageError
from tracereplay.models import source
from tracereplay.models.model import build_model
from tracereplay.models.session_sample import sample_sessions


def _read(lengths: list[int], requests: int) -> tuple[Any, list[list[int]]]:
    """The sample of sessions of these lengths (all chosen: few) and, per session, the
    positions (seq) it reads."""
    sid = np.repeat(np.arange(len(lengths)), lengths)
    sample = sample_sessions(sid, np.zeros(len(sid), np.int64), per_sample=10, requests=requests)
    mask = sample.read(sid)
    seq = np.concatenate([np.arange(n) for n in lengths])
    return sample, [seq[mask & (sid == s)].tolist() for s in range(len(lengths))]


def test_long_sessions_are_read_by_their_first_and_last_requests() -> None:
    sample, read = _read([30, 5, 40], requests=33)  # 11 a session: the first 6, the last 5
    assert sample.per_session == 11 and sample.sessions_cut == 2 and not sample.whole
    assert read[0] == [*range(6), *range(25, 30)]
    assert read[1] == list(range(5))  # shorter than 11: whole
    assert read[2] == [*range(6), *range(35, 40)]
    assert sum(map(len, read)) <= 33
    assert sample.note() == {"requests_per_session": 11, "sessions_cut": 2}


def test_a_sample_within_the_bound_is_read_whole() -> None:
    sample, read = _read([30, 5, 40], requests=75)
    assert sample.per_session == 0 and sample.whole and sample.note() == {}
    assert [len(r) for r in read] == [30, 5, 40]


def _long_session(s: int, items: int) -> list[dict[str, Any]]:
    """Login, then `items` times: create an item, read it, update it; then log out."""
    tok = f"tok-{s}-" + "a" * 24
    steps = [login(s)]
    for i in range(items):
        item = uid(100 * s + i)
        steps += [
            ex("POST", "/items/", token=tok, body={"name": f"Item {s}-{i}"}, status=201,
               resp={"status": "success", "data": {"id": item}}),
            ex("GET", f"/items/{item}", token=tok, resp={"status": "success", "data": {"id": i}}),
            ex("PUT", f"/items/{item}", token=tok, body={"name": "renamed"}),
        ]  # fmt: skip
    return [*steps, ex("POST", "/auth/logout", token=tok, resp={"status": "success"})]


def test_a_trace_of_long_sessions_keeps_its_rules_and_auth(tmp_path: Path) -> None:
    records = [
        make_record(ts=T0 + timedelta(hours=s, seconds=i), session=f"s-{s}", **exchange)
        for s in range(8)
        for i, exchange in enumerate(_long_session(s, 30))
    ]
    write_trace(tmp_path / "t", records)
    whole = build_model(tmp_path / "t", correlation_requests=10_000)
    bounded = build_model(tmp_path / "t", correlation_requests=160)  # 20 of 92 a session
    note = bounded["provenance"]["sampling"]["correlations"]
    assert note["requests_per_session"] == 20 and note["sessions_cut"] == 8
    assert note["requests_read"] == 160
    assert "requests_per_session" not in whole["provenance"]["sampling"]["correlations"]
    assert whole["provenance"]["sampling"]["correlations"]["requests_read"] == 8 * 92
    rules = [(r["source"], r["target"]) for r in bounded["correlations"]]
    assert rules and rules == [(r["source"], r["target"]) for r in whole["correlations"]]
    # The logout is a session's last request: read by the last half of each cut session.
    assert bounded["auth"] == whole["auth"] and bounded["auth"]["logout"] == "POST /auth/logout"


def test_a_bound_below_one_request_is_a_usage_error(tmp_path: Path) -> None:
    write_trace(tmp_path / "t", [make_record(ts=T0, session="s", **_long_session(0, 1)[0])])
    with pytest.raises(UsageError):
        build_model(tmp_path / "t", correlation_requests=0)


@pytest.mark.parametrize("rows", [5, 7, 64])
def test_gathers_by_slices_are_one_take(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`_taken` by slices of `rows` positions, from batches of 10 rows: the rows of one take,
    in the positions' order (unordered, repeated)."""
    monkeypatch.setattr(source, "TAKE_ROWS", rows)
    batches = [
        pa.record_batch(
            {"n": pa.array(range(b, b + 10)), "body": [bytes([b + i]) for i in range(10)]}
        )
        for b in range(0, 100, 10)
    ]
    table = pa.Table.from_batches(batches)
    positions = np.random.default_rng(rows).integers(0, 100, 200)
    got = source._taken(table, positions)
    assert got.equals(table.take(pa.array(positions)))
