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
              pauses spilled (float64 value + int32 transition column, 12 B a pause) and
              counted in value bins (pass 1 of the quantiles).
  quantiles   exact `np.quantile` (linear, 21 points 0..1) of every pause of the trace and
              of each transition's pauses, and the trace's median pause, from the bin
              counts: pass 2 over the spilled pauses gathers the values of the bins that
              hold the wanted ranks, or, when those bins hold more than --gather-limit
              values (ties: a script's fixed pause), counts finer bins (another pass)
              down to single values.

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
import pyarrow.ipc as ipc

from tracereplay.allocator import give_back_freed
from tracereplay.models.behavior_paths import END, Pairs, SessionPaths
from tracereplay.models.behaviors import QUANTILE_POINTS
from tracereplay.models.key_partitions import Partition, scan_key_partitions
from tracereplay.models.key_split import key_time_split
from tracereplay.models.order_stats import lerp, quantile_points
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.models.source import ParquetSource

PAUSE_SCHEMA = pa.schema([("v", pa.float64()), ("col", pa.int32())])
LEVEL_SHIFTS = (45, 27, 0)
"""Bins of a pause's float64 bits (non-negative: they order as the values do): level 0
bins by bits >> 45 (exponent and 7 mantissa bits: < 2**18 bins), each next level splits the
wanted bins of the one before by the next bits; at shift 0 a bin is one value."""


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


class SparseCounts:
    """Counts by int64 key, added a partition at a time and merged whenever the pending
    keys pass `MERGE_KEYS`: held memory follows the distinct keys, not the partitions."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_keys = 0

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self.pending.append((keys, counts))
        self.pending_keys += len(keys)
        if self.pending_keys > MERGE_KEYS:
            self.merged()

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct keys, sorted, and their counts."""
        if self.pending:
            keys = np.concatenate([self.keys, *(k for k, _ in self.pending)])
            counts = np.concatenate([self.counts, *(n for _, n in self.pending)])
            self.pending, self.pending_keys = [], 0
            self.keys, at = np.unique(keys, return_inverse=True)
            self.counts = np.bincount(at.ravel(), weights=counts, minlength=len(self.keys))
            self.counts = self.counts.astype(np.int64)
        return self.keys, self.counts


MERGE_KEYS = 1 << 17


class Totals:
    """What is kept across partitions: per session, per transition, per value bin."""

    def __init__(self, names: list[str]) -> None:
        self.labels = sorted(set(names) | {"START", END})
        self.width = len(self.labels)
        self.transitions = np.zeros(self.width * self.width, np.int64)
        self.lengths: list[np.ndarray] = []
        self.durations: list[np.ndarray] = []
        self.cells = 0
        self.endpoint_counts = np.zeros(len(names), np.int64)
        self.bins = SparseCounts()  # level-0 (group, bin) keys


def _group_keys(value: np.ndarray, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pause's level-0 bin key in its two groups: the trace's (group 0) and its
    transition's (group 1 + column): group << 18 | bits >> 45."""
    bits = value.view(np.int64) >> LEVEL_SHIFTS[0]
    per_transition = ((column.astype(np.int64) + 1) << 18) | bits
    return bits, per_transition


def sessions_of_partition(
    partition: Partition,
    first_us: int,
    names: list[str],
    totals: Totals,
    timeout_s: float,
    pause_file: Path,
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
    if (value.view(np.int64) < 0).any():
        raise SystemExit("a pause with its sign bit set: not handled by this prototype")
    trace_bins, transition_bins = _group_keys(value, column)
    for keys in (trace_bins, transition_bins):
        totals.bins.add(*np.unique(keys, return_counts=True))
    with ipc.new_file(str(pause_file), PAUSE_SCHEMA) as writer:
        writer.write_table(pa.table({"v": value, "col": column}, schema=PAUSE_SCHEMA))


# ---------------------------------------------------------------- quantiles


def _locate(
    keys: np.ndarray, counts: np.ndarray, parent: np.ndarray, rank: np.ndarray, sub_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each wanted (parent cell, rank within it): the key of the cell holding it at
    this level (keys: parent << sub_bits | sub bin, sorted, with their counts) and its rank
    within that cell."""
    cum = np.cumsum(counts)
    before = cum - counts
    parent_start = np.searchsorted(keys, parent << sub_bits)
    target = before[parent_start] + rank
    cell = np.searchsorted(cum, target, side="right")
    return keys[cell], target - before[cell]


def _pauses(files: list[Path]) -> Any:
    for f in files:
        with pa.OSFile(str(f)) as source:
            table = ipc.open_file(source).read_all()
        yield (
            np.ascontiguousarray(table.column("v").to_numpy()),
            table.column("col").to_numpy(),
        )


def exact_quantiles(
    files: list[Path], totals: Totals, gather_limit: int, phases: Phases
) -> dict[str, Any]:
    """np.quantile (QUANTILE_POINTS) of group 0 (every pause) and of each transition's
    (group 1 + its code), and the median of group 0, exactly, from the level-0 bin counts
    and passes over the spilled pauses."""
    keys, counts = totals.bins.merged()
    sizes = np.bincount(keys >> 18, weights=counts).astype(np.int64)
    wanted_groups = np.flatnonzero(sizes)
    lo, hi, gamma = quantile_points(sizes[wanted_groups], QUANTILE_POINTS)
    g = np.repeat(wanted_groups, lo.shape[1])
    n0 = int(sizes[0]) if len(sizes) else 0
    # Ranks wanted: every group's below/above points, then group 0's median ranks.
    group_of = np.concatenate([g, g, [0, 0]]).astype(np.int64)
    rank = np.concatenate([lo.ravel(), hi.ravel(), [(n0 - 1) // 2, n0 // 2]]).astype(np.int64)
    cell, rank = _locate(keys, counts, group_of, rank, 18)
    prefix = cell & ((1 << 18) - 1)  # bits >> 45 of each wanted rank's value
    passes, held, level = 0, 0, 0
    while True:
        shift = LEVEL_SHIFTS[level]
        if shift == 0:  # each cell is one value: its bits
            found = prefix.view(np.float64).copy()
            break
        cell_counts = counts[np.searchsorted(keys, np.unique(cell))]
        # The wanted cells as (group, prefix) keys, sorted (a group below 2**shift).
        wanted, at = np.unique((group_of << (63 - shift)) | prefix, return_inverse=True)
        at = at.ravel()
        if int(cell_counts.sum()) <= gather_limit:
            values, cells = _gather(files, wanted, shift)
            passes, held = passes + 1, len(values)
            by = np.lexsort((values, cells))
            values, cells = values[by], cells[by]
            start = np.searchsorted(cells, np.arange(len(wanted)))
            found = values[start[at] + rank]
            break
        # Count the next level's bins inside the wanted cells (another pass).
        next_shift = LEVEL_SHIFTS[level + 1]
        sub_bits = shift - next_shift
        keys, counts = _count_finer(files, wanted, shift, sub_bits)
        passes += 1
        cell, rank = _locate(keys, counts, at.astype(np.int64), rank, sub_bits)
        prefix = (prefix << sub_bits) | (cell & ((1 << sub_bits) - 1))
        level += 1
    below = found[: lo.size].reshape(lo.shape)
    above = found[lo.size : 2 * lo.size].reshape(lo.shape)
    q = lerp(below, above, gamma)
    median = (found[-2] + found[-1]) / 2 if n0 else 0.0
    phases.done("quantiles", passes=passes, values_gathered=held, levels=level + 1)
    out: dict[str, Any] = {"median_think_s": float(median), "pauses": n0}
    by_transition = {}
    for i, group in enumerate(wanted_groups.tolist()):
        if group == 0:
            out["think_trace"] = q[i].tolist()
            continue
        code = group - 1
        name = f"{totals.labels[code // totals.width]} -> {totals.labels[code % totals.width]}"
        by_transition[name] = [int(sizes[group]), q[i].tolist()]
    out["think"] = by_transition
    return out


def _values_in(files: list[Path], wanted: np.ndarray, shift: int) -> Any:
    """Per partition's pauses: (value, index of its wanted cell) of those in a wanted cell
    (`wanted`: sorted (group << (63 - shift)) | bits >> shift keys), each pause counted in
    its trace group (0) and its transition's group (1 + its code)."""
    trace_wanted = bool(len(wanted)) and int(wanted[0]) >> (63 - shift) == 0
    for value, column in _pauses(files):
        prefix = value.view(np.int64) >> shift
        groups = [column.astype(np.int64) + 1]
        if trace_wanted:
            groups.append(np.zeros(1, np.int64))
        for group in groups:
            key = (group << (63 - shift)) | prefix
            at = np.minimum(np.searchsorted(wanted, key), len(wanted) - 1)
            hit = wanted[at] == key
            yield value[hit], at[hit]


def _gather(files: list[Path], wanted: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    values, cells = [], []
    for v, c in _values_in(files, wanted, shift):
        values.append(v)
        cells.append(c)
    return np.concatenate(values), np.concatenate(cells)


def _count_finer(
    files: list[Path], wanted: np.ndarray, shift: int, sub_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """The next level's bins in the wanted cells: keys cell index << sub_bits | the next
    `sub_bits` bits, sorted, with their counts."""
    next_shift = shift - sub_bits
    found = SparseCounts()
    for v, c in _values_in(files, wanted, shift):
        sub = (v.view(np.int64) >> next_shift) & ((1 << sub_bits) - 1)
        found.add(*np.unique((c << sub_bits) | sub, return_counts=True))
    return found.merged()


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
        totals = Totals(names)
        pause_files = []
        largest = 0
        for p, partition in enumerate(parts.partitions()):  # (each one's files let go)
            largest = max(largest, len(partition))
            pause_files.append(spill / f"pause-{p}.arrow")
            sessions_of_partition(partition, first, names, totals, args.timeout_s, pause_files[-1])
            del partition
            pa.default_memory_pool().release_unused()
            give_back_freed()
        pause_bytes = sum(f.stat().st_size for f in pause_files)
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
        result.update(exact_quantiles(pause_files, totals, args.gather_limit, phases))
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
    c = sub.add_parser("check")
    c.add_argument("reference")
    c.add_argument("results", nargs="+")
    c.add_argument("--model")
    args = parser.parse_args()
    if args.command == "check":
        return check(args)
    result = run(args) if args.command == "run" else reference(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
