"""What the sessions stage leaves held, in bytes per request: `build_model`'s steps up to
the fork (the read, `_sessionized`, the session table, statistics and censoring, the
templates, `_keep_what_later_stages_read`; one thread), then each numpy array still held
(the light columns, the sessionized frame's columns, the session table, the templates'
endpoint codes, the sort kept for the statistics at the other timeouts), an array that
shares another's memory counted once, and the process's RSS.

    .venv/bin/python -P bench/sessions_memory.py /work/data/real10M

Run it with another tree's code first on the import path (PYTHONPATH=TREE, as
bench_model.py's `old_tree` makes one) to compare.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tracereplay.models import sessionized
from tracereplay.models.frame import read_light_columns
from tracereplay.models.model import SENSITIVITY_TIMEOUTS_S
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import session_stats, session_table
from tracereplay.models.source import ParquetSource


def rss_mib() -> tuple[float, float]:
    """VmRSS and VmHWM, MiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


class Held:
    """Arrays counted once each, whatever shares their memory."""

    def __init__(self, rows: int) -> None:
        self.rows, self.total = rows, 0
        self.seen: list[tuple[np.ndarray, str]] = []

    def add(self, name: str, array: Any) -> None:
        for other, where in self.seen:
            if np.shares_memory(array, other):
                print(f"  {name:26s} {array.dtype!s:8s} (shares {where})")
                return
        self.seen.append((array, name))
        self.total += array.nbytes
        print(f"  {name:26s} {array.dtype!s:8s} {array.nbytes / self.rows:6.2f} B/request")


def main() -> None:
    trace = ParquetSource.open(Path(sys.argv[1]))
    print("imports: rss, peak MiB", rss_mib())
    requests = read_light_columns(trace)
    pa.default_memory_pool().release_unused()
    print("read: rss, peak MiB", rss_mib())
    sessions, later = sessionized._sessionized(
        trace, requests, None, [], 1800.0, SENSITIVITY_TIMEOUTS_S
    )
    table = session_table(sessions)
    session_stats(sessions, table)
    censored = censoring(sessions, 1800.0)
    _, endpoint, names = sessionized._templates(requests)
    sessionized._keep_what_later_stages_read(sessions)
    sessionized._completed(sessions, endpoint, names, table["length"].to_numpy())
    pa.default_memory_pool().release_unused()
    rss, peak = rss_mib()
    print("sessions: rss, peak MiB", (rss, peak))
    held = Held(len(requests))
    for name in ("row", "t_s", "duration_ms", "status", "key", "method", "path"):
        held.add(f"requests.{name}", getattr(requests, name))
    for column in sessions.columns:
        values = sessions[column]
        codes = values.cat.codes if isinstance(values.dtype, pd.CategoricalDtype) else values
        held.add(f"sessions.{column}", codes.to_numpy())
    for column in table.columns:
        held.add(f"table.{column}", table[column].to_numpy())
    held.add("table.index", table.index.to_numpy())
    held.add("endpoint (templates)", endpoint)
    held.add("censoring.start", censored.start)
    held.add("censoring.end", censored.end)
    for cell in (later.compute.__closure__ or ()) if later.compute else ():
        split = cell.cell_contents
        for field in getattr(split, "_fields", ()):
            if isinstance(getattr(split, field), np.ndarray):
                held.add(f"kept sort.{field}", getattr(split, field))
    n = len(requests)
    print(f"arrays held {held.total / n:.1f} B/request; rss {rss * 2**20 / n:.1f} B/request")


if __name__ == "__main__":
    main()
