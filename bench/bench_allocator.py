"""The whole `tracereplay model` command with and without a memory setting, alternated
(issue 15: the kernel zeroing the fresh pages of every big array, tracereplay/allocator.py).

    .venv/bin/python bench/bench_allocator.py --trace /work/data/real1M [--processes 2]
        [--rounds 4] [--variant NAME[:ENV=V,...]] ... [--json out.json]

Each run is this tree's console script (`tracereplay.cli:console`, so everything the
command does at its start and end) in a fresh process under `/usr/bin/time -f`, with the
model's process count forced (`--processes`: `free_processes` replaced, as a loaded machine
would otherwise choose one process). Variants: `off` (the allocator setting not applied:
`tracereplay.allocator.reuse_freed_memory` replaced by a no-op), `on` (as shipped), or
`nothp` (off, but numpy's hugepage madvise off), or `NAME:ENV=V,...` (off plus glibc's
environment tunables, e.g. `max0:MALLOC_MMAP_MAX_=0,MALLOC_TRIM_THRESHOLD_=4294967296`;
a NAME starting with `nothp` also turns numpy's hugepage madvise off, one starting with
`on` applies the setting: `onsystem:ARROW_DEFAULT_MEMORY_POOL=system`). Rounds run the
variants in turn (the order rotated each round). Per run: the 1-minute load before, wall,
user and system CPU seconds (the process and its reaped children), max RSS (the largest
process), minor page faults, whether the model file equals
/work/data/models/NAME.main.json byte for byte, each stage's seconds.
Per variant: the medians, and each variant's user+sys over the first's, pair by pair.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

MAIN_MODELS = Path("/work/data/models")
ENTRY = """
import sys
import tracereplay.models.model as model
model.free_processes = lambda: {processes}
{patch}
from tracereplay.cli import console
sys.exit(console())
"""
PATCHES = {
    "off": "import tracereplay.allocator as a\na.reuse_freed_memory = lambda: False",
    "on": "",
}
PATCHES["nothp"] = (
    PATCHES["off"] + "\nimport numpy._core.multiarray as m\nm._set_madvise_hugepage(False)"
)


def variant(spec: str) -> tuple[str, str, dict[str, str]]:
    """(name, code put before the console, environment added) of a --variant."""
    name, _, env_spec = spec.partition(":")
    if not env_spec:
        if name not in PATCHES:
            raise SystemExit(f"--variant {spec}: one of {sorted(PATCHES)} or NAME:ENV=V,...")
        return name, PATCHES[name], {}
    env = dict(item.split("=", 1) for item in env_spec.split(","))
    patch = next((PATCHES[p] for p in ("nothp", "on") if name.startswith(p)), PATCHES["off"])
    return name, patch, env


def run_once(trace: Path, out: Path, code: str, env_added: dict[str, str]) -> dict[str, Any]:
    timing = out.with_suffix(".time")
    argv = ["/usr/bin/time", "-f", "%e %U %S %M %R", "-o", str(timing), sys.executable, "-P"]
    argv += ["-c", code, "model", str(trace), "--out", str(out)]
    load = os.getloadavg()[0]
    env = {**os.environ, **env_added}
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, cwd="/tmp")
    if done.returncode != 0:
        raise SystemExit(f"failed: {done.stderr[-2000:]}")
    wall, user, system, kib, faults = timing.read_text().split()[-5:]
    stages = dict(re.findall(r"^model: ([a-z]+): [\d,]+ rows in ([\d.]+) s", done.stderr, re.M))
    reference = MAIN_MODELS / f"{trace.name}.main.json"
    same = reference.exists() and reference.read_bytes() == out.read_bytes()
    return {
        "load": round(load, 2),
        "wall_s": float(wall),
        "user_s": float(user),
        "sys_s": float(system),
        "max_rss_mb": round(int(kib) / 1024),
        "minor_faults": int(faults),
        "identical": same if reference.exists() else None,
        "stages": {k: float(v) for k, v in stages.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-allocator"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants = [variant(v) for v in (args.variant or ["off", "on"])]
    args.work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    for round_no in range(args.rounds):
        turn = variants[round_no % len(variants) :] + variants[: round_no % len(variants)]
        for name, patch, env in turn:
            code = ENTRY.format(processes=args.processes, patch=patch)
            result = run_once(args.trace, args.work / f"{name}.json", code, env)
            runs[name].append(result)
            print(
                f"{round_no + 1} {name:8} load {result['load']:5.2f} wall {result['wall_s']:6.2f}"
                f" user {result['user_s']:6.2f} sys {result['sys_s']:5.2f}"
                f" rss {result['max_rss_mb']:5d} MB faults {result['minor_faults']:7d}"
                f" identical {result['identical']}"
                f" | {' '.join(f'{k} {v}' for k, v in result['stages'].items())}",
                flush=True,
            )
    first = variants[0][0]
    summary = {}
    for name, results in runs.items():
        cpu = [r["user_s"] + r["sys_s"] for r in results]
        base = [r["user_s"] + r["sys_s"] for r in runs[first]]
        summary[name] = {
            key: statistics.median(r[key] for r in results)
            for key in ("wall_s", "user_s", "sys_s", "max_rss_mb", "minor_faults")
        } | {
            "cpu_over_first": [round(c / b, 3) for c, b in zip(cpu, base, strict=True)],
            "max_rss_mb_max": max(r["max_rss_mb"] for r in results),
            "all_identical": all(r["identical"] for r in results),
        }
        print(name, json.dumps(summary[name]))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
