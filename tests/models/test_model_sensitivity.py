"""The session statistics at other timeouts (`timeout_sensitivity`), computed once the
behaviors' child has forked, from the sort kept until then: the statistics of sessionizing
at each timeout, in one process or two, with or without keys that failed auth."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import T0, make_record, write_trace
from tests.models.pandas_sessions import session_frame
from tracereplay.models import sessionized
from tracereplay.models.frame import connections_to_join, read_light_columns
from tracereplay.models.model import SENSITIVITY_TIMEOUTS_S, build_model
from tracereplay.models.sessions import session_stats, sessionize
from tracereplay.models.source import ParquetSource
from tracereplay.trace import TraceRecord


def _records(failed: bool) -> list[TraceRecord]:
    """Sessions with a pause of 20 min (k % 3 == 0), 45 min (1) or none (2): each timeout
    cuts them differently; with `failed`, some clients first send a wrong password under
    a key of its own on the connection they go on with."""
    records = []
    for k in range(30):
        t = k * 7.0
        if failed and k % 4 == 0:
            records.append(
                make_record(session=f"bad-{k}", conn=f"c{k}", ts=T0 + timedelta(seconds=t),
                            path="/login", status=401)
            )  # fmt: skip
            t += 2.0
        for i in range(5):
            records.append(
                make_record(session=f"s-{k}", conn=f"c{k}", ts=T0 + timedelta(seconds=t),
                            path=f"/items/{i}", duration_ms=None if i == 2 else 40.0)
            )  # fmt: skip
            t += (1200.0, 2700.0, 0.0)[k % 3] if i == 1 else 3.0 + k % 5
    return sorted(records, key=lambda r: r.ts)


@pytest.mark.parametrize("failed", [False, True])
def test_the_sensitivity_is_sessionize_at_each_timeout(tmp_path: Path, failed: bool) -> None:
    trace = write_trace(tmp_path / "t", _records(failed))
    source = ParquetSource.open(trace)
    requests = read_light_columns(source)
    conn = connections_to_join(source, requests)
    assert (conn is not None) == failed  # both ways of sessionizing
    expected = {
        name: session_stats(sessionize(session_frame(requests, conn), t)).to_json()
        for name, t in SENSITIVITY_TIMEOUTS_S.items()
    }
    assert len({str(v) for v in expected.values()}) == 3  # the timeouts cut differently
    for processes in (1, 2):
        model = build_model(trace, processes=processes, correlations=False)
        assert model["sessions"]["timeout_sensitivity"] == expected


def test_what_is_kept_for_later_is_computed_once() -> None:
    calls: list[int] = []
    later = sessionized._Later(lambda: {"x": calls.append(1)})  # type: ignore[dict-item]
    assert later() == {"x": None} and calls == [1]
    with pytest.raises(AssertionError):
        later()
    assert later.compute is None  # (its arrays let go)
