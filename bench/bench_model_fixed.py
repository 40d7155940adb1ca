"""What `tracereplay model` pays whatever the trace's size, and how its two processes share
the work (issue 15: real1M in ≤ 1 s): CPU seconds, robust on a loaded machine.

    .venv/bin/python bench/bench_model_fixed.py imports [--rounds 3]
    .venv/bin/python bench/bench_model_fixed.py ab --trace /work/data/real1M [--base main]
        [--rounds 4] [--processes 2] [--tree-rss]
    .venv/bin/python bench/bench_model_fixed.py warm --trace /work/data/real1M [--rounds 8]
    .venv/bin/python bench/bench_model_fixed.py child-imports [--rounds 5]

`imports`: the CPU seconds (`/usr/bin/time`) of a fresh interpreter importing what the
command imports, step by step: the interpreter, the CLI, the model (with rich), scipy's
modules both processes need, sklearn's the behaviors' child needs. (`preload`, the read
with the imports on a thread beside it, went at stop 49: the model's caller imports no
scipy since, and the mode no longer ran.) `ab`: `build_model(processes=P)` and the
model file's writing in a fresh process, the base commit's code (`bench_model.old_tree`)
and this tree's alternated, each line: wall from the process's start, the parent's and the
child's CPU (getrusage; also user, system and minor faults apart), the stage lines'
seconds, the load; with --tree-rss the peak of the process tree's summed RSS and PSS
(`bench/tree_rss.py`); the model files compared byte for byte with the first one (exit 1
if one differs). `warm`: `build_model` as the command runs it (the behaviors' child forked at
once, importing sklearn and scipy on the second core), against the same with those
modules (`CHILD_MODULES`) imported before the clock starts, so that the forked child
inherits them: what the model would take if the libraries' imports cost nothing, alternated
in fresh processes; each line its wall, the two processes' CPU and the load, then the runs
within the rows-per-second goal (exit 1 if the two models differ). `child-imports`: in a
fresh interpreter that has imported the model's own modules (with numpy, pandas and
pyarrow), the CPU seconds of each import the forked child makes, one after the other in
CHILD_IMPORTS' order, the collector off as in the child; then of its ThreadpoolController.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_model import env_for, old_tree

REPO = Path(__file__).resolve().parents[1]
STEPS = {
    "interpreter": "pass",
    "+ tracereplay.cli": "import tracereplay.cli",
    "+ models.model, rich": "import tracereplay.models.model, rich.console",
    "+ scipy.stats, scipy.ndimage": "import scipy.stats, scipy.ndimage",
    "+ sklearn (the child's)": "import sklearn.cluster, sklearn.metrics, threadpoolctl",
}

_RUN = """
import json, os, resource, sys, time
from pathlib import Path
import tracereplay.models.model as m
marks = []
progress = lambda r: marks.append((r.stage, r.seconds))
model = m.build_model(Path(sys.argv[1]), progress=progress, processes=int(sys.argv[3]))
m.write_model(model, Path(sys.argv[2]))
ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
up = float(Path("/proc/uptime").read_text().split()[0])
me, child = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"code": m.__file__, "wall_s": round(up - ticks / os.sysconf("SC_CLK_TCK"), 2),
    "cpu_parent_s": round(me.ru_utime + me.ru_stime, 2),
    "cpu_child_s": round(child.ru_utime + child.ru_stime, 2),
    "user_system_parent_s": [round(me.ru_utime, 2), round(me.ru_stime, 2)],
    "user_system_child_s": [round(child.ru_utime, 2), round(child.ru_stime, 2)],
    "minor_faults_parent_child": [me.ru_minflt, child.ru_minflt],
    "stages": {s: round(t, 2) for s, t in marks if t is not None},
    "load": os.getloadavg()[0]}))
"""


CHILD_IMPORTS = [
    "scipy.sparse", "scipy.special", "scipy.optimize", "scipy.stats", "sklearn.base",
    "sklearn.cluster", "sklearn.metrics", "threadpoolctl", "scipy.ndimage",
]  # fmt: skip
"""Each step imports what the ones before it have not (`forked.CHILD_MODULES`, split)."""

_CHILD_IMPORTS = """
import gc, importlib, sys, time
import tracereplay.models.model
gc.disable()
found = []
for name in sys.argv[1:]:
    cpu = time.process_time()
    importlib.import_module(name)
    found.append(f"{name} {time.process_time() - cpu:.3f}")
cpu = time.process_time()
from threadpoolctl import ThreadpoolController
ThreadpoolController()
print(", ".join([*found, f"controller {time.process_time() - cpu:.3f}"]))
"""

_WARM = """
import gc, json, os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the command sets it
from pathlib import Path
from tracereplay.models import forked
from tracereplay.models.model import build_model, model_json
if sys.argv[1] == "warm":
    forked._imported(forked.CHILD_MODULES)
    gc.freeze()
start, cpu = time.perf_counter(), time.process_time()
model = build_model(Path(sys.argv[2]))
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
child = os.times()
Path(sys.argv[3]).write_text(model_json(model))
print(json.dumps({"how": sys.argv[1], "build_s": round(wall, 3), "cpu_caller_s": round(cpu, 3),
    "cpu_child_s": round(child.children_user + child.children_system, 3),
    "rows": model["provenance"]["rows"], "load": os.getloadavg()[0]}))
"""


def warm(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench_model_fixed-"))
    runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    files: set[bytes] = set()
    for round_ in range(args.rounds):
        for how in ("cold", "warm") if round_ % 2 == 0 else ("warm", "cold"):
            out = work / f"{how}-{round_}.json"
            argv = [sys.executable, "-P", "-c", _WARM, how, str(args.trace), str(out)]
            done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=work)
            runs[how].append(json.loads(done.stdout.splitlines()[-1]))
            print(json.dumps(runs[how][-1]), flush=True)
            files.add(out.read_bytes())
    for how, found in runs.items():
        walls = sorted(run["build_s"] for run in found)
        goal = found[0]["rows"] / 1e6
        within = sum(wall <= goal for wall in walls)
        print(f"{how}: median {walls[len(walls) // 2]:.3f} s ({walls[0]:.3f}-{walls[-1]:.3f}), "
              f"{within} of {len(walls)} within {goal:.3f} s")  # fmt: skip
    print(f"model files byte-identical: {len(files) == 1}")
    return 0 if len(files) == 1 else 1


def child_imports(args: argparse.Namespace) -> None:
    for _ in range(args.rounds):
        argv = [sys.executable, "-P", "-c", _CHILD_IMPORTS, *CHILD_IMPORTS]
        print(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip())


def imports(args: argparse.Namespace) -> None:
    for _ in range(args.rounds):
        code = ""
        for name, step in STEPS.items():
            code = f"{code}\n{step}"
            argv = ["/usr/bin/time", "-f", "%U %S", sys.executable, "-c", code]
            err = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
            user, system = map(float, err.split()[-2:])
            print(f"{name:32s} {user + system:5.2f} CPU s", flush=True)


def ab(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench_model_fixed-"))
    base = old_tree(args.base, work / "base")
    files: set[bytes] = set()
    for round_ in range(args.rounds):
        for key in ("base", "new") if round_ % 2 == 0 else ("new", "base"):
            out = work / f"{key}-{round_}.json"
            argv = [
                sys.executable,
                "-P",
                "-c",
                _RUN,
                str(args.trace),
                str(out),
                str(args.processes),
            ]
            if args.tree_rss:
                argv = [sys.executable, str(REPO / "bench/tree_rss.py"), "--", *argv]
            env = env_for(base if key == "base" else None)
            lines = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
            found: dict[str, Any] = {"code": key}
            for line in lines.stdout.splitlines():
                found.update({k: v for k, v in json.loads(line).items() if k != "code"})
            print(json.dumps(found), flush=True)
            files.add(out.read_bytes())
    print(f"model files byte-identical: {len(files) == 1}")
    return 0 if len(files) == 1 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("imports", "child-imports", "ab", "warm"):
        command = sub.add_parser(name)
        rounds = {"ab": 4, "warm": 8, "child-imports": 5}.get(name, 3)
        command.add_argument("--rounds", type=int, default=rounds)
        if name not in ("imports", "child-imports"):
            command.add_argument("--trace", type=Path, required=True)
    sub.choices["ab"].add_argument("--base", default="main")
    sub.choices["ab"].add_argument("--processes", type=int, default=2)
    sub.choices["ab"].add_argument("--tree-rss", action="store_true")
    args = parser.parse_args()
    run = {"imports": imports, "child-imports": child_imports, "ab": ab, "warm": warm}
    return run[args.command](args) or 0


if __name__ == "__main__":
    os.chdir(REPO)
    raise SystemExit(main())
