"""Where a command's CPU goes over time, thread by thread: runs COMMAND, samples every few
milliseconds the CPU ticks (user + system, /proc/PID/task/TID/stat) of each thread of it
and of its direct children, and prints per process (P: the command, C: a child) its main
thread's and its other threads' ticks in bins of --bin seconds, then their totals. Linux
only. A tick is 1/CLK_TCK s (usually 10 ms), so a bin of 0.2 s holds 20 per busy core.

    .venv/bin/python bench/thread_cpu.py [--bin 0.2] -- .venv/bin/tracereplay model TRACE --out F

(bench/README.md, "Sparse k-means fits and BLAS on one thread": OpenBLAS's workers seen
spinning beside the model's imports, and gone with OPENBLAS_NUM_THREADS=1.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

PROC = Path("/proc")


def ticks(pid: int, tid: str) -> int | None:
    """User + system ticks of thread `tid` of `pid` (None once it is gone)."""
    try:
        stat = (PROC / str(pid) / "task" / tid / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    """The direct children of `pid` (those its main thread started: a fork's)."""
    try:
        listed = (PROC / str(pid) / "task" / str(pid) / "children").read_text()
    except OSError:
        return []
    return [int(child) for child in listed.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=float, default=0.2, help="seconds a column holds")
    parser.add_argument("--every", type=float, default=0.005, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[tuple[int, str], int] = {}
    bins: dict[str, Counter[int]] = defaultdict(Counter)
    while process.poll() is None:
        column = int((time.perf_counter() - start) / args.bin)
        for rank, pid in enumerate([process.pid, *children(process.pid)]):
            try:
                threads = [task.name for task in (PROC / str(pid) / "task").iterdir()]
            except OSError:
                continue
            for tid in threads:
                now = ticks(pid, tid)
                if now is None:
                    continue
                before = seen.get((pid, tid))
                if before is not None and now > before:
                    who = "P" if rank == 0 else f"C{pid}"
                    bins[f"{who} {'main' if tid == str(pid) else 'other threads'}"][column] += (
                        now - before
                    )
                seen[(pid, tid)] = now
        time.sleep(args.every)
    columns = max((max(c) for c in bins.values() if c), default=0) + 1
    print(f"exit {process.returncode}; ticks per {args.bin} s bin ({os.sysconf('SC_CLK_TCK')}/s)")
    for name, counts in sorted(bins.items()):
        row = " ".join(f"{counts[i]:3d}" for i in range(columns))
        print(f"{name:24} {row}  total {sum(counts.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
