"""`compare` at scale (issue 15): this tree against a base commit's code, in the same run,
on pairs of large traces (e.g. made by `bench_model.py tile`).

    .venv/bin/python bench/bench_compare.py --pair REAL OTHER [--pair REAL OTHER ...]
        [--base 9f68120] [--work DIR] [--timeout 900] [--json out.json]

Each pair is compared by `compare_traces` + `write_compare` (what `tracereplay compare`
does without SLO classes to bind: with the default SLO file and no model beside REAL the
command also reads every column of REAL, see bench/README.md) with the new code and the
base commit's, each in its own process under `/usr/bin/time -v` (wall, CPU, peak RSS; a
run past --timeout is killed and reported as such), and says whether the two compare.json
files are identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import LIMIT, TimedOut, env_for, old_tree, python, timed

_COMPARE = (
    "import sys; from pathlib import Path\n"
    "from tracereplay.compare.compare import compare_traces, write_compare\n"
    "write_compare(compare_traces(Path(sys.argv[1]), Path(sys.argv[2])), Path(sys.argv[3]))\n"
)


def run(real: Path, other: Path, out: Path, tree: Path | None) -> dict[str, Any]:
    try:
        result = timed([*python(tree), _COMPARE, str(real), str(other), str(out)], env_for(tree))
    except TimedOut as stop:
        return {"timed_out": str(stop)}
    result.pop("stdout")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, type=Path, action="append", required=True)
    parser.add_argument("--base", default="9f68120")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--old", choices=("all", "first", "none"), default="all",
                        help="which pairs the base commit's code also compares")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    LIMIT["timeout_s"] = args.timeout
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_compare-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base" / "py" if (work / "base").exists() else old_tree(args.base, work / "base")
    results: dict[str, Any] = {"base": args.base, "timeout_s": args.timeout}
    for i, (real, other) in enumerate(args.pair):
        entry: dict[str, Any] = {"real": str(real), "other": str(other)}
        with_old = args.old == "all" or (args.old == "first" and i == 0)
        for key, tree in (("new", None), ("old", base)):
            if tree is None or with_old:
                entry[key] = run(real, other, work / f"{i}-{key}", tree)
                print(json.dumps({f"pair {i}": {key: entry[key]}}), flush=True)
        docs = [work / f"{i}-{k}" / "compare.json" for k in ("new", "old")]
        if all(d.is_file() for d in docs):
            entry["same_compare_json"] = docs[0].read_bytes() == docs[1].read_bytes()
        results[f"pair {i}"] = entry
        print(json.dumps({f"pair {i}": entry}, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
