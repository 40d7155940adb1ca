"""Trace-writer throughput: realistic rows through TraceWriter into a trace directory.

Measures the whole path a capture uses: `write()` per row (the hot path a proxy hook
pays), the background flushes into the Arrow journal, and compaction into Parquet at
close; "end to end" stops the clock when `close()` returns, i.e. when every row is in a
Parquet part. Rows are built before timing, so faker is not measured. A second figure
feeds the same rows as ready Arrow batches (`write_batch`, the columnar path), which
shows what the journal and Parquet side sustain without the per-row conversion.

    .venv/bin/python bench/bench_writer.py [--rows 1000000] [--json out.json]

With `--base REV` it instead compares this tree's writer with commit REV's in the same
run: the rows are built once (pickled to a temporary file), then each side writes them
in its own process, `--pairs` times, alternating which side goes first; the figure to
quote is the ratio of the two sides' rates within each pair (the machine may be shared).

    .venv/bin/python bench/bench_writer.py --base main --rows 1000000 --pairs 4

CPU per row (all threads, `time.process_time`) is printed too: on a shared machine it
varies less than the wall-clock rate. So is each thread's CPU per row, counted when the
thread's `run` returns (nothing samples threads while the clock runs): the main thread
and the flusher (`trace-writer`) hold the GIL to convert rows, the journal and compaction
threads mostly do not; on a busy machine their split tells what a quiet one would gain
from moving work between them. Each run also prints the 1-minute load average at its
start and end: quote absolute rates only from runs whose load stayed below 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
# Appended, not prepended: under --base the base commit's `tracereplay` (PYTHONPATH)
# must come before this tree's; `tests.factories` and `bench_model` are found here.
sys.path += [str(REPO), str(REPO / "bench")]

from bench_writer_ab import GIL_THREADS, count_thread_cpu  # noqa: E402

import tracereplay.trace  # noqa: E402
from tests.factories import TEST_META, realistic_records  # noqa: E402
from tracereplay.trace import (  # noqa: E402
    TraceRecord,
    open_writer,
    read_trace,
    records_to_batch,
    trace_schema,
)


def records_to_table(rows: list[TraceRecord]) -> pa.Table:
    schema = trace_schema(TEST_META)
    batches = [records_to_batch(rows[i : i + 50_000], schema) for i in range(0, len(rows), 50_000)]
    return pa.Table.from_batches(batches, schema=schema)


THREAD_CPU_S = count_thread_cpu()
"""CPU seconds of each thread the writer starts, by name, counted when its `run` returns
(the writer joins them all in `close()`): nothing samples them while the clock runs."""


def per_row_run(rows: list[TraceRecord], *, read_back: bool = True) -> dict[str, Any]:
    """One timed pass: `write()` every row, then `close()`."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "trace"
        THREAD_CPU_S.clear()
        load = os.getloadavg()[0]
        main_start = time.thread_time()
        start, cpu_start = time.perf_counter(), time.process_time()
        writer = open_writer(directory, TEST_META)
        for row in rows:
            writer.write(row)
        hot_s = time.perf_counter() - start
        writer.close()
        total_s = time.perf_counter() - start
        cpu_s = time.process_time() - cpu_start
        seconds = {"MainThread": time.thread_time() - main_start, **THREAD_CPU_S}
        thread_us = {name: round(1e6 * s / len(rows), 2) for name, s in sorted(seconds.items())}
        size = sum(p.stat().st_size for p in directory.iterdir())
        figures = {
            "rows": len(rows),
            "write_calls_per_s": len(rows) / hot_s,
            "rows_per_s": len(rows) / total_s,
            "cpu_us_per_row": 1e6 * cpu_s / len(rows),
            "thread_cpu_us_per_row": thread_us,
            "gil_threads_cpu_us_per_row": round(sum(thread_us.get(n, 0) for n in GIL_THREADS), 2),
            "bytes_on_disk": size,
            "bytes_per_row": size / len(rows),
            "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
            "switch_interval_s": sys.getswitchinterval(),
        }
        if read_back:
            start = time.perf_counter()
            assert read_trace(directory).num_rows == len(rows)
            figures["read_rows_per_s"] = len(rows) / (time.perf_counter() - start)
    return figures


def child(rows_file: Path, repeat: int) -> None:
    """One side of an A/B pair: the rows from `rows_file`, `repeat` passes, JSON on stdout."""
    with rows_file.open("rb") as handle:
        rows = pickle.load(handle)
    gc.freeze()  # the prebuilt rows are no garbage; a capture's heap holds none of them
    runs = [per_row_run(rows, read_back=False) for _ in range(repeat)]
    print(json.dumps({"code": tracereplay.trace.__file__, "runs": runs}))


def compare_with_base(args: argparse.Namespace, rows: list[TraceRecord]) -> dict[str, Any]:
    from bench_model import old_tree

    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.pickle"
        with rows_file.open("wb") as handle:
            pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
        base = old_tree(args.base, Path(tmp) / "base")
        pairs = []
        for pair in range(args.pairs):
            sides = ("new", "old") if pair % 2 == 0 else ("old", "new")
            result: dict[str, Any] = {}
            for side in sides:
                env = {"PYTHONPATH": str(base)} if side == "old" else {}
                argv = [sys.executable, "-P", __file__, "--child", str(rows_file)]
                argv += ["--repeat", str(args.repeat)]
                if args.switch_interval is not None:
                    argv += ["--switch-interval", str(args.switch_interval)]
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                    env={**_env(), **env},
                )
                out = json.loads(done.stdout.splitlines()[-1])
                expected = str(base) if side == "old" else str(REPO)
                assert out["code"].startswith(expected), f"{side} ran {out['code']}"
                result[side] = max(out["runs"], key=lambda r: r["rows_per_s"])
            result["ratio"] = result["new"]["rows_per_s"] / result["old"]["rows_per_s"]
            result["cpu_ratio"] = result["old"]["cpu_us_per_row"] / result["new"]["cpu_us_per_row"]
            pairs.append(result)
            print(
                f"pair {pair + 1} ({' then '.join(sides)}): "
                f"new {result['new']['rows_per_s']:,.0f} rows/s "
                f"({result['new']['cpu_us_per_row']:.2f} us CPU/row), "
                f"old {result['old']['rows_per_s']:,.0f} rows/s "
                f"({result['old']['cpu_us_per_row']:.2f} us CPU/row): "
                f"{result['ratio']:.2f}x rows/s, {result['cpu_ratio']:.2f}x less CPU; "
                f"converting threads {result['new']['gil_threads_cpu_us_per_row']:.2f} vs "
                f"{result['old']['gil_threads_cpu_us_per_row']:.2f} us/row "
                f"(new {result['new']['thread_cpu_us_per_row']}, "
                f"old {result['old']['thread_cpu_us_per_row']})",
                flush=True,
            )
    ratios = [p["ratio"] for p in pairs]
    best_new = max(p["new"]["rows_per_s"] for p in pairs)
    print(
        f"new/old rows/s: median {statistics.median(ratios):.2f}x "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}); best new {best_new:,.0f} rows/s "
        f"({'meets' if best_new >= 200_000 else 'MISSES'} the 200,000 rows/s goal)"
    )
    return {"base": args.base, "pairs": pairs, "median_ratio": statistics.median(ratios)}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--base", help="compare with this commit's writer (A/B, same run)")
    parser.add_argument("--pairs", type=int, default=4, help="A/B pairs with --base")
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval while writing (default: the interpreter's, 0.005 s; "
        "the capture and the replay recorder run the writer at 0.001)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    if args.child:
        child(args.child, args.repeat)
        return

    print(f"building {args.rows:,} realistic rows ...", flush=True)
    rows = list(realistic_records(args.rows))
    if args.base:
        if "--repeat" not in sys.argv:
            args.repeat = 1
        figures = compare_with_base(args, rows)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return
    gc.freeze()  # the prebuilt rows are no garbage; a capture's heap holds none of them
    runs = []
    for run in range(args.repeat):
        runs.append(per_row_run(rows))
        r = runs[-1]
        print(
            f"run {run + 1}: per-row write() end to end {r['rows_per_s']:>10,.0f} rows/s "
            f"(load {r['load_average'][0]:.2f} -> {r['load_average'][1]:.2f}; write() calls "
            f"{r['write_calls_per_s']:,.0f}/s; CPU, all threads, {r['cpu_us_per_row']:.2f} "
            f"us/row, converting threads {r['gil_threads_cpu_us_per_row']:.2f}), "
            f"read back {r['read_rows_per_s']:,.0f} rows/s, "
            f"{r['bytes_per_row']:.0f} B/row on disk",
            flush=True,
        )
    table = records_to_table(rows)
    columnar = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            with open_writer(Path(tmp) / "trace", TEST_META) as writer:
                for batch in table.to_batches(max_chunksize=20_000):
                    writer.write_batch(batch)
            columnar.append(len(rows) / (time.perf_counter() - start))
    print(f"columnar write_batch: best {max(columnar):,.0f} rows/s end to end")
    best = max(runs, key=lambda r: r["rows_per_s"])
    verdict = "meets" if best["rows_per_s"] >= 200_000 else "MISSES"
    print(
        f"per-row write() end to end, best of {len(runs)}: {best['rows_per_s']:,.0f} rows/s "
        f"({verdict} the 200,000 rows/s goal; load {best['load_average'][0]:.2f})"
    )
    if args.json:
        figures = {
            "per_row_rows_per_s": best["rows_per_s"],
            "best": best,
            "runs": runs,
            "columnar_rows_per_s": columnar,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
