"""The model's templates and sessions stages: this tree against a base commit, alternated,
each run a whole `build_model` in a fresh process. Timed from the first of the two
stages' start lines to the last of their done lines (sess17 runs the sessions on a thread
beside the templates; before, one after the other): the span's wall seconds, the CPU
seconds (user, system) of the whole process in it (`RUSAGE_SELF`: at 10 M rows the read
has ended the imports' thread by then; at 1 M it may still be importing scipy.stats), and
each stage's own seconds as its progress line says.

    .venv/bin/python bench/bench_sessions.py --trace /work/data/real10M [--base main]
        [--rounds 3] [--json out.json] [--processes 2]

Each run writes its model; the two codes' model files must be byte-identical (exit 1 if
not). The base code runs from `git archive` of --base (bench_model.py's `old_tree`).
Every run is under `/usr/bin/time -v` (the whole model's wall, CPU and peak RSS). Quote
ratios of runs alternated in the same minutes, with the load average (`uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import env_for, old_tree, python, timed

_STAGE = """
import json, resource, sys, time
from pathlib import Path
from tracereplay.models.model import build_model, write_model

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime, u.ru_stime

at, seconds = {}, {}
def progress(report):
    if report.stage not in ("templates", "sessions"):
        return
    if report.seconds is None:
        at.setdefault("start", (time.perf_counter(), *cpu()))
    else:
        seconds[report.stage] = report.seconds
        at["end"] = (time.perf_counter(), *cpu())
start = time.perf_counter()
processes = int(sys.argv[3]) or None
model = build_model(Path(sys.argv[1]), progress=progress, processes=processes)
total = time.perf_counter() - start
write_model(model, Path(sys.argv[2]))
(w0, u0, s0), (w1, u1, s1) = at["start"], at["end"]
print(json.dumps({"wall_s": w1 - w0, "user_s": u1 - u0, "sys_s": s1 - s0,
                  "cpu_s": u1 - u0 + s1 - s0, "templates_s": seconds["templates"],
                  "sessions_s": seconds["sessions"], "model_s": total}))
"""


def run(trace: Path, tree: Path | None, out: Path, processes: int) -> dict[str, Any]:
    done = timed([*python(tree), _STAGE, str(trace), str(out), str(processes)], env_for(tree))
    stage = json.loads(done["stdout"].strip().splitlines()[-1])
    whole = {f"model_{k}": done[k] for k in ("wall_s", "cpu_s", "peak_rss_mib")}
    return {**stage, **whole, "load": round(os.getloadavg()[0], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--base", default="main")
    parser.add_argument("--rounds", type=int, default=3, help="old/new pairs, alternated")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="build_model's processes (0: its own choice, by the load); 2: the behaviors'"
        " child and, in this tree, the templates' thread, whatever the load",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as work:
        base = old_tree(args.base, Path(work))
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        models = set()
        for _ in range(args.rounds):
            for side, tree in (("old", base), ("new", None)):
                out = Path(work) / f"{side}.json"
                runs[side].append(run(args.trace, tree, out, args.processes))
                models.add(out.read_bytes())
                print(side, json.dumps(runs[side][-1]), flush=True)
    keys = ("wall_s", "user_s", "sys_s", "cpu_s", "templates_s", "sessions_s")
    keys += ("model_wall_s", "model_cpu_s", "model_peak_rss_mib")
    summary = {
        side: {key: statistics.median(r[key] for r in done) for key in keys}
        for side, done in runs.items()
    }
    ratio = {
        key: round(summary["old"][key] / summary["new"][key], 2) for key in ("wall_s", "cpu_s")
    }
    print(json.dumps({"median": summary, "old_to_new": ratio}))
    print("byte-identical models" if len(models) == 1 else "THE MODELS DIFFER")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "median": summary}, indent=1) + "\n")
    return 0 if len(models) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
