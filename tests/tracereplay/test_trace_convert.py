"""The writer's fast paths against the ones they replaced: same rows, same bytes.

`records_to_batch` converts column by column; it replaced one Arrow struct array built
from a tuple per row (`struct_reference` below, the code as it was); it reads each
column's values by one comprehension (`schema._column_values`). `append_frame`
builds the frame's payload in memory; it replaced an IPC stream written to the file
through a checksumming Python file object (`streamed_reference`); told where the file
ends (the sink keeps count), it writes the same bytes as when it asks.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import os
import tempfile
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyarrow import ipc

from tests.factories import TEST_META, make_record, realistic_records
from tests.tracereplay.test_trace_schema import records
from tracereplay.trace import TRACE_COLUMNS, open_writer, records_to_batch, store, trace_schema
from tracereplay.trace.schema import TRACE_FIELDS, TraceRecord, _column_values

SCHEMA = trace_schema(TEST_META)
_ROW = operator.attrgetter(*TRACE_COLUMNS)


def struct_reference(rows: list[Any], schema: pa.Schema = SCHEMA) -> pa.RecordBatch:
    """`records_to_batch` before the column-wise conversion."""
    array = pa.array(list(map(_ROW, rows)), type=pa.struct(TRACE_FIELDS))
    return pa.RecordBatch.from_struct_array(array).replace_schema_metadata(schema.metadata)


def outcome(convert: Any, rows: list[Any]) -> tuple[str, bytes]:
    """What converting `rows` gives: the batch as IPC bytes, or the error's type."""
    try:
        return "ok", convert(rows).serialize().to_pybytes()
    except Exception as exc:  # the type is what is compared
        return type(exc).__name__, b""


def test_realistic_rows_convert_to_the_same_batch() -> None:
    rows = list(realistic_records(3000))
    new, old = records_to_batch(rows, SCHEMA), struct_reference(rows)
    assert new.schema.equals(old.schema, check_metadata=True)
    assert new.serialize().to_pybytes() == old.serialize().to_pybytes()


@given(st.lists(records, max_size=40))
@settings(max_examples=200, deadline=None)
def test_any_rows_convert_to_the_same_batch(rows: list[Any]) -> None:
    assert outcome(records_to_batch, rows) == outcome(struct_reference, rows)


def test_every_column_is_read_in_order() -> None:
    # Each field holds its own name: a column left out, read twice or swapped shows.
    record = TraceRecord(**{name: name for name in TRACE_COLUMNS})
    assert _column_values([record]) == [[name] for name in TRACE_COLUMNS]


class _Moment(datetime):
    """A datetime subclass (as pandas' Timestamp is)."""


BAD_FIELDS = [
    {"method": None},
    {"ts": None},
    {"ts": datetime(2026, 1, 5, 9, 0)},  # naive
    {"ts": datetime(2026, 1, 5, 9, 0, 1, 7, tzinfo=timezone(timedelta(hours=-7)))},
    {"ts": datetime(2026, 3, 29, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin"))},
    {"ts": datetime.min.replace(tzinfo=UTC)},
    {"ts": datetime.max.replace(tzinfo=UTC)},
    {"ts": _Moment(2026, 1, 5, tzinfo=UTC)},  # a subclass: Arrow's own conversion
    {"ts": date(2026, 1, 5)},
    {"path": "/\udcff"},  # a lone surrogate: not UTF-8
    {"status": 70_000},
    {"req_headers": None},
    {"req_headers": (("a", None),)},
    {"req_headers": ((None, "x"),)},
    {"req_headers": (("a", "b", "c"),)},
    {"req_headers": {"a": "b"}},
    {"resp_body": "text, not bytes"},
    {"escaped": ["path"]},
    {"req_body_size": 2**70},
]


@pytest.mark.parametrize("fields", BAD_FIELDS, ids=lambda f: repr(f)[:40])
def test_odd_values_fail_or_pass_as_before(fields: dict[str, Any]) -> None:
    rows = [make_record(), dataclasses.replace(make_record(path="/b"), **fields)]
    assert outcome(records_to_batch, rows) == outcome(struct_reference, rows)


def test_the_reference_tells_a_different_batch_apart() -> None:
    # The comparison above can fail: a batch of other rows serializes differently.
    rows = list(realistic_records(50))
    moved = [dataclasses.replace(r, status=(r.status or 0) + 1) for r in rows]
    assert outcome(records_to_batch, moved) != outcome(struct_reference, rows)


def streamed_reference(fd: int, batch: pa.RecordBatch) -> None:
    """`append_frame` before the payload was built in memory (no error handling)."""

    class Checksumming:
        closed = False

        def __init__(self) -> None:
            self.crc, self.size = 0, 0

        def write(self, data: Any) -> int:
            view = memoryview(data)
            self.crc, self.size = zlib.crc32(view, self.crc), self.size + len(view)
            os.write(fd, view)
            return len(view)

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    start = os.lseek(fd, 0, os.SEEK_END)
    os.write(fd, bytes(24))  # the header, zeros until the payload is complete
    sink = Checksumming()
    with ipc.new_stream(pa.PythonFile(sink, mode="w"), batch.schema) as stream:
        stream.write_batch(batch)
    os.pwrite(fd, store.frame_header(sink.size, sink.crc), start)


def counted_append() -> Callable[[int, pa.RecordBatch], None]:
    """`append_frame` told where the file ends, as `ParquetDirSink` keeps count (the file
    position stays where the open put it: the frames must not depend on it)."""
    end = 0

    def append(fd: int, batch: pa.RecordBatch) -> None:
        nonlocal end
        start, size = store.append_frame(fd, batch, end)
        end = start + size

    return append


ODD_ROWS = [
    make_record(req_headers=(), resp_headers=()),
    make_record(req_headers=(("x-name", "Zoë ünïcode ✓"), ("x-name", "")), path="/é/文"),
    make_record(path="/\\xff", escaped=("path",), resp_headers=(("set-cookie", "a=1; b=\\x80"),)),
]


def test_journal_frames_are_byte_identical(tmp_path: Path) -> None:
    rows = [*ODD_ROWS, *realistic_records(9000)]
    # Frames of 0, 1 and 4,097 rows, then 1,200 at a time (the writer sends up to 4,096).
    bounds = [0, 0, 1, 4098, *range(5298, len(rows), 1200), len(rows)]
    batches = [records_to_batch(rows[a:b], SCHEMA) for a, b in itertools.pairwise(bounds)]
    assert [b.num_rows for b in batches[:3]] == [0, 1, 4097]
    journals = {}
    for name, append in (
        ("new", store.append_frame),
        ("counted", counted_append()),
        ("old", streamed_reference),
    ):
        path = tmp_path / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        for batch in batches:
            append(fd, batch)
        os.close(fd)
        journals[name] = path.read_bytes()
    assert journals["new"] == journals["old"]
    assert journals["counted"] == journals["old"]
    assert store.read_journal(tmp_path / "new").num_rows == len(rows)  # type: ignore[union-attr]


def test_the_written_trace_is_the_table_of_the_old_conversion() -> None:
    rows = [*realistic_records(9000), make_record(ts=datetime(2026, 1, 6, tzinfo=UTC))]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "trace"
        with open_writer(directory, TEST_META) as writer:
            for row in rows:
                writer.write(row)
        (part,) = directory.glob("part-*.parquet")
        written = pq.read_table(part)
    expected = pa.Table.from_batches([struct_reference(rows)])
    assert written.schema.equals(expected.schema)
    assert written.schema.metadata == expected.schema.metadata  # as dicts: in any order
    # Parquet hands dictionary columns back with dictionaries of its own: compare values.
    assert decoded(written).equals(decoded(expected))


def decoded(table: pa.Table) -> pa.Table:
    """`table` with its dictionary columns as plain strings, in one chunk."""
    for index, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            plain = table.column(index).cast(f.type.value_type)
            table = table.set_column(index, f.with_type(f.type.value_type), plain)
    return table.combine_chunks()
