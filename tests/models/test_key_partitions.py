"""The key partitions' scan is the model's read, split by session key: every request in one
partition, in the model's order there, with the model's key, endpoint, templater, numbers
and scan position; keys told apart by their strings, not their hash; the spill removed
(models/key_partitions.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker
from pyarrow import ipc

from tests.factories import T0, TEST_META, make_record, make_table
from tracereplay.errors import TraceEmptyError
from tracereplay.models import key_partitions
from tracereplay.models.key_partitions import KeyPartitions, scan_key_partitions
from tracereplay.models.light_columns import RequestColumns, read_light_columns
from tracereplay.models.shapes import skeleton_codes
from tracereplay.models.skeleton_cells import Segments, SkeletonCells
from tracereplay.models.source import ParquetSource
from tracereplay.models.templating import Templater, request_endpoints
from tracereplay.trace import TraceMetadata, open_writer

ROWS = 300
FILES = 3


def _rows(seed: int, files: int, nulls: bool) -> list[list[dict[str, Any]]]:
    """`files` lists of `ROWS` requests: paths carrying ids (uuids, numbers, faker slugs:
    templated by shape and by cardinality), methods in two cases, keys from the session,
    from the client (session null or empty) or neither, times tied within and across
    files; with `nulls`, null paths and methods (a trace file holds none: another source)."""
    rng = np.random.default_rng(seed)
    fake = Faker()
    fake.seed_instance(seed)
    slugs = [fake.slug() for _ in range(40)]
    ids = [str(uuid.UUID(int=int(rng.integers(1 << 62)), version=4)) for _ in range(30)]
    sessions = [None, "", *(f"s-{fake.user_name()}-{i}" for i in range(25))]
    clients = [None, *(fake.ipv4() for _ in range(12))]
    paths = [
        lambda: f"/api/v1/clients/{ids[rng.integers(len(ids))]}",
        lambda: f"/api/v1/orders/{rng.integers(1000)}/items",
        lambda: f"/blog/{slugs[rng.integers(len(slugs))]}",
        lambda: "/api/v1/metrics/overview",
        lambda: "/api/v1/clients/",
        lambda: None if nulls else "/",
    ]
    methods = ["GET", "get", "POST", None if nulls else "PUT", "Delete"]
    return [
        [
            {
                "ts": T0 + timedelta(seconds=int(rng.integers(0, ROWS // 3)) + 5 * f),
                "session": sessions[rng.integers(len(sessions))],
                "client": clients[rng.integers(len(clients))],
                "method": methods[rng.integers(len(methods))],
                "path": paths[rng.integers(len(paths))](),
                "status": [200, 404, None][rng.integers(3)],
                "duration_ms": [1.5, None, float(rng.random())][rng.integers(3)],
            }
            for _ in range(ROWS)
        ]
        for f in range(files)
    ]


@dataclass(frozen=True)
class TableSource:
    """A source of the light columns only, from a table (strings plain, nulls allowed),
    in batches of `batch_rows`: `RequestSource`'s methods, not a Parquet trace."""

    table: pa.Table
    batch_rows: int = 50

    @property
    def metadata(self) -> TraceMetadata:
        return TEST_META

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        return iter(self.table.select(columns).to_batches(self.batch_rows))

    def rows(self, positions: np.ndarray, columns: list[str]) -> pa.Table:
        return self.table.select(columns).take(pa.array(positions))


@pytest.fixture(scope="module", params=["parquet", "nulls", "journal"])
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A Parquet trace of `FILES` files in row groups of various sizes, a source whose
    paths and methods have nulls, or a trace whose rows are still in a journal (read
    through the dataset scanner, strings plain)."""
    if request.param == "nulls":
        rows = _rows(7, 1, nulls=True)[0]
        yield TableSource(pa.Table.from_pylist(rows, schema=LIGHT_SCHEMA))
        return
    directory = tmp_path_factory.mktemp("kp") / "t"
    if request.param == "journal":
        writer = open_writer(directory, TEST_META)
        try:
            for row in _rows(9, 1, nulls=False)[0]:
                writer.write(make_record(**row))
            writer.flush()
            journal = ParquetSource.open(directory)
            assert journal.trace.dictionary_files(["ts"], []) is None  # no file to read alone
            yield journal
        finally:
            writer.close()
        return
    directory.mkdir()
    for f, rows in enumerate(_rows(5, FILES, nulls=False)):
        table = make_table([make_record(**row) for row in rows])
        pq.write_table(table, directory / f"part-{f:06d}.parquet", [ROWS, 41, 64][f])
    yield ParquetSource.open(directory)


LIGHT_SCHEMA = pa.schema(
    [("ts", pa.timestamp("us", tz="UTC")), ("duration_ms", pa.float64()),
     ("session", pa.string()), ("client", pa.string()), ("method", pa.string()),
     ("path", pa.string()), ("status", pa.int16())]
)  # fmt: skip


@pytest.fixture(scope="module")
def model(source: Any) -> tuple[RequestColumns, Templater, np.ndarray, list[str]]:
    """What the model reads and templates: `read_light_columns`, `request_endpoints`."""
    requests = read_light_columns(source)
    return requests, *request_endpoints(
        requests.methods, requests.method, requests.paths, requests.path
    )


def _scan(source: Any, count: int, parent: Path) -> KeyPartitions:
    return scan_key_partitions(source, count, parent)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 50 rows: several per row group, sharing its dictionaries."""
    monkeypatch.setattr(key_partitions, "SCAN_BATCH_ROWS", 50)


def _partitions(parts: KeyPartitions) -> list[dict[str, Any]]:
    out = []
    for part in parts.partitions(release=False):
        columns = part.request_columns(parts.first_ts_us)
        out.append(
            {
                "row": part.row, "t_s": columns.t_s, "key": part.key,
                "keys": part.key_values.to_pylist(), "endpoint": part.endpoint,
                "duration_ms": part.duration_ms, "status": part.status, "ts": part.ts,
            }
        )  # fmt: skip
    return out


@pytest.mark.parametrize("flush", [1, 77, key_partitions.SPILL_FLUSH_ROWS])
@pytest.mark.parametrize("count", [1, 3, 16])
def test_each_partition_is_the_models_requests_of_its_keys(
    source: Any, model: Any, tmp_path: Path, count: int, flush: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """(`flush`: the spills written after every batch, every few, or once.)"""
    monkeypatch.setattr(key_partitions, "SPILL_FLUSH_ROWS", flush)
    requests, templater, endpoint, names = model
    with _scan(source, count, tmp_path) as parts:
        assert parts.rows == len(requests)
        assert parts.first_ts_us == requests.first_ts.value // 1000
        assert parts.templater is not None
        assert parts.templater.to_json() == templater.to_json()
        assert parts.names == names
        found = _partitions(parts)
    # Where each scan position sits in the model's time order.
    at = np.empty(len(requests), np.int64)
    at[requests.row] = np.arange(len(requests))
    every = np.sort(np.concatenate([p["row"] for p in found]))
    assert np.array_equal(every, np.arange(len(requests)))  # each request in one partition
    seen: set[str] = set()
    for p in found:
        model_at = at[p["row"]]
        # Time order, ties in scan order: the model's order, restricted to the partition.
        assert np.all(np.diff(model_at) > 0)
        assert p["keys"] == sorted(set(p["keys"]))  # distinct, in the model's order
        assert not seen & set(p["keys"])  # a key in one partition only
        seen |= set(p["keys"])
        want_keys = np.asarray(requests.keys, dtype=object)[requests.key[model_at]]
        assert np.array_equal(np.asarray(p["keys"], dtype=object)[p["key"]], want_keys)
        for name, want in (
            ("endpoint", endpoint), ("t_s", requests.t_s), ("row", requests.row),
            ("duration_ms", requests.duration_ms), ("status", requests.status),
        ):  # fmt: skip
            got, expected = p[name], want[model_at]
            assert got.dtype == expected.dtype, name
            assert np.array_equal(got, expected, equal_nan=got.dtype.kind == "f"), name
    assert seen == set(requests.keys)


def test_keys_whose_hashes_collide_stay_apart(
    source: Any, model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = model[0]
    monkeypatch.setattr(
        key_partitions, "_hash_strings", lambda values: np.zeros(len(values), np.uint64)
    )
    with _scan(source, 3, tmp_path) as parts:
        found = _partitions(parts)
    assert [len(p["row"]) for p in found] == [len(requests), 0, 0]
    assert found[0]["keys"] == requests.keys
    assert np.array_equal(found[0]["key"], requests.key)


def test_the_same_trace_gives_the_same_partitions(source: Any, tmp_path: Path) -> None:
    with _scan(source, 3, tmp_path) as a, _scan(source, 3, tmp_path) as b:
        assert a.directory != b.directory
        assert a.names == b.names and a.counts == b.counts
        for x, y in zip(_partitions(a), _partitions(b), strict=True):
            for name, value in x.items():
                if isinstance(value, np.ndarray):
                    assert np.array_equal(value, y[name], equal_nan=True), name
                else:
                    assert value == y[name], name


def test_the_spill_is_removed_on_close_and_on_error(
    source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _scan(source, 3, tmp_path) as parts:
        assert len(list(parts.directory.iterdir())) == 6
    assert not parts.directory.exists() and not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="inside"), _scan(source, 3, tmp_path) as parts:
        next(parts.partitions())
        raise RuntimeError("inside")
    assert not list(tmp_path.iterdir())
    # An error during the scan (here the third batch's keys): nothing left either.
    calls = []
    hashed = key_partitions._hash_strings

    def failing(values: Any) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("scan")
        return hashed(values)

    monkeypatch.setattr(key_partitions, "_hash_strings", failing)
    with pytest.raises(RuntimeError, match="scan"):
        _scan(source, 3, tmp_path)
    assert not list(tmp_path.iterdir())


def test_times_are_the_partitions_t_s(source: Any, tmp_path: Path) -> None:
    """`times(p)`: partition p's `t_s` as `key_partition` makes it, in spill order."""
    with _scan(source, 3, tmp_path) as parts:
        for p in range(parts.count):
            want = parts.partition(p).key_partition(parts.first_ts_us).t_s
            got = parts.times(p)
            assert len(got) and np.array_equal(np.sort(got), want)


def test_partitions_released_as_read(source: Any, tmp_path: Path) -> None:
    with _scan(source, 3, tmp_path) as parts:
        rows = 0
        for part in parts.partitions():
            rows += len(part)
        assert rows == parts.rows and not list(parts.directory.iterdir())


def test_names_are_numbered_by_their_least_pair_whatever_batch_it_came_in(
    tmp_path: Path,
) -> None:
    """`request_endpoints` numbers the names by their first (method, path) pair in sorted
    order: /x/1 (a later batch's) before /x/5/more, though /x/9 came first."""
    paths = ["/x/9", "/x/5/more", "/x/1", "/y"]
    table = pa.Table.from_pylist(
        [{"ts": T0, "session": "s", "method": "GET", "path": path} for path in paths],
        schema=LIGHT_SCHEMA,
    )
    source = TableSource(table, batch_rows=1)
    requests = read_light_columns(source)
    _, endpoint, names = request_endpoints(
        requests.methods, requests.method, requests.paths, requests.path
    )
    with _scan(source, 1, tmp_path) as parts:
        part = parts.partition(0)
        assert parts.names == names == ["GET /x/{x_id}", "GET /x/{x_id}/more", "GET /y"]
        assert np.array_equal(part.endpoint, endpoint)


def test_an_empty_trace_is_an_error_and_leaves_no_spill(tmp_path: Path) -> None:
    with pytest.raises(TraceEmptyError):
        _scan(TableSource(LIGHT_SCHEMA.empty_table()), 3, tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_spills_are_written_once_per_flush(
    source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition's rows and keys of the batches held are one record batch a flush."""
    written = []
    for flush in (1, key_partitions.SPILL_FLUSH_ROWS):
        monkeypatch.setattr(key_partitions, "SPILL_FLUSH_ROWS", flush)
        with _scan(source, 3, tmp_path) as parts:
            files = sorted(parts.directory.iterdir())
            written.append([_record_batches(f) for f in files])
    every_batch, once = written
    assert once == [1] * 6
    assert sum(every_batch) > 2 * 6  # (the source's 900 rows: 18 batches or more)


def _record_batches(path: Path) -> int:
    with pa.OSFile(str(path)) as file:
        return int(ipc.open_file(file).num_record_batches)


@pytest.mark.parametrize("seed", range(4))
def test_the_time_order_is_a_stable_argsort(seed: int) -> None:
    """`_time_order`: numpy's stable argsort of int64 times, ties in the given order,
    whatever their span (16 bits, 31 as real10M's, to the whole int64 range)."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(np.int64)
    cases = [
        np.zeros(0, np.int64), np.array([5]), np.arange(10), np.arange(10)[::-1].copy(),
        rng.integers(0, 4, 2000), 1_796_425_392_988_247 + rng.integers(0, 1 << 31, 5000),
        rng.integers(top.min, top.max, 5000, endpoint=True),
        np.array([top.max, top.min, 0, -1, top.max, top.min]),
    ]  # fmt: skip
    for case in cases:
        ts = case.astype(np.int64)
        assert np.array_equal(key_partitions._time_order(ts), np.argsort(ts, kind="stable"))


def test_a_batchs_pairs_are_its_rows_distinct_cells_and_paths() -> None:
    """`SkeletonCells.add_pairs`: each distinct (method, path) pair of the rows once, with
    the cell and path (index into the dictionary, its length for null) its rows have;
    dictionary entries no row uses are in no pair."""
    methods = pa.array(["GET", "get", "POST"])
    paths = pa.array(["/x/1", "/x/2", "/unused", "/y", "/x/3"])
    method = np.array([0, 0, 1, 2, 0, 3, 0, 1], np.int32)  # (3: a null method)
    path = np.array([0, 1, 0, 3, 5, 4, 0, 0], np.int32)  # (5: a null path)
    cells = SkeletonCells().add_pairs(methods, paths, method, path)
    rows = set(zip(cells.row.tolist(), path.tolist(), strict=True))
    pairs = list(zip(cells.pair_cell.tolist(), cells.pair_path.tolist(), strict=True))
    assert len(pairs) == len(set(zip(method.tolist(), path.tolist(), strict=True)))
    assert set(pairs) == rows and 2 not in cells.pair_path


def test_the_segments_skeletons_are_the_shapes_skeletons() -> None:
    """`Segments.skeleton_codes`: `shapes.skeleton_codes`' codes and skeletons, in its
    order, on paths with ids, queries, fragments, empty and percent-encoded segments."""
    rng = np.random.default_rng(3)
    words = [
        "api", "v1", "7", "0042", "deadbeef12", "x" * 30, "a b", "%41", "", "?q=1", "#f",
        str(uuid.UUID(int=5)), "2026-12-05", "anon_x", "eyJa.b.c", "Tok3n_4bcdefghij9",
    ]  # fmt: skip
    paths = pa.array(
        ["", "/", *("/".join(rng.choice(words, int(rng.integers(1, 5)))) for _ in range(300))]
    )
    codes, skeletons = Segments.of(paths).skeleton_codes()
    want_codes, want = skeleton_codes(paths)
    assert skeletons == want and np.array_equal(codes, want_codes)
    assert Segments.of(pa.array([], pa.string())).skeleton_codes()[1] == []


def test_each_cells_least_path_is_by_code_point_a_null_last() -> None:
    """`SkeletonCells.least_path`: per cell, its rows' least path over the batches, in
    binary (code point) order, non-ASCII and case included, a null only when all are."""
    cells = SkeletonCells()
    seen: dict[int, list[str | None]] = {}
    batches = [  # (emails and numbers: shaped, one cell per directory)
        (["/x/zz@b.c", "/x/ä@b.c", "/x/Zz@b.c", None, "/y/9/1", "/y/10/1"], [0, 1, 2, 3, 4, 5]),
        (["/x/é@b.c", "/x/\U0001f600@b.c", "/y/8/1", None], [1, 0, 2, 3, 3]),
        ([None], [0, 0]),
    ]
    for texts, path in batches:
        paths = pa.array(texts, pa.string())
        at = np.array(path, np.int32)
        row = cells.add_batch(pa.array(["GET"]), paths, np.zeros(len(at), np.int32), at)
        for c, i in zip(row.tolist(), at.tolist(), strict=True):
            seen.setdefault(c, []).append(texts[i] if i < len(texts) else None)
    for c, found in seen.items():
        named = sorted(p for p in found if p is not None)
        assert cells.least_path[c] == (named[0] if named else None)
    assert len(cells.least_path) == 3  # (/x/{email}, /y/{int}/1, the null)
