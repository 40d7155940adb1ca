"""Keys whose every request failed auth, joined to their connection's next key on the
model's numpy path (`sessions.joined_key_codes`, `sessionized.joined_keys`), against the
pandas way the model took before (`sessions.join_failed_credentials`, `sessionize`:
`pandas_sessions.joined_sessions`), to the bit: the joined keys, the frame, its table,
statistics and censoring, and the statistics at the other timeouts (summed in session-id
order, as pandas' session table sums them)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.factories import T0 as TRACE_T0
from tests.factories import make_record, write_trace
from tests.models.pandas_sessions import joined_sessions
from tracereplay.models import model as model_module
from tracereplay.models.frame import RequestColumns, connections_to_join
from tracereplay.models.key_split import session_stats_by_timeout
from tracereplay.models.model import build_model, model_json
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessionized import (
    _after_the_sessions,
    _connection_ranks,
    _model_sessions,
    _sessionized,
)
from tracereplay.models.sessions import (
    failed_keys,
    join_failed_credentials,
    joined_key_codes,
    session_stats,
    session_table,
)

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
TIMEOUTS = {"short": 20.0, "mid": 60.0, "long": 3600.0}


class _Conns:
    """A `RequestSource` of the `conn` column only (strings, None: no connection), each
    request's at its scan position `row` (`RequestColumns.row`), in batches of 7 rows."""

    def __init__(self, conn: list[str | None], row: np.ndarray | None = None) -> None:
        scan = np.empty(len(conn), dtype=object)
        scan[np.arange(len(conn)) if row is None else row] = conn
        self.conn = pa.array(scan.tolist(), pa.string())

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        assert columns == ["conn"]
        for start in range(0, len(self.conn), 7):
            yield pa.record_batch([self.conn[start : start + 7]], names=["conn"])


def _requests(
    key: list[int], t: list[float], status: list[float], duration_ms: list[float] | None = None
) -> RequestColumns:
    n = len(key)
    keys = max(key) + 1
    return RequestColumns(
        row=np.arange(n, dtype=np.int32),
        first_ts=T0,
        t_s=np.asarray(t, dtype=float),
        duration_ms=np.asarray(duration_ms if duration_ms is not None else [40.0] * n),
        status=np.asarray(status, dtype=np.float32),
        key=np.asarray(key, dtype=np.int32),
        key_values=pa.array([f"k{i:05d}" for i in range(keys)]),
        method=np.zeros(n, np.int8),
        methods=["GET", "NONE"],
        path=np.zeros(n, np.int32),
        paths=pa.array(["/", None]),
    )


# (keys, times, statuses, connections): the cases the join's rules tell apart.
CASES: dict[str, tuple[list[int], list[float], list[float], list[str | None]]] = {
    # key 0 failed with no connection: keeps its own; key 1 joins 2 on c1
    "no connection": ([0, 1, 2, 2, 0], [0, 1, 2, 3, 4], [401, 401, 200, 200, 401],
                      [None, "c1", "c1", "c1", None]),
    # key 1 failed and nothing after it on c1 (key 0 before it): a stranger, its own
    "no next key": ([0, 0, 1, 1], [0, 1, 2, 3], [200, 200, 401, 401], ["c1"] * 4),
    # keys 0 and 1 failed on one connection, both join 2; key 3's later on c2
    "two failed keys on one connection": (
        [0, 1, 0, 2, 2, 3], [0, 1, 2, 3, 50, 4], [401, 401, 401, 200, 200, 200],
        ["c1", "c1", "c1", "c1", "c1", "c2"]),
    # key 0 failed on c10 then c9: its last row in (conn, t) order is c9's ("c10" < "c9",
    # the strings' order), so it joins c9's next key (2), not c10's (1)
    "one key on two connections": (
        [0, 1, 0, 2, 1], [0, 1, 2, 3, 4], [401, 200, 401, 200, 200],
        ["c10", "c10", "c9", "c9", "c10"]),
    # ties: key 0's failed row at t=1 beside keys 1 and 2 at t=1 on c1 (position decides),
    # sessions starting at once (ids by key)
    "ties": ([1, 0, 2, 2, 1, 3, 3], [1, 1, 1, 2, 2, 2, 2], [200, 401, 200, 200, 200, 401, 401],
             ["c1", "c1", "c1", "c1", "c1", "c2", "c1"]),
}  # fmt: skip


def _ranks(source: _Conns, r: RequestColumns) -> np.ndarray:
    """What `joined_key_codes` reads of the connections (`_connection_ranks`)."""
    failed = failed_keys(r.key, r.status, len(r.key_values))
    return _connection_ranks(source, r, failed)  # type: ignore[arg-type]


def _case(name: str) -> tuple[RequestColumns, _Conns, np.ndarray]:
    key, t, status, conn = CASES[name]
    return _requests(key, t, status), _Conns(conn), np.array(conn, dtype=object)


def _random(seed: int) -> tuple[RequestColumns, _Conns, np.ndarray]:
    """Requests of some keys, a few of which failed auth throughout (and some once), on
    a few connections (some none), times with ties, past the timeouts above or not."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 2500))
    keys = int(rng.integers(2, [6, 40, 400][seed % 3]))
    t = np.sort(rng.integers(0, 600, n) * [1.0, 0.5, 7.25][seed % 3])
    key = rng.integers(0, keys, n)
    key[0] = 0  # (every key's code below `keys`; not every code has requests)
    failing = rng.random(keys) < 0.3
    status = np.where(failing[key], 401, rng.choice([200, 200, 401, 500], n)).astype(float)
    conns = int(rng.integers(1, max(2, keys // 2)))
    conn: list[str | None] = [
        None if rng.random() < 0.1 else f"c{c}" for c in rng.integers(0, conns, n)
    ]
    r = _requests(key.tolist(), t.tolist(), status.tolist(),
                  rng.choice([0.0, 1.5, 400.0, 90_000.0, np.nan], n).tolist())  # fmt: skip
    if seed % 2:  # (the trace's scan order not the requests' time order)
        r = replace(r, row=rng.permutation(n).astype(np.int32))
    return r, _Conns(conn, r.row), np.array(conn, dtype=object)


def _all() -> list[tuple[str, tuple[RequestColumns, _Conns, np.ndarray]]]:
    return [(name, _case(name)) for name in CASES] + [
        (f"random {seed}", _random(seed)) for seed in range(24)
    ]


@pytest.mark.parametrize(("name", "made"), _all(), ids=[n for n, _ in _all()])
def test_joined_key_codes_are_join_failed_credentials(
    name: str, made: tuple[RequestColumns, _Conns, np.ndarray]
) -> None:
    r, source, conn = made
    want = join_failed_credentials(r.key, r.t_s, r.status, conn)
    ranks = _ranks(source, r)
    got = joined_key_codes(r.key, r.t_s, r.status, ranks, len(r.key_values))
    assert got.dtype == r.key.dtype and np.array_equal(got, want)


def test_the_cases_join_as_their_rules_say() -> None:
    def joined(name: str) -> list[int]:
        r, source, _ = _case(name)
        ranks = _ranks(source, r)
        return joined_key_codes(r.key, r.t_s, r.status, ranks, len(r.key_values)).tolist()

    assert joined("no connection") == [0, 2, 2, 2, 0]
    assert joined("no next key") == [0, 0, 1, 1]
    assert joined("two failed keys on one connection") == [2, 2, 2, 2, 2, 3]
    assert joined("one key on two connections") == [2, 1, 2, 2, 1]
    assert joined("ties") == [1, 2, 2, 2, 1, 3, 3]


@pytest.mark.parametrize(("name", "made"), _all(), ids=[n for n, _ in _all()])
def test_sessionized_is_the_pandas_way(
    name: str, made: tuple[RequestColumns, _Conns, np.ndarray]
) -> None:
    r, source, conn = made
    endpoint = (np.arange(len(r)) % 3).astype(np.int16)
    names = ["GET /a", "GET /b", "POST /c"]
    want, want_later = joined_sessions(r, conn, endpoint, names, 60.0, TIMEOUTS)
    got, later = _sessionized(source, r, endpoint, names, 60.0, TIMEOUTS)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(got, want.drop(columns=["status", "conn"]))
    assert later() == want_later()


@pytest.mark.parametrize(("name", "made"), _all(), ids=[n for n, _ in _all()])
def test_model_sessions_are_the_pandas_way(
    name: str, made: tuple[RequestColumns, _Conns, np.ndarray]
) -> None:
    r, source, conn = made
    want, want_later = joined_sessions(r, conn, None, [], 60.0, TIMEOUTS)
    duration_ms = r.duration_ms.copy()
    sessions, starts, later, rest = _model_sessions(source, [replace(r)], 60.0, TIMEOUTS)  # type: ignore[arg-type]
    assert np.array_equal(rest.key, r.key)  # (the requests keep their own keys)
    assert starts is not None and "session_id" not in sessions.columns
    for column in ("t_s", "think_s", "request"):
        assert np.array_equal(
            sessions[column].to_numpy(), want[column].to_numpy(), equal_nan=True
        ), column
    table = session_table(sessions, starts)
    # (the same table but its index's dtype: int32 ids, the numpy path's; pandas' int64)
    pd.testing.assert_frame_equal(table, session_table(want), check_index_type=False)
    assert session_stats(sessions, table) == session_stats(want)
    censored = censoring(sessions, 60.0, duration_ms, starts)
    want_censored = censoring(want, 60.0, duration_ms)
    assert censored.threshold_s == want_censored.threshold_s
    assert np.array_equal(censored.start, want_censored.start)
    assert np.array_equal(censored.end, want_censored.end)
    assert later() == want_later()


def test_the_statistics_at_other_timeouts_are_summed_in_session_id_order() -> None:
    """Durations whose sums in (key, start) order and in id order differ in the last bits
    (times not multiples of a power of two, keys numbered against their starts): the
    pandas way sums in id order (its session table's), and so does the numpy path when
    keys were joined (`session_stats_by_timeout(id_order=True)`)."""
    rng = np.random.default_rng(6)
    n = 3000
    t = np.sort(rng.uniform(0, 5000, n))
    key = rng.integers(1, 30, n)
    key[:2] = 0  # key 0 failed on c0, joins key 1 after it
    key[2] = 1
    status = np.where(key == 0, 401.0, 200.0)
    r = _requests(key.tolist(), t.tolist(), status.tolist(), rng.uniform(0, 900, n).tolist())
    conn = ["c0"] * 3 + [f"c{k}" for k in key[3:]]
    source, objects = _Conns(conn), np.array(conn, dtype=object)  # type: ignore[arg-type]
    _, want_later = joined_sessions(r, objects, None, [], 60.0, TIMEOUTS)
    want = want_later()
    _, _, later, _ = _model_sessions(source, [replace(r)], 60.0, TIMEOUTS)  # type: ignore[arg-type]
    assert later() == want
    # (the same sessions' means summed in (key, start) order: other bits)
    ranks = _ranks(source, r)
    joined = replace(r, key=joined_key_codes(r.key, r.t_s, r.status, ranks, len(r.key_values)))
    by_key = session_stats_by_timeout(joined, TIMEOUTS)
    for name in TIMEOUTS:
        assert by_key[name].sessions == want[name].sessions
        assert by_key[name].mean_duration_s != want[name].mean_duration_s, name


def _pandas_model_sessions(
    trace: Any, held: list[RequestColumns], timeout_s: float, timeouts_s: Mapping[str, float]
) -> tuple[pd.DataFrame, None, Any, RequestColumns]:
    """`sessionized._model_sessions` as it was for keys that failed auth throughout (until
    join40): pandas' `sessionize` (`pandas_sessions.joined_sessions`), the frame's ids as
    a column."""
    requests = held.pop()
    conn = connections_to_join(trace, requests)
    assert conn is not None
    sessions, later = joined_sessions(requests, conn, None, [], timeout_s, timeouts_s)
    del sessions["session_key"]
    return sessions, None, later, _after_the_sessions(requests)


def _failing_trace(directory: Path, seed: int) -> Path:
    """Clients of a few keys on connections of their own or shared, some first sending a
    wrong password under a key of its own (401 throughout), some keys failing with no
    connection or none after them, times with ties, pauses past the model's timeouts."""
    rng = np.random.default_rng(seed)
    records = []
    for client in range(40):
        t = float(rng.integers(0, 400))
        conn = None if client % 9 == 4 else f"c{client % 13}"
        if client % 3 == 0:
            at = TRACE_T0 + timedelta(seconds=t)
            records.append(make_record(session=f"bad-{client}", conn=conn, status=401, ts=at,
                                       path="/login"))  # fmt: skip
            t += float(rng.integers(0, 3))
        if client % 11 == 5:
            continue  # (a failed key with nothing after it)
        for i in range(int(rng.integers(1, 12))):
            records.append(make_record(
                session=f"s-{client}", conn=conn, ts=TRACE_T0 + timedelta(seconds=t),
                path=f"/items/{i % 4}", duration_ms=None if i == 2 else float(rng.uniform(1, 90)),
            ))  # fmt: skip
            t += float(rng.choice([0.0, 1.5, 7.25, 2000.0, 4000.0]))
    return write_trace(directory, sorted(records, key=lambda r: r.ts))


@pytest.mark.parametrize("seed", range(4))
def test_the_model_file_is_the_pandas_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """`build_model` of a trace some of whose keys failed auth throughout: the model file
    (its JSON text) the pandas way wrote, byte for byte."""
    trace = _failing_trace(tmp_path / "t", seed)
    processes = 1 + seed % 2
    got = model_json(build_model(trace, processes=processes))
    monkeypatch.setattr(model_module, "_model_sessions", _pandas_model_sessions)
    want = model_json(build_model(trace, processes=processes))
    assert got == want
    assert json.loads(got)["provenance"]["sessions"] > 0
