"""The batching writer: nothing lost on a normal stop, flushes on time, keeps rows on failure."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import TEST_META, make_record, make_table, realistic_records
from tests.tmpfs import small_tmpfs
from tracereplay.errors import TraceError, TraceExistsError, TraceLockedError
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
from tracereplay.trace.writer import CONVERT_CHUNK_ROWS


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


def test_a_full_buffer_wakes_the_flusher_every_time_it_fills() -> None:
    # The interval is far off: only a full buffer can bring these rows to the sink, and
    # it must do so again after each flush (write() wakes the flusher once per filling).
    sink = MemorySink(TRACE_SCHEMA)
    with TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=60, max_buffer_rows=10) as writer:
        for filling in range(1, 4):
            for i in range(10):
                writer.write(make_record(path=f"/{filling}/{i}"))
            deadline = time.monotonic() + 5
            while writer.rows_flushed < 10 * filling and time.monotonic() < deadline:
                time.sleep(0.01)
            assert writer.rows_flushed == 10 * filling


class FailingSink(MemorySink):
    def __init__(self) -> None:
        super().__init__(TRACE_SCHEMA)
        self.fail = False

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        super().write_batch(batch)


def test_a_failing_sink_stops_the_writer_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FailingSink()
    writer = TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=0.05)
    writer.write(make_record(path="/kept"))
    writer.flush()
    sink.fail = True
    writer.write(make_record(path="/lost"))
    deadline = time.monotonic() + 5
    while writer.failure is None and time.monotonic() < deadline:
        time.sleep(0.01)
    message = (
        "writing the trace failed (No space left on device): 1 rows were written and "
        "stay readable; rows after that are lost"
    )
    for _ in range(3):  # stops accepting
        with pytest.raises(TraceError) as refused:
            writer.write(make_record())
        assert str(refused.value) == message
    sink.fail = False  # even with room again: the trace is not silently continued
    with pytest.raises(TraceError, match="1 rows were written"):
        writer.close()
    assert sink.closed and sink.table()["path"].to_pylist() == ["/kept"]
    assert writer.rows_flushed == 1 and writer.rows_lost == 4
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [message]


class FailingLater(MemorySink):
    """Takes `good` batches, then fails like a full disk."""

    def __init__(self, good: int) -> None:
        super().__init__(TRACE_SCHEMA)
        self.good = good

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if len(self.batches) == self.good:
            raise OSError(28, "No space left on device")
        super().write_batch(batch)


def test_a_sink_failing_mid_flush_keeps_the_frames_before_in_order() -> None:
    # The flusher converts the next chunk while the sink writes the one before: when the
    # sink fails, the chunk already converted is lost, not counted as written or rejected.
    sink = FailingLater(good=2)
    writer = TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=60)
    total = 3 * CONVERT_CHUNK_ROWS + 10
    bad = 3 * CONVERT_CHUNK_ROWS + 5  # in the chunk converted while the failing one is written
    for i in range(total):
        path = "/raw/\udcff" if i in (3, bad) else f"/r/{i}"  # not UTF-8: left out
        writer.write(make_record(path=path))
    with pytest.raises(TraceError, match="No space left"):
        writer.flush()
    kept = 2 * CONVERT_CHUNK_ROWS - 1
    assert sink.table()["path"].to_pylist() == [f"/r/{i}" for i in range(kept + 1) if i != 3]
    assert writer.rows_flushed == kept and writer.rows_rejected == 1
    assert writer.rows_lost == total - 2 * CONVERT_CHUNK_ROWS
    with pytest.raises(TraceError):
        writer.close()


class FailingOnce(MemorySink):
    """Fails its `bad`-th batch like a full disk, then takes batches again (room freed)."""

    def __init__(self, bad: int) -> None:
        super().__init__(TRACE_SCHEMA)
        self.bad = bad
        self.calls = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.calls += 1
        if self.calls == self.bad:
            raise OSError(28, "No space left on device")
        super().write_batch(batch)


def test_no_frame_after_a_failed_one_reaches_the_sink() -> None:
    # When the sink fails a frame, the frames after it are lost with it, even if the sink
    # would take them again: a trace never has a gap of rows that were counted lost.
    # (Holds with one frame in flight; seen failing with four queued and no check.)
    sink = FailingOnce(bad=2)
    writer = TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=60)
    total = 4 * CONVERT_CHUNK_ROWS
    for i in range(total):
        writer.write(make_record(path=f"/r/{i}"))
    with pytest.raises(TraceError, match="No space left"):
        writer.flush()
    assert sink.table()["path"].to_pylist() == [f"/r/{i}" for i in range(CONVERT_CHUNK_ROWS)]
    assert writer.rows_flushed == CONVERT_CHUNK_ROWS
    assert writer.rows_lost == total - CONVERT_CHUNK_ROWS
    with pytest.raises(TraceError):
        writer.close()
    assert sink.calls == 2  # the frames after the failed one were never offered


def test_a_row_that_cannot_be_stored_is_left_out_and_the_rest_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = MemorySink(TRACE_SCHEMA)
    with TraceWriter(sink, TRACE_SCHEMA) as writer:
        writer.write(make_record(path="/before"))
        writer.write(make_record(path="/raw/\udcff"))  # a str that is not UTF-8
        writer.write(make_record(path="/after", status=70_000))  # does not fit int16
        writer.write(make_record(path="/last"))
    assert sink.table()["path"].to_pylist() == ["/before", "/last"]
    assert writer.rows_rejected == 2 and writer.rows_flushed == 2
    assert [r.getMessage() for r in caplog.records] == [
        "a GET row could not be stored (UnicodeEncodeError); left out",
        "a GET row could not be stored (ArrowInvalid); left out",
    ]


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


def test_one_writer_per_directory(tmp_path: Path) -> None:
    first = open_writer(tmp_path / "t", TEST_META)
    with pytest.raises(TraceLockedError) as err:
        open_writer(tmp_path / "t", TEST_META, append=True)
    assert str(err.value) == (
        f"--out {tmp_path / 't'}: another capture or writer is writing this trace "
        f"(pid {os.getpid()})"
    )
    first.write(make_record(path="/first"))
    first.close()  # the lock goes with the writer
    with open_writer(tmp_path / "t", TEST_META, append=True) as writer:
        writer.write(make_record(path="/second"))
    assert sorted(read_trace(tmp_path / "t")["path"].to_pylist()) == ["/first", "/second"]


def test_an_out_that_cannot_be_written_is_one_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(TraceError) as err:
        open_writer(a_file, TEST_META)
    assert str(err.value) == f"--out {a_file}: exists and is not a directory"
    with (
        small_tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only,
        pytest.raises(TraceError) as err,
    ):
        open_writer(read_only / "t", TEST_META)
    assert str(err.value) == f"--out {read_only / 't'}: cannot write there (Read-only file system)"


@pytest.mark.parametrize("missing", [["escaped", "conn", "addr"], ["conn", "addr"]])
def test_a_trace_written_before_an_additive_column_is_read_with_nulls(
    tmp_path: Path, missing: list[str]
) -> None:
    table = make_table([make_record(path="/old", conn="c1", addr="a1")]).drop_columns(missing)
    tmp_path.joinpath("t").mkdir()
    pq.write_table(table, tmp_path / "t" / "part-000001.parquet")
    got = read_trace(tmp_path / "t")
    assert got.schema.remove_metadata().equals(TRACE_SCHEMA)
    assert all(got[name].to_pylist() == [None] for name in missing)
    assert got["path"].to_pylist() == ["/old"]
