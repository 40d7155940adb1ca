"""`--processes 2` against the one-process maximum (issue 11 item 5), with the target's own
CPU measured beside the generator's.

The generator bench (bench_generator.py, part 3) offers both process counts 4 x the
one-core maximum, and the one-process run degrades when overloaded that far, so its
ratio depends on which one-process figure is "the max". Here, against the same nginx
(bench_generator's: one worker pinned to the last CPU, a 4 KB JSON body):

1. `max1`: one process pinned to CPU 0, offered 1.5 x a first guess, then again at 1.2 x
   what it reached: the one-process maximum with the target on a core of its own;
2. `p1`: one process, not pinned, offered 1.2 x `max1`;
3. `p2`: `--processes 2`, not pinned, offered 2.2 x `max1` (room above the 1.7 x goal).

Each run: the steady-state rate (10th-90th percentile of its send times), sessions
started / planned, the generator tree's CPU cores and nginx's over the same stretch. On
a 2-core machine nginx shares the cores with two generator processes, so the cores left
to the generator bound what `--processes 2` can reach: `bound_p2_over_max1` = (2 - nginx's
cores at p2) x max1's rate per generator core ÷ max1's rate, and
`p2_per_generator_core_over_max1` says how much of that bound p2 used.

    .venv/bin/python bench/bench_processes.py [--seconds 8] [--guess 2500] [--json out.json]

Bounded: every run has a planned request count and a --run-time; nginx stops at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from bench_generator import CpuSampler, nginx, run_replay

PER_SESSION = 10


def nginx_pids(work: Path) -> list[int]:
    """The nginx processes started with this bench's private prefix."""
    pids = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] == "nginx" and str(work) in " ".join(proc.info["cmdline"] or []):
                pids.append(proc.pid)
    return pids


def measured(port: int, work: Path, name: str, rate: float, window_s: float,
             processes: int, pinned: bool) -> dict[str, Any]:  # fmt: skip
    """One replay run (bench_generator.run_replay) with nginx's CPU sampled beside it."""
    target = [CpuSampler(pid) for pid in nginx_pids(work / "nginx")]
    try:
        result = run_replay(port, work, name, rate=rate, window_s=window_s,
                            per_session=PER_SESSION, processes=processes,
                            pinned=pinned)  # fmt: skip
    finally:
        for sampler in target:
            sampler.stop()
    # nginx's CPU over the run's steady stretch: the generator's cores x stretch give it back
    stretch = result.get("steady_s")
    if stretch and target:
        import pyarrow.parquet as pq

        sent = pq.read_table(work / name / "timing.parquet", columns=["sent_s"])
        times = sorted(sent["sent_s"].to_pylist())
        a, b = times[len(times) // 10], times[len(times) * 9 // 10]
        cpu = sum(s.at(b) - s.at(a) for s in target)
        result["nginx_cores"] = round(cpu / (b - a), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--guess", type=float, default=2500.0,
                        help="a first guess of the one-process maximum (req/s)")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench_processes: needs 2 CPUs")
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
    }
    window = args.seconds
    with (
        tempfile.TemporaryDirectory(prefix="bench-proc-") as tmp,
        nginx(Path(tmp) / "nginx", (os.cpu_count() or 2) - 1) as port,
    ):
        work = Path(tmp)
        first = measured(port, work, "max1a", 1.5 * args.guess, window, 1, True)
        print("one process pinned, first:", first, flush=True)
        second = measured(port, work, "max1", 1.2 * first["rps"], window, 1, True)
        print("one process pinned, second:", second, flush=True)
        top = max((first, second), key=lambda r: r["rps"])
        p1 = measured(port, work, "p1", 1.2 * top["rps"], window, 1, False)
        print("one process, 2 cores:", p1, flush=True)
        p2 = measured(port, work, "p2", 2.2 * top["rps"], window, 2, False)
        print("two processes, 2 cores:", p2, flush=True)
        figures.update(max1_first=first, max1_second=second, max1=top, p1=p1, p2=p2)
        per_core = top["rps"] / top["cpu_cores"]
        figures["p2_over_max1"] = round(p2["rps"] / top["rps"], 3)
        figures["p2_over_p1"] = round(p2["rps"] / p1["rps"], 3)
        if "nginx_cores" in p2:
            left = 2.0 - p2["nginx_cores"]
            figures["bound_p2_over_max1"] = round(left * per_core / top["rps"], 3)
            figures["p2_per_generator_core_over_max1"] = round(
                p2["rps"] / p2["cpu_cores"] / per_core, 3
            )
    figures["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
