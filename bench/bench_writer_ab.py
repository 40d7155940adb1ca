"""Trace-writer A/B that resolves under load: CPU per row per thread, counted in-process.

Wall-clock rows/s on a shared machine spread 0.44-1.19x between identical runs; CPU
seconds a thread spends on a row vary far less. Three long-lived processes load the same
prebuilt rows once: this tree ("new"), and commit REV's writer twice ("base", "base2":
the A/A check). Then, for `--rounds` rounds, each is told in turn (the order rotates) to
write `--rows` rows through `TraceWriter.write()` and `close()`. Each process counts its
own CPU per thread (`time.thread_time` at the end of every thread's `run`, and of the main
thread around the round): the converting threads (MainThread, `trace-writer`: under the
GIL, the serial path), the journal thread and the compactors. Reported: per side and
thread the median µs of CPU per row; per round the ratios base2/base (A/A) and base/new
(A/B; > 1: new spends less), their median with a 95 % bootstrap interval over rounds; peak
RSS per process; and the rate a quiet 2-core machine would reach at most,
rows / max(GIL threads' CPU, all threads' CPU / 2) (an upper bound: no stall, no idle).
Where the wall goes besides: `convert_wall`, the wall inside the writer's conversions
(their CPU plus the GIL and run-queue waits within them), `land_wait`, the wall the
converting threads wait for the journal frame before (`TraceWriter._land`), and `tail`,
the wall `close()` still takes after the last conversion returned (last frames, last
part's compaction).

    .venv/bin/python bench/bench_writer_ab.py --base 4a28612 --rows 200000 --rounds 30
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path += [str(REPO), str(REPO / "bench")]  # appended: the base's PYTHONPATH comes first

GIL_THREADS = ("MainThread", "trace-writer")
"""Threads that convert rows to Arrow under the GIL: the serial part of the writer."""


def count_thread_cpu() -> dict[str, float]:
    """CPU seconds of every thread started from now on, by name (without the pool's
    `_N` suffix), summed when its `run` returns (the writer joins its threads at close)."""
    spent: dict[str, float] = {}
    run = threading.Thread.run

    def counted_run(self: threading.Thread) -> None:
        start = time.thread_time()
        try:
            run(self)
        finally:
            name = self.name.split("_")[0]
            spent[name] = spent.get(name, 0.0) + time.thread_time() - start

    threading.Thread.run = counted_run  # type: ignore[method-assign]
    return spent


def time_conversions() -> dict[str, float]:
    """Wall seconds inside the writer's `records_to_batch` (summed) and when the last call
    returned: the tail of a round is what `close()` still takes after it (the last
    frames, the last part's compaction). Also the wall spent waiting for journal frames
    (`TraceWriter._land`, summed)."""
    import tracereplay.trace.writer as writer_module

    marks = {"wall": 0.0, "last": 0.0, "land": 0.0}
    convert = writer_module.records_to_batch

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return convert(*args, **kwargs)
        finally:
            marks["last"] = end = time.perf_counter()
            marks["wall"] += end - start

    writer_module.records_to_batch = timed  # type: ignore[attr-defined]
    land = writer_module.TraceWriter._land

    def timed_land(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return land(*args)
        finally:
            marks["land"] += time.perf_counter() - start

    writer_module.TraceWriter._land = timed_land  # type: ignore[method-assign]
    return marks


def serve(rows_file: Path) -> None:
    """A side: loads the rows, then answers each `run N` line with one JSON line."""
    import tracereplay.trace
    from tests.factories import TEST_META
    from tracereplay.trace import open_writer

    with rows_file.open("rb") as handle:
        rows = pickle.load(handle)
    gc.freeze()  # the prebuilt rows are no garbage; a capture's heap holds none of them
    spent = count_thread_cpu()
    marks = time_conversions()
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd != "run":
            break
        batch = rows[: int(args[0])]
        spent.clear()
        marks["wall"] = marks["land"] = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            main0, cpu0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
            writer = open_writer(Path(tmp) / "trace", TEST_META)
            for row in batch:
                writer.write(row)
            writer.close()
            end = time.perf_counter()
            wall, cpu = end - wall0, time.process_time() - cpu0
            tail, convert_wall = end - marks["last"], marks["wall"]
            threads = {"MainThread": time.thread_time() - main0, **spent}
            assert writer.rows_flushed == len(batch)
        answer = {
            "code": tracereplay.trace.__file__,
            "rows": len(batch),
            "wall_s": wall,
            "cpu_s": cpu,
            "threads_s": threads,
            "tail_s": tail,
            "convert_wall_s": convert_wall,
            "land_wait_s": marks["land"],
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        print(json.dumps(answer), flush=True)


class Side:
    def __init__(self, rows_file: Path, tree: Path | None, cpus: set[int] | None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        self.expected = str(tree or REPO)
        self.process = subprocess.Popen(
            [sys.executable, "-P", __file__, "--serve", str(rows_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        if cpus:
            os.sched_setaffinity(self.process.pid, cpus)

    def run(self, rows: int) -> dict[str, Any]:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write(f"run {rows}\n")
        stdin.flush()
        out = json.loads(self.process.stdout.readline())  # type: ignore[union-attr]
        assert out["code"].startswith(self.expected), f"ran {out['code']}"
        return out

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # type: ignore[union-attr]
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


KEYS = (
    "gil",
    "all",
    "quiet_bound",
    "wall",
    "tail",
    "convert_wall",
    "land_wait",
    *GIL_THREADS,
    "trace-journal",
    "trace-compact",
)
"""What the ratios are given for (thread names: the writer's in this tree and the base)."""


def per_row(run: dict[str, Any]) -> dict[str, float]:
    """µs of CPU per row: each thread, the converting (GIL) threads, all, and the wall."""
    us = dict.fromkeys(KEYS, 0.0)
    us.update({name: 1e6 * s / run["rows"] for name, s in run["threads_s"].items()})
    us["gil"] = sum(us.get(name, 0.0) for name in GIL_THREADS)
    us["all"] = 1e6 * run["cpu_s"] / run["rows"]
    us["wall"] = 1e6 * run["wall_s"] / run["rows"]
    us["tail"] = 1e6 * run["tail_s"] / run["rows"]  # wall after the last conversion
    us["convert_wall"] = 1e6 * run["convert_wall_s"] / run["rows"]  # wall inside them
    us["land_wait"] = 1e6 * run["land_wait_s"] / run["rows"]  # waiting for journal frames
    us["quiet_bound"] = max(us["gil"], us["all"] / 2)  # µs/row on 2 free cores, at best
    return us


def ratios(values: np.ndarray) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    boot = np.median(rng.choice(values, (2000, len(values))), axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "median": round(float(np.median(values)), 3),
        "ci95_median": [round(float(lo), 3), round(float(hi), 3)],
        "rounds": [round(float(x), 3) for x in values],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="the commit to compare with")
    parser.add_argument("--rows", type=int, default=200_000, help="rows per round")
    parser.add_argument("--rounds", type=int, default=30, help="30: the A/A within ~5 %%")
    parser.add_argument("--cpus", help="pin every side to these CPUs, e.g. 0,1")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    from bench_model import old_tree

    from tests.factories import realistic_records

    cpus = {int(c) for c in args.cpus.split(",")} if args.cpus else None
    print(f"building {args.rows:,} realistic rows ...", flush=True)
    rows = list(realistic_records(args.rows))
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.pickle"
        with rows_file.open("wb") as handle:
            pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
        del rows
        tree = old_tree(args.base, Path(tmp) / "base")
        sides = {
            "new": Side(rows_file, None, cpus),
            "base": Side(rows_file, tree, cpus),
            "base2": Side(rows_file, tree, cpus),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        rss: dict[str, float] = {}
        try:
            for side in sides.values():  # warm-up: imports, first parts
                side.run(min(args.rows, 20_000))
            order = list(sides.items())
            for r in range(args.rounds):
                turn = order[r % 3 :] + order[: r % 3]
                for name, side in turn if r % 2 == 0 else turn[::-1]:
                    out = side.run(args.rows)
                    runs[name].append(per_row(out))
                    rss[name] = out["maxrss_mib"]
                print(
                    f"round {r + 1}/{args.rounds}: "
                    + ", ".join(
                        f"{n} gil {v[-1]['gil']:.2f} all {v[-1]['all']:.2f} us/row"
                        for n, v in runs.items()
                    ),
                    flush=True,
                )
        finally:
            for side in sides.values():
                side.close()
    figures: dict[str, Any] = {"base": args.base, "rows": args.rows, "rounds": args.rounds}
    for name, per in runs.items():
        keys = sorted({k for run in per for k in run})
        figures[name] = {
            k: round(float(np.median([run.get(k, 0.0) for run in per])), 3) for k in keys
        }
        figures[name]["quiet_rows_per_s"] = round(1e6 / figures[name]["quiet_bound"])
        figures[name]["peak_rss_mib"] = round(rss[name])
    for label, a, b in (
        ("aa_base2_over_base", "base2", "base"),
        ("ab_base_over_new", "base", "new"),
    ):
        figures[label] = {
            key: ratios(np.array([x[key] for x in runs[a]]) / np.array([x[key] for x in runs[b]]))
            for key in KEYS
        }
    for name in sides:
        print(f"{name}: median us/row {json.dumps(figures[name])}")
    for label in ("aa_base2_over_base", "ab_base_over_new"):
        for key, r in figures[label].items():
            print(f"{label} {key}: {r['median']} (95 % {r['ci95_median']}) rounds {r['rounds']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
