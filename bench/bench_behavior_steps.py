"""The forked child's work (`models.model._behaviors_and_shape`) step by step, this tree
against another tree's `models/`, alternated in fresh processes, as the child has it: glibc
keeping freed memory (`tracereplay.allocator`, what `tracereplay model` sets before the
fork), the heap's free pages given back first (`malloc_trim`, as the sessions stage does
before the fork), sklearn and scipy imported before the clock starts.

    .venv/bin/python bench/bench_behaviors.py dump --trace /work/data/real1M --out IN.pkl
    .venv/bin/python bench/bench_behavior_steps.py --inputs IN.pkl --base-tree DIR [--rounds 4]

Per run: the load average, CPU seconds of each step (`time.process_time`: arrivals, paths,
pairs, pauses, features, clusters, moves, chains, tables, km = the Kaplan-Meier quantiles)
and of the whole, the whole's wall seconds and each step's (`wall`: a step on threads
takes less wall than CPU), minor page faults; exits 1 if the behaviors' JSON, the
quantiles or the arrivals differ between the trees. The steps are the calls
`_behaviors_and_shape` makes (`fit_behaviors`' in its order). IN.pkl holds the child's
`_BehaviorInputs` as `bench_behaviors.py dump` writes them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench_behaviors import REPO, _run

_STEPS = """
import ctypes, json, pickle, resource, sys, time
import numpy as np
import sklearn.cluster, sklearn.metrics, scipy.sparse, scipy.stats
import models.model as m
import models.behaviors as b
from models.arrivals import fit_arrivals
from models.behavior_paths import Pairs, Pauses, SessionPaths
from tracereplay.allocator import reuse_freed_memory
with open(sys.argv[1], "rb") as f:
    (inputs,) = pickle.load(f)
sessions, censored, seed, sample = inputs.sessions, inputs.censored, inputs.seed, inputs.sample
reuse_freed_memory()
ctypes.CDLL(None).malloc_trim(0)
steps, walls = {}, {}
def step(name, work):
    start, wall = time.process_time(), time.perf_counter()
    out = work()
    steps[name] = round(time.process_time() - start, 4)
    walls[name] = round(time.perf_counter() - wall, 4)
    return out
before = resource.getrusage(resource.RUSAGE_SELF)
wall = time.perf_counter()
arrivals = step("arrivals", lambda: fit_arrivals(np.asarray(inputs.start_s, float), inputs.span_s))
paths = step("paths", lambda: SessionPaths.of(sessions))
pairs = step("pairs", lambda: Pairs.of(paths))
pauses = step("pauses", lambda: Pauses.of(paths, pairs))
sums = step("sums", lambda: pauses.sums(paths))
tempo_column = b._tempo_feature(pauses.tempo)[:, 0]
features = step("features", lambda: b.session_features(paths, pairs, tempo_column))
labels = step("clusters", lambda: b.choose_clusters(features, seed, b.MAX_BEHAVIORS, sample))
del features
start, end = censored.start, censored.end
moves = step("moves", lambda: b._Moves.of(paths, pairs, pauses, labels, start, end))
def chains():
    sizes = np.bincount(labels)
    order = sorted(np.flatnonzero(sizes).tolist(), key=lambda k: (-int(sizes[k]), k))
    out = []
    for rank, label in enumerate(order):
        index = np.flatnonzero(labels == label)
        lengths, tempos = paths.length[index], pauses.tempo[index]
        chain = moves.chain(f"b{rank + 1}", label, lengths, len(paths.length), tempos)
        out.append((chain, index))
    return out
found = step("chains", chains)
def tables():
    ends = censored.start | censored.end
    fit = b.SessionTable.fit
    return [
        b.replace(c, shape=fit(paths.length[i], pauses.tempo[i], ends[i], seed, sums[i]))
        for c, i in found
    ]
behaviors = step("tables", tables)
columns = {"length": inputs.length, "duration_s": inputs.duration_s}
def km():
    return {k: m.censored_quantiles(np.asarray(v, float), censored.any) for k, v in columns.items()}
shape = step("km", km)
wall = time.perf_counter() - wall
after = resource.getrusage(resource.RUSAGE_SELF)
with open(sys.argv[2], "w") as out:
    json.dump({"behaviors": [x.to_json() for x in behaviors], "shape": shape,
               "arrivals": arrivals.to_json()}, out)
faults = after.ru_minflt - before.ru_minflt
print(json.dumps({"cpu_s": round(sum(steps.values()), 3), "wall_s": round(wall, 3), **steps,
                  "wall": walls, "minor_faults": faults}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--base-tree", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    sides = [("base", args.base_tree), ("this", REPO)]
    outputs: dict[str, bytes] = {}
    for round_ in range(args.rounds):
        for name, tree in sides if round_ % 2 == 0 else sides[::-1]:
            out = args.inputs.with_name(f"{args.inputs.stem}-steps-{name}.json")
            load = os.getloadavg()[0]
            steps = _run(_STEPS, tree, str(args.inputs), str(out)).strip().splitlines()[-1]
            print(f"{name} load {load:.2f} {steps}", flush=True)
            outputs[name] = out.read_bytes()
    differ = sorted(name for name, text in outputs.items() if text != outputs["base"])
    print(f"DIFFERENT from base: {', '.join(differ)}" if differ else "identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
