"""The model's behaviors stage alone (`models.model._behaviors_and_shape`, what the forked
child runs), this tree against another tree's `models/`, alternated in one run.

    .venv/bin/python bench/bench_behaviors.py dump --trace /work/data/real10M --out IN.pkl
    .venv/bin/python bench/bench_behaviors.py ab --inputs IN.pkl --base-tree DIR \\
        [--rounds 3] [--default-heap]

`dump` builds the model of TRACE in one process and pickles the stage's arguments (its
one `_BehaviorInputs`: the sessions frame's columns, the session table's, the censoring,
seed, sample and the arrivals' inputs) at its call, then stops. `ab` times the stage on
them in fresh processes, DIR's code (a checkout of the base commit, e.g. `git worktree
add /tmp/base main`: its `models` package first on the import path) and this tree's,
alternated; sklearn and scipy are imported before the clock starts, as the child has
them, and the glibc settings the tree's child makes
(`tracereplay.allocator.reuse_freed_memory`, or an older tree's
`forked.keep_freed_memory`, where it has one). It prints CPU (`time.process_time`; user,
system and minor faults apart) and wall seconds per run with the load average, and exits
1 if the behaviors' JSON, the session quantiles or the arrivals differ. `--default-heap`
also runs this tree without those settings (glibc's defaults, as main's child).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_DUMP = """
import pickle, sys
from pathlib import Path
import models.model as m
class Done(Exception):
    pass
def dump(*args):
    with open(sys.argv[2], "wb") as out:
        pickle.dump(args, out, protocol=5)
    raise Done
m._behaviors_and_shape = dump
try:
    m.build_model(Path(sys.argv[1]), processes=1)
except Done:
    pass
"""

_TIME = """
import json, pickle, resource, sys, time
import sklearn.cluster, sklearn.metrics, scipy.sparse, scipy.stats
import models.model as m
with open(sys.argv[1], "rb") as f:
    args = pickle.load(f)
try:  # what the tree's model sets up before its work (if anything)
    from tracereplay.allocator import reuse_freed_memory as keep_freed_memory
except ImportError:
    try:
        from models.forked import keep_freed_memory
    except ImportError:
        keep_freed_memory = lambda: False
kept = sys.argv[3] != "default-heap" and keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF)
cpu, wall = time.process_time(), time.perf_counter()
behaviors, shape, (arrivals, _) = m._behaviors_and_shape(*args)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
after = resource.getrusage(resource.RUSAGE_SELF)
with open(sys.argv[2], "w") as out:
    json.dump({"behaviors": [b.to_json() for b in behaviors], "shape": shape,
               "arrivals": arrivals.to_json()}, out)
print(json.dumps({"cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
    "user_s": round(after.ru_utime - before.ru_utime, 3),
    "system_s": round(after.ru_stime - before.ru_stime, 3),
    "minor_faults": after.ru_minflt - before.ru_minflt, "kept_freed": kept}))
"""


def _run(code: str, tree: Path, *argv: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-P", "-c", code, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump")
    dump.add_argument("--trace", type=Path, required=True)
    dump.add_argument("--out", type=Path, required=True)
    ab = sub.add_parser("ab")
    ab.add_argument("--inputs", type=Path, required=True)
    ab.add_argument("--base-tree", type=Path, required=True)
    ab.add_argument("--rounds", type=int, default=3)
    ab.add_argument("--default-heap", action="store_true")
    args = parser.parse_args()
    if args.command == "dump":
        _run(_DUMP, REPO, str(args.trace), str(args.out))
        return 0
    sides = [("base", args.base_tree, "plain"), ("this", REPO, "plain")]
    if args.default_heap:
        sides.append(("this-default-heap", REPO, "default-heap"))
    outputs: dict[str, bytes] = {}
    for round_ in range(args.rounds):
        for name, tree, mode in sides if round_ % 2 == 0 else sides[::-1]:
            out = args.inputs.with_name(f"{args.inputs.stem}-{name}.json")
            timing = _run(_TIME, tree, str(args.inputs), str(out), mode).strip().splitlines()[-1]
            print(f"{name} {timing} load {os.getloadavg()[0]:.2f}", flush=True)
            outputs[name] = out.read_bytes()
    same = len(set(outputs.values())) == 1
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
