"""Model, synthesize and compare at scale: this tree against the code of a base commit, in
the same run, on traces synthesized from a staging model.

    .venv/bin/python bench/bench_model.py run --staging TRACE [--sizes 100k,1M,10M]
        [--old-sizes 100k,1M] [--base c31404e] [--work DIR] [--json out.json]
        [--compare [SIZE]] [--processes 2] [--no-synthesize-timing] [--timeout 3600]
        [--correlation-sample S] [--no-correlations]
    .venv/bin/python bench/bench_model.py equal --trace TRACE [--base c31404e]
        [--correlation-sample S [--correlation-per-endpoint M]]
    .venv/bin/python bench/bench_model.py tile --trace TRACE --times K --out DIR
    .venv/bin/python bench/bench_model.py stretch --trace TRACE --times K --out DIR
        [--mode passes|copies]
    .venv/bin/python bench/bench_model.py ab --trace TRACE [--trace T2] [--base REV]
        [--rounds N] [--work DIR] [--json out.json] [--base-python PYTHON]

`run` models the staging trace, synthesizes a trace of about each size from that model
(sizes are requests), then times `tracereplay model` on each trace with the new code and,
for --old-sizes, with the base commit's code, and lists what differs between the two
models (as `equal` does). At the old sizes the trace is the one the base commit's
synthesize wrote (the base's reader refuses the columns this tree's writer adds), and this
tree's synthesize with 1 and with --processes processes is timed into a spare directory.
`compare` of two synthetic traces of the largest size or of --compare SIZE (new code, and
the base commit's where SIZE is an old size), and apart what compare does before it
measures (read both traces, endpoints, sessions: `load_pair`). Every command runs in its
own process under `/usr/bin/time -v` (wall time, peak RSS); the model runs also report the
time of each stage. The base commit's code is unpacked with `git archive` into the work
directory and put first on the import path, so the package keeps no copy of the old code.

`run` finds a synthetic trace already in the work directory and reuses it (so a 10 M
trace made by `tile`, copies of a 1 M one one after the other, serves as `synth-10000000`);
a command running past --timeout is killed with its children (a model run is then
reported as timed out). `stretch` writes K times the rows of TRACE in the same sessions:
each session's requests K times over (`passes`), or each request K times, 1 ms apart
(`copies`): the same sessions, keys and endpoints (memory flat in rows but not in sessions
is measured on these; `tile` adds sessions with the rows).

`ab` models existing traces (e.g. /work/caps/scale/real1M) with the base commit's code and
this tree's, alternated over --rounds pairs, each in its own process under
`/usr/bin/time -v`, and checks that every model file is byte-identical (exit 1 if not).
With --base-python the base code runs with that interpreter (a venv of the base commit's
pins: with `--base` the same commit, the two sides differ by their dependencies alone).

`equal` builds the model of TRACE with both codes and checks the answers are the same
(issue 15, item 6): endpoints, templates, correlations and auth identical; endpoint
counts and shares, sessions, session quantiles, arrivals and latency/status equal; the
behaviors within 1 pp of share and 0.01 of each chain probability; payload models
identical for every endpoint that was not sampled; exit 1 naming what differs. The base
commit's code models a copy of TRACE without the columns it does not know, if any. With
--correlation-sample it also models TRACE with correlations on S sessions (+ M per
endpoint) and lists the rules found only on all sessions or only on the sample, and an
auth that differs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
BASE = "c31404e"
PACKAGES = ("capture", "models", "replay", "compare", "demo")
SHARE_TOLERANCE = 0.01
CHAIN_TOLERANCE = 0.01

# Runs `build_model` in a fresh process and prints the stage timings as JSON. BLAS starts
# with one thread, as the `tracereplay model` command has it (cli.ONE_BLAS_THREAD_COMMANDS),
# for the base commit's code too.
_MODEL_RUNNER = """
import json, os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from pathlib import Path
from tracereplay.models.model import build_model, write_model
marks = []
def progress(event):
    marks.append((str(getattr(event, "stage", event)), getattr(event, "seconds", None),
                  time.perf_counter()))
kw = json.loads(sys.argv[3])
start = time.perf_counter()
model = build_model(Path(sys.argv[1]), progress=progress, **kw)
total = time.perf_counter() - start
write_model(model, Path(sys.argv[2]))
stages = {name: seconds for name, seconds, _ in marks if seconds is not None}
if not stages:  # the old code says only when a stage starts
    starts = [(name, at) for name, _, at in marks]
    ends = [at for _, at in starts[1:]] + [start + total]
    stages = {name: end - at for (name, at), end in zip(starts, ends)}
print(json.dumps({"seconds": total, "stages": stages, "rows": model["provenance"]["rows"]}))
"""


def old_tree(rev: str, into: Path) -> Path:
    """The code of commit `rev`, importable as `tracereplay` from the returned directory."""
    src, py = into / "src", into / "py" / "tracereplay"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    py.mkdir(parents=True)
    for item in (src / "tracereplay").iterdir():
        (py / item.name).symlink_to(item)
    for name in PACKAGES:
        (py / name).symlink_to(src / name)
    return py.parent


LIMIT = {"timeout_s": 3600.0}
"""Longest any one command may run (`run --timeout`): then its process group is killed."""


class TimedOut(Exception):
    pass


def timed(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `argv` under /usr/bin/time -v: wall and CPU seconds, peak RSS (MiB), stdout.
    TimedOut (the command and its children killed) after LIMIT["timeout_s"]."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        child = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", report.name, *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip
        try:
            stdout, stderr = child.communicate(timeout=LIMIT["timeout_s"])
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise TimedOut(f"killed after {LIMIT['timeout_s']:.0f} s") from None
        wall = time.perf_counter() - start
        text = Path(report.name).read_text()
    if child.returncode != 0:
        raise SystemExit(f"{argv[:4]}… exited {child.returncode}: {stderr[-2000:]}")
    rss_kb = float(_field(text, "Maximum resident set size (kbytes)"))
    cpu = float(_field(text, "User time (seconds)")) + float(_field(text, "System time (seconds)"))
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # the process and the workers it waited for
        "peak_rss_mib": round(rss_kb / 1024),  # of the largest one process
        "stdout": stdout,
    }


def _field(report: str, name: str) -> str:
    found = re.search(rf"{re.escape(name)}: ([\d.]+)", report)
    if found is None:
        raise SystemExit(f"/usr/bin/time -v said no {name!r}")
    return found.group(1)


def env_for(tree: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def python(tree: Path | None, interpreter: str | None = None) -> list[str]:
    """The interpreter (this one, or `interpreter`), told not to put the working directory
    first on the import path: from this repository's root, `tracereplay` would be found
    there (this tree's code) before the base commit's on PYTHONPATH. `-c` code checks which
    tree it runs."""
    return [interpreter or sys.executable, "-P", "-c", _WHICH.format(tree=str(tree or REPO))]


_WHICH = (
    "import sys, tracereplay.models.model as _m\n"
    "assert _m.__file__.startswith({tree!r}), 'wrong code: ' + _m.__file__\n"
    "exec(compile(sys.argv.pop(1), '<bench>', 'exec'))\n"
)


# Copies a trace's Parquet parts with only the columns the running code's schema has.
_PROJECT = """
import sys
from pathlib import Path
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tracereplay.trace.schema import TRACE_SCHEMA
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir()
for part in sorted(src.glob("*.parquet")):
    table = pq.read_table(part)
    kept = table.select(TRACE_SCHEMA.names).cast(TRACE_SCHEMA)
    pq.write_table(kept.replace_schema_metadata(table.schema.metadata), dst / part.name)
"""


def readable_by(tree: Path, trace: Path, into: Path) -> Path:
    """`trace`, or a copy of it without the columns the code of `tree` does not know
    (its reader refuses a trace with other columns, e.g. the conn/addr this tree writes).
    That code never reads those columns, so its model of the copy is its model of `trace`."""
    code = "from tracereplay.trace.schema import TRACE_SCHEMA; print(*TRACE_SCHEMA.names)"
    known = set(timed([*python(tree), code], env_for(tree))["stdout"].split())
    found = {name for part in trace.glob("*.parquet") for name in pq.read_schema(part).names}
    if found <= known:
        return trace
    timed([*python(tree), _PROJECT, str(trace), str(into)], env_for(tree))
    return into


def run_model(
    trace: Path, out: Path, tree: Path | None, interpreter: str | None = None, **kw: Any
) -> dict[str, Any]:
    argv = [*python(tree, interpreter), _MODEL_RUNNER, str(trace), str(out), json.dumps(kw)]
    result = timed(argv, env_for(tree))
    result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
    result["rows_per_s"] = round(result["rows"] / result["seconds"])
    return result


def run_synthesize(
    model: Path, out: Path, scale: float, tree: Path | None, seed: int = 1, processes: int = 1
) -> dict[str, Any]:
    extra = ", processes=int(sys.argv[5])" if processes > 1 else ""
    code = (
        "import sys, json; from pathlib import Path\n"
        "from tracereplay.models.model import load_model\n"
        "from tracereplay.models.synthesize import synthesize\n"
        "if __name__ == '__main__':\n"
        "    r = synthesize(load_model(Path(sys.argv[1])), Path(sys.argv[2]), "
        f"scale=float(sys.argv[3]), seed=int(sys.argv[4]){extra})\n"
        "    print(json.dumps({'requests': r.requests, 'sessions': r.sessions}))\n"
    )
    argv = [*python(tree), code, str(model), str(out), repr(scale), str(seed)]
    argv.append(str(processes))
    result = timed(argv, env_for(tree))
    result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
    result["rows_per_s"] = round(result["requests"] / result["wall_s"])
    return result


def run_compare(real: Path, other: Path, out: Path, tree: Path | None) -> dict[str, Any]:
    code = (
        "import sys; from pathlib import Path\n"
        "from tracereplay.compare.compare import compare_traces, write_compare\n"
        "write_compare(compare_traces(Path(sys.argv[1]), Path(sys.argv[2])), Path(sys.argv[3]))\n"
    )
    result = timed([*python(tree), code, str(real), str(other), str(out)], env_for(tree))
    result.pop("stdout")
    return result


def run_load_pair(real: Path, other: Path, tree: Path | None) -> dict[str, Any]:
    """What compare does before it measures: read both traces, endpoints, sessions."""
    code = (
        "import sys, json, time; from pathlib import Path\n"
        "from tracereplay.compare.compare import load_pair\n"
        "start = time.perf_counter()\n"
        "real, other = load_pair(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "rows = len(real) + len(other)\n"
        "print(json.dumps({'seconds': time.perf_counter() - start, 'rows': rows}))\n"
    )
    result = timed([*python(tree), code, str(real), str(other)], env_for(tree))
    result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
    return result


def tile(trace: Path, times: int, out: Path) -> int:
    """Write `times` copies of `trace` one after the other into `out`: copy k has its
    session, client and conn suffixed by `~k` and its timestamps shifted by k × (span +
    1 min), so it adds new sessions at the same rate (a 10 M-row trace from a 1 M one
    without synthesizing 10 M rows). Each part is written as the trace writer writes one
    (`write_part`: its compression and its dictionary-encoded columns only): written with
    pyarrow's defaults (every column a dictionary, snappy) before stop 48, a tile's header
    columns decoded ~1.4× as slowly as a capture's. Returns the rows written."""
    from tracereplay.trace.store import write_part

    parts = sorted(p for p in trace.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not parts:
        raise SystemExit(f"{trace}: no Parquet parts")
    low, high = None, None
    for part in parts:
        found = pc.min_max(pq.read_table(part, columns=["ts"]).column("ts"))
        low = found["min"] if low is None else min(low, found["min"], key=lambda v: v.value)
        high = found["max"] if high is None else max(high, found["max"], key=lambda v: v.value)
    assert low is not None and high is not None
    shift = high.value - low.value + 60_000_000  # microseconds
    out.mkdir(parents=True)
    rows = 0
    for k in range(times):
        for i, part in enumerate(parts):
            table = pq.read_table(part)
            columns = dict(zip(table.column_names, table.columns, strict=True))
            for name in ("session", "client", "conn"):
                if name in columns:
                    columns[name] = pc.binary_join_element_wise(columns[name], f"~{k}", "")
            columns["ts"] = pc.add(columns["ts"], pa.scalar(k * shift, pa.duration("us")))
            copy = pa.Table.from_arrays(list(columns.values()), schema=table.schema)
            write_part(copy, out / f"part-{k * len(parts) + i + 1:06d}.parquet")
            rows += table.num_rows
    return rows


def stretch(trace: Path, times: int, out: Path, mode: str = "passes") -> int:
    """Write `times` × the rows of `trace` into `out`, in the same sessions (the rest of each
    row the same: its session, client and conn too). `passes`: each session's requests
    `times` times over, one pass after another (pass j at + j × (the session's span + 1 s)):
    a session as long again, as varied as it was. `copies`: each request `times` times, copy
    j at + j ms (ties: a request repeated at once). Returns the rows written."""
    parts = sorted(p for p in trace.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not parts or times < 1:
        raise SystemExit(f"{trace}: no Parquet parts" if not parts else "--times must be >= 1")
    spans = (
        pq.ParquetDataset(parts).read(columns=["session", "ts"])
        .group_by("session").aggregate([("ts", "min"), ("ts", "max")])
    )  # fmt: skip
    span_us = pc.subtract(spans["ts_max"], spans["ts_min"]).cast(pa.int64()).to_numpy()
    out.mkdir(parents=True)
    rows = 0
    for i, part in enumerate(parts):
        table = pq.read_table(part)
        at = pc.index_in(table["session"], value_set=spans["session"])
        shift = np.where(at.is_null(), 0, span_us[at.fill_null(0)] + 1_000_000)
        ts = table.schema.get_field_index("ts")
        # By slices (a take of a whole part's copies can pass Arrow's 2 GiB of one binary array).
        each = max(1, 100_000 // times)
        with pq.ParquetWriter(
            out / f"part-{i + 1:06d}.parquet", table.schema, compression="zstd"
        ) as writer:
            for lo in range(0, table.num_rows, each):
                piece = table.slice(lo, each)
                n = piece.num_rows
                if mode == "copies":
                    copies = piece.take(pa.array(np.repeat(np.arange(n), times)))
                    step = np.tile(np.arange(times, dtype=np.int64) * 1_000, n)
                else:
                    copies = piece.take(pa.array(np.tile(np.arange(n), times)))
                    step = np.repeat(np.arange(times, dtype=np.int64), n) * np.tile(
                        shift[lo : lo + n], times
                    )
                shifted = pc.add(copies.column(ts), pa.array(step, pa.duration("us")))
                writer.write_table(copies.set_column(ts, "ts", shifted).cast(table.schema))
                rows += copies.num_rows
    return rows


def parse_size(text: str) -> int:
    text = text.strip().upper()
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * factor)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_model-"))
    work.mkdir(parents=True, exist_ok=True)
    old = old_tree(args.base, work / "base") if not (work / "base").exists() else work / "base/py"
    staging_model = work / "staging.model.json"
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "base": args.base,
        "staging": str(args.staging),
    }
    results["staging_model"] = run_model(args.staging, staging_model, None)
    model = json.loads(staging_model.read_text())
    rows_at_1x = model["provenance"]["rows"]
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    old_sizes = {parse_size(s) for s in args.old_sizes.split(",") if s}
    for size in sizes:
        label = f"{size:,}"
        trace, spare = work / f"synth-{size}", work / f"synth-spare-{size}"
        entry: dict[str, Any] = {}
        scale = size / rows_at_1x
        # The base commit's reader refuses the columns this tree's writer adds (conn, ...),
        # so at the old sizes both codes model the trace the base's synthesize wrote, and
        # the new synthesize is timed into a spare directory.
        runs: list[tuple[str, Path | None, int]] = [
            (f"synthesize_new_{args.processes}p", None, args.processes)
        ]
        if size in old_sizes:
            runs = [("synthesize_old", old, 1), *runs, ("synthesize_new_1p", None, 1)]
        if args.no_synthesize_timing:  # only the trace the models read
            runs = runs[:1]
        for key, tree, processes in runs:
            if key in entry or (trace.exists() and key == runs[0][0]):
                continue
            into = trace if key == runs[0][0] else spare
            shutil.rmtree(spare, ignore_errors=True)
            entry[key] = run_synthesize(staging_model, into, scale, tree, processes=processes)
        shutil.rmtree(spare, ignore_errors=True)
        for key, tree, kw in (("new", None, args.model_kw), ("old", old, {})):
            if tree is None or size in old_sizes:
                try:
                    out = work / f"{key}-{size}.json"
                    entry[f"model_{key}"] = run_model(trace, out, tree, **kw)
                except TimedOut as stop:
                    entry[f"model_{key}"] = {"timed_out": str(stop)}
        if all("rows" in entry.get(f"model_{k}", {}) for k in ("old", "new")):
            models = [json.loads((work / f"{k}-{size}.json").read_text()) for k in ("old", "new")]
            entry["differences"] = differences(*models)  # issue 15 item 6, at this size
        results[label] = entry
        print(json.dumps({label: entry}, indent=1), flush=True)
    if args.compare:
        size = max(sizes) if args.compare == "largest" else parse_size(args.compare)
        if size not in sizes:
            raise SystemExit(f"--compare {args.compare}: not one of --sizes")
        other = work / f"synth-{size}-b"
        writer, processes = (old, 1) if size in old_sizes else (None, args.processes)
        if not other.exists():  # at an old size, a trace both codes read (above)
            run_synthesize(staging_model, other, size / rows_at_1x, writer, 2, processes)
        for key, tree in (("new", None), ("old", old)):
            if tree is None or size in old_sizes:
                pair = (work / f"synth-{size}", other)
                results[f"compare_{key}"] = run_compare(*pair, work / f"compare_{key}", tree)
                results[f"compare_read_sessionize_{key}"] = run_load_pair(*pair, tree)
                print(json.dumps({k: v for k, v in results.items() if key in k}), flush=True)
    return results


# ---- equal ---------------------------------------------------------------------------------


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two models of one trace beyond what issue 15 allows."""
    out: list[str] = []

    def same(what: str, a: Any, b: Any) -> None:
        if a != b:
            out.append(f"{what}: {_short(a)} != {_short(b)}")

    for key in ("templates", "auth"):
        same(key, old[key], new[key])
    # Issue 11 added `arrivals.gap_shape` (the gaps' gamma shape): the rest is equal.
    same("arrivals", old["arrivals"], _keys_of(old["arrivals"], new["arrivals"]))
    if _sampled(new) and not _sampled(old):  # support and confidence are the sample's
        out += rule_differences(old["correlations"], new["correlations"])
    else:
        same("correlations", old["correlations"], new["correlations"])
    # Issue 11 added keys to `sessions` (the request curve, a p99 quantile): the rest is equal.
    same("sessions", old["sessions"], _keys_of(old["sessions"], new["sessions"]))
    same("endpoint names", sorted(old["endpoints"]), sorted(new["endpoints"]))
    sampled = new["provenance"].get("sampling", {}).get("payloads", {}).get("per_endpoint")
    for name in sorted(set(old["endpoints"]) & set(new["endpoints"])):
        a, b = dict(old["endpoints"][name]), dict(new["endpoints"][name])
        if sampled is not None and a["count"] > sampled:  # payloads learned from a sample
            for key in ("body", "query"):
                a.pop(key), b.pop(key)
        same(f"endpoint {name}", a, _unlinked(b))
    for key in ("rows", "sessions", "first_ts", "span_s", "source", "policy_hash"):
        same(f"provenance.{key}", old["provenance"][key], new["provenance"][key])
    out += behavior_differences(old["behaviors"], new["behaviors"])
    return out


def _unlinked(value: Any) -> Any:
    """`value` with each date range end (issue 10 added `after` nodes) back as the field
    node it was learned from: its own generator and presence."""
    if isinstance(value, list):
        return [_unlinked(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _unlinked(v) for k, v in value.items()}
    if out.get("k") == "obj" and isinstance(out.get("fields"), list):
        presence = {f["key"]: f.get("p") for f in out["fields"]}
        fields = []
        for f in out["fields"]:
            if f.get("k") != "after":
                fields.append(f)
                continue
            p = f.get("p", presence.get(f["from"]) if f.get("with") else None)
            fields.append({"key": f["key"], **({"p": p} if p is not None else {}), **f["fmt"]})
        out["fields"] = fields
    return out


def _sampled(model: dict[str, Any]) -> bool:
    """Whether correlations were found on a sample of the sessions (issue 15, item 3)."""
    note = model["provenance"].get("sampling", {}).get("correlations", {})
    return bool(note) and note["sessions_read"] < note["sessions"]


def _rule_key(rule: dict[str, Any]) -> str:
    return json.dumps([rule["source"], rule["target"]], sort_keys=True)


def rule_differences(whole: list[dict[str, Any]], sampled: list[dict[str, Any]]) -> list[str]:
    """Rules (source → target) found on all sessions and not on the sample, or the
    reverse, each with its support where it was found."""
    a = {_rule_key(r): r["support"] for r in whole}
    b = {_rule_key(r): r["support"] for r in sampled}
    out = [f"correlation only on all sessions (support {a[k]}): {k}" for k in sorted(a.keys() - b)]
    out += [f"correlation only on the sample (support {b[k]}): {k}" for k in sorted(b.keys() - a)]
    return out


def _keys_of(old: Any, new: Any) -> Any:
    """`new` with only the dictionary keys `old` has (at every depth)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: _keys_of(old[k], v) for k, v in new.items() if k in old}
    return new


def behavior_differences(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """Behaviors paired by rank: shares within 1 pp, entry and transition probabilities
    within 0.01."""
    if len(old) != len(new):
        return [f"behaviors: {len(old)} != {len(new)}"]
    out = []
    for a, b in zip(old, new, strict=True):
        if abs(a["share"] - b["share"]) > SHARE_TOLERANCE:
            out.append(f"behavior {a['name']} share {a['share']} != {b['share']}")
        chains = [("entry", a["entry"], b["entry"])] + [
            (f"from {k}", a["transitions"].get(k, {}), b["transitions"].get(k, {}))
            for k in sorted(set(a["transitions"]) | set(b["transitions"]))
        ]
        for where, ca, cb in chains:
            worst = max(
                (abs(ca.get(t, 0.0) - cb.get(t, 0.0)) for t in set(ca) | set(cb)), default=0
            )
            if worst > CHAIN_TOLERANCE:
                out.append(f"behavior {a['name']} {where}: off by {worst:.4f}")
    return out


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def equal(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench_model-equal-") as tmp:
        work = Path(tmp)
        old = old_tree(args.base, work / "base")
        runs = {
            "old": run_model(
                readable_by(old, args.trace, work / "old-trace"), work / "old.json", old
            ),
            # Issue 11 censors sessions cut by the capture's edges on purpose: off here.
            "new": run_model(args.trace, work / "new.json", None, censor_edges=False),
            "new_again": run_model(args.trace, work / "new2.json", None, censor_edges=False),
        }
        models = {k: json.loads((work / f"{k}.json").read_text()) for k in ("old", "new")}
        diffs = differences(models["old"], models["new"])
        if (work / "new.json").read_bytes() != (work / "new2.json").read_bytes():
            diffs.append("the new code's two models of one trace differ")
        report: dict[str, Any] = {"trace": str(args.trace)}
        if args.correlation_sample:  # the same trace, correlations on a sample of it
            kw = {"correlation_sample": args.correlation_sample,
                  "correlation_per_endpoint": args.correlation_per_endpoint}  # fmt: skip
            runs["new_sampled"] = run_model(args.trace, work / "sampled.json", None, **kw)
            sampled = json.loads((work / "sampled.json").read_text())
            report["sampled"] = sampled["provenance"]["sampling"]["correlations"]
            diffs += rule_differences(models["new"]["correlations"], sampled["correlations"])
            if sampled["auth"] != models["new"]["auth"]:
                diffs.append(f"auth on the sample: {_short(sampled['auth'])}")
    summary = {k: {"seconds": round(v["seconds"], 2), "peak_rss_mib": v["peak_rss_mib"]}
               for k, v in runs.items()}  # fmt: skip
    print(json.dumps({**report, "runs": summary, "differences": diffs}, indent=1))
    return 1 if diffs else 0


# ---- ab ------------------------------------------------------------------------------------


def ab(args: argparse.Namespace) -> dict[str, Any]:
    """`tracereplay model` of each trace with the base commit's code and this tree's, in
    one run, alternated (old, new, new, old, ...), each in its own process; the model
    files compared byte for byte."""
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_model-ab-"))
    work.mkdir(parents=True, exist_ok=True)
    old = old_tree(args.base, work / "base") if not (work / "base").exists() else work / "base/py"
    results: dict[str, Any] = {"base": args.base, "machine": {"cpus": os.cpu_count()}}
    results["traces"] = {}
    names = [t.name for t in args.trace]
    for trace in args.trace:
        # cap20/trace and capC/trace: named by their folder too, so neither file is lost
        name = trace.name if names.count(trace.name) == 1 else f"{trace.parent.name}-{trace.name}"
        readable = readable_by(old, trace, work / f"{name}-old-trace")
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for round_ in range(args.rounds):
            order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
            for key in order:
                out = work / f"{name}-{key}-{round_}.json"
                tree = old if key == "old" else None
                interpreter = args.base_python if tree else None
                runs[key].append(run_model(readable if tree else trace, out, tree, interpreter))
        files = {(work / f"{name}-{k}-{r}.json").read_bytes()
                 for k in runs for r in range(args.rounds)}  # fmt: skip
        entry = {"runs": runs, "byte_identical": len(files) == 1}
        results["traces"][str(trace)] = entry
        print(json.dumps({str(trace): entry}, indent=1), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--staging", type=Path, required=True)
    run.add_argument("--sizes", default="100k,1M")
    run.add_argument("--old-sizes", default="100k,1M")
    run.add_argument("--base", default=BASE)
    run.add_argument("--work", type=Path)
    run.add_argument("--json", type=Path)
    run.add_argument("--processes", type=int, default=2, help="synthesize's worker processes")
    run.add_argument(
        "--no-correlations", action="store_true", help="new code: model without correlations"
    )
    run.add_argument("--correlation-sample", type=int, help="new code: sessions for correlations")
    run.add_argument(
        "--no-synthesize-timing", action="store_true",
        help="synthesize each trace once (no old / 1-process timings)",
    )  # fmt: skip
    run.add_argument(
        "--timeout", type=float, default=LIMIT["timeout_s"],
        help="seconds any one command may run (a model run past it is reported as timed out)",
    )  # fmt: skip
    run.add_argument(
        "--compare", nargs="?", const="largest", metavar="SIZE",
        help="compare two traces of SIZE (one of --sizes; default the largest)",
    )  # fmt: skip
    eq = sub.add_parser("equal")
    eq.add_argument("--trace", type=Path, required=True)
    eq.add_argument("--base", default=BASE)
    eq.add_argument(
        "--correlation-sample", type=int, default=0, metavar="N",
        help="also model TRACE with correlations on N sessions (+ the per-endpoint quota) "
        "and list the rules and auth that differ from the model of all sessions",
    )  # fmt: skip
    eq.add_argument("--correlation-per-endpoint", type=int, default=20, metavar="M")
    stretches = sub.add_parser("stretch", help="more rows, the same sessions (see stretch())")
    stretches.add_argument("--trace", type=Path, required=True)
    stretches.add_argument("--times", type=int, required=True)
    stretches.add_argument("--out", type=Path, required=True)
    stretches.add_argument("--mode", choices=["passes", "copies"], default="passes")
    tiles = sub.add_parser("tile", help="a longer trace made of copies of one (see tile())")
    tiles.add_argument("--trace", type=Path, required=True)
    tiles.add_argument("--times", type=int, required=True)
    tiles.add_argument("--out", type=Path, required=True)
    abp = sub.add_parser("ab", help="model of existing traces, base code against this tree")
    abp.add_argument("--trace", type=Path, action="append", required=True)
    abp.add_argument("--base", default=BASE)
    abp.add_argument("--rounds", type=int, default=1, help="old/new pairs, alternated")
    abp.add_argument("--work", type=Path)
    abp.add_argument("--json", type=Path)
    abp.add_argument("--timeout", type=float, default=LIMIT["timeout_s"])
    abp.add_argument(
        "--base-python", metavar="PYTHON",
        help="the interpreter the base code runs with (default: this one)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.command == "ab":
        LIMIT["timeout_s"] = args.timeout
        results = ab(args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        return 0 if all(e["byte_identical"] for e in results["traces"].values()) else 1
    if args.command == "equal":
        return equal(args)
    if args.command == "stretch":
        print(json.dumps({"rows": stretch(args.trace, args.times, args.out, args.mode)}))
        return 0
    if args.command == "tile":
        print(json.dumps({"rows": tile(args.trace, args.times, args.out)}))
        return 0
    args.model_kw = {"correlations": False} if args.no_correlations else {}
    if args.correlation_sample:
        args.model_kw["correlation_sample"] = args.correlation_sample
    LIMIT["timeout_s"] = args.timeout
    results = bench(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
