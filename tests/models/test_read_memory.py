"""The read's transient memory (issue 15, models/light_columns.py, time_order.py,
string_codes.py): durations and statuses with no value (a trace of requests only) are not
gathered into fresh arrays, one with a value in any batch still is, and the ranking of a
string column holds at most two copies of its values at once."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.models.test_read_files import _write
from tracereplay.models import light_columns
from tracereplay.models.light_columns import read_request_columns
from tracereplay.models.source import ParquetSource
from tracereplay.models.string_codes import CHUNK_ROWS, POOL, Coding, local, ranked
from tracereplay.models.time_order import TimeSort, numbers_in_time_order

ROWS = 1_000_000
"""Enough rows that the gathers' chunks (`CHUNK_ROWS`) are small beside the columns."""
BATCH_ROWS = 100_000
SESSIONS = pa.array([f"s{i}" for i in range(997)])
PATHS = pa.array([f"/p/{i}" for i in range(5003)])


def _batches(
    durations: bool, statuses: bool, valued_batch: int | None = None, seed: int = 0
) -> Iterator[pa.RecordBatch]:
    """Requests in shuffled time order; durations and statuses all null unless asked for
    (`valued_batch`: only that batch has them; -1: every batch, a third of them null)."""
    rng = np.random.default_rng(seed)
    ts = rng.permutation(ROWS).astype(np.int64) * 1000 + 1_700_000_000_000_000
    for at in range(0, ROWS, BATCH_ROWS):
        n = min(BATCH_ROWS, ROWS - at)
        valued = valued_batch in (None, -1, at // BATCH_ROWS)
        null = rng.random(n) < 1 / 3 if valued_batch == -1 else None
        duration = rng.random(n) * 100 if durations and valued else None
        status = rng.choice([200, 404, 500], n).astype(np.int16) if statuses and valued else None
        if duration is not None and null is not None:
            duration = pa.array(duration, mask=null)
        if status is not None and null is not None:
            status = pa.array(status, mask=null)
        yield pa.record_batch(
            {
                "ts": pa.array(ts[at : at + n], pa.timestamp("us", tz="UTC")),
                "duration_ms": pa.array(duration, pa.float64())
                if duration is not None
                else pa.nulls(n, pa.float64()),
                "session": _strings(SESSIONS, at, n),
                "client": pa.nulls(n, pa.string()),
                "method": pa.array(["GET"] * n),
                "path": _strings(PATHS, at, n),
                "status": pa.array(status, pa.int16())
                if status is not None
                else pa.nulls(n, pa.int16()),
            }
        )


def _strings(values: pa.Array, at: int, n: int) -> pa.DictionaryArray:
    """Rows `at`..`at + n` of `values` repeated, as a dictionary column (as read)."""
    indices = (np.arange(at, at + n) % len(values)).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(indices), values)


def _read(**kwargs: object) -> tuple[object, int]:
    """`read_request_columns` of `_batches(**kwargs)` and the peak of numpy's memory
    while it ran, above what the batches held (numpy tells tracemalloc of its arrays)."""
    batches = list(_batches(**kwargs))  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        columns = read_request_columns(
            iter(batches), source="test", rows=ROWS, status_type=pa.int16()
        )
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return columns, peak


def _want(batches: list[pa.RecordBatch]) -> tuple[np.ndarray, np.ndarray]:
    """Durations and statuses in time order, ties in scan order, as an Arrow cast reads
    them (nulls NaN)."""
    table = pa.Table.from_batches(batches)
    order = np.argsort(np.asarray(table["ts"].cast(pa.int64())), kind="stable")
    duration = np.asarray(table["duration_ms"].to_numpy(zero_copy_only=False), np.float64)
    status = np.asarray(table["status"].cast(pa.float32()).to_numpy(zero_copy_only=False))
    return duration[order], status[order]


@pytest.mark.parametrize(
    ("durations", "statuses", "valued_batch"),
    [(False, False, None), (True, False, None), (False, True, None), (True, True, None),
     (True, True, 0), (True, True, 9), (False, True, 4), (True, True, -1), (True, False, -1)],
)  # fmt: skip
def test_numbers_in_time_order_whether_or_not_they_have_values(
    durations: bool, statuses: bool, valued_batch: int | None
) -> None:
    columns, _ = _read(durations=durations, statuses=statuses, valued_batch=valued_batch)
    duration, status = _want(list(_batches(durations, statuses, valued_batch=valued_batch)))
    assert np.array_equal(columns.duration_ms, duration, equal_nan=True)  # type: ignore[attr-defined]
    assert columns.status.dtype == np.float32  # type: ignore[attr-defined]
    assert np.array_equal(columns.status, status, equal_nan=True)  # type: ignore[attr-defined]


@pytest.mark.parametrize("missing", [(), ("duration",), ("status",), ("duration", "status")])
def test_numbers_with_no_value_are_not_gathered_into_fresh_arrays(
    missing: tuple[str, ...],
) -> None:
    """Durations (8 B a request) or statuses (4 B) all NaN, as a trace of requests only
    has them: returned as they are, no fresh array made for them (real10M's read held
    127 MB more at its peak); the statuses' memory is then not the codes' to reuse."""
    n = 300_000
    rng = np.random.default_rng(7)
    ts = rng.permutation(n).astype(np.int64)
    numbers = {
        "ts": ts,
        "duration": np.full(n, np.nan) if "duration" in missing else rng.random(n),
        "status": np.full(n, np.nan, np.float32) if "status" in missing
        else rng.random(n).astype(np.float32),
    }  # fmt: skip
    duration, status = numbers["duration"], numbers["status"]
    want = np.argsort(ts, kind="stable")
    with ThreadPoolExecutor(2) as pool:
        sort = TimeSort(ts, n, pool, 2)
        sort.order()
    tracemalloc.start()
    try:
        got_duration, got_status, spare = numbers_in_time_order(n, sort, numbers, None, missing)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got_duration, duration[want], equal_nan=True)
    assert np.array_equal(got_status, status[want], equal_nan=True)
    fresh = 8 * n * ("duration" not in missing) + 4 * n * ("status" not in missing)
    chunks = 2 * 8 * CHUNK_ROWS  # the positions of a chunk, and its cast
    assert fresh <= peak <= fresh + chunks
    assert (got_duration is duration) == ("duration" in missing)
    assert (got_status is status) == ("status" in missing)
    assert (spare is status) == ("status" not in missing)


def _used(values: list[list[str]]) -> tuple[np.ndarray, list]:
    """Codes and `Coding.used` of string batches (one dictionary each)."""
    rows = sum(len(v) for v in values)
    codes = np.empty(rows, np.int32)
    coding = Coding()
    at = 0
    for one in values:
        coding.add(codes, at, *local(pa.array(one).dictionary_encode()))
        at += len(one)
    return codes, coding.used()


def test_ranking_holds_two_copies_of_the_values_at_most() -> None:
    """Arrow's peak while ranking: the batches' values, their concatenation and the
    sorted copy were all held at once (3 copies and more); now the batches' are let go
    once concatenated, the concatenation once sorted."""
    rng = np.random.default_rng(3)
    batches = [[f"/a/fairly/long/path/{int(x):09d}" for x in rng.integers(0, 10**9, 20_000)]
               for _ in range(10)]  # fmt: skip
    old = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(old)  # Arrow's peak of the batches' values and the ranking
    pa.set_memory_pool(pool)
    try:
        codes, used = _used(batches)
        copy = sum(u.values.nbytes for u in used)
        distinct = ranked(codes, used).to_pylist()
        peak = pool.max_memory()
        assert used == []  # emptied as read
        del used  # (no array of the pool's kept once it is let go)
    finally:
        pa.set_memory_pool(old)
    assert distinct == sorted({s for one in batches for s in one})
    every = [s for one in batches for s in one]
    assert [distinct[c] for c in codes] == every
    assert peak <= 2.5 * copy


_PROXIES: list[pa.MemoryPool] = []
"""Pools that stood in for Arrow's default one in a test, kept alive: an array they made
may outlive the test (freeing it through a dead pool would crash)."""


def test_a_parquet_read_uses_the_c_library_heap_and_gives_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files' batches, their dictionaries' values and their ranking come from `POOL`
    (glibc's heap), not Arrow's default pool (mimalloc kept ~40-45 MB of what the read
    freed, usable by Arrow alone), and the heap's free memory is given back once read."""
    _write(tmp_path / "t", files=3, rows=400, seed=11)
    trims: list[None] = []
    monkeypatch.setattr(light_columns, "give_back_freed", lambda: trims.append(None))
    old = pa.default_memory_pool()
    proxy = pa.proxy_memory_pool(old)
    _PROXIES.append(proxy)
    before = POOL.max_memory()
    pa.set_memory_pool(proxy)
    try:
        columns = light_columns.read_light_columns(
            ParquetSource.open(tmp_path / "t"), coded=["error"]
        )
    finally:
        pa.set_memory_pool(old)
    assert len(columns) == 1200
    assert proxy.max_memory() <= 8192  # tiny arrays (a null, NO_SESSION): ~3 KB; old: 87 KB
    assert POOL.max_memory() > before or POOL.bytes_allocated() > 0
    assert len(trims) == 1
