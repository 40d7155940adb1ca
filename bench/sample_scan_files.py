"""What the model's one scan of the sampled requests' heavy columns costs file by file:
`build_model` runs once on TRACE (the load decides whether the behaviors fork, as in the
command), and for each file of the trace this prints its rows, how many rows each want of
the scan keeps there (the payload sample's, the correlation sample's: `source._kept_of`),
and the wall and thread CPU milliseconds of reading it, then the totals of the files the
correlation sample reads and of those only the payload sample reads.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/sample_scan_files.py /work/data/real1M

(bench/README.md, "Where 1 M stops".) A file is decoded up to its last kept row, whatever
share of its rows that is: an endpoint with at most the payload sample's requests is read
whole, and a rare one's requests lie in every file.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the command sets it

from tracereplay.models import source
from tracereplay.models.model import build_model


def main() -> None:
    read = source._kept_of
    files: list[tuple[int, int, list[int], float, float]] = []

    def timed(part: Any, lean: list[Any]) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        out = read(part, lean)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        bounds = [part.offset, part.offset + part.rows]
        kept = [int(np.diff(np.searchsorted(want.wanted, bounds))[0]) for want in lean]
        files.append((part.offset, part.rows, kept, wall, cpu))
        return out

    source._kept_of = timed  # type: ignore[assignment]
    build_model(Path(sys.argv[1]))
    print("first row     rows  kept per want  wall ms  CPU ms")
    for offset, rows, kept, wall, cpu in sorted(files):
        print(f"{offset:9,} {rows:8,}  {kept!s:13s} {wall * 1e3:7.1f} {cpu * 1e3:7.1f}")
    for name, chosen in (
        ("files the correlation sample reads", [f for f in files if sum(f[2][1:])]),
        ("files only the payload sample reads", [f for f in files if not sum(f[2][1:])]),
    ):
        kept = sum(sum(f[2]) for f in chosen)
        cpu = sum(f[4] for f in chosen) * 1e3
        print(f"{name}: {len(chosen)}, {kept:,} rows kept, {cpu:.1f} CPU ms")


if __name__ == "__main__":
    main()
