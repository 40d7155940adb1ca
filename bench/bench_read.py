"""The read stage alone, `read_light_columns` (issue 15): this tree against the code of a
base commit, alternated in the same minutes, each read in its own process under
`/usr/bin/time -v`, and the arrays each read checked to be the same.

    .venv/bin/python bench/bench_read.py --trace /work/data/real10M [--trace T2]
        [--base main] [--rounds 4] [--compare] [--work DIR] [--json out.json]

Per run: the read's wall and CPU seconds (user + system, of every thread, from
`resource.getrusage` around the call), the process's peak RSS, and a digest of every
array and value list read; `--compare` reads as compare does (`coded=["error"]`, float32
statuses). (`--preload`, which imported scipy.stats beside the read as the model did
below 500 k rows, went with that import at stop 49: the model's caller imports no scipy
now, models/forked.py `Pending.ask`.) Exit 1 when a digest
differs between the two codes. The base commit's code is unpacked with `git archive`
(bench_model.py's `old_tree`).
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

_READ = """
import hashlib, json, resource, sys, time
from pathlib import Path
import numpy as np
from tracereplay.models.light_columns import read_light_columns
from tracereplay.models.source import ParquetSource
kw = {"coded": ["error"], "status_dtype": np.float32} if sys.argv[2] == "compare" else {}
before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
source = ParquetSource.open(Path(sys.argv[1]))
cols = read_light_columns(source, **kw)
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
digest = hashlib.sha256()
for name in ("row", "t_s", "duration_ms", "status", "key", "method", "path"):
    digest.update(np.ascontiguousarray(getattr(cols, name)).tobytes())
digest.update(json.dumps([cols.keys, cols.methods, cols.paths.to_pylist()]).encode())
for name, (codes, values) in sorted(cols.coded.items()):
    digest.update(codes.tobytes() + json.dumps(values.to_pylist()).encode())
digest.update(str(cols.first_ts).encode())
print(json.dumps({
    "read_s": round(wall, 3),
    "read_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3),
    "read_sys_s": round(after.ru_stime - before.ru_stime, 3),
    "minor_faults": after.ru_minflt - before.ru_minflt,
    "rows": len(cols), "digest": digest.hexdigest(),
}))
"""


def run_read(trace: Path, tree: Path | None, how: str) -> dict[str, Any]:
    result = timed([*python(tree), _READ, str(trace), how], env_for(tree))
    out: dict[str, Any] = json.loads(result.pop("stdout"))
    out["peak_rss_mib"] = result["peak_rss_mib"]
    out["load"] = round(os.getloadavg()[0], 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, action="append", required=True)
    parser.add_argument("--base", default="main")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--compare", action="store_true", help="read as compare does")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_read-"))
    work.mkdir(parents=True, exist_ok=True)
    old = old_tree(args.base, work / "base") if not (work / "base").exists() else work / "base/py"
    how = "compare" if args.compare else "model"
    results: dict[str, Any] = {"base": args.base, "how": how, "traces": {}}
    same = True
    for trace in args.trace:
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for round_ in range(args.rounds):
            for key in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                runs[key].append(run_read(trace, old if key == "old" else None, how))
                print(key, json.dumps(runs[key][-1]), flush=True)
        digests = {run["digest"] for key in runs for run in runs[key]}
        same &= len(digests) == 1
        summary = {
            key: {
                field: statistics.median(run[field] for run in runs[key])
                for field in ("read_s", "read_cpu_s", "read_sys_s", "peak_rss_mib")
            }
            for key in runs
        }
        ratios = [o["read_s"] / n["read_s"] for o, n in zip(runs["old"], runs["new"], strict=True)]
        entry = {"runs": runs, "median": summary, "old/new wall": ratios, "same": len(digests) == 1}
        results["traces"][str(trace)] = entry
        print(json.dumps({str(trace): {k: v for k, v in entry.items() if k != "runs"}}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
