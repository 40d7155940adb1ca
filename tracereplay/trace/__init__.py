"""The trace: schema `tracereplay.trace/1`, a crash-safe writer and a checked reader."""

from __future__ import annotations

from pathlib import Path

from tracereplay.trace.reader import Trace, open_trace, read_trace
from tracereplay.trace.schema import (
    SCHEMA_ID,
    TRACE_COLUMNS,
    TRACE_SCHEMA,
    TraceMetadata,
    TraceRecord,
    records_to_batch,
    trace_schema,
)
from tracereplay.trace.store import ParquetDirSink
from tracereplay.trace.writer import DEFAULT_FLUSH_INTERVAL_S, MemorySink, TraceSink, TraceWriter


def open_writer(
    directory: str | Path,
    metadata: TraceMetadata,
    *,
    append: bool = False,
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
) -> TraceWriter:
    """A `TraceWriter` into a trace directory on disk."""
    schema = trace_schema(metadata)
    sink = ParquetDirSink(Path(directory), schema, append=append)
    return TraceWriter(sink, schema, flush_interval_s=flush_interval_s)


__all__ = [
    "DEFAULT_FLUSH_INTERVAL_S",
    "SCHEMA_ID",
    "TRACE_COLUMNS",
    "TRACE_SCHEMA",
    "MemorySink",
    "ParquetDirSink",
    "Trace",
    "TraceMetadata",
    "TraceRecord",
    "TraceSink",
    "TraceWriter",
    "open_trace",
    "open_writer",
    "read_trace",
    "records_to_batch",
    "trace_schema",
]
