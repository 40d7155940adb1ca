"""The fixed cost at the two ends of `tracereplay model` (issue 15): this tree's console
script against a base commit's, alternated, each in a fresh process.

    .venv/bin/python bench/bench_model_ends.py --trace /work/data/real1M
        [--trace /work/data/real10M] [--base 67f4fde] [--rounds 4] [--work DIR]

Each run is `tracereplay model TRACE --out F` through the tree's own console-script entry
(`[project.scripts]` of its pyproject.toml: `main` on main, `console` after boot17), the
base's code put first on the import path (`bench_model.old_tree`), this tree's from the
editable install. Per run, seconds since the process was started (wall): when the
`model: read` line came (imports and option checks before the read stage), when the
`model: read: N rows …` line came (the read's end: with a read started ahead, in a thread
during the imports, the measure of both), when the last line
came (`model of … → F`, printed after the file is written), when the process had ended;
the last two's difference is the end; CPU (user + sys of the process and the children it
reaped, from `wait4`); the 1-minute load average before the run. Every model file is
compared byte for byte with the first one of its trace and with
/work/data/models/NAME.main.json when there is one (exit 1 if one differs).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_model import REPO, old_tree

MAIN_MODELS = Path("/work/data/models")


def entry_of(tree_root: Path) -> str:
    """`module:function` of the tree's `tracereplay` console script."""
    text = (tree_root / "pyproject.toml").read_text()
    found = re.search(r'^tracereplay = "([\w.]+):(\w+)"', text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no tracereplay script in {tree_root / 'pyproject.toml'}")
    return f"import sys\nfrom {found.group(1)} import {found.group(2)} as entry\nsys.exit(entry())"


def run(trace: Path, out: Path, code: str, tree: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    argv = [sys.executable, "-P", "-c", code, "model", str(trace), "--out", str(out)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd="/tmp"
    )
    assert child.stderr is not None
    read_at = read_done = last_at = None
    last = ""
    for raw in child.stderr:
        now = time.perf_counter() - start
        line = raw.decode(errors="replace").rstrip()
        if line.startswith("model: read") and read_at is None:
            read_at = now
        if line.startswith("model: read: "):
            read_done = now
        if line:
            last_at, last = now, line
    _, status, usage = os.wait4(child.pid, 0)
    ended = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 or read_at is None or read_done is None or last_at is None:
        raise SystemExit(f"{argv[4:]} exited {child.returncode}: {last}")
    return {
        "read_at": read_at,
        "read_done": read_done,
        "written_at": last_at,
        "ended": ended,
        "end": ended - last_at,
        "cpu": usage.ru_utime + usage.ru_stime,
        "load": load,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, action="append", required=True)
    parser.add_argument("--base", default="67f4fde")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ends-"))
    base_tree = old_tree(args.base, work / "base")
    trees = {
        args.base: (entry_of(base_tree.parent / "src"), base_tree),
        "this tree": (entry_of(REPO), None),
    }
    same = True
    for trace in args.trace:
        first: Path | None = None
        main_model = MAIN_MODELS / f"{trace.name}.main.json"
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for i in range(args.rounds):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                code, tree = trees[name]
                out = work / f"{trace.name}-{len(rows[name])}-{'base' if tree else 'new'}.json"
                result = run(trace, out, code, tree)
                rows[name].append(result)
                first = first or out
                identical = filecmp.cmp(first, out, shallow=False) and (
                    not main_model.exists() or filecmp.cmp(main_model, out, shallow=False)
                )
                same &= identical
                print(
                    f"{trace.name} {name:>9}: read at {result['read_at']:.2f} s, done at "
                    f"{result['read_done']:.2f}, written at "
                    f"{result['written_at']:.2f}, ended {result['ended']:.2f} (end "
                    f"{result['end']:.2f}), CPU {result['cpu']:.2f} s, load "
                    f"{result['load']:.2f}{'' if identical else ', MODEL DIFFERS'}",
                    flush=True,
                )
        for name, results in rows.items():

            def column(key: str, results: list[dict[str, Any]] = results) -> str:
                return ", ".join(f"{r[key]:.2f}" for r in results)

            print(f"{trace.name} {name}: read at [{column('read_at')}] read done "
                  f"[{column('read_done')}] end [{column('end')}] ended [{column('ended')}] "
                  f"CPU [{column('cpu')}]")  # fmt: skip
    print("byte-identical models" if same else "MODELS DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
