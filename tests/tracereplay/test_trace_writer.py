"""The batching writer: nothing lost on a normal stop, flushes on time, keeps rows on failure."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from tests.factories import TEST_META, make_record, realistic_records
from tracereplay.errors import TraceError, TraceExistsError
from tracereplay.trace import (
    TRACE_SCHEMA,
    MemorySink,
    ParquetDirSink,
    TraceWriter,
    open_writer,
    read_trace,
    trace_schema,
)
from tracereplay.trace.store import scan_directory


def test_close_loses_nothing_across_many_parts(tmp_path: Path) -> None:
    rows = list(realistic_records(5_000))
    schema = trace_schema(TEST_META)
    sink = ParquetDirSink(tmp_path / "t", schema, rows_per_part=1_200)
    with TraceWriter(sink, schema) as writer:
        for i, row in enumerate(rows, 1):
            writer.write(row)
            if i % 500 == 0:
                writer.flush()
    parts, journals = scan_directory(tmp_path / "t")
    assert len(parts) == 4  # journals rotate after 1,500 rows (three batches of 500)
    assert not journals
    table = read_trace(tmp_path / "t", ["path", "req_body"])
    assert table.num_rows == len(rows)
    assert table["path"].to_pylist() == [r.path for r in rows]
    assert table["req_body"].to_pylist() == [r.req_body for r in rows]


def test_rows_reach_the_sink_within_the_flush_interval_without_more_writes() -> None:
    sink = MemorySink(TRACE_SCHEMA)
    with TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=0.2) as writer:
        writer.write(make_record())
        deadline = time.monotonic() + 5
        while not sink.batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(b.num_rows for b in sink.batches) == 1
        assert writer.rows_flushed == 1


class FailingSink(MemorySink):
    def __init__(self) -> None:
        super().__init__(TRACE_SCHEMA)
        self.fail = True

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self.fail:
            raise OSError("disk full")
        super().write_batch(batch)


def test_a_failing_sink_keeps_the_rows_and_says_so() -> None:
    sink = FailingSink()
    writer = TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=0.05)
    writer.write(make_record(path="/kept"))
    deadline = time.monotonic() + 5
    while writer._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(TraceError, match="writing the trace failed: disk full"):
        writer.write(make_record())
    assert writer.rows_buffered == 1
    sink.fail = False
    writer.close()
    assert sink.table()["path"].to_pylist() == ["/kept"]


def test_write_batch_takes_columnar_rows_after_the_buffered_ones() -> None:
    sink = MemorySink(TRACE_SCHEMA)
    with TraceWriter(sink, TRACE_SCHEMA) as writer:
        writer.write(make_record(path="/first"))
        more = pa.Table.from_pylist(
            [{"ts": make_record().ts, "method": "GET", "path": "/second"}],
            schema=pa.schema([f for f in TRACE_SCHEMA if f.name in ("ts", "method", "path")]),
        )
        full = pa.table(
            {f.name: more[f.name] if f.name in more.column_names else pa.nulls(1, f.type)
             for f in TRACE_SCHEMA}
        )  # fmt: skip
        writer.write_batch(full)
    assert sink.table()["path"].to_pylist() == ["/first", "/second"]


def test_writing_after_close_is_an_error() -> None:
    writer = TraceWriter(MemorySink(TRACE_SCHEMA), TRACE_SCHEMA)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(TraceError, match="closed"):
        writer.write(make_record())


def test_refuses_to_write_into_an_existing_trace(tmp_path: Path) -> None:
    with open_writer(tmp_path / "t", TEST_META) as writer:
        writer.write(make_record())
    with pytest.raises(TraceExistsError) as err:
        open_writer(tmp_path / "t", TEST_META)
    assert str(err.value) == (
        f"{tmp_path / 't'} already holds a trace; choose a new --out directory"
    )
    with open_writer(tmp_path / "t", TEST_META, append=True) as writer:
        writer.write(make_record(path="/appended"))
    assert read_trace(tmp_path / "t").num_rows == 2
