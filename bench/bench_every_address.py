"""Time the correlations stage's every-session address step alone (`_every_address`: each
session's first `addr`, else its X-Forwarded-For header), on one trace, in one process:
the stages before it run once (bench_payload_stages.prepared), then the step `--rounds`
times, CPU and wall seconds per round, and what it found (the same with every code).

    cd /tmp && .venv/bin/python -P /path/to/bench/bench_every_address.py TRACE [--rounds 5]

For an A/B, run this file with each checkout's venv python (each imports its own
`tracereplay`), alternating the two, and compare the ratios of the CPU seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_payload_stages import prepared

from tracereplay.models import sample_reads as sr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    state = prepared(args.trace)
    trace, requests, sessions = state["trace"], state["requests"], state["sessions"]
    for _ in range(args.rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        found = sr._every_address(trace, requests, sessions)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"every_address cpu {cpu:.3f} s wall {wall:.3f} s found {found}", flush=True)


if __name__ == "__main__":
    main()
