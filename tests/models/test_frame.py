"""`frame.read_request_columns` from any mix of plain and dictionary-encoded batches (as
Parquet's dictionaries are read by `read_light_columns`) gives `requests_frame`'s
requests, and the radix order of sessionizing is `np.lexsort`'s."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0, make_record, make_table, write_trace
from tracereplay.errors import TraceCorruptError, TraceEmptyError
from tracereplay.models.frame import (
    LIGHT_COLUMNS,
    RequestColumns,
    read_light_columns,
    read_request_columns,
    requests_frame,
    with_endpoints,
)
from tracereplay.models.key_split import _grouping, grouped
from tracereplay.models.source import ParquetSource
from tracereplay.trace import TraceMetadata, open_writer

_NAMES = st.sampled_from([None, "", "a", "b", "é", "(no session)", "c-1"])
_REQUEST = st.tuples(
    st.integers(0, 30),  # seconds after T0: ties
    _NAMES,  # session
    _NAMES,  # client
    st.sampled_from(["GET", "get", "Post", "DELETE"]),  # a trace's are never null
    st.sampled_from(["/a", "/b?x=1", "/é", ""]),
    st.sampled_from([200, 404, 500, None]),
    st.sampled_from([1.5, 0.0, None]),
)


def _table(requests: list[Any], with_client: bool) -> pa.Table:
    columns = {
        "ts": pa.array([T0 + timedelta(seconds=r[0]) for r in requests], pa.timestamp("us", "UTC")),
        "duration_ms": pa.array([r[6] for r in requests], pa.float64()),
        "session": pa.array([r[1] for r in requests], pa.string()),
        "client": pa.array([r[2] for r in requests], pa.string()),
        "method": pa.array([r[3] for r in requests], pa.string()),
        "path": pa.array([r[4] for r in requests], pa.string()),
        "status": pa.array([r[5] for r in requests], pa.int16()),
    }
    if not with_client:
        del columns["client"]
    return pa.table(columns)


def _as_dictionary(column: pa.Array, extra: list[str], rng: np.random.Generator) -> pa.Array:
    """The column as a dictionary array whose dictionary also holds values no row uses,
    in a shuffled order (as a Parquet file's dictionary may)."""
    values = sorted({v for v in column.to_pylist() if v is not None} | set(extra))
    values = [values[i] for i in rng.permutation(len(values))]
    where = {v: i for i, v in enumerate(values)}
    indices = pa.array([None if v is None else where[v] for v in column.to_pylist()], pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))


def _batches(table: pa.Table, cuts: list[int], seed: int) -> list[pa.RecordBatch]:
    """`table` cut into batches; each string column of each batch plain, dictionary-encoded
    with unused values, or a slice of one dictionary array shared by every batch."""
    rng = np.random.default_rng(seed)
    shared = {
        name: _as_dictionary(table[name].combine_chunks(), ["zz", "unused"], rng)
        for name in ("session", "client", "method", "path")
        if name in table.column_names
    }
    out = []
    bounds = [0, *sorted({min(c, table.num_rows) for c in cuts}), table.num_rows]
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        batch = table.slice(lo, hi - lo).combine_chunks().to_batches()[0]
        arrays = []
        for name in batch.schema.names:
            column = batch.column(name)
            way = rng.integers(3) if name in shared else 0
            if way == 1:
                column = _as_dictionary(column, ["unused", f"x{lo}"], rng)
            elif way == 2:
                column = shared[name].slice(lo, hi - lo)
            arrays.append(column)
        out.append(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names))
    return out


def _assert_as_requests_frame(cols: RequestColumns, table: pa.Table) -> None:
    df = requests_frame(table)
    scan_ts = table["ts"].cast(pa.int64()).to_numpy()
    assert np.array_equal(cols.row, np.argsort(scan_ts, kind="stable"))
    assert np.array_equal(cols.t_s, df["t_s"].to_numpy(float))
    assert [cols.keys[k] for k in cols.key] == df["session_key"].tolist()
    assert cols.keys == sorted(set(df["session_key"]))  # every key used, sorted, once
    assert [cols.methods[m] for m in cols.method] == df["method"].tolist()
    raw = [m for m in table["method"].to_pylist() if m is not None]
    assert cols.methods == [m.upper() for m in sorted(set(raw))] + ["NONE"]
    assert cols.paths.take(pa.array(cols.path)).to_pylist() == df["path"].tolist()
    used = sorted({p for p in df["path"] if p is not None})
    assert cols.paths.to_pylist() == [*used, None]
    assert np.array_equal(cols.status, df["status"].to_numpy(float), equal_nan=True)
    assert np.array_equal(cols.duration_ms, df["duration_ms"].to_numpy(float), equal_nan=True)
    assert cols.first_ts == df["ts"].iloc[0]
    for array in (cols.key, cols.path, cols.row):
        assert array.dtype == np.int32
    assert cols.method.dtype == np.int8  # (a few methods: the codes narrowed)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(_REQUEST, min_size=1, max_size=40),
    st.lists(st.integers(0, 40), max_size=5),
    st.booleans(),
    st.sampled_from([None, 1, 1000]),
    st.integers(0, 99),
)
def test_any_mix_of_plain_and_dictionary_batches_reads_as_requests_frame(
    requests: list[Any], cuts: list[int], with_client: bool, rows: int | None, seed: int
) -> None:
    table = _table(requests, with_client)
    batches = _batches(table, cuts, seed)
    # rows: unknown (the arrays grow), too few (they grow), more than there are.
    cols = read_request_columns(batches, source="t", rows=rows)
    _assert_as_requests_frame(cols, table)


def test_a_coded_column_reads_as_codes_into_its_sorted_values() -> None:
    table = _table([(i, "s", "c", "GET", "/a", 200, 1.0) for i in (3, 1, 2, 1)], True)
    errors = pa.array(["timeout", None, "", "reset"])
    batches = _batches(table.append_column("error", errors), [1, 3], seed=4)
    cols = read_request_columns(batches, source="t", coded=["error"])
    codes, values = cols.coded["error"]
    assert values.to_pylist() == ["", "reset", "timeout", None]
    # ts order: 1 (None), 1 ("reset"), 2 (""), 3 ("timeout"): ties in scan order
    assert values.take(pa.array(codes)).to_pylist() == [None, "reset", "", "timeout"]


def test_a_null_method_reads_none_and_a_null_path_the_null_after_the_paths() -> None:
    table = _table(
        [(0, "s", "c", None, None, 200, 1.0), (1, "s", "c", "get", "/a", 200, 1.0)], True
    )
    for seed in range(3):
        cols = read_request_columns(_batches(table, [1], seed), source="t")
        assert [cols.methods[m] for m in cols.method] == ["NONE", "GET"]
        assert cols.paths.take(pa.array(cols.path)).to_pylist() == [None, "/a"]


def test_no_request_is_an_empty_trace() -> None:
    table = _table([(0, "s", "c", "GET", "/a", 200, 1.0)], True).slice(0, 0)
    with pytest.raises(TraceEmptyError, match="t: the trace holds no requests"):
        read_request_columns(table.to_batches(), source="t")


def test_a_trace_read_as_the_files_dictionaries_is_the_trace(tmp_path: Path) -> None:
    records = [
        make_record(ts=T0 + timedelta(seconds=(i * 7) % 11), session=s, client=c, method=m,
                    path=p, status=code, duration_ms=d, error=e)
        for i, (s, c, m, p, code, d, e) in enumerate([
            ("s2", "c1", "get", "/b", 200, 3.0, None), (None, "c9", "POST", "/a", None, None, "x"),
            ("", "c2", "GET", "/b", 404, 1.5, None), ("s1", "c1", "Get", "/c?x=1", 200, 2.0, ""),
            ("s2", "c1", "GET", "/a", 500, 9.0, None), (None, None, "GET", "/a", 200, 1.0, None),
        ])
    ]  # fmt: skip
    write_trace(tmp_path / "t", records[:4])
    with open_writer(tmp_path / "t", TraceMetadata(**_meta()), append=True) as writer:
        for record in records[4:]:  # a second file: other dictionaries
            writer.write(record)
    source = ParquetSource.open(tmp_path / "t")
    assert len(source.trace.files) == 2
    batch = next(source.trace.dictionary_batches(["session", "path"], ["session", "path"]))
    assert all(pa.types.is_dictionary(t) for t in batch.schema.types)
    table = source.trace.to_table([*LIGHT_COLUMNS, "error"], sort=False)
    cols = read_light_columns(source, coded=["error"])
    _assert_as_requests_frame(cols, table.drop_columns(["error"]))
    codes, values = cols.coded["error"]
    want = table["error"].take(pa.array(cols.row)).to_pylist()
    assert values.take(pa.array(codes)).to_pylist() == want
    plain = read_request_columns(source.batches(LIGHT_COLUMNS), source="t")
    for name in ("row", "t_s", "key", "method", "path", "status", "duration_ms"):
        assert np.array_equal(getattr(cols, name), getattr(plain, name), equal_nan=True)


def test_the_keys_as_strings_are_made_only_when_asked_for(tmp_path: Path) -> None:
    """The sessions and templates (what runs before the behaviors' child forks) read the
    keys' codes and `key_values` only: no list of every key is made, so the child never
    holds one; asked for, `keys` is `key_values` as str, made once."""
    from tracereplay.models.sessionized import (
        _keep_what_later_stages_read,
        _sessionized,
        _templates,
    )

    records = [
        make_record(ts=T0 + timedelta(seconds=i * 5), session=s, client=c)
        for i, (s, c) in enumerate([("s2", "c1"), (None, "c9"), ("", "c2"), ("é", None)])
    ]
    write_trace(tmp_path / "t", records)
    source = ParquetSource.open(tmp_path / "t")
    cols = read_light_columns(source)
    _, endpoint, names = _templates(cols)
    sessions, later = _sessionized(source, cols, None, [], 1800.0, {"short": 1.0})
    _keep_what_later_stages_read(sessions)
    with_endpoints(sessions, endpoint, names)
    later()
    assert "keys" not in vars(cols)
    assert cols.key_values.type == pa.string()
    assert cols.keys == ["c2", "c9", "s2", "é"]
    assert cols.keys is cols.keys


@pytest.mark.parametrize("methods", [3, 128, 129, 200])
def test_statuses_as_float32_and_method_codes_as_int8_when_they_fit(
    tmp_path: Path, methods: int
) -> None:
    """Read with no `status_dtype`, a trace's int16 statuses come as float32 (every one held
    exactly: the same values as float64) and method codes as int8 when the methods (with
    the NONE of a null one) are at most 128, else int32; each the same codes."""
    records = [
        make_record(ts=T0 + timedelta(seconds=i % 17), session=f"s{i % 5}", method=f"M{i}",
                    status=[200, None, 401, 32767, -32768][i % 5])
        for i in range(methods - 1)
    ]  # fmt: skip
    write_trace(tmp_path / "t", records)
    source = ParquetSource.open(tmp_path / "t")
    cols = read_light_columns(source)
    wide = read_light_columns(source, status_dtype=np.float64)
    assert cols.status.dtype == np.float32 and wide.status.dtype == np.float64
    assert np.array_equal(cols.status, wide.status, equal_nan=True)
    assert len(cols.methods) == methods
    assert cols.method.dtype == (np.int8 if methods <= 128 else np.int32)
    assert np.array_equal(cols.method, wide.method)
    want = [r.method.upper() for r in sorted(records, key=lambda r: r.ts)]
    assert [cols.methods[m] for m in cols.method.tolist()] == want


def _meta() -> dict[str, Any]:
    from tests.factories import TEST_META

    return {"source": TEST_META.source, "capture_start": T0, "policy_hash": TEST_META.policy_hash}


def test_a_damaged_dictionary_is_a_one_line_corrupt_trace(tmp_path: Path) -> None:
    table = make_table([make_record(ts=T0 + timedelta(seconds=i)) for i in range(3)])
    sessions = pa.array([b"s", b"s", b"s\xff"]).view(pa.string())  # not UTF-8
    table = table.set_column(table.schema.get_field_index("session"), "session", sessions)
    (tmp_path / "t").mkdir()
    pq.write_table(table, tmp_path / "t" / "part-000001.parquet")
    with pytest.raises(TraceCorruptError, match="damaged and cannot be read"):
        read_light_columns(ParquetSource.open(tmp_path / "t"))


def test_rows_still_in_a_journal_are_read_as_plain_strings(tmp_path: Path) -> None:
    writer = open_writer(tmp_path / "t", TraceMetadata(**_meta()))
    try:
        writer.write(make_record(path="/live", session="s9"))
        writer.flush()
        cols = read_light_columns(ParquetSource.open(tmp_path / "t"))
    finally:
        writer.close()
    assert cols.paths.to_pylist() == ["/live", None] and cols.keys == ["s9"]


def _keys_by_first_request(key: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The order `_grouping` gives requests in time order, by plain Python: keys
    by (first time, key code), each key's requests in their order."""
    first: dict[int, int] = {}
    for row, k in enumerate(key.tolist()):
        first.setdefault(k, row)
    ranked = sorted(first, key=lambda k: (t[first[k]], k))
    rank = {k: i for i, k in enumerate(ranked)}
    return np.array(sorted(range(len(key)), key=lambda row: (rank[int(key[row])], row)), int)


@pytest.mark.parametrize("case", range(24))
def test_the_key_order_is_by_first_request_else_lexsorts(case: int) -> None:
    rng = np.random.default_rng(case)
    n = int(rng.integers(0, 3000))
    top = [1, 5, 60_000, 70_000, 1 << 20, (1 << 31) - 1][case % 6]
    key = rng.integers(0, min(top, 2 * n + 1), n).astype(np.int32 if case % 4 else np.int64)
    if case % 6 == 5:  # codes far above the row count: lexsort's way
        key = rng.integers(0, top, n).astype(np.int64)
    t = np.sort(rng.integers(0, 40, n)).astype(float)  # in order, with ties
    if case % 3 == 1:
        t = rng.permutation(t)  # not in order: lexsort's way
    if case % 8 == 5 and n:
        t[-1] = np.nan
    if case % 12 == 7 and n:
        key[0] = -1
    got = _grouping(key, t)[0]
    in_order = not (t[1:] < t[:-1]).any() and not np.isnan(t).any()
    dense = n > 0 and key.min() >= 0 and key.max() <= 2 * n
    # (the counting sort's positions: int32 below 2**31 rows; lexsort's intp)
    assert got.dtype == (np.int32 if in_order and dense else np.int64)
    if in_order and dense:
        assert np.array_equal(got, _keys_by_first_request(key, t))
    else:
        assert np.array_equal(got, np.lexsort((t, key)))


@pytest.mark.parametrize("case", range(8))
def test_grouped_is_a_stable_argsort(case: int) -> None:
    rng = np.random.default_rng(case)
    n = int(rng.integers(0, 5000))
    groups = [1, 3, 7000, 100][case % 4]
    codes = rng.integers(0, groups, n).astype(np.int32 if case % 2 else np.int64)
    got = grouped(codes, groups)
    assert got.dtype == np.int32  # below 2**31 codes and groups
    assert np.array_equal(got, np.argsort(codes, kind="stable"))


def test_codes_into_pyarrow_dictionaries_are_the_sorted_distinct() -> None:
    # The ranking `read_request_columns` uses is pyarrow's sort of the distinct values
    # (binary order of UTF-8 bytes): "B" < "a" < "é".
    cols = read_request_columns(
        _table([(0, v, None, "GET", v, 200, 1.0) for v in ["é", "a", "B"]], True).to_batches(),
        source="t",
    )
    assert cols.keys == ["B", "a", "é"]
    assert pc.sort_indices(pa.array(cols.keys)).to_pylist() == [0, 1, 2]
