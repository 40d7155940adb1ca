"""The key partitions of a trace with failed-auth keys, joined without a second scan
(models/failed_auth_join.py `AuthFailedRows`, `move_joined`): the spills are those of a
scan keyed by each row's joined key, to the row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pyarrow import ipc

from tests.models.test_partition_failed_auth import (  # (its fixtures: kind, small_batches)
    _source,
    kind,
    small_batches,
)
from tests.models.trace_first_keys import first_request_keys
from tracereplay.models import failed_auth_join, key_partitions
from tracereplay.models.frame import connections_to_join, read_light_columns
from tracereplay.models.key_partitions import (
    KEY_FILE,
    ROW_FILE,
    KeyPartitions,
    scan_key_partitions,
)
from tracereplay.models.partition_reads import moved_first_keys
from tracereplay.models.sessions import join_failed_credentials

__all__ = ["kind", "small_batches"]


@pytest.fixture(autouse=True)
def small_spills(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows that failed auth spilled in several record batches."""
    monkeypatch.setattr(failed_auth_join, "AUTH_FAILED_FLUSH_ROWS", 7)


def _spilled(parts: KeyPartitions, p: int) -> tuple[pa.Table, list[str]]:
    """Partition `p`'s row spill as written (scan order) and each row's key string."""
    with pa.OSFile(str(parts.directory / ROW_FILE.format(p))) as file:
        rows = ipc.open_file(file).read_all()
    with pa.OSFile(str(parts.directory / KEY_FILE.format(p))) as file:
        keys = ipc.open_file(file).read_all().column("key").to_pylist()
    return rows, [keys[k] for k in rows.column("key").to_pylist()]


def _by_row(parts: KeyPartitions) -> dict[int, tuple[Any, ...]]:
    """Each row's spilled values but its key (ts, cell, duration, status), by scan position."""
    found = {}
    for p in range(parts.count):
        rows, _ = _spilled(parts, p)
        names = ("row", "ts", "cell", "duration_ms", "status")
        for row, *values in zip(*(rows.column(c).to_pylist() for c in names), strict=True):
            found[row] = tuple(values)
    return found


def _joined_keys(source: Any) -> np.ndarray:
    """Each row's joined key (the model's `join_failed_credentials`), by scan position."""
    requests = read_light_columns(source)
    conn = connections_to_join(source, requests)
    assert conn is not None
    keys = np.asarray(requests.keys, dtype=object)[requests.key]
    joined = np.empty(len(keys), object)
    joined[requests.row] = join_failed_credentials(keys, requests.t_s, requests.status, conn)
    return joined


@pytest.mark.parametrize("count", [1, 3, 16])
def test_the_spills_are_a_scan_by_joined_keys(kind: str, tmp_path: Path, count: int) -> None:
    """Every partition's spill holds the rows whose joined key hashes to it, in scan order,
    each with its own values and its joined key, and its key spill no other key (none of
    the keys joined away): what `partition_samples` reads in place and `partition` ranks."""
    for seed in range(4):
        source = _source(kind, seed, tmp_path / str(seed))
        joined = _joined_keys(source)
        with scan_key_partitions(source, count, tmp_path) as plain:
            want = _by_row(plain)
        with scan_key_partitions(source, count, tmp_path, join_failed_auth=True) as parts:
            assert parts.join is not None
            seen = 0
            for p in range(count):
                rows, keys = _spilled(parts, p)
                row = rows.column("row").to_numpy()
                assert (np.diff(row) > 0).all(), p  # scan order
                assert keys == joined[row].tolist(), p
                home = key_partitions.partition_of(pa.array(keys, pa.string()), count)
                assert (home == p).all(), p
                with pa.OSFile(str(parts.directory / KEY_FILE.format(p))) as file:
                    spilled = set(ipc.open_file(file).read_all().column("key").to_pylist())
                assert spilled == set(keys), p  # (no key joined away left behind)
                for r, *values in zip(
                    row.tolist(), *(rows.column(c).to_pylist() for c in
                                    ("ts", "cell", "duration_ms", "status")), strict=True
                ):  # fmt: skip
                    assert repr(tuple(values)) == repr(want[r]), (p, r)  # (nan: nan)
                seen += len(row)
            assert seen == len(joined)


def test_the_trace_is_scanned_once_and_the_join_is_the_scans(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With failed keys the light columns are scanned once (the failed keys' rows kept
    by it, not scanned for again), and the join found from the rows kept is the one two
    scans find."""
    scans: list[object] = []
    batches, last_rows = key_partitions.scan_batches, failed_auth_join._last_rows

    def counted(source: Any, columns: Any = None, *args: Any) -> Any:
        scans.append(columns)
        return batches(source, columns, *args)

    def spied(*args: Any) -> Any:
        scans.append("last rows")
        return last_rows(*args)

    monkeypatch.setattr(key_partitions, "scan_batches", counted)
    monkeypatch.setattr(failed_auth_join, "_last_rows", spied)
    for seed in range(4):
        source = _source(kind, seed, tmp_path / str(seed))
        scans.clear()
        with scan_key_partitions(source, 3, tmp_path, join_failed_auth=True) as parts:
            assert parts.join is not None
            join, failed = parts.join, parts.failed_keys
        # (the light columns once; then the join's scan of the connections' rows)
        assert scans == [None, failed_auth_join.JOIN_COLUMNS]
        scanned = failed_auth_join.failed_auth_join(source, failed)
        assert "last rows" in scans
        assert join.failed.equals(scanned.failed) and join.target.equals(scanned.target)
        assert not join.target.equals(join.failed)  # (some key joined another)


@pytest.mark.parametrize("count", [1, 3])
def test_the_first_requests_own_keys_need_no_read(kind: str, tmp_path: Path, count: int) -> None:
    """`moved_first_keys` (each session's key, the moved rows' own keys where they come
    first) is `first_request_keys` (read from the trace) for any rows taken as the
    sessions' first: here every row, in a shuffled order, keyed by its partition's key."""
    for seed in range(4):
        source = _source(kind, seed, tmp_path / str(seed))
        with scan_key_partitions(source, count, tmp_path, join_failed_auth=True) as parts:
            joined: dict[int, str] = {}
            for p in range(count):
                rows, keys = _spilled(parts, p)
                joined.update(zip(rows.column("row").to_pylist(), keys, strict=True))
            assert len(parts.moved_rows) and (np.diff(parts.moved_rows) > 0).all()
            firsts = np.random.default_rng(seed).permutation(len(joined))
            session_key = pa.array([joined[r] for r in firsts.tolist()], pa.string())
            got = moved_first_keys(session_key, firsts, parts.moved_rows, parts.moved_keys)
        want = first_request_keys(source, firsts)
        assert got.to_pylist() == want.to_pylist()
        assert not session_key.equals(want)  # (some first request's key is not its session's)
