"""Peak memory of a command and every process it starts (issue 15: the model's forked
behaviors child): `/usr/bin/time -v` reports the largest single process's peak RSS; this
polls the whole tree and reports the peak of the sum of RSS (shared pages counted in each
process) and of PSS (shared pages split between the processes sharing them: what the
tree holds of the machine's memory).

    .venv/bin/python bench/tree_rss.py -- .venv/bin/tracereplay model /work/data/real10M \\
        --out /tmp/m.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def _kib(pid: int, field: str, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=0.05, help="seconds between polls")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    start = time.perf_counter()
    process = subprocess.Popen(command)
    peak = {"rss_kib": 0, "pss_kib": 0, "processes": 0}
    while process.poll() is None:
        pids = _tree(process.pid)
        rss = sum(_kib(p, "VmRSS:", "status") for p in pids)
        pss = sum(_kib(p, "Pss:", "smaps_rollup") for p in pids)
        peak = {
            "rss_kib": max(peak["rss_kib"], rss),
            "pss_kib": max(peak["pss_kib"], pss),
            "processes": max(peak["processes"], len(pids)),
        }
        time.sleep(args.every)
    peak["seconds"] = round(time.perf_counter() - start, 2)
    peak["exit"] = process.returncode
    print(json.dumps({"tree_peak": peak}))
    return process.returncode


if __name__ == "__main__":
    raise SystemExit(main())
