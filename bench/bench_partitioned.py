"""Sessions made per partition of session keys, spilled to disk, exact think-time quantiles
in passes over spilled pauses: a measured prototype of flat memory for issue 15 (bench only).

docs/SCALE.md names the plan ("the sessions made per partition of keys spilled to disk,
exact quantiles in two passes"); this script builds it outside models/ and measures what
it costs and whether its answers are the model's. Steps of `run`:

  scan        `models/key_partitions.scan_key_partitions`: one pass over the trace's
              record batches (the model's light columns, strings as the files'
              dictionaries), file by file on one thread, one batch held at a time; each
              row to the Arrow IPC spill of partition hash(session key) mod P (the
              model's `string_codes.session_key`; keys told apart by their strings, kept
              per partition, a row spilling a partition-local code), with its ts (int64
              µs), endpoint cell, duration, status and scan position (32 B a row). The
              endpoints: each batch's distinct paths cut to skeletons there (the
              package's shape rules, a function of each path alone), only (METHOD,
              skeleton) counts kept; the templater fitted once after the scan
              (`Templater.fit_skeletons`, which reads nothing else) names each cell as
              the model does (`request_endpoints`' names and codes: the module's tests).
  sessions    per partition: read back in time order (ties in scan order: a stable
              sort, the spill being in scan order), keys ranked by their strings, and
              the model's own `key_time_split` + `sessionize_requests`,
              `SessionPaths.of`, `Pairs.of` (same 1800 s timeout, same tie order). Kept
              across partitions: per session its length and duration (12 B a session);
              per transition its total; per session its transition cells counted; the
              pauses spilled (uint64 order key + int32 group, 12 B a pause) and
              counted in value bins (`SpilledValues.add`).
  quantiles   exact `np.quantile` (linear, 21 points 0..1) of every pause of the trace and
              of each transition's pauses, and the trace's median pause, by
              `models/spilled_quantiles.py` (the pauses spilled as each partition adds
              them, counted in value bins): a pass over the spilled pauses gathers the
              values of the bins that hold the wanted ranks (at most --gather-limit) and
              counts finer bins in the others (ties: a script's fixed pause), down to
              single values.

`sessions-section` runs the product path, `models/partitioned_sessions.partitioned_sessions`
(scan, sessions per partition, pauses spilled, merge, request curve), and compares its
"sessions" section field by field with a model file's (--model): equal or not.

`reference` computes the same aggregates the way the model does today (the whole trace's
light columns in memory: `read_light_columns`, `request_endpoints`, `sessionize_requests`,
`SessionPaths`, `Pairs`, `np.quantile`); `check` compares two result files, and both with
the model file's reported numbers.

Not done (a product version's work, bench/README.md): keys that failed auth and join
their connection (`connections_to_join`) are not handled (no such key in these traces: the
reference says so); the session ids' global order (start time, ties by key) is not made,
so per-session floats are summed in partition order (mean_duration_s can differ in the
last bits).

    .venv/bin/python bench/bench_partitioned.py run --trace /work/data/real1M \\
        --partitions 16 --out /tmp/part23/p16-real1M.json
    .venv/bin/python bench/bench_partitioned.py reference --trace /work/data/real1M \\
        --out /tmp/part23/ref-real1M.json
    .venv/bin/python bench/bench_partitioned.py check /tmp/part23/ref-real1M.json \\
        /tmp/part23/p16-real1M.json --model /work/data/models/real1M.main.json
    .venv/bin/python bench/bench_partitioned.py sessions-section --trace /work/data/real1M \\
        --partitions 16 --out /tmp/part23/sec-real1M.json \\
        --model /work/data/models/real1M.main.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tracereplay.allocator import give_back_freed
from tracereplay.models.behavior_paths import END, Pairs, SessionPaths
from tracereplay.models.behaviors import QUANTILE_POINTS
from tracereplay.models.key_partitions import Partition, scan_key_partitions
from tracereplay.models.key_split import key_time_split
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.models.source import ParquetSource
from tracereplay.models.spilled_quantiles import Ask, SpilledValues


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Phases:
    """CPU (user+sys of this process), wall, RSS and peak RSS so far at each phase's end."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.cpu, self.wall = 0.0, time.perf_counter()
        self.done("imports")  # (CPU since the process started; wall not known: 0)

    def done(self, name: str, **extra: Any) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        row = {
            "phase": name,
            "cpu_s": round(cpu - self.cpu, 3),
            "wall_s": round(wall - self.wall, 3),
            "rss_mb": round(_rss_mb(), 1),
            "peak_mb": round(_peak_mb(), 1),
            **extra,
        }
        self.rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        self.cpu, self.wall = cpu, wall


# ---------------------------------------------------------------- sessions


class Totals:
    """What is kept across partitions: per session, per transition; the pauses spilled."""

    def __init__(self, names: list[str], pauses: SpilledValues) -> None:
        self.labels = sorted(set(names) | {"START", END})
        self.width = len(self.labels)
        self.transitions = np.zeros(self.width * self.width, np.int64)
        self.lengths: list[np.ndarray] = []
        self.durations: list[np.ndarray] = []
        self.cells = 0
        self.endpoint_counts = np.zeros(len(names), np.int64)
        self.pauses = pauses  # group 0: every pause; 1 + c: transition c's


def sessions_of_partition(
    partition: Partition,
    first_us: int,
    names: list[str],
    totals: Totals,
    timeout_s: float,
) -> None:
    # The partition in time order (ties in scan order), as the model's RequestColumns.
    endpoint = partition.endpoint
    totals.endpoint_counts += np.bincount(endpoint, minlength=len(names))
    requests = partition.request_columns(first_us)
    del partition
    split = key_time_split(requests)
    from tracereplay.models.frame import sessionize_requests

    frame = sessionize_requests(
        requests, endpoint, names, timeout_s, split, narrow=True, seq=False, durations=False
    )
    del split, requests, endpoint
    paths = SessionPaths.of(frame)
    t = frame["t_s"].to_numpy()
    del frame
    bounds = paths.bounds
    totals.lengths.append(paths.length.astype(np.int32))
    totals.durations.append(t[bounds[1:] - 1] - t[bounds[:-1]])
    del t
    pairs = Pairs.of(paths)
    # This partition's transitions into the trace's labels.
    remap = np.array([totals.labels.index(label) for label in paths.labels], np.int64)
    w = len(paths.labels)
    global_code = remap[pairs.codes // w] * totals.width + remap[pairs.codes % w]
    np.add.at(totals.transitions, global_code, pairs.totals())
    totals.cells += int(pairs.counts(paths).nnz)
    # The pauses (finite, not a session's first), with their transition's global code.
    within = np.isfinite(paths.think_s)
    within[paths.first] = False
    value = np.ascontiguousarray(paths.think_s[within])
    column = global_code[pairs.column[within]].astype(np.int32)
    totals.pauses.add(value, column + 1, also=0)


# ---------------------------------------------------------------- quantiles


def think_quantiles(totals: Totals, phases: Phases) -> dict[str, Any]:
    """np.quantile (QUANTILE_POINTS) of group 0 (every pause) and of each transition's
    (group 1 + its code), and np.median of group 0, exactly, from the spilled pauses
    (`spilled_quantiles`: bin counts, then passes over the spill)."""
    think, median = totals.pauses.answer(Ask.quantiles(QUANTILE_POINTS), Ask.median(groups=[0]))
    report = totals.pauses.report
    phases.done(
        "quantiles", passes=report.passes, values_gathered=report.values_gathered,
        levels=report.levels, counted_keys=report.counted_keys,
    )  # fmt: skip
    n0 = int(median.counts[0]) if len(median.groups) else 0
    out: dict[str, Any] = {"median_think_s": float(median.values[0]) if n0 else 0.0, "pauses": n0}
    by_transition = {}
    for group, size, q in zip(
        think.groups.tolist(), think.counts.tolist(), think.values.tolist(), strict=True
    ):
        if group == 0:
            out["think_trace"] = q
            continue
        code = group - 1
        name = f"{totals.labels[code // totals.width]} -> {totals.labels[code % totals.width]}"
        by_transition[name] = [size, q]
    out["think"] = by_transition
    return out


# ---------------------------------------------------------------- run, reference, check


def _summary(
    lengths: np.ndarray,
    durations: np.ndarray,
    transitions: dict[str, int],
    cells: int,
    endpoint_counts: dict[str, int],
) -> dict[str, Any]:
    import hashlib

    per_length = np.unique(lengths, return_counts=True)
    ordered = np.sort(durations)
    return {
        "sessions": len(lengths),
        "requests": int(lengths.sum()),
        "lengths": {str(k): int(v) for k, v in zip(*per_length, strict=True)},
        "mean_length": float(np.mean(lengths)),
        "median_length": float(np.median(lengths)),
        "mean_duration_s": float(np.mean(durations)),
        "durations_sorted_sha256": hashlib.sha256(ordered.tobytes()).hexdigest(),
        "transitions": {k: v for k, v in sorted(transitions.items()) if v},
        "session_cells": cells,
        "endpoints": dict(sorted(endpoint_counts.items())),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    phases = Phases()
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    # The scan (models/key_partitions.py; the templates fitted at its end); its directory,
    # and the pauses' files in it, removed when the `with` ends.
    source = ParquetSource.open(args.trace)
    with scan_key_partitions(source, args.partitions, Path(args.tmp)) as parts:
        spill = parts.directory
        rows, first, names = parts.rows, parts.first_ts_us, parts.names
        spill_bytes = parts.counts["spill_bytes"]
        held = {k: v for k, v in parts.counts.items() if k not in ("rows", "spill_bytes")}
        phases.done("scan", rows=rows, spill_mib=round(spill_bytes / 2**20, 1), **held,
                    endpoints=len(names))  # fmt: skip
        give_back_freed()
        totals = Totals(names, SpilledValues(spill, gather_limit=args.gather_limit))
        largest = 0
        for partition in parts.partitions():  # (each one's files let go)
            largest = max(largest, len(partition))
            sessions_of_partition(partition, first, names, totals, args.timeout_s)
            del partition
            pa.default_memory_pool().release_unused()
            give_back_freed()
        pause_bytes = totals.pauses.spill_bytes()
        phases.done(
            "sessions",
            largest_partition_rows=largest,
            pause_spill_mib=round(pause_bytes / 2**20, 1),
        )
        lengths = np.concatenate(totals.lengths)
        durations = np.concatenate(totals.durations)
        totals.lengths, totals.durations = [], []
        w = totals.width
        transitions = {
            f"{totals.labels[c // w]} -> {totals.labels[c % w]}": int(n)
            for c, n in enumerate(totals.transitions.tolist())
        }
        result = _summary(
            lengths, durations, transitions, totals.cells,
            dict(zip(names, totals.endpoint_counts.tolist(), strict=True)),
        )  # fmt: skip
        phases.done("per-session")
        result.update(think_quantiles(totals, phases))
        totals.pauses.close()
    result["rows"] = rows
    result["partitions"] = args.partitions
    result["spill_mib"] = round((spill_bytes + pause_bytes) / 2**20, 1)
    result["phases"] = phases.rows
    result["peak_mb"] = round(_peak_mb(), 1)
    return result


def reference(args: argparse.Namespace) -> dict[str, Any]:
    """The same aggregates as the model makes them today, whole trace in memory."""
    from tracereplay.models.behavior_paths import transition_counts
    from tracereplay.models.frame import connections_to_join, sessionize_requests
    from tracereplay.models.light_columns import read_light_columns
    from tracereplay.models.nan_quantiles import nan_median
    from tracereplay.models.source import ParquetSource
    from tracereplay.models.templating import request_endpoints

    phases = Phases()
    source = ParquetSource.open(args.trace)
    requests = read_light_columns(source)
    _, endpoint, names = request_endpoints(
        requests.methods, requests.method, requests.paths, requests.path
    )
    joined = connections_to_join(source, requests) is not None
    phases.done("read+templates", rows=len(requests))
    sessions = sessionize_requests(requests, endpoint, names, args.timeout_s)
    sizes = np.bincount(sessions["session_id"].to_numpy())
    t = sessions["t_s"].to_numpy()
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    durations = t[first + sizes - 1] - t[first]
    paths = SessionPaths.of(sessions)
    pairs = Pairs.of(paths)
    totals = pairs.totals()
    vocabulary = pairs.vocabulary(paths.labels)
    matrix, _ = transition_counts(paths)
    within = np.isfinite(paths.think_s)
    within[paths.first] = False
    column, pause = pairs.column[within], paths.think_s[within]
    think = {}
    order = np.argsort(column, kind="stable")
    used, starts = np.unique(column[order], return_index=True)
    for c, values in zip(used.tolist(), np.split(pause[order], starts[1:]), strict=True):
        think[" -> ".join(vocabulary[c])] = [
            len(values),
            np.quantile(values, QUANTILE_POINTS).tolist(),
        ]
    counts = np.bincount(endpoint, minlength=len(names))
    result = _summary(
        sizes, durations, {" -> ".join(v): int(n) for v, n in zip(vocabulary, totals, strict=True)},
        int(matrix.nnz), dict(zip(names, counts.tolist(), strict=True)),
    )  # fmt: skip
    result.update(
        joined_failed_credentials=joined,
        median_think_s=nan_median(sessions["think_s"].to_numpy(float)),
        pauses=len(pause),
        think_trace=np.quantile(pause, QUANTILE_POINTS).tolist(),
        think=think,
        rows=len(requests),
    )
    phases.done("sessions+aggregates")
    result["phases"] = phases.rows
    result["peak_mb"] = round(_peak_mb(), 1)
    return result


EXACT = (
    "sessions", "requests", "lengths", "mean_length", "median_length",
    "durations_sorted_sha256", "transitions", "session_cells", "endpoints", "pauses",
    "median_think_s", "think_trace", "think",
)  # fmt: skip


def _sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def check(args: argparse.Namespace) -> int:
    """Each result against the reference (exact), and the model file's reported numbers."""
    ref = json.loads(Path(args.reference).read_text())
    model = json.loads(Path(args.model).read_text()) if args.model else None
    bad = 0
    for path in args.results:
        found = json.loads(Path(path).read_text())
        print(f"{path} (P={found.get('partitions')}):")
        for name in EXACT:
            same = ref.get(name) == found.get(name)
            bad += not same
            print(f"  {name}: {'equal' if same else 'DIFFERENT'}")
        a, b = ref["mean_duration_s"], found["mean_duration_s"]
        print(f"  mean_duration_s: {a!r} vs {b!r} (relative {abs(a - b) / abs(a):.2e})")
    if model is not None:
        stats = model["sessions"]["stats"]
        print(f"model file {args.model}:")
        for name in ("sessions", "mean_length", "median_length", "mean_duration_s",
                     "median_think_s"):  # fmt: skip
            want = stats[name]
            got = ref[name]
            same = want == got or any(_sig(got, d) == want for d in (4, 5))
            bad += not same
            print(f"  stats.{name}: file {want}, reference {got} {'ok' if same else 'DIFFERENT'}")
        counts = {k: v["count"] for k, v in model["endpoints"].items()}
        same = counts == ref["endpoints"]
        bad += not same
        print(f"  endpoint counts: {'equal' if same else 'DIFFERENT'}")
    return 1 if bad else 0


def sessions_section(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """The section `partitioned_sessions` makes, what it cost, and with --model each of its
    fields against the model file's (equal or not); 1 when one differs, else 0."""
    from tracereplay.models.partitioned_sessions import partitioned_sessions

    phases = Phases()
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    found = partitioned_sessions(
        ParquetSource.open(args.trace), session_timeout_s=args.timeout_s,
        partitions=args.partitions, directory=Path(args.tmp),
        censor_edges=not args.no_censor_edges,
    )  # fmt: skip
    spill = found.counts["spill_bytes"] + found.counts["pause_spill_bytes"]
    phases.done("sessions-section", rows=found.rows, sessions=len(found.merged.table),
                spill_mib=round(spill / 2**20, 1))  # fmt: skip
    section = found.section()  # (the model's every field: its shape's quantiles too)
    phases.done("shape")
    result: dict[str, Any] = {
        "section": section, "rows": found.rows, "partitions": args.partitions,
        "spill_mib": round(spill / 2**20, 1), "phases": phases.rows, "peak_mb": 0.0,
    }  # fmt: skip
    bad = 0
    if args.model:
        model = json.loads(Path(args.model).read_text())["sessions"]
        same = {name: section.get(name) == model.get(name) for name in sorted({*section, *model})}
        result["equal"] = same
        bad = sum(not ok for ok in same.values())
        for name, ok in same.items():
            print(f"  {name}: {'equal' if ok else 'DIFFERENT'}")
    result["peak_mb"] = round(_peak_mb(), 1)
    return result, 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "reference"):
        p = sub.add_parser(name)
        p.add_argument("--trace", type=Path, required=True)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--timeout-s", type=float, default=DEFAULT_SESSION_TIMEOUT_S)
        if name == "run":
            p.add_argument("--partitions", type=int, default=16)
            p.add_argument("--tmp", default="/tmp/part23")
            p.add_argument("--gather-limit", type=int, default=1 << 20,
                           help="values gathered at most in pass 2; more: finer bins")  # fmt: skip
    s = sub.add_parser("sessions-section")
    s.add_argument("--trace", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--partitions", type=int, default=16)
    s.add_argument("--timeout-s", type=float, default=DEFAULT_SESSION_TIMEOUT_S)
    s.add_argument("--no-censor-edges", action="store_true")
    s.add_argument("--model", help="a model file whose sessions section is compared")
    s.add_argument("--tmp", default="/tmp/part23")
    c = sub.add_parser("check")
    c.add_argument("reference")
    c.add_argument("results", nargs="+")
    c.add_argument("--model")
    args = parser.parse_args()
    if args.command == "check":
        return check(args)
    code = 0
    if args.command == "sessions-section":
        result, code = sessions_section(args)
    else:
        result = run(args) if args.command == "run" else reference(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
