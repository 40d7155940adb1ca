"""The model's per-value and per-scan savings give what the plain way gives: the samples'
rows read in one scan (`ParquetSource.rows_of`), JSON values once per distinct body
(`values.JsonMemo`), session outcomes without a frame per session (`session_rows`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.factories import T0, make_record, make_table
from tracereplay.models.correlations import walk_sessions
from tracereplay.models.outcomes import session_rows
from tracereplay.models.source import ParquetSource, rows_of
from tracereplay.models.values import JsonMemo, response_values


def _source(tmp_path: Path, n: int = 40) -> ParquetSource:
    records = [
        make_record(
            ts=T0 + timedelta(seconds=i),
            path=f"/p/{i}",
            query=f"q={i}",
            session=f"s-{i % 3}",
            resp_body=f'{{"id": "item-{i:04d}", "n": {1000 + i}}}'.encode(),
        )
        for i in range(n)
    ]
    (tmp_path / "t").mkdir()
    table = make_table(records)
    for part in range(2):  # two files: rows_of crosses a file boundary
        half = table.slice(part * n // 2, n // 2)
        pq.write_table(half, tmp_path / "t" / f"part-00000{part + 1}.parquet")
    return ParquetSource.open(tmp_path / "t")


class _RowsOnly:
    """A source with only the protocol's `rows` (another engine's adapter)."""

    def __init__(self, source: ParquetSource) -> None:
        self.source = source

    def rows(self, positions: np.ndarray, columns: list[str]) -> object:
        return self.source.rows(positions, columns)


def test_rows_of_reads_each_want_as_rows_would(tmp_path: Path) -> None:
    source = _source(tmp_path)
    wants = [
        (np.array([7, 3, 3, 21, 0]), ["path", "query"]),  # a few, repeated, two files
        (np.array([39, 1], dtype=np.int32), ["resp_body", "path"]),  # other columns, order
        (np.zeros(0, np.int64), ["addr"]),  # nothing
        (np.arange(40)[::-1], ["path"]),  # most rows: one read, one gather
    ]
    together = source.rows_of(wants)
    for table, (positions, columns) in zip(together, wants, strict=True):
        alone = source.rows(positions, columns)
        assert table.column_names == columns
        assert table.equals(alone)
    assert together[0]["path"].to_pylist() == ["/p/7", "/p/3", "/p/3", "/p/21", "/p/0"]
    assert together[1]["path"].to_pylist() == ["/p/39", "/p/1"]
    assert together[2].num_rows == 0
    by_rows = rows_of(_RowsOnly(source), wants)  # type: ignore[arg-type]
    assert all(a.equals(b) for a, b in zip(by_rows, together, strict=True))


def test_values_once_per_distinct_body_equal_the_parsed_ones() -> None:
    bodies = [b'{"id": "abcdef-1", "list": [{"id": 12345}, {"id": "x"}]}', b"not json", None]
    memo: JsonMemo = {}
    for body in [*bodies, *bodies]:  # the second time from the memo
        row = {"resp_headers": [("etag", "tag-123456")], "resp_body": body}
        assert response_values(row, 6, memo) == response_values(row, 6)
    assert len(memo) == 2  # None is not a body: parsed each time
    row = {"resp_headers": [], "resp_body": bodies[0]}
    assert [value for _, value in response_values(row, 6, memo)] == [
        "abcdef-1",
        "12345",
    ]


def test_walk_with_repeated_answers_equals_the_walk_of_distinct_copies() -> None:
    """A body repeated (one object) and the same text in distinct objects walk alike."""
    login = b'{"access_token": "tok-abcdef-123"}'
    frame = pd.DataFrame(
        {
            "session_id": [0, 0, 1, 1],
            "seq": [0, 1, 0, 1],
            "endpoint": ["POST /login", "GET /me", "POST /login", "GET /me"],
            "path": ["/login", "/me", "/login", "/me"],
            "query": [None] * 4,
            "req_headers": [[], [("authorization", "Bearer tok-abcdef-123")]] * 2,
            "req_body": [None] * 4,
            "status": [200] * 4,
            "resp_headers": [[]] * 4,
        }
    )
    shared = frame.assign(resp_body=[login, b"{}", login, b"{}"])
    copies = frame.assign(resp_body=[bytes(login), b"{}", bytearray(login), b"{}"])
    a, b = walk_sessions(shared), walk_sessions(copies)
    assert a.uses == b.uses and len(a.uses) == 2
    assert a.carried == b.carried


def test_session_rows_are_groupby_sessions() -> None:
    frame = pd.DataFrame(
        {
            "session_id": [5, 2, 5, 2, 9, 5],
            "endpoint": pd.Categorical(["a", "b", "c", "a", "b", "a"]),
            "status": [200, 403, 500, 200, 200, 401],
        }
    )
    found = session_rows(frame, ["endpoint", "status"])
    expected = [
        {"endpoint": g["endpoint"].astype(str).tolist(), "status": g["status"].tolist()}
        for _, g in frame.groupby("session_id", sort=True)
    ]
    assert found == expected
    assert session_rows(frame.iloc[:0], ["status"]) == []


def test_rows_read_file_by_file_on_threads_skip_files_without_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracereplay.trace import Trace

    records = [
        make_record(ts=T0 + timedelta(seconds=i), path=f"/p/{i}", session=f"s-{i % 3}")
        for i in range(50)
    ]
    (tmp_path / "t").mkdir()
    table = make_table(records)
    for part in range(5):  # five files of 10 rows
        pq.write_table(table.slice(part * 10, 10), tmp_path / "t" / f"part-00000{part + 1}.parquet")
    read: list[str] = []
    lean = Trace.lean_batches

    def noting(self: Trace, columns: list[str], batch_size: int) -> Any:
        read.append(",".join(Path(f).name for f in self.dataset.files))
        return lean(self, columns, batch_size)

    monkeypatch.setattr(Trace, "lean_batches", noting)
    positions = np.array([44, 3, 12, 19, 3, 41])  # files 1, 2 and 5; not 3 nor 4
    one = ParquetSource.open(tmp_path / "t").rows(positions, ["path", "session"])
    # One thread reads file by file too (the cluster sample's files only, issue 15).
    assert sorted(read) == ["part-000001.parquet", "part-000002.parquet", "part-000005.parquet"]
    read.clear()
    two = ParquetSource.open(tmp_path / "t", read_threads=2).rows(positions, ["path", "session"])
    assert two.equals(one)
    assert two["path"].to_pylist() == [f"/p/{i}" for i in positions]
    assert sorted(read) == ["part-000001.parquet", "part-000002.parquet", "part-000005.parquet"]


def test_the_sample_reads_headers_and_queries_as_the_plain_read_does(
    tmp_path: Path,
) -> None:
    """The samples' file-by-file read (`rows_of`: lean batches, the kept rows checked and
    cast) gives the headers and queries the whole read gives: nulls, empty maps and
    Latin-1 text too, and the trace's own types."""

    headers = [
        (("accept", "application/json"), ("authorization", "Bearer t-1")),
        (),
        (("x-name", "café"), ("accept", "application/json")),
        (("authorization", "Bearer t-2"),),
    ]
    records = [
        make_record(ts=T0 + timedelta(seconds=i), path=f"/p/{i}", session=f"s-{i % 4}",
                    query=None if i % 5 == 0 else f"q={i % 3}", req_headers=headers[i % 4],
                    resp_headers=headers[(i + 1) % 4])
        for i in range(60)
    ]  # fmt: skip
    (tmp_path / "t").mkdir()
    table = make_table(records)
    for part in range(3):
        pq.write_table(table.slice(part * 20, 20), tmp_path / "t" / f"part-00000{part + 1}.parquet")
    columns = ["req_headers", "resp_headers", "query", "path"]
    positions = np.array([59, 2, 21, 40, 2, 17, 0, 45])  # three files, out of order
    got = ParquetSource.open(tmp_path / "t").rows_of([(positions, columns)])[0]
    plain = pq.read_table(tmp_path / "t").select(columns).take(positions)
    assert got.schema.equals(plain.schema)
    assert got.to_pylist() == plain.to_pylist()
    assert got["req_headers"][2].as_py() == [] and got["query"][6].as_py() is None
    assert [("x-name", "café"), ("accept", "application/json")] in got["req_headers"].to_pylist()


def test_a_header_that_is_not_utf8_is_a_one_line_corrupt_trace(tmp_path: Path) -> None:
    """A damaged header string in a row the sample keeps is caught by the check of the
    kept rows (the lean read checks only cheaply), not passed on: the trace is corrupt."""
    import pyarrow as pa

    from tracereplay.errors import TraceCorruptError

    table = make_table([make_record(ts=T0 + timedelta(seconds=i)) for i in range(6)])
    values = pa.array([b"application/json"] * 5 + [b"text/\xff"]).view(pa.string())
    keys = pa.array(["accept"] * 6)
    damaged = pa.MapArray.from_arrays(pa.array(range(7), pa.int32()), keys, values)
    index = table.schema.get_field_index("req_headers")
    table = table.set_column(
        index, table.schema.field(index), damaged.cast(table.schema.field(index).type)
    )
    (tmp_path / "t").mkdir()
    pq.write_table(table, tmp_path / "t" / "part-000001.parquet")
    source = ParquetSource.open(tmp_path / "t")
    assert source.rows_of([(np.array([1, 2]), ["req_headers"])])[0].num_rows == 2  # whole rows
    with pytest.raises(TraceCorruptError, match="damaged and cannot be read"):
        source.rows_of([(np.array([5]), ["req_headers"])])


class _PlainSource:
    """A Parquet trace through the `RequestSource` methods only (strings come plain)."""

    def __init__(self, source: ParquetSource) -> None:
        self._source = source

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def test_the_model_reads_the_light_columns_as_the_files_dictionaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.models.test_cluster_sample import write_files
    from tracereplay.models.model import build_model, model_json
    from tracereplay.trace import Trace

    trace = write_files(tmp_path / "t")
    asked: list[list[str]] = []
    dictionaries = Trace.dictionary_files

    def spy(self: Trace, columns: list[str], dictionary: Any, **options: Any) -> Any:
        asked.append(sorted(set(columns) & set(dictionary)))
        return dictionaries(self, columns, dictionary, **options)

    monkeypatch.setattr(Trace, "dictionary_files", spy)
    built = build_model(trace, correlation_sample=25)
    assert asked == [["client", "path", "session"]]  # one read, strings as dictionaries
    plain = build_model(
        trace, correlation_sample=25, source=_PlainSource(ParquetSource.open(trace))
    )
    assert len(asked) == 1 and model_json(plain) == model_json(built)


def test_the_samples_read_verifies_the_pages_checksums(tmp_path: Path) -> None:
    """A flipped byte in a body page that still decodes (no compression: nothing else
    notices) is refused by the page's CRC, as every other read of the trace refuses it."""
    from tracereplay.errors import TraceCorruptError

    records = [
        make_record(ts=T0 + timedelta(seconds=i), session=f"s-{i % 3}",
                    resp_body=f'{{"id": "item-{i:04d}"}}'.encode())
        for i in range(200)
    ]  # fmt: skip
    (tmp_path / "t").mkdir()
    part = tmp_path / "t" / "part-000001.parquet"
    pq.write_table(make_table(records), part, compression="none", use_dictionary=False,
                   write_page_checksum=True)  # fmt: skip
    group = pq.ParquetFile(part).metadata.row_group(0)
    chunk = next(c for c in map(group.column, range(group.num_columns))
                 if c.path_in_schema == "resp_body")  # fmt: skip
    data = bytearray(part.read_bytes())
    last = chunk.data_page_offset + chunk.total_compressed_size - 1  # the last body's "}"
    assert data[last] == ord("}")
    data[last] ^= 0x01  # "|": still ASCII, still a string
    part.write_bytes(bytes(data))
    source = ParquetSource.open(tmp_path / "t")
    assert source.rows_of([(np.array([7]), ["path"])])[0].num_rows == 1  # other columns: fine
    with pytest.raises(TraceCorruptError, match="CRC checksum verification failed"):
        source.rows_of([(np.array([150, 3]), ["resp_body"])])  # few rows: the lean read
