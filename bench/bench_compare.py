"""`compare` at scale (issue 15): this tree against a base commit's code, in the same run,
on pairs of large traces (e.g. made by `bench_model.py tile`).

    .venv/bin/python bench/bench_compare.py --pair REAL OTHER [--pair REAL OTHER ...]
        [--base 9f68120] [--work DIR] [--timeout 900] [--json out.json]
    .venv/bin/python bench/bench_compare.py --bindings TRACE [--sample 200 ...]
    .venv/bin/python bench/bench_compare.py --join-cost TRACE [--fail-share 0.05]
    .venv/bin/python bench/bench_compare.py --cli --pair REAL OTHER [--rounds 2] ...
    .venv/bin/python bench/bench_compare.py --stages --pair REAL OTHER [--rounds 2] ...
    .venv/bin/python bench/bench_compare.py --tile TRACE --rows N --out DIR
    .venv/bin/python bench/bench_compare.py --auth-cost TRACE [--read-threads 2]
        [--base REV --rounds N]

Each pair is compared by `compare_traces` + `write_compare` (what `tracereplay compare`
does without SLO classes to bind: with the default SLO file and no model beside REAL the
command also reads every column of REAL, see bench/README.md) with the new code and the
base commit's, each in its own process under `/usr/bin/time -v` (wall, CPU, peak RSS; a
run past --timeout is killed and reported as such; user and system seconds and minor
faults apart, the system time being mostly fresh pages zeroed, bench/README.md round 10),
and says whether the two compare.json
files are identical. With `--cli` each run is the command itself, `tracereplay compare
REAL OTHER --out DIR` (default SLO file: the SLO classes bound too; exit 1, a failed
verdict, counts as finished), new and base alternated over `--rounds` pairs. With
`--stages` each run does the command's steps with the default SLO file in one process
(`read_compared`, `compare_sessionized`, compare.json, `render_report`), each stage's CPU,
wall, RSS after it and peak in it (sampled every 50 ms); both modes also say whether the
report.html files are identical.

`--auth-cost TRACE` reads TRACE as compare does (with the scan positions), then times
`sessions_auth` on that frame with `--read-threads` (CPU, wall, RSS before and its peak,
sampled every 50 ms), in this process; with `--base` given, this tree's and the base
commit's alternated over `--rounds` pairs, each its own process.

`--tile TRACE --rows N --out DIR` writes copies of TRACE one after the other as
`bench_model.py tile` does (keys suffixed `~k`, times shifted by span + 1 min) until N
rows, as 200 k-row parts written as the trace store writes them (zstd, page checksums).

`--bindings TRACE` checks what the SLO classes bind to on TRACE (no model file beside it):
learned as before this change (correlations over every request of TRACE) against what
compare learns now (the auth flow on the model's seeded sample of sessions), and, for
each `--sample N`, with the sample cut to N sessions (20 per endpoint), in this process.

`--join-cost TRACE` times (CPU, this process) what compare adds to sessionize as the
model does (compare/columns.py `_session_keys`): the check for keys whose requests all
failed auth on TRACE as it is, then with `--fail-share` of its keys made to fail
throughout (their statuses set to 401 in memory), reading `conn` and joining.
"""

from __future__ import annotations

import argparse
import json
import os
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


_CLI = (
    "import sys; from tracereplay.cli import main\n"
    "code = main(['compare', *sys.argv[1:3], '--out', sys.argv[3]])\n"
    "sys.exit(0 if code in (0, 1) else code)\n"
)
_STAGES = """
import inspect, json, os, sys, threading, time
from pathlib import Path
from rich.console import Console
from tracereplay.compare.compare import compare_sessionized, read_compared, write_compare
from tracereplay.compare.report import render_report, write_report
from tracereplay.compare.run_summary import read_run_summary
from tracereplay.compare.slo import load_slos, needs_binding

def rss_mib():
    return int(Path('/proc/self/statm').read_text().split()[1]) * os.sysconf('SC_PAGESIZE') >> 20

peak = [0]
def watch():
    while True:
        peak[0] = max(peak[0], rss_mib())
        time.sleep(0.05)

threading.Thread(target=watch, daemon=True).start()
real, other, out = (Path(a) for a in sys.argv[1:4])
slos = load_slos(None)
stages = {}
def stage(name, call):
    peak[0] = rss_mib()
    cpu, wall = time.process_time(), time.perf_counter()
    value = call()
    stages[name] = {'cpu_s': round(time.process_time() - cpu, 2),
                    'wall_s': round(time.perf_counter() - wall, 2),
                    'rss_after_mib': rss_mib(), 'peak_mib': max(peak[0], rss_mib())}
    return value

# As the command reads (`compare_traces`: lean where the tree has it; older trees do not).
lean = {'lean': True} if 'lean' in inspect.signature(read_compared).parameters else {}
pair = stage('read_compared', lambda: read_compared(real, other, bind=needs_binding(slos), **lean))
result = stage('compare_sessionized', lambda: compare_sessionized(
    pair.real_s, pair.other_s, slos=slos, run_summary=read_run_summary(other),
    learned=pair.learned, real=pair.real, real_noise=pair.real_noise))
stage('compare_json', lambda: write_compare(result, out))
html = stage('render_report', lambda: render_report(result.to_json(), pair.real_s, pair.other_s,
                                                    title='bench'))
write_report(html, out)
print(json.dumps(stages))
"""
_AUTH_COST = (
    "import json, sys; from pathlib import Path\n"
    "sys.path.insert(0, sys.argv[3])\n"
    "from bench_compare import auth_cost\n"
    "print(json.dumps(auth_cost(Path(sys.argv[1]), int(sys.argv[2]))))\n"
)
PART_ROWS = 200_000


def run(
    real: Path, other: Path, out: Path, tree: Path | None, cli: bool = False, stages: bool = False
) -> dict[str, Any]:
    code = _STAGES if stages else _CLI if cli else _COMPARE
    split = out.parent / f"{out.name}.time"  # user, system seconds and minor faults apart
    argv = [*python(tree), code, str(real), str(other), str(out)]
    try:
        result = timed(["/usr/bin/time", "-f", "%U %S %R", "-o", str(split), *argv], env_for(tree))
    except TimedOut as stop:
        return {"timed_out": str(stop)}
    user, system, faults = split.read_text().split()[-3:]
    result.update(user_s=float(user), system_s=float(system), minor_faults=int(faults))
    stdout = result.pop("stdout")
    if stages:
        result["stages"] = json.loads(stdout.strip().splitlines()[-1])
    return result


def bindings(trace: Path, samples: list[int]) -> dict[str, Any]:
    """The bindings learned the old way (every request) and the new (module doc)."""
    import time

    from tracereplay.compare.bindings import learned_from_frame, learned_from_trace
    from tracereplay.compare.compare import load_pair, sessionized_pair
    from tracereplay.models.correlations import find_auth, find_correlations
    from tracereplay.models.frame import load_requests
    from tracereplay.models.model import learned_auth

    def named(learned: Any, seconds: float) -> dict[str, Any]:
        found = {"login": learned.login, "crud": learned.crud, "complex": learned.complex}
        return {"bindings": found, "seconds": round(seconds, 2)}

    start = time.perf_counter()
    full = load_requests(trace)  # every column, as compare read it before
    full_s, _ = sessionized_pair(full, full.head(1))
    old = named(learned_from_frame(full_s, find_auth(full_s, find_correlations(full_s))), 0)
    old["seconds"] = round(time.perf_counter() - start, 2)
    del full, full_s
    start = time.perf_counter()
    real_s, _ = load_pair(trace, trace)
    new = named(learned_from_trace(trace, real_s), time.perf_counter() - start)
    out: dict[str, Any] = {"trace": str(trace), "old": old}
    out["new"] = {"seconds": new["seconds"], "same": new["bindings"] == old["bindings"]}
    for n in samples:
        start = time.perf_counter()
        auth = learned_auth(trace, correlation_sample=n)
        cut = named(learned_from_frame(real_s, auth), time.perf_counter() - start)
        out[f"sample {n}"] = {"seconds": cut["seconds"], "same": cut["bindings"] == old["bindings"]}
    return out


def tile_parts(trace: Path, rows: int, out: Path) -> int:
    """Copies of `trace` (module doc) until `rows` rows, in `PART_ROWS`-row parts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from tracereplay.trace import open_trace
    from tracereplay.trace.store import write_part

    read = open_trace(trace)
    table = read.dataset.to_table()  # the files' metadata (schema id, source) kept:
    table = table.replace_schema_metadata(pq.read_schema(read.dataset.files[0]).metadata)
    low, high = pc.min_max(table.column("ts")).values()
    shift = high.value - low.value + 60_000_000  # microseconds
    out.mkdir(parents=True)
    pending: list[pa.Table] = []
    held = written = part = 0
    k = 0
    while written + held < rows:
        columns = dict(zip(table.column_names, table.columns, strict=True))
        for name in ("session", "client", "conn"):
            if name in columns:
                text = pc.cast(columns[name], pa.string())
                columns[name] = pc.binary_join_element_wise(text, f"~{k}", "")
        columns["ts"] = pc.add(columns["ts"], pa.scalar(k * shift, pa.duration("us")))
        copy = pa.Table.from_arrays(list(columns.values()), names=list(columns))
        pending.append(copy.cast(table.schema).slice(0, rows - written - held))
        held += pending[-1].num_rows
        k += 1
        while held >= PART_ROWS or (held and written + held >= rows):
            whole = pa.concat_tables(pending)
            size = min(PART_ROWS, whole.num_rows)
            part += 1
            write_part(whole.slice(0, size).combine_chunks(), out / f"part-{part:06d}.parquet")
            written, held = written + size, whole.num_rows - size
            pending = [whole.slice(size)] if held else []
    return written


def auth_cost(trace: Path, threads: int) -> dict[str, Any]:
    """What the SLO binding's auth flow costs on compare's frame of TRACE (module doc)."""
    import threading
    import time

    from tracereplay.compare.columns import read_sessionized_rows
    from tracereplay.models.model import sessions_auth
    from tracereplay.models.source import ParquetSource

    def rss_mib() -> int:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGESIZE") >> 20

    peak = [0]

    def watch() -> None:
        while True:
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    real_s, _, rows = read_sessionized_rows(trace, None, 1800.0, scan_rows=True)
    assert rows is not None
    source = ParquetSource.open(trace, read_threads=threads)
    before = peak[0] = rss_mib()
    cpu, wall = time.process_time(), time.perf_counter()
    auth = sessions_auth(source, real_s["session_id"].to_numpy(), real_s["endpoint"], rows)
    return {
        "trace": str(trace), "read_threads": threads, "login": auth.login_endpoint,
        "refresh": auth.refresh_endpoint, "logout": auth.logout_endpoint,
        "cpu_s": round(time.process_time() - cpu, 2),
        "wall_s": round(time.perf_counter() - wall, 2),
        "rss_before_mib": before, "peak_rss_mib": peak[0], "loadavg": os.getloadavg(),
    }  # fmt: skip


def auth_cost_ab(args: argparse.Namespace) -> int:
    """`auth_cost` with this tree's code and the base commit's, alternated, each run its
    own process (module doc)."""
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_compare-auth-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base" / "py" if (work / "base").exists() else old_tree(args.base, work / "base")
    argv = [str(args.auth_cost), str(args.read_threads), str(Path(__file__).resolve().parent)]
    for r in range(args.rounds):
        order = (("new", None), ("old", base)) if r % 2 == 0 else (("old", base), ("new", None))
        for name, tree in order:
            result = timed([*python(tree), _AUTH_COST, *argv], env_for(tree))
            found = json.loads(result.pop("stdout").strip().splitlines()[-1])
            print(json.dumps({f"{name} {r}": {**found, "process": result}}), flush=True)
    return 0


def join_cost(trace: Path, share: float) -> dict[str, Any]:
    """CPU seconds of `_session_keys` on TRACE as it is and with `share` of keys failing."""
    import time
    from dataclasses import replace

    import numpy as np

    from tracereplay.compare.columns import _session_keys
    from tracereplay.models.frame import LIGHT_COLUMNS, read_request_columns
    from tracereplay.models.source import ParquetSource

    source = ParquetSource.open(trace)
    requests = read_request_columns(source.batches(LIGHT_COLUMNS), source=str(trace))
    bad = np.random.default_rng(0).random(len(requests.keys)) < share
    failing = replace(requests, status=np.where(bad[requests.key], 401.0, requests.status))
    out: dict[str, Any] = {"trace": str(trace), "rows": len(requests), "keys": len(requests.keys)}
    for name, columns in (("as_is", requests), (f"{share:g}_of_keys_failing", failing)):
        start = time.process_time()
        keys = _session_keys(source, columns)
        out[name] = {
            "cpu_s": round(time.process_time() - start, 3),
            "rows_joined": int((keys != requests.key).sum()),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, type=Path, action="append", default=[])
    parser.add_argument("--bindings", type=Path, help="check SLO bindings on this trace")
    parser.add_argument("--sample", type=int, action="append", default=[])
    parser.add_argument("--join-cost", type=Path, help="time the failed-credential join")
    parser.add_argument("--fail-share", type=float, default=0.05)
    parser.add_argument("--base")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--old", choices=("all", "first", "none"), default="all",
                        help="which pairs the base commit's code also compares")  # fmt: skip
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cli", action="store_true", help="time `tracereplay compare` itself")
    parser.add_argument("--rounds", type=int, default=1, help="new/base pairs of runs (--cli)")
    parser.add_argument("--stages", action="store_true", help="the steps, each timed")
    parser.add_argument("--tile", type=Path, help="write copies of this trace (--rows, --out)")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--auth-cost", type=Path, help="time the binding's auth flow")
    parser.add_argument("--read-threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.auth_cost and args.base:
        return auth_cost_ab(args)
    if args.auth_cost:
        print(json.dumps(auth_cost(args.auth_cost, args.read_threads)))
        return 0
    args.base = args.base or "9f68120"
    if args.tile:
        print(json.dumps({"rows": tile_parts(args.tile, args.rows, args.out)}))
        return 0
    if args.bindings:
        print(json.dumps(bindings(args.bindings, args.sample), indent=1))
        return 0
    if args.join_cost:
        print(json.dumps(join_cost(args.join_cost, args.fail_share), indent=1))
        return 0
    LIMIT["timeout_s"] = args.timeout
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_compare-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base" / "py" if (work / "base").exists() else old_tree(args.base, work / "base")
    results: dict[str, Any] = {"base": args.base, "timeout_s": args.timeout}
    for i, (real, other) in enumerate(args.pair):
        entry: dict[str, Any] = {"real": str(real), "other": str(other)}
        with_old = args.old == "all" or (args.old == "first" and i == 0)
        for r in range(args.rounds):
            order = (("new", None), ("old", base)) if r % 2 == 0 else (("old", base), ("new", None))
            for name, tree in order:
                key = name if args.rounds == 1 else f"{name} {r}"
                if tree is None or with_old:
                    entry[key] = run(real, other, work / f"{i}-{key}", tree, args.cli, args.stages)
                    entry[key]["loadavg"] = list(os.getloadavg())
                    print(json.dumps({f"pair {i}": {key: entry[key]}}), flush=True)
        docs = sorted(work.glob(f"{i}-*/compare.json"))
        if len(docs) > 1:
            entry["same_compare_json"] = len({d.read_bytes() for d in docs}) == 1
        pages = sorted(work.glob(f"{i}-*/report.html"))
        if len(pages) > 1:
            entry["same_report_html"] = len({d.read_bytes() for d in pages}) == 1
        results[f"pair {i}"] = entry
        print(json.dumps({f"pair {i}": entry}, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
