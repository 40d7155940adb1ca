"""The trace: schema `tracereplay.trace/1`, a crash-safe writer and a checked reader.

The reader and the writer are imported on first use of their names. The reader loads
pyarrow.dataset, which loads pandas; the writer's conversions (`pa.array`) load pandas on
their first call (pyarrow's pandas shim): ~0.4 s of CPU that a process writing its own
Parquet parts (synthesize and its workers: the schema and store.py only) never needs.
A writer's names load pandas at once, as importing this package always did, so that a
writer's flush thread does not: a first flush held up by the import would leave more
than a flush interval to lose to a crash (tests/tracereplay/test_trace_crash.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from tracereplay.trace.reader import Trace, open_trace, read_trace
    from tracereplay.trace.writer import (
        DEFAULT_FLUSH_INTERVAL_S,
        MemorySink,
        TraceSink,
        TraceWriter,
    )

_LAZY = {"Trace": "reader", "open_trace": "reader", "read_trace": "reader",
         "DEFAULT_FLUSH_INTERVAL_S": "writer", "MemorySink": "writer", "TraceSink": "writer",
         "TraceWriter": "writer"}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module == "writer":
        _before_a_writer()
    return getattr(importlib.import_module(f"tracereplay.trace.{module}"), name)


def _before_a_writer() -> None:
    """The first `pa.array` of the process, so that pyarrow's pandas shim loads pandas here
    (see the module docstring), not in a writer's flush thread."""
    import pyarrow as pa

    pa.array([])


def open_writer(
    directory: str | Path,
    metadata: TraceMetadata,
    *,
    append: bool = False,
    flush_interval_s: float | None = None,
) -> TraceWriter:
    """A `TraceWriter` into a trace directory on disk (flushing every
    `writer.DEFAULT_FLUSH_INTERVAL_S` unless told)."""
    _before_a_writer()
    from tracereplay.trace.writer import DEFAULT_FLUSH_INTERVAL_S, TraceWriter

    if flush_interval_s is None:
        flush_interval_s = DEFAULT_FLUSH_INTERVAL_S
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
