"""`read_light_columns` reading a trace's files at once, each into its slice, is the trace
read in one scan of plain strings; the time order sorted as keys piece by piece is the
stable argsort (models/light_columns.py, models/time_order.py)."""

from __future__ import annotations

import dataclasses
import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.factories import T0, make_record, make_table
from tracereplay.errors import TraceCorruptError
from tracereplay.models import light_columns, time_order
from tracereplay.models.frame import (
    LIGHT_COLUMNS,
    RequestColumns,
    read_light_columns,
    read_request_columns,
)
from tracereplay.models.source import ParquetSource
from tracereplay.models.time_order import TimeSort, in_time_order
from tracereplay.trace import Trace

_NAMES = [None, "", "a", "b", "é", "(no session)", "c-1", "Z"]


def _write(directory: Path, files: int, rows: int, seed: int) -> None:
    """`files` Parquet files of `rows` requests each, in row groups of various sizes,
    times out of order and tied across files, strings with nulls and empties."""
    rng = np.random.default_rng(seed)
    directory.mkdir()
    for f in range(files):
        records = [
            make_record(
                ts=T0 + timedelta(seconds=int(rng.integers(0, 3 * rows)) + 2 * f),
                session=_NAMES[rng.integers(len(_NAMES))],
                client=_NAMES[rng.integers(len(_NAMES))],
                method=["GET", "post", "Delete"][rng.integers(3)],
                path=f"/p/{rng.integers(0, rows // 2)}/{f % 2}",
                status=[200, 404, None][rng.integers(3)],
                duration_ms=[1.5, None, 7.25][rng.integers(3)],
                error=_NAMES[rng.integers(len(_NAMES))],
            )
            for _ in range(rows)
        ]
        groups = [rows, 17, 64][f % 3]
        pq.write_table(make_table(records), directory / f"part-{f:06d}.parquet", groups)


def _arrays(cols: RequestColumns) -> dict[str, Any]:
    codes, values = cols.coded["error"]
    return {
        "row": cols.row, "t_s": cols.t_s, "duration_ms": cols.duration_ms,
        "status": cols.status, "key": cols.key, "method": cols.method, "path": cols.path,
        "error": codes, "keys": cols.keys, "methods": cols.methods,
        "paths": cols.paths.to_pylist(), "errors": values.to_pylist(), "first": cols.first_ts,
    }  # fmt: skip


def _assert_same(got: RequestColumns, want: RequestColumns) -> None:
    for (name, a), b in zip(_arrays(got).items(), _arrays(want).values(), strict=True):
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
        else:
            assert a == b, name


@pytest.mark.parametrize(
    ("threads", "batch_rows", "sort_rows", "status_dtype"),
    [
        (2, 1 << 17, 1 << 16, np.float32),
        (2, 16, 7, np.float64),
        (1, 23, 1, np.float32),
        (3, 1 << 17, 50, np.float64),
    ],
)
def test_files_read_at_once_are_the_trace_read_in_one_scan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    threads: int,
    batch_rows: int,
    sort_rows: int,
    status_dtype: type[np.floating[Any]],
) -> None:
    _write(tmp_path / "t", files=5, rows=300, seed=threads + batch_rows)
    source = ParquetSource.open(tmp_path / "t")
    # Plain strings, statuses read as `status_dtype` (no status type given: not as float32
    # whatever `status_dtype`, as `read_light_columns` reads the trace's int16).
    plain = read_request_columns(
        source.trace.to_batches([*LIGHT_COLUMNS, "error"], batch_size=97),
        source="t", coded=["error"], status_dtype=status_dtype,
    )  # fmt: skip
    # Batches of a row group share its dictionary; the times sorted in pieces of
    # `sort_rows` (1: every row its own piece).
    monkeypatch.setattr(light_columns, "READ_THREADS", threads)
    monkeypatch.setattr(light_columns, "SCAN_BATCH_ROWS", batch_rows)
    monkeypatch.setattr(time_order, "SORT_ROWS", sort_rows)
    cols = read_light_columns(source, coded=["error"], status_dtype=status_dtype)
    _assert_same(cols, plain)
    assert len(set(cols.row.tolist())) == 1500 and np.all(np.diff(cols.t_s) >= 0)


def test_a_file_holding_other_rows_than_its_footer_says_is_a_corrupt_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "t", files=2, rows=40, seed=1)
    files = Trace.dictionary_files

    def fewer(self: Trace, *args: Any, **options: Any) -> Any:
        found = files(self, *args, **options)
        return [dataclasses.replace(found[0], rows=39), *found[1:]]

    monkeypatch.setattr(Trace, "dictionary_files", fewer)
    with pytest.raises(TraceCorruptError, match="not the 39 its footer says"):
        read_light_columns(ParquetSource.open(tmp_path / "t"))


def _in_time_order(
    ts: np.ndarray, capacity: int, threads: int, status_dtype: type[np.floating[Any]] | None
) -> tuple[Any, ...]:
    """`in_time_order` of `ts` in an array of `capacity` (a grown array's room to spare),
    other columns made of the scan positions (statuses float32, given as `status_dtype`)."""
    n = len(ts)
    room = np.zeros(capacity, np.int64)
    room[:n] = ts
    numbers = {
        "ts": room,
        "duration": np.arange(capacity, dtype=np.float64),
        "status": np.arange(capacity, dtype=np.float32),
    }
    codes = {name: np.arange(capacity, dtype=np.int32) for name in ("key", "path")}
    with ThreadPoolExecutor(2) as pool:
        sort = TimeSort(numbers["ts"], n, pool, threads)
    return in_time_order(n, sort, numbers, codes, status_dtype)


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    one = np.array([7], np.int64)
    ties = np.array([3, 3, 1, 1, 2, 3, 1], np.int64)
    big = rng.integers(0, 40, 5000).astype(np.int64)
    runs = np.concatenate([np.sort(rng.integers(i * 50, i * 50 + 80, 700)) for i in range(9)])
    out = [one, ties, np.sort(big), big, runs, -ties]
    # Spans of 2, 3 and 4 16-bit digits (the piece sort's radix passes, then its fallback),
    # each value drawn from few so that ties span pieces, one value at each bit's edge.
    for bits in (17, 33, 49):
        values = np.concatenate([rng.integers(0, 1 << bits, 40), 1 << np.arange(bits)])
        out.append(10**12 + rng.choice(values, 3000).astype(np.int64))
    for n in (2, 100, 1000):
        room = 1 << (63 - max(1, (n - 1).bit_length()))  # the widest span keys hold, + 1
        for span in (room - 1, room):
            times = rng.integers(0, 9, n).astype(np.int64) + 10**12
            times[rng.integers(n)] = 10**12 + span
            out.append(times)
    return out


@pytest.mark.parametrize("case", range(15))
def test_a_piece_of_times_is_sorted_as_its_keys(case: int) -> None:
    """A piece sorted on its own (a radix sort of its time digits, or the fallback sort)
    is its keys in order: the merges after it would mend a wrong one unseen."""
    ts = _cases()[case]
    first, shift, at = int(ts.min()) - 5, max(1, (len(ts) + 99).bit_length()), 100
    if (int(ts.max()) - first) >> (63 - shift):
        pytest.skip("the span leaves no room for positions: np.argsort sorts these")
    keys = ((ts - first) << shift) | np.arange(at, at + len(ts))
    piece = ts.copy()
    time_order._keyed(piece, first, shift, at)
    assert np.array_equal(piece, np.sort(keys))


@pytest.mark.parametrize(
    ("case", "pieces", "threads"),
    [
        (case, pieces, 1 + case % 3)
        for case, pieces in itertools.product(range(15), [1 << 16, 64, 1])
    ],
)
def test_the_time_order_is_the_stable_argsort(
    monkeypatch: pytest.MonkeyPatch, case: int, pieces: int, threads: int
) -> None:
    monkeypatch.setattr(time_order, "SORT_ROWS", pieces)
    ts = _cases()[case]
    n = len(ts)
    order = np.argsort(ts, kind="stable")
    # Statuses as read (float32) or as float64: each column gathered into the memory of
    # one gathered before it, whatever its dtype; a grown array's room is not kept.
    for capacity, status_dtype in itertools.product((n, n + 9), (None, np.float64)):
        got = _in_time_order(ts, capacity, threads, status_dtype)
        first, t_s, duration_ms, status, row, codes = got
        assert first == ts.min()
        assert row.dtype == np.int32 and np.array_equal(row, order)
        assert np.array_equal(t_s, (ts[order] - ts.min()) / 1_000_000)
        assert np.array_equal(duration_ms, order.astype(np.float64))
        assert status.dtype == (status_dtype or np.float32)
        assert np.array_equal(status, order.astype(status.dtype))
        for name in ("key", "path"):
            assert codes[name].dtype == np.int32 and np.array_equal(codes[name], order)
        for array in (t_s, duration_ms, status, row, codes["key"], codes["path"]):
            assert len(array) == n and (array.base is None or array.base.nbytes == array.nbytes)


class _CountingDataset:
    """A dataset that counts its `count_rows` calls (the rest: the dataset's own)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset, self.counts = dataset, 0

    def count_rows(self) -> int:
        self.counts += 1
        return int(self.dataset.count_rows())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dataset, name)


def test_a_trace_counts_its_rows_once(tmp_path: Path) -> None:
    """`Trace.num_rows` reads every file's footer once, however often asked (the model
    asks before its read, for the partitions, the preload and the read); a trace made of
    other files (`dataclasses.replace`) counts its own."""
    _write(tmp_path / "t", 3, 40, seed=5)
    trace = ParquetSource.open(tmp_path / "t").trace
    counting = _CountingDataset(trace.dataset)
    counted = dataclasses.replace(trace, dataset=counting)
    assert [counted.num_rows for _ in range(3)] == [120] * 3 and counting.counts == 1
    first = _one_file(trace, 0)
    one = dataclasses.replace(counted, dataset=_CountingDataset(first))
    assert one.num_rows == 40 and counted.num_rows == 120


def _one_file(trace: Trace, index: int) -> Any:
    """The dataset of the trace's file `index` alone."""
    import pyarrow.dataset as ds

    fragment = list(trace.dataset.get_fragments())[index]
    return ds.FileSystemDataset(
        [fragment], trace.dataset.schema, trace.dataset.format, trace.dataset.filesystem
    )
