"""The light columns and the sessions' rows computed into arrays other columns let go
(bench/README.md, compare round 11) are the values of the plain computation: every column
its own array of exactly its rows, none sharing memory with another, and `key_time_split`
and `session_rows` equal to the gathers and `np.lexsort` they replace."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.factories import T0
from tests.models.test_frame import _assert_as_requests_frame, _batches
from tracereplay.models.frame import (
    RequestColumns,
    key_time_split,
    read_request_columns,
    session_rows,
    session_stats_by_timeout,
)
from tracereplay.models.key_split import _grouping
from tracereplay.models.sessions import SessionStats


def _trace(n: int, seed: int, in_order: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, max(n // 3, 1), n))  # ties
    if not in_order:
        seconds = rng.permutation(seconds)
    statuses = rng.choice([200, 404, 500, -1], n)
    durations = rng.choice([1.5, 0.0, 250.0, -1.0], n)
    return pa.table(
        {
            "ts": pa.array(
                [T0 + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", "UTC")
            ),
            "duration_ms": pa.array([None if d < 0 else d for d in durations], pa.float64()),
            "session": pa.array([f"s{k}" for k in rng.integers(0, 9, n)], pa.string()),
            "client": pa.array([f"c{k}" for k in rng.integers(0, 3, n)], pa.string()),
            "method": pa.array(rng.choice(["GET", "post"], n).tolist(), pa.string()),
            "path": pa.array(rng.choice(["/a", "/b", "/c"], n).tolist(), pa.string()),
            "status": pa.array([None if s < 0 else int(s) for s in statuses], pa.int16()),
            "error": pa.array(rng.choice(["", "reset", "x"], n).tolist(), pa.string()),
        }
    )


def _arrays(cols: RequestColumns) -> dict[str, np.ndarray]:
    out = {
        "row": cols.row,
        "t_s": cols.t_s,
        "duration_ms": cols.duration_ms,
        "status": cols.status,
        "key": cols.key,
        "method": cols.method,
        "path": cols.path,
    }
    out.update({f"coded {name}": codes for name, (codes, _) in cols.coded.items()})
    return out


@pytest.mark.parametrize(
    ("n", "in_order", "rows"),
    [
        (n, in_order, rows)
        for n, in_order in itertools.product([1, 2, 7, 300], [True, False])
        for rows in ["exact", None, "more"]
    ],
)
def test_the_columns_are_arrays_of_their_own_of_exactly_their_rows(
    n: int, in_order: bool, rows: str | None
) -> None:
    table = _trace(n, seed=n, in_order=in_order)
    known = {"exact": n, "more": n + 50, None: None}[rows]
    batches = _batches(table.drop_columns(["error"]), [n // 3, n // 2], seed=n)
    batches = [
        b.append_column("error", table["error"].slice(at, b.num_rows).combine_chunks())
        for b, at in zip(batches, np.cumsum([0, *(b.num_rows for b in batches)]), strict=False)
    ]
    cols = read_request_columns(batches, source="t", rows=known, coded=["error"])
    _assert_as_requests_frame(cols, table.drop_columns(["error"]))
    order = np.argsort(table["ts"].cast(pa.int64()).to_numpy(), kind="stable")
    codes, values = cols.coded["error"]
    assert values.take(pa.array(codes)).to_pylist() == table["error"].take(order).to_pylist()
    arrays = _arrays(cols)
    for name, array in arrays.items():
        # No view into a larger array (a grown one's room to spare, a reused one's rest).
        assert array.base is None or array.base.nbytes == array.nbytes, name
        assert len(array) == n, name
    for (a, x), (b, y) in itertools.combinations(arrays.items(), 2):
        assert not np.shares_memory(x, y), (a, b)


def _reference_split(r: RequestColumns) -> tuple[np.ndarray, ...]:
    """`key_time_split` by fresh gathers: `order` as `_grouping` gives it
    (tests/models/test_frame.py pins it), a key's first think NaN."""
    order = _grouping(r.key, r.t_s)[0]
    key = r.key[order]
    same_key = np.zeros(len(order), dtype=bool)
    same_key[1:] = key[1:] == key[:-1]
    end = np.nan_to_num(r.duration_ms[order], nan=0.0) / 1000.0
    t = r.t_s[order]
    end += t
    think = np.zeros(len(order))
    np.subtract(t[1:], end[:-1], out=think[1:])
    think = np.maximum(think, 0.0)
    think[~same_key] = np.nan
    return order, key, same_key, np.flatnonzero(~same_key), think, t


def _reference_rows(
    r: RequestColumns, timeout_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`session_rows` as it was before round 11 (sessions numbered by `np.lexsort`),
    from the requests by (key, time), as they were then."""
    order = np.lexsort((r.t_s, r.key))
    key = r.key[order]
    same_key = np.zeros(len(order), dtype=bool)
    same_key[1:] = key[1:] == key[:-1]
    end = np.nan_to_num(r.duration_ms[order], nan=0.0) / 1000.0 + r.t_s[order]
    think = np.zeros(len(order))
    np.subtract(r.t_s[order][1:], end[:-1], out=think[1:])
    think = np.maximum(think, 0.0)
    t = r.t_s[order]
    new = ~same_key
    new[1:] |= (t[1:] - t[:-1]) > timeout_s
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(order)))
    numbered = np.lexsort((r.key[order[starts]], t[starts]))
    sizes, first = sizes[numbered], starts[numbered]
    placed = np.cumsum(sizes) - sizes
    rows = np.repeat(first - placed, sizes) + np.arange(len(order))
    pause = think[rows]
    pause[placed] = np.nan
    return order[rows], pause, sizes


def _columns(seed: int) -> RequestColumns:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 4000))
    keys = [3, 40, 70_000][seed % 3]
    t = np.sort(rng.integers(0, 900, n) * [1.0, 0.5, 7.25][seed % 3])  # ties across keys
    if seed % 4 == 3:
        t = rng.permutation(t)  # not in time order: the lexsort's way
    duration = rng.choice([0.0, 1.5, 400.0, 90_000.0, np.nan], n)
    if seed % 5 == 4:  # durations nan_to_num makes finite, as the thinks read them
        duration[rng.integers(0, 2, n) == 1] = rng.choice([np.inf, -np.inf, 1e308], n)[:1]
    return RequestColumns(
        row=np.arange(n, dtype=np.int32),
        first_ts=pd.Timestamp(T0),
        t_s=t,
        duration_ms=duration,
        status=np.full(n, 200.0),
        key=rng.integers(0, keys, n).astype(np.int32),
        key_values=pa.array([f"k{i}" for i in range(keys)]),
        method=np.zeros(n, np.int32),
        methods=["GET", "NONE"],
        path=np.zeros(n, np.int32),
        paths=pa.array(["/", None]),
    )


@pytest.mark.parametrize("seed", range(16))
def test_split_and_rows_are_the_plain_gathers_and_lexsorts(seed: int) -> None:
    r = _columns(seed)
    split = key_time_split(r)
    assert split.duration_ms is None
    for got, want in zip(split[:-1], _reference_split(r), strict=True):
        assert np.array_equal(got, want, equal_nan=True)
    # Asked for, the durations in that order come too; the rest is the same.
    with_durations = key_time_split(r, durations=True)
    assert np.array_equal(with_durations.duration_ms, r.duration_ms[split.order], equal_nan=True)
    for got, want in zip(with_durations[:-1], split[:-1], strict=True):
        assert np.array_equal(got, want, equal_nan=True)
        assert got.dtype == want.dtype
    for timeout in (30.0, 600.0):
        want_rows = _reference_rows(r, timeout)
        for given in (None, split):
            for got, want in zip(session_rows(r, timeout, given), want_rows, strict=True):
                assert np.array_equal(got, want, equal_nan=True)
    # The caller's split is read, never written.
    for got, want in zip(split[:-1], _reference_split(r), strict=True):
        assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize("in_order", [True, False])
def test_statuses_read_as_float32_are_the_float64_values(in_order: bool) -> None:
    table = _trace(200, seed=3, in_order=in_order).drop_columns(["error"])
    wide = read_request_columns(table.to_batches(max_chunksize=64), source="t", rows=200)
    narrow = read_request_columns(
        table.to_batches(max_chunksize=64), source="t", rows=200, status_dtype=np.float32
    )
    assert narrow.status.dtype == np.float32
    assert np.isnan(wide.status).any()
    assert np.array_equal(narrow.status.astype(np.float64), wide.status, equal_nan=True)
    for name, array in _arrays(narrow).items():
        if name != "status":
            assert np.array_equal(array, _arrays(wide)[name], equal_nan=True), name


def _reference_stats(r: RequestColumns, timeout_s: float) -> SessionStats:
    """`session_stats_by_timeout` as it was before issue 15's round 16: from the requests
    by (key, time), each statistic over the sessions in (key, start) order."""
    order = np.lexsort((r.t_s, r.key))
    key, t = r.key[order], r.t_s[order]
    end = np.nan_to_num(r.duration_ms[order], nan=0.0) / 1000.0 + t
    think = np.zeros(len(order))
    np.subtract(t[1:], end[:-1], out=think[1:])
    think = np.maximum(think, 0.0)
    new = np.ones(len(order), dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | ((t[1:] - t[:-1]) > timeout_s)
    starts = np.flatnonzero(new)
    last = np.append(starts[1:], len(t)) - 1
    lengths = last - starts + 1
    thinks = think[~new]
    return SessionStats(
        sessions=len(starts),
        mean_length=float(np.mean(lengths)),
        median_length=float(np.median(lengths)),
        mean_duration_s=float(np.mean(t[last] - t[starts])),
        median_think_s=float(np.median(thinks)) if len(thinks) else 0.0,
    )


@pytest.mark.parametrize("seed", range(16))
def test_stats_by_timeout_are_the_lexsort_ones_to_the_bit(seed: int) -> None:
    r = _columns(seed)
    if not len(r):
        return
    # Times no sum of which is exact (the mean of durations depends on their order).
    t = r.t_s + np.random.default_rng(seed).random(len(r)) / 3
    r = replace(r, t_s=t if seed % 4 == 3 else np.sort(t))
    timeouts = {"30s": 30.0, "10m": 600.0, "same": 600.0, "long": 1e9}
    got = session_stats_by_timeout(r, timeouts)
    for name, timeout in timeouts.items():
        assert got[name] == _reference_stats(r, timeout), name  # floats unrounded
