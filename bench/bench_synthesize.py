"""`tracereplay synthesize` throughput: this tree against a base commit's code, alternated in
one run, each run the command in its own process under `/usr/bin/time -v` (wall, CPU of
the process and its workers, peak RSS of the largest process), on a model file (e.g. the
cap20 staging model); the rows are counted from the parts' footers afterwards.

    ./.venv/bin/python bench/bench_synthesize.py MODEL --rows 1000000 [--rows 10000000]
        [--base main] [--base-rows 1000000 [--base-rows 10000000]] [--processes 1,2]
        [--rounds 2] [--work DIR]

The scale for ROWS is ROWS / (the model's rows at 1×). At each --base-rows (repeatable;
0: none) the base runs right after this tree at every process count, so each pair shares
the machine's load. Prints one JSON line per run and a summary with rows/s wall, rows per
CPU-second and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_model  # a sibling script: its timing helpers

# `tracereplay synthesize` as its console script runs it, timed from the interpreter's
# start; the code checks first which tree it runs (by `tracereplay.models` alone, which
# imports nothing heavy: bench_model's check imports model.py, the model-building stages).
_RUN = """
import sys, tracereplay.models as _m
assert _m.__path__[0].startswith(sys.argv[1]), 'wrong code: ' + _m.__path__[0]
from tracereplay.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_synthesize(
    model: Path, out: Path, scale: float, tree: Path | None, processes: int, seed: int = 1
) -> dict[str, Any]:
    code_root = str(tree or bench_model.REPO)
    command = ["synthesize", str(model), "--out", str(out), "--scale", repr(scale),
               "--seed", str(seed), "--processes", str(processes)]  # fmt: skip
    argv = [sys.executable, "-P", "-c", _RUN, code_root, *command]
    result = bench_model.timed(argv, bench_model.env_for(tree))
    result.pop("stdout")
    parts = sorted(out.glob("part-*.parquet"))
    result["requests"] = sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
    result["parts"] = len(parts)
    result["rows_per_s"] = round(result["requests"] / result["wall_s"])
    return result


def one_run(
    model: Path, out: Path, rows: int, at_1x: int, tree: Path | None, processes: int
) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    result = run_synthesize(model, out, rows / at_1x, tree, processes)
    shutil.rmtree(out, ignore_errors=True)
    result.update(
        code="base" if tree is not None else "new",
        processes=processes,
        rows_per_cpu_s=round(result["requests"] / result["cpu_s"]),
        load=[round(v, 2) for v in os.getloadavg()],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--rows", type=int, action="append", help="rows per run (repeatable)")
    parser.add_argument("--base", default="main", help="commit whose code runs beside")
    parser.add_argument(
        "--base-rows", type=int, action="append", help="rows the base runs at too (repeatable)"
    )
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args(argv)
    at_1x = int(json.loads(args.model.read_text())["provenance"]["rows"])
    counts = [int(p) for p in args.processes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-synth-"))
    work.mkdir(parents=True, exist_ok=True)
    base_rows = {r for r in args.base_rows or [1_000_000] if r}
    old = bench_model.old_tree(args.base, work / "base") if base_rows else None
    runs = []
    for rows in args.rows or [1_000_000]:
        for _ in range(args.rounds):
            for processes in counts:
                trees = [None] + ([old] if old is not None and rows in base_rows else [])
                for tree in trees:
                    runs.append(one_run(args.model, work / "out", rows, at_1x, tree, processes))
                    print(json.dumps(runs[-1]), flush=True)
    for run in runs:
        print(f"{run['code']:4s} {run['processes']}p {run['requests']:>10,} rows  "
              f"{run['wall_s']:7.2f} s wall  {run['rows_per_s']:>9,} rows/s  "
              f"{run['rows_per_cpu_s']:>9,} rows/CPU-s  {run['peak_rss_mib']:>5} MiB  "
              f"load {run['load']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
