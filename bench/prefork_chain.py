"""The model's chain before the fork (read, then templates on a thread beside the sessions),
timed in one process: `build_model(processes=2)` as `tracereplay model` runs it (glibc
set to keep freed memory), stopped where the behaviors' child would fork. Prints one line
a run: seconds from the read's start to each stage's end, this process's CPU seconds
(user+sys, every thread) and the main thread's up to the fork, and the peak RSS.

    .venv/bin/python -P bench/prefork_chain.py /work/data/real1M [--no-preload] [--switch S]

`--no-preload`: no scipy import on a thread beside the chain (what the forked child
would then import itself: only the chain is timed here); `--switch S`: the GIL's switch
interval (Python's default 0.005 s) while the chain runs. Run it with another tree's
venv (and code, `-P` keeps this directory off the path) to A/B.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import threading
import time
from pathlib import Path

from tracereplay.allocator import reuse_freed_memory
from tracereplay.models import model


class _Fork(Exception):
    """Raised where the behaviors' child would fork: the chain is done."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trace", type=Path)
    parser.add_argument("--no-preload", action="store_true")
    parser.add_argument("--switch", type=float, default=None)
    args = parser.parse_args()
    reuse_freed_memory()
    if args.no_preload:
        model.preload = lambda modules: _idle()  # type: ignore[assignment]
    if args.switch is not None:
        sys.setswitchinterval(args.switch)
    start = time.perf_counter()
    cpu0 = os.times()
    main0 = time.thread_time()
    ends: dict[str, float] = {}

    def progress(report: model.StageReport) -> None:
        now = time.perf_counter() - start
        if report.seconds is not None:
            ends[report.stage] = now
        elif report.stage == "behaviors":
            ends["fork"] = now
            raise _Fork

    with contextlib.suppress(_Fork):
        model.build_model(args.trace, progress=progress, processes=2)
    cpu = os.times()
    used = (cpu.user - cpu0.user) + (cpu.system - cpu0.system)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stages = " ".join(f"{k} {v:.3f}" for k, v in ends.items())
    print(
        f"{stages} | cpu {used:.3f} main-thread {time.thread_time() - main0:.3f}"
        f" | peak {peak_mib:.0f} MiB",
        flush=True,
    )
    os._exit(0)  # (the preload thread may still import: not waited for)


def _idle() -> threading.Thread:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    return thread


if __name__ == "__main__":
    main()
