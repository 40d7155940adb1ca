"""What is written is what is read: the trace schema round trip, in memory and on disk."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import TEST_META, make_record
from tracereplay.trace import (
    TRACE_COLUMNS,
    TRACE_SCHEMA,
    MemorySink,
    TraceMetadata,
    TraceRecord,
    TraceWriter,
    open_writer,
    read_trace,
    records_to_batch,
    trace_schema,
)
from tracereplay.trace.schema import row_to_record

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
headers = st.lists(st.tuples(text, text), max_size=5).map(tuple)
records = st.builds(
    TraceRecord,
    ts=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "X-CUSTOM"]) | text,
    path=text,
    duration_ms=st.none() | st.floats(allow_nan=False),
    session=st.none() | text,
    client=st.none() | text,
    scheme=st.none() | st.sampled_from(["http", "https"]),
    host=st.none() | text,
    query=st.none() | text,
    req_headers=headers,
    req_body=st.none() | st.binary(max_size=200),
    req_body_size=st.integers(min_value=0, max_value=2**62),
    status=st.none() | st.integers(min_value=-(2**15), max_value=2**15 - 1),
    resp_headers=headers,
    resp_body=st.none() | st.binary(max_size=200),
    resp_body_size=st.integers(min_value=0, max_value=2**62),
    error=st.none() | text,
)


def _sorted(rows: list[TraceRecord]) -> list[TraceRecord]:
    return sorted(rows, key=lambda r: r.ts)


@given(st.lists(records, min_size=1, max_size=30))
@settings(max_examples=150, deadline=None)
def test_round_trip_through_a_trace_directory(rows: list[TraceRecord]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "trace"
        with open_writer(directory, TEST_META) as writer:
            for row in rows:
                writer.write(row)
        table = read_trace(directory)
    assert table.schema.remove_metadata().equals(TRACE_SCHEMA)
    assert [row_to_record(r) for r in table.to_pylist()] == _sorted(rows)


@given(st.lists(records, max_size=30))
@settings(max_examples=100, deadline=None)
def test_round_trip_through_a_memory_sink(rows: list[TraceRecord]) -> None:
    sink = MemorySink(TRACE_SCHEMA)
    with TraceWriter(sink, TRACE_SCHEMA) as writer:
        for row in rows:
            writer.write(row)
    assert sink.closed
    assert [row_to_record(r) for r in sink.table().to_pylist()] == rows


def test_repeated_headers_keep_order_and_duplicates() -> None:
    cookies = (("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x", "y"))
    batch = records_to_batch([make_record(resp_headers=cookies)])
    assert row_to_record(batch.to_pylist()[0]).resp_headers == cookies


def test_schema_has_the_documented_columns_in_order() -> None:
    assert TRACE_COLUMNS == (
        "ts", "duration_ms", "session", "client", "method", "scheme", "host", "path",
        "query", "req_headers", "req_body", "req_body_size", "status", "resp_headers",
        "resp_body", "resp_body_size", "error", "escaped", "conn", "addr",
    )  # fmt: skip
    assert TRACE_SCHEMA.field("ts").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_dictionary(TRACE_SCHEMA.field("method").type)
    assert TRACE_SCHEMA.field("status").type == pa.int16()


def test_metadata_round_trips_through_the_file(tmp_path: Path) -> None:
    meta = TraceMetadata(
        source="capture",
        capture_start=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        policy_hash="abc123",
    )
    with open_writer(tmp_path / "t", meta) as writer:
        writer.write(make_record())
    from tracereplay.trace import open_trace

    got = open_trace(tmp_path / "t").metadata
    assert got == meta
    assert trace_schema(meta).metadata[b"tracereplay.schema"] == b"tracereplay.trace/1"
