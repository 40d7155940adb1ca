"""The reader opens a trace directory as one dataset and says clearly what is wrong."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import TEST_META, make_record, make_table, write_trace
from tracereplay.errors import (
    TraceCorruptError,
    TraceEmptyError,
    TraceNotFoundError,
    TraceSchemaError,
)
from tracereplay.trace import open_trace, open_writer, read_trace
from tracereplay.trace.store import part_path, write_part


def test_reads_many_parts_as_one_dataset_in_time_order(tmp_path: Path) -> None:
    directory = tmp_path / "t"
    directory.mkdir()
    first = [make_record(path=f"/a/{i}", ts=make_record().ts.replace(second=i)) for i in (5, 1)]
    second = [make_record(path="/b", ts=make_record().ts.replace(second=3))]
    write_part(make_table(first), part_path(directory, 1))
    write_part(make_table(second), part_path(directory, 2))
    trace = open_trace(directory)
    assert trace.num_rows == 3
    assert len(trace.files) == 2
    assert trace.to_table(["path"])["path"].to_pylist() == ["/a/1", "/b", "/a/5"]
    assert trace.to_table(["path"]).column_names == ["path"]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(TraceNotFoundError) as err:
        open_trace(tmp_path / "nope")
    assert str(err.value) == f"{tmp_path / 'nope'}: no such trace directory"


def test_a_file_is_not_a_trace_directory(tmp_path: Path) -> None:
    path = tmp_path / "file.parquet"
    path.write_bytes(b"x")
    with pytest.raises(TraceNotFoundError) as err:
        open_trace(path)
    assert str(err.value) == f"{path}: not a directory (a trace is a directory)"


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(TraceEmptyError) as err:
        open_trace(tmp_path)
    assert str(err.value) == f"{tmp_path}: no trace files (part-*.parquet) in this directory"


def test_files_without_rows(tmp_path: Path) -> None:
    write_part(make_table([]), part_path(tmp_path, 1))
    with pytest.raises(TraceEmptyError) as err:
        open_trace(tmp_path)
    assert str(err.value) == f"{tmp_path}: the trace holds no rows"


def test_a_writer_closed_without_rows_leaves_an_empty_trace(tmp_path: Path) -> None:
    with open_writer(tmp_path / "t", TEST_META):
        pass
    with pytest.raises(TraceEmptyError):
        open_trace(tmp_path / "t")


def test_parquet_of_another_schema(tmp_path: Path) -> None:
    write_trace(tmp_path, [make_record()])
    foreign = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    with pytest.raises(TraceSchemaError) as err:
        open_trace(tmp_path)
    assert str(err.value) == f"{foreign}: not a tracereplay.trace/1 file (no tracereplay schema id)"


def test_another_schema_version(tmp_path: Path) -> None:
    table = make_table([make_record()])
    meta = dict(table.schema.metadata)
    meta[b"tracereplay.schema"] = b"tracereplay.trace/9"
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "part-000001.parquet")
    with pytest.raises(TraceSchemaError) as err:
        open_trace(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'part-000001.parquet'}: not a tracereplay.trace/1 file "
        "(schema 'tracereplay.trace/9')"
    )


def test_right_id_but_wrong_columns(tmp_path: Path) -> None:
    table = make_table([make_record()]).drop_columns(["error"])
    pq.write_table(table, tmp_path / "part-000001.parquet")
    with pytest.raises(TraceSchemaError) as err:
        open_trace(tmp_path)
    assert str(err.value).endswith("part-000001.parquet: columns differ from tracereplay.trace/1")


def test_corrupt_parquet(tmp_path: Path) -> None:
    write_trace(tmp_path, [make_record()])
    part = tmp_path / "part-000001.parquet"
    part.write_bytes(part.read_bytes()[:-20])
    with pytest.raises(TraceCorruptError) as err:
        open_trace(tmp_path)
    assert str(err.value).startswith(f"{part}: not a readable Parquet file (")


def test_journal_rows_are_read_while_a_writer_runs(tmp_path: Path) -> None:
    writer = open_writer(tmp_path / "t", TEST_META)
    try:
        writer.write(make_record(path="/live"))
        writer.flush()
        assert read_trace(tmp_path / "t", ["path"])["path"].to_pylist() == ["/live"]
    finally:
        writer.close()
    assert read_trace(tmp_path / "t", ["path"])["path"].to_pylist() == ["/live"]


def test_a_table_too_big_to_take_whole_is_sorted_slice_by_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracereplay.trace import reader

    # Many chunks, times shuffled with ties, a map and a binary column: the slice-by-slice
    # path (forced here with whole_bytes=0) must give what one `take` gives, row for row.
    base = make_record().ts
    chunks = [
        make_table(
            [
                make_record(path=f"/c{c}/{i}", ts=base.replace(second=(7 * i + 3 * c) % 11))
                for i in range(9)
            ]
        )
        for c in range(5)
    ]
    table = pa.concat_tables(chunks)
    monkeypatch.setattr(reader, "_TAKE_SLICE_ROWS", 4)
    whole = reader.sorted_by_time(table)
    sliced = reader.sorted_by_time(table, whole_bytes=0)
    assert sliced.equals(whole)
    assert sliced.num_rows == 45
    assert sliced["path"].to_pylist() != table["path"].to_pylist()
    times = sliced["ts"].to_pylist()
    assert times == sorted(times)
