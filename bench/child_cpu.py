"""The behaviors' forked child as `build_model` runs it, timed whole: forked with
`CHILD_MODULES` to import (its collector as the tree sets it), sent saved inputs at once,
its answer awaited. Prints the child's CPU seconds (user+sys, from the kernel's count of
reaped children: its imports, its collections and its work), the wall seconds of the
`forked` block, the work's own seconds and the 1-minute load. Run it with each tree's venv
(`-P`: that tree's code) to A/B, alternated:

    cd /tmp && TREE/.venv/bin/python -P BENCH/child_cpu.py dump /work/data/real1M IN.pkl
    cd /tmp && TREE/.venv/bin/python -P BENCH/child_cpu.py run IN.pkl [--fits on|off]

`dump` builds the model of TRACE in one process and pickles the child's inputs (its
`_BehaviorInputs`, `tracereplay.models.model`'s in any tree that has it) on the way.

`--fits`: the K sweep's fits on two threads or one after the other (default: as the load
decides, `behaviors._core_free`).
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import time
from pathlib import Path
from typing import Any

from tracereplay.models import behaviors, model
from tracereplay.models.forked import CHILD_MODULES, forked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump", help="save the child's inputs of TRACE")
    dump.add_argument("trace")
    dump.add_argument("out")
    run = commands.add_parser("run", help="time the child on saved inputs")
    run.add_argument("inputs")
    run.add_argument("--fits", choices=["on", "off"], default=None)
    args = parser.parse_args()
    if args.command == "dump":
        _dump(Path(args.trace), Path(args.out))
    else:
        _run(Path(args.inputs), args.fits)


def _dump(trace: Path, out: Path) -> None:
    made = model._BehaviorInputs.of

    def saved(*args: Any, **kwargs: Any) -> Any:
        inputs = made(*args, **kwargs)
        out.write_bytes(pickle.dumps(inputs, protocol=5))
        return inputs

    model._BehaviorInputs.of = saved  # type: ignore[method-assign]
    model.build_model(trace, processes=1)


def _run(inputs_file: Path, fits: str | None) -> None:
    if fits is not None:
        behaviors._core_free = lambda: fits == "on"  # type: ignore[attr-defined]
    inputs = pickle.loads(inputs_file.read_bytes())  # (a file `dump` wrote)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with forked(model._behaviors_and_shape, imports=CHILD_MODULES) as pending:
        pending.send(inputs)
        pending.result()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load = os.getloadavg()[0]
    print(f"child cpu {cpu:.3f} wall {wall:.3f} work {pending.seconds or 0.0:.3f} load {load:.2f}")


if __name__ == "__main__":
    main()
