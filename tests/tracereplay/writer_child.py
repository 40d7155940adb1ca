"""A process that writes numbered rows into a trace until it is killed (for crash tests).

Usage: python -m tests.tracereplay.writer_child DIR ROWS_PER_S ROWS_PER_PART
Prints "ready" once the first row is written. Row i has path "/row/i" and ts = now.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.factories import TEST_META, make_record
from tracereplay.trace import ParquetDirSink, TraceWriter, trace_schema


def main() -> None:
    directory, rate, rows_per_part = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    schema = trace_schema(TEST_META)
    sink = ParquetDirSink(directory, schema, rows_per_part=rows_per_part)
    writer = TraceWriter(sink, schema, flush_interval_s=1.0)
    start = time.monotonic()
    i = 0
    while True:
        writer.write(make_record(ts=datetime.now(UTC), path=f"/row/{i}"))
        if i == 0:
            print("ready", flush=True)
        i += 1
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


if __name__ == "__main__":
    main()
