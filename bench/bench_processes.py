"""`--processes 2` against the one-process maximum (issue 11 item 5), with the target's own
CPU measured beside the generator's.

The generator bench (bench_generator.py, part 3) offers both process counts 4 x the
one-core maximum, and the one-process run degrades when overloaded that far, so its
ratio depends on which one-process figure is "the max". Here, against the same nginx
(bench_generator's: one worker pinned to the last CPU, a 4 KB JSON body):

Each configuration's maximum is found by a sweep: offered from a start rate up by 15 %
a run while it delivers (steady rate ≥ 97 % of the offer, median start within 50 ms),
at most 8 runs; its maximum is the highest steady rate of the sweep. (One run at 1.5-4 x
the maximum is no measure of it: a replay offered far more than it can send falls behind
and degrades, 1,350-1,890 req/s against 2,090 in two quiet runs.)

1. `max1`: one process pinned to CPU 0 (nginx has the other core to itself);
2. `p1`: one process, not pinned;
3. `p2`: `--processes 2`, not pinned.

Each run: the steady-state rate (10th-90th percentile of its send times), sessions
started / planned, the generator tree's CPU cores and nginx's over the same stretch. On
a 2-core machine nginx shares the cores with two generator processes, so the cores left
to the generator bound what `--processes 2` can reach: `bound_p2_over_max1` = (2 - nginx's
cores at p2) x max1's rate per generator core ÷ max1's rate, and
`p2_per_generator_core_over_max1` says how much of that bound p2 used.

    .venv/bin/python bench/bench_processes.py [--seconds 8] [--start 1400] [--json out.json]

Bounded: every run has a planned request count and a --run-time; nginx stops at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from bench_generator import CpuSampler, finish, nginx, run_replay

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
    if "stretch" in result and target:  # nginx's CPU over the run's steady stretch
        a, b = result["stretch"]
        cpu = sum(s.at(b) - s.at(a) for s in target)
        result["nginx_cores"] = round(cpu / (b - a), 3)
    return result


def sweep(port: int, work: Path, name: str, start: float, window_s: float,
          processes: int, pinned: bool) -> dict[str, Any]:  # fmt: skip
    """The run of the highest steady rate while the offer goes up by 15 % a run, until
    one run does not deliver it (see the module doc); every run is kept in `sweep`."""
    runs: list[dict[str, Any]] = []
    offered = start
    for step in range(8):
        run = measured(port, work, f"{name}-{step}", offered, window_s, processes, pinned)
        print(f"{name} offered {offered:.0f}:", run["rps"], run["start_lateness_ms"], flush=True)
        runs.append(run)
        kept_up = run["rps"] >= 0.97 * offered and run["start_lateness_ms"]["p50"] <= 50.0
        if not kept_up:
            break
        offered *= 1.15
    best = max(runs, key=lambda r: r["rps"])
    return {**best, "sweep": [(r["offered_rps"], r["rps"]) for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--start", type=float, default=1400.0,
                        help="the first offered rate of the one-process sweep (req/s)")  # fmt: skip
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
        top = sweep(port, work, "max1", args.start, window, 1, True)
        p1 = sweep(port, work, "p1", 0.9 * top["rps"], window, 1, False)
        p2 = sweep(port, work, "p2", 1.5 * top["rps"], window, 2, False)
        figures.update(max1=top, p1=p1, p2=p2)
        per_core = top["rps"] / top["cpu_cores"]
        figures["p2_over_max1"] = round(p2["rps"] / top["rps"], 3)
        figures["p2_over_p1"] = round(p2["rps"] / p1["rps"], 3)
        if "nginx_cores" in p2:
            left = 2.0 - p2["nginx_cores"]
            figures["bound_p2_over_max1"] = round(left * per_core / top["rps"], 3)
            figures["p2_per_generator_core_over_max1"] = round(
                p2["rps"] / p2["cpu_cores"] / per_core, 3
            )
    finish(figures, args.json)


if __name__ == "__main__":
    main()
