"""Keys whose every request failed auth, partitioned: the scan finds them, their join is the
model's (`sessions.join_failed_credentials`), the rows are partitioned by the joined key,
and the sessions merged are the model's pandas path (`pandas_sessions.joined_sessions`) to
the bit, whichever partition the failed key and its target hash to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import T0, TEST_META, make_record, make_table
from tests.models.pandas_sessions import joined_sessions
from tests.models.test_key_partitions import TableSource
from tests.models.test_partition_sessions import TIMEOUTS, _assert_same, _Whole
from tracereplay.models import key_partitions
from tracereplay.models.failed_auth_join import failed_auth_join
from tracereplay.models.frame import connections_to_join, read_light_columns, sessionize_requests
from tracereplay.models.key_partitions import KeyPartitions, scan_key_partitions
from tracereplay.models.model import SENSITIVITY_TIMEOUTS_S
from tracereplay.models.partition_endpoints import ParamFacts
from tracereplay.models.partition_sessions import (
    CrossPartitionJoin,
    HeldPauses,
    MergedSessions,
    merged_sessions,
    partition_sessions,
)
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import (
    failed_keys,
    join_failed_credentials,
    session_stats,
    session_table,
)
from tracereplay.models.source import ParquetSource
from tracereplay.trace import open_writer

GOOD, FAILED = 20, 12
"""Keys g00..g19 (some 401s, never only) and f20..f31 (only 401s), at random; f40..f46
the cases `_rows` adds."""
CONNS = ["c0", "c1", "c2", "c3", "c4", None]


def _rows(seed: int) -> list[dict[str, Any]]:
    """Requests of good and failed keys on a few connections (or none), times in tenths of
    seconds with ties and gaps past the timeouts, durations whose sums round. Beside the
    random ones: f40 on no connection, f41 alone on its own connection after a good key
    (nothing after it), f42 and f43 on one connection before one good key, f44 on two
    connections (the one that sorts last decides, though the other's row is later), f45
    tied in time with a good key's row after it in scan order (joined), f46 with one before
    it (not joined)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(150, 400))
    key = rng.integers(0, GOOD + FAILED, n)
    rows = [
        {
            "ts": int(rng.integers(0, 6000)) * [0.1, 0.7][seed % 2],  # (sums that round)
            "session": f"{'g' if k < GOOD else 'f'}{k:02d}",
            "conn": CONNS[rng.integers(len(CONNS))],
            "status": 401 if k >= GOOD else [200, 401, 404, None][rng.integers(4)],
            "duration_ms": [0.1 * int(rng.integers(1, 99)), None, 1500.0][rng.integers(3)],
        }
        for k in key.tolist()
    ]
    for k in range(GOOD):  # (each good key: one request not 401)
        rows.append({"ts": int(rng.integers(0, 600)), "session": f"g{k:02d}", "conn": "c0",
                     "status": 200, "duration_ms": 2.0})  # fmt: skip
    rows = [rows[i] for i in rng.permutation(len(rows))]  # (scan order apart from time's)
    late = 10_000
    rows += [
        {"ts": 5, "session": "f40", "conn": None, "status": 401, "duration_ms": 1.0},
        {"ts": late, "session": "g01", "conn": "lone", "status": 200, "duration_ms": 1.0},
        {"ts": late + 1, "session": "f41", "conn": "lone", "status": 401, "duration_ms": 1.0},
        {"ts": late, "session": "f42", "conn": "pair", "status": 401, "duration_ms": None},
        {"ts": late + 2, "session": "f43", "conn": "pair", "status": 401, "duration_ms": 0.3},
        {"ts": late + 3, "session": "g02", "conn": "pair", "status": 200, "duration_ms": 0.7},
        {"ts": late + 9, "session": "f44", "conn": "a-first", "status": 401, "duration_ms": 1.0},
        {"ts": late + 10, "session": "g03", "conn": "a-first", "status": 200, "duration_ms": 1},
        {"ts": late + 4, "session": "f44", "conn": "z-last", "status": 401, "duration_ms": 1.0},
        {"ts": late + 5, "session": "g04", "conn": "z-last", "status": 200, "duration_ms": 1.0},
        {"ts": late + 20, "session": "f45", "conn": "tie", "status": 401, "duration_ms": 1.0},
        {"ts": late + 20, "session": "g05", "conn": "tie", "status": 200, "duration_ms": 1.0},
        {"ts": late + 30, "session": "g06", "conn": "tie2", "status": 200, "duration_ms": 1.0},
        {"ts": late + 30, "session": "f46", "conn": "tie2", "status": 401, "duration_ms": 1.0},
    ]
    return rows


def _records(rows: list[dict[str, Any]]) -> list[Any]:
    return [
        make_record(session=r["session"], conn=r["conn"], ts=T0 + timedelta(seconds=r["ts"]),
                    status=r["status"], duration_ms=r["duration_ms"])
        for r in rows
    ]  # fmt: skip


@pytest.fixture(params=["table", "parquet", "journal"])
def kind(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.param)
    for writer in _WRITERS:
        writer.close()
    _WRITERS.clear()


_WRITERS: list[Any] = []


def _source(kind: str, seed: int, directory: Path) -> Any:
    """The trace as a table in batches of 50, as three Parquet files in row groups, or as
    rows still in a journal (read through the dataset scanner, strings plain)."""
    records = _records(_rows(seed))
    if kind == "journal":
        writer = open_writer(directory, TEST_META)
        _WRITERS.append(writer)
        for record in records:
            writer.write(record)
        writer.flush()
        journal = ParquetSource.open(directory)
        assert journal.trace.dictionary_files(["ts"], []) is None  # no file to read alone
        return journal
    table = make_table(records)
    if kind == "table":
        return TableSource(table)
    directory.mkdir()
    third = len(table) // 3
    for f, (lo, hi) in enumerate([(0, third), (third, 2 * third), (2 * third, len(table))]):
        pq.write_table(table.slice(lo, hi - lo), directory / f"part-{f:06d}.parquet", 41)
    return ParquetSource.open(directory)


def _by_number(values: pa.Array) -> np.ndarray:
    """A key's number as its hash (partition: number mod P): f44 and its target g04 apart."""
    return np.array([int(v[1:]) << 32 for v in values.to_pylist()], np.uint64)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(key_partitions, "SCAN_BATCH_ROWS", 50)
    monkeypatch.setattr(key_partitions, "_hash_strings", _by_number)
    yield


def _whole(source: Any, timeout_s: float, timeouts_s: dict[str, float]) -> _Whole:
    """The sessions block of `build_model` on the whole trace, the joined path's: the
    pandas way it took until join40 (`pandas_sessions.joined_sessions`; the model's numpy
    path gives the same to the bit, but its table's ids int32: test_joined_sessions.py)."""
    requests = read_light_columns(source)
    conn = connections_to_join(source, requests)
    assert conn is not None
    sessions, later = joined_sessions(requests, conn, None, [], timeout_s, timeouts_s)
    table = session_table(sessions)
    stats = session_stats(sessions, table)
    censored = censoring(sessions, timeout_s, requests.duration_ms)
    return _Whole(table, stats, censored, later())


def _merged(parts: KeyPartitions, timeout_s: float, timeouts_s: dict[str, float]) -> MergedSessions:
    held = HeldPauses()
    found = [
        partition_sessions(part.key_partition(parts.first_ts_us), timeout_s, timeouts_s, held)
        for part in parts.partitions(release=False)
    ]
    return merged_sessions(found, held.statistics())


def test_the_join_is_the_models(kind: str, tmp_path: Path) -> None:
    """`failed_auth_join` maps each failed key as `join_failed_credentials` does, on every
    case `_rows` makes."""
    for seed in range(6):
        source = _source(kind, seed, tmp_path / str(seed))
        requests = read_light_columns(source)
        conn = connections_to_join(source, requests)
        assert conn is not None
        keys = np.asarray(requests.keys, dtype=object)
        joined = join_failed_credentials(keys[requests.key], requests.t_s, requests.status, conn)
        want = dict(zip(keys[requests.key].tolist(), joined.tolist(), strict=True))
        with scan_key_partitions(source, 1, tmp_path) as parts:
            failed = parts.failed_keys
            assert parts.join is None and not parts.partition(0).joined
        numbers = [*range(GOOD, GOOD + FAILED), *range(40, 47)]
        assert failed.to_pylist() == [f"f{k}" for k in numbers]
        join = failed_auth_join(source, failed)
        got = dict(zip(join.failed.to_pylist(), join.target.to_pylist(), strict=True))
        assert got == {k: want[k] for k in got}
        assert got["f40"] == "f40"  # no connection
        assert got["f41"] == "f41"  # nothing after it on its connection
        assert got["f42"] == got["f43"] == "g02"  # two on one connection
        assert got["f44"] == "g04"  # its last connection in order, not in time
        assert got["f45"] == "g05"  # a tie in time: scan order
        assert got["f46"] == "f46"


@pytest.mark.parametrize("count", [1, 3, 16])
@pytest.mark.parametrize("seed", range(4))
def test_partitions_of_joined_keys_are_the_models_sessions(
    kind: str, tmp_path: Path, count: int, seed: int
) -> None:
    source = _source(kind, seed, tmp_path / "t")
    timeout = [20.0, 60.0][seed % 2]
    with np.errstate(invalid="ignore"):
        want = _whole(source, timeout, TIMEOUTS)
        stretched = _whole(source, 1800.0, SENSITIVITY_TIMEOUTS_S)
    with scan_key_partitions(source, count, tmp_path, join_failed_auth=True) as parts:
        assert parts.join is not None
        got = _merged(parts, timeout, TIMEOUTS)
        _assert_same(got, want)
        _assert_same(_merged(parts, 1800.0, SENSITIVITY_TIMEOUTS_S), stretched)
        # Each request's session: a partition's own sessions (local ids) mapped by `ids`.
        requests = read_light_columns(source)
        conn = connections_to_join(source, requests)
        assert conn is not None
        sessions, _ = joined_sessions(requests, conn, None, [], timeout, TIMEOUTS)
        by_row = np.empty(len(requests), np.int64)
        by_row[requests.row[sessions["request"].to_numpy()]] = sessions["session_id"]
        for p, (part, ids) in enumerate(zip(parts.partitions(release=False), got.ids, strict=True)):
            local = sessionize_requests(part.request_columns(parts.first_ts_us), None, [], timeout)
            rows = part.row[local["request"].to_numpy()]
            assert np.array_equal(ids[local["session_id"].to_numpy()], by_row[rows]), p
            keys = part.key_values.to_pylist()
            assert "f44" not in keys  # (joined to g04, which hashes elsewhere when P > 1)
            assert ("g04" in keys) == (p == 4 % count) and ("f41" in keys) == (p == 41 % count)


@pytest.mark.parametrize("count", [1, 3])
def test_failed_keys_on_no_connection_keep_their_own(tmp_path: Path, count: int) -> None:
    """No request with a connection: no key joins another, yet the model sessionizes the
    pandas way (some key failed throughout), and so do the partitions."""
    rows = [{**r, "conn": None} for r in _rows(3)]
    source = TableSource(make_table(_records(rows)))
    with np.errstate(invalid="ignore"):
        want = _whole(source, 60.0, TIMEOUTS)
    with scan_key_partitions(source, count, tmp_path, join_failed_auth=True) as parts:
        assert parts.join is not None
        assert parts.join.target.equals(parts.join.failed)  # each its own
        _assert_same(_merged(parts, 60.0, TIMEOUTS), want)


def test_unjoined_partitions_refuse_and_mixed_ones_are_not_merged(tmp_path: Path) -> None:
    source = _source("table", 0, tmp_path / "t")
    with scan_key_partitions(source, 3, tmp_path) as parts:
        assert len(parts.failed_keys) == FAILED + 7
        with pytest.raises(CrossPartitionJoin, match="failed auth"):
            for part in parts.partitions(release=False):
                partition_sessions(part.key_partition(parts.first_ts_us), 60.0, TIMEOUTS)
    with scan_key_partitions(source, 16, tmp_path, join_failed_auth=True) as parts:
        rows = [part.key_partition(parts.first_ts_us) for part in parts.partitions()]
    held = HeldPauses()
    found = [partition_sessions(r, 60.0, TIMEOUTS, held) for r in rows]
    # (a partition with no failed key left, taken as not joined: the merge refuses it)
    clean = next(r for r in rows if not failed_keys(r.key, r.status, len(r.key_values)).any())
    unmarked = partition_sessions(replace(clean, joined=False), 60.0, TIMEOUTS)
    with pytest.raises(ValueError, match="joined"):
        merged_sessions([*found, unmarked], held.statistics())


def test_a_trace_without_failed_keys_is_scanned_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [r for r in _rows(1) if r["session"].startswith("g")]
    source = TableSource(make_table(_records(rows)))

    def no_join(*args: object) -> None:
        raise AssertionError("a join looked for")

    monkeypatch.setattr(key_partitions, "failed_auth_join", no_join)
    with scan_key_partitions(source, 3, tmp_path, join_failed_auth=True) as parts:
        assert parts.join is None and not len(parts.failed_keys)


@pytest.mark.skipif(
    "TRACEREPLAY_FAILED_TRACE" not in os.environ,
    reason="set TRACEREPLAY_FAILED_TRACE to a trace directory some of whose keys fail auth",
)
def test_a_real_trace_with_failed_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real-sized trace with failed keys (bench/README.md: "Keys that failed auth,
    partitioned") in 16 partitions of its joined keys: the model's sessions block."""
    monkeypatch.undo()  # (the trace's own batches and hashes)
    source = ParquetSource.open(Path(os.environ["TRACEREPLAY_FAILED_TRACE"]))
    with np.errstate(invalid="ignore"):
        want = _whole(source, 1800.0, SENSITIVITY_TIMEOUTS_S)
    with scan_key_partitions(source, 16, tmp_path, join_failed_auth=True) as parts:
        assert len(parts.failed_keys) and parts.join is not None
        _assert_same(_merged(parts, 1800.0, SENSITIVITY_TIMEOUTS_S), want)


def test_the_parameter_facts_are_fed_once_when_the_trace_is_scanned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`params` given each batch of one scan (the first: a join's rescan makes the same
    cells), so its facts and kinds are those of a scan without the join."""
    source = _source("table", 1, tmp_path / "t")
    calls: list[int] = []
    add = ParamFacts.add_batch

    def counted(self: ParamFacts, *args: Any) -> None:
        calls.append(1)
        add(self, *args)

    monkeypatch.setattr(ParamFacts, "add_batch", counted)
    found = []
    for join in (False, True):
        facts, calls[:] = ParamFacts(), []
        with scan_key_partitions(source, 3, tmp_path, join_failed_auth=join, params=facts) as parts:
            assert (parts.join is not None) == join  # (with the join: scanned again)
            found.append(
                (len(calls), facts.held(), facts.endpoint_kinds(parts.names, parts.endpoint_of))
            )
    assert found[0] == found[1] and found[0][0] > 1
