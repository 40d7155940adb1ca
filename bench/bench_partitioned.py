"""Sessions made per partition of session keys, spilled to disk, exact think-time quantiles
in passes over spilled pauses: a measured prototype of flat memory for issue 15 (bench only).

docs/SCALE.md names the plan ("the sessions made per partition of keys spilled to disk,
exact quantiles in two passes"); this script builds it outside models/ and measures what
it costs and whether its answers are the model's. Steps of `run`:

  scan        one pass over the trace's record batches (the light columns the sessions
              need: ts, duration_ms, session, client, method, path; strings as the files'
              dictionaries), file by file on one thread, one batch held at a time. Each
              row's session key (the model's: `string_codes.session_key`) is hashed
              (pandas' siphash of the batch's distinct keys, 64 bits) and the row goes to
              partition hash(key) mod P: its ts (int64 µs), key hash, endpoint code (below)
              and duration appended to that partition's Arrow IPC spill file.
  templates   `--endpoints skeletons` (default): each batch's distinct paths are cut to
              skeletons in the batch (the package's shape rules, a function of each path
              alone) and only (METHOD, skeleton) counts are kept; the package's templater
              is fitted once on them (`Templater.fit_skeletons`, which reads nothing else)
              and names each (METHOD, skeleton) (a row spills its int32 number: 28 B a
              row). `--endpoints pairs`: the distinct (METHOD, path) pairs are kept with
              their counts (by a 64-bit hash of the pair, which a row spills: 32 B a row)
              and templated once as `templating.request_endpoints` does: that table grows
              with distinct paths, i.e. with rows when paths carry ids.
  sessions    per partition: its spill read, its rows put in time order (ties in scan
              order: a stable sort, the spill being in scan order), key codes from the
              hashes, and the model's own `key_time_split` + `sessionize_requests`,
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

`reference` computes the same aggregates the way the model does today (the whole trace's
light columns in memory: `read_light_columns`, `request_endpoints`, `sessionize_requests`,
`SessionPaths`, `Pairs`, `np.quantile`); `check` compares two result files, and both with
the model file's reported numbers.

Not done (a product version's work, bench/README.md): the key hash stands for the key
(a 64-bit collision would merge two keys: ~n²/2⁶⁵, 3e-8 at 1 M keys; the check against the
reference would show it); keys that failed auth and join their connection
(`connections_to_join`) are not handled (no such key in these traces: the reference says
so); the session ids' global order (start time, ties by key) is not made, so per-session
floats are summed in partition order (mean_duration_s can differ in the last bits).

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
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from tracereplay.allocator import give_back_freed
from tracereplay.models.behavior_paths import END, Pairs, SessionPaths
from tracereplay.models.behaviors import QUANTILE_POINTS
from tracereplay.models.key_split import key_time_split
from tracereplay.models.light_columns import STRING_COLUMNS, RequestColumns
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.models.shapes import skeleton_codes
from tracereplay.models.source import SCAN_BATCH_ROWS
from tracereplay.models.spilled_quantiles import Ask, SpilledValues
from tracereplay.models.string_codes import local, session_key
from tracereplay.models.templating import Templater, pair_endpoints
from tracereplay.trace import open_trace

COLUMNS = ["ts", "duration_ms", "session", "client", "method", "path"]
MIX = np.uint64(0x9E3779B97F4A7C15)
NULL_PATH = "\x00(null path)"
PAIR_FLUSH = 1 << 18
"""Pending distinct pairs (one entry per batch and pair) merged past this many."""


def _hash_strings(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (pandas' siphash, fixed key: the same in every run)."""
    objects = values.cast(pa.string()).fill_null(NULL_PATH).to_numpy(zero_copy_only=False)
    return np.asarray(pd.util.hash_array(objects, categorize=False), dtype=np.uint64)


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


# ---------------------------------------------------------------- scan


class PairTable:
    """`--endpoints pairs`: the distinct (METHOD, path) pairs seen, with their counts, kept
    by a 64-bit hash of the pair (a row's spilled code); merged by hash when many are
    pending. Grows with distinct paths, i.e. with rows when paths carry ids."""

    code_type = pa.uint64()

    def __init__(self) -> None:
        self.hash = np.zeros(0, np.uint64)
        self.count = np.zeros(0, np.int64)
        self.method = pa.array([], pa.string())
        self.path = pa.array([], pa.string())
        self.pending: list[tuple[np.ndarray, np.ndarray, pa.Array, pa.Array]] = []
        self.pending_rows = 0
        self.endpoint_of: np.ndarray | None = None

    def add_batch(
        self, methods: pa.Array, paths: pa.Array, distinct: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        """The batch's distinct local pairs (method code × len(paths) + path code into its
        dictionaries, a null last in each) and their counts: each one's code."""
        pair_method = methods.take(pa.array(distinct // len(paths)))
        pair_path = paths.take(pa.array(distinct % len(paths)))
        upper = pc.utf8_upper(pair_method.fill_null("NONE"))
        pair_hash: np.ndarray = _hash_strings(upper) * MIX ^ _hash_strings(pair_path)
        self.pending.append((pair_hash, counts, pair_method, pair_path))
        self.pending_rows += len(pair_hash)
        if self.pending_rows > PAIR_FLUSH:
            self.merge()
        return pair_hash

    def merge(self) -> None:
        if not self.pending:
            return
        h = np.concatenate([self.hash, *(p[0] for p in self.pending)])
        n = np.concatenate([self.count, *(p[1] for p in self.pending)])
        method = pa.concat_arrays([self.method, *(p[2].cast(pa.string()) for p in self.pending)])
        path = pa.concat_arrays([self.path, *(p[3].cast(pa.string()) for p in self.pending)])
        self.pending, self.pending_rows = [], 0
        self.hash, first, inverse = np.unique(h, return_index=True, return_inverse=True)
        self.count = np.bincount(inverse.ravel(), weights=n, minlength=len(self.hash)).astype(
            np.int64
        )
        taken = pa.array(first)
        self.method, self.path = method.take(taken), path.take(taken)

    def held(self) -> dict[str, Any]:
        self.merge()
        size = self.hash.nbytes + self.count.nbytes + self.method.nbytes + self.path.nbytes
        return {"pairs": len(self.hash), "endpoint_table_mib": round(size / 2**20, 1)}

    def fit(self) -> list[str]:
        """The templater fitted on the distinct pairs with their counts, as
        `templating.request_endpoints` fits it (methods upper-cased, sorted by their raw
        value; paths sorted, null last); each pair's endpoint code into the returned names
        (sorted), kept in `endpoint_of` (by hash order); the pairs let go."""
        self.merge()
        raw_methods = pc.unique(self.method.fill_null("\uffff(none)"))
        raw_methods = raw_methods.take(pc.sort_indices(raw_methods))
        methods = [
            "NONE" if m == "\uffff(none)" else str(m).upper() for m in raw_methods.to_pylist()
        ]
        distinct_paths = pc.unique(self.path.drop_null())
        distinct_paths = distinct_paths.take(pc.sort_indices(distinct_paths))
        paths = pa.concat_arrays([distinct_paths, pa.nulls(1, pa.string())])
        n_paths = len(paths)
        pair_method = np.asarray(
            pc.index_in(self.method.fill_null("\uffff(none)"), raw_methods), dtype=np.int64
        )
        pair_path = np.asarray(pc.index_in(self.path, distinct_paths).fill_null(n_paths - 1))
        self.method = self.path = pa.array([], pa.string())
        by_code = np.argsort(pair_method * n_paths + pair_path)
        pair_method, pair_path = pair_method[by_code], pair_path[by_code]
        counts = self.count[by_code]
        # From here request_endpoints' own fit, given the pairs and counts.
        _, which, names_of_used = pair_endpoints(methods, paths, pair_method, pair_path, counts)
        names = sorted(set(names_of_used))
        code_of_used = np.array([names.index(x) for x in names_of_used], np.int16)
        self.endpoint_of = np.empty(len(by_code), dtype=np.int16)
        self.endpoint_of[by_code] = code_of_used[which]  # back to hash order
        return names

    def endpoints(self, codes: np.ndarray) -> np.ndarray:
        assert self.endpoint_of is not None
        return np.asarray(self.endpoint_of[np.searchsorted(self.hash, codes)])


class SkeletonCounts:
    """`--endpoints skeletons`: each batch's distinct paths cut to skeletons there (the
    package's shape rules, `shapes.skeleton_codes`: a function of each path alone), and
    only (METHOD, skeleton) counted across batches: what `Templater.fit_skeletons` reads
    (it sums counts per skeleton and keeps the set of (method, skeleton): the same fit).
    A row's spilled code is its (METHOD, skeleton) number: nothing kept grows with paths."""

    code_type = pa.int32()

    def __init__(self) -> None:
        self.skeleton_id: dict[tuple[str, ...], int] = {}
        self.method_id: dict[str, int] = {}
        self.fit_counts: dict[tuple[int, int], int] = {}
        self.combo_id: dict[tuple[int, int], int] = {}
        self.endpoint_of: np.ndarray | None = None

    def _global(self, skeletons: list[tuple[str, ...]]) -> np.ndarray:
        ids = self.skeleton_id
        return np.array([ids.setdefault(k, len(ids)) for k in skeletons], np.int64)

    def add_batch(
        self, methods: pa.Array, paths: pa.Array, distinct: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        n_paths = len(paths)
        used_paths, pair_path = np.unique(distinct % n_paths, return_inverse=True)
        texts = paths.take(pa.array(used_paths))
        codes, skeletons = skeleton_codes(texts.fill_null("None"))  # the fit reads "None"
        fit = self._global(skeletons)[codes]
        if texts.null_count:  # a null path is templated as "/" (request_endpoints)
            codes, skeletons = skeleton_codes(texts.fill_null("/"))
            applied = self._global(skeletons)[codes]
        else:
            applied = fit
        upper = pc.utf8_upper(methods.fill_null("NONE")).to_pylist()
        method = np.array([self.method_id.setdefault(m, len(self.method_id)) for m in upper])
        pair_method = method[distinct // n_paths]
        pair_path = pair_path.ravel()
        # Counts per (method, fit skeleton): few per batch.
        key = pair_method * (1 << 32) + fit[pair_path]
        keys, at = np.unique(key, return_inverse=True)
        sums = np.bincount(at.ravel(), weights=counts, minlength=len(keys)).astype(np.int64)
        for k, n in zip(keys.tolist(), sums.tolist(), strict=True):
            cell = (k >> 32, k & 0xFFFFFFFF)
            self.fit_counts[cell] = self.fit_counts.get(cell, 0) + n
        key = pair_method * (1 << 32) + applied[pair_path]
        keys, at = np.unique(key, return_inverse=True)
        ids = self.combo_id
        combo = np.array(
            [ids.setdefault((k >> 32, k & 0xFFFFFFFF), len(ids)) for k in keys.tolist()],
            np.int32,
        )
        return np.asarray(combo[at.ravel()])

    def held(self) -> dict[str, Any]:
        return {
            "skeletons": len(self.skeleton_id),
            "method_skeletons": len(self.combo_id),
        }

    def fit(self) -> list[str]:
        methods = list(self.method_id)
        skeletons = list(self.skeleton_id)
        templater = Templater.fit_skeletons(
            (methods[m], skeletons[k], n) for (m, k), n in self.fit_counts.items()
        )
        names_of_combo = [
            templater.skeleton_endpoint(methods[m], skeletons[k]) for m, k in self.combo_id
        ]
        names = sorted(set(names_of_combo))
        self.endpoint_of = np.array([names.index(x) for x in names_of_combo], np.int16)
        return names

    def endpoints(self, codes: np.ndarray) -> np.ndarray:
        assert self.endpoint_of is not None
        return np.asarray(self.endpoint_of[codes])


def scan(
    trace_path: Path, parts: int, spill: Path, table: PairTable | SkeletonCounts
) -> tuple[int, int]:
    """Every batch's rows to their partition's spill file (and each batch's (method,
    path) pairs to `table`); the first ts and the rows."""
    trace = open_trace(trace_path)
    # File by file, each file's scan on this thread (`read_light_columns`' way): the
    # dataset scanner read ahead of a slow consumer, ~0.3 GB of decoded batches at 10 M.
    files = trace.dictionary_files(COLUMNS, STRING_COLUMNS, batch_size=SCAN_BATCH_ROWS)
    batches = (
        (batch for file in files for batch in file.batches())
        if files is not None
        else trace.dictionary_batches(COLUMNS, STRING_COLUMNS, batch_size=SCAN_BATCH_ROWS)
    )
    schema = pa.schema(
        [("ts", pa.int64()), ("key", pa.uint64()), ("pair", table.code_type),
         ("dur", pa.float64())]
    )  # fmt: skip
    writers = [ipc.new_file(str(spill / f"part-{p}.arrow"), schema) for p in range(parts)]
    first, rows = np.iinfo(np.int64).max, 0
    for batch in batches:
        ts = np.asarray(batch.column("ts").cast(pa.int64()), dtype=np.int64)
        first = min(first, int(ts.min()))
        dur = np.asarray(batch.column("duration_ms").cast(pa.float64()).fill_null(np.nan))
        # The session key, as the model makes it, hashed per distinct value of the batch.
        key, keys = session_key(batch)
        used = np.flatnonzero(np.bincount(key, minlength=len(keys)))
        lookup = np.zeros(len(keys), np.uint64)
        lookup[used] = _hash_strings(keys.take(pa.array(used)))
        key_hash = lookup[key]
        # (method, path): the batch's distinct pairs, then each one's code from `table`.
        method, methods = local(batch.column("method"))
        path, paths = local(batch.column("path"))
        methods = pa.concat_arrays([methods.cast(pa.string()), pa.nulls(1, pa.string())])
        paths = pa.concat_arrays([paths.cast(pa.string()), pa.nulls(1, pa.string())])
        local_pair = method.astype(np.int64) * len(paths) + path
        distinct, inverse, counts = np.unique(local_pair, return_inverse=True, return_counts=True)
        row_pair = table.add_batch(methods, paths, distinct, counts)[inverse.ravel()]
        # Partition by the key hash's high bits.
        part = (key_hash >> np.uint64(32)) % np.uint64(parts)
        order = np.argsort(part, kind="stable")  # each partition's rows in scan order
        bounds = np.searchsorted(part[order], np.arange(parts + 1, dtype=np.uint64))
        for p in range(parts):
            at = order[bounds[p] : bounds[p + 1]]
            if len(at):
                columns = [ts[at], key_hash[at], row_pair[at], dur[at]]
                writers[p].write_batch(pa.record_batch(columns, schema=schema))
        rows += batch.num_rows
    for writer in writers:
        writer.close()
    return first, rows


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
    spilled: pa.Table,
    first_us: int,
    table: PairTable | SkeletonCounts,
    names: list[str],
    totals: Totals,
    timeout_s: float,
) -> None:
    ts = spilled.column("ts").to_numpy()
    order = np.argsort(ts, kind="stable")  # time order, ties in scan order
    n = len(order)
    t_s = (ts[order] - first_us) / 1_000_000
    del ts
    key_hash = spilled.column("key").to_numpy()[order]
    _, key = np.unique(key_hash, return_inverse=True)
    del key_hash
    endpoint = table.endpoints(spilled.column("pair").to_numpy()[order])
    totals.endpoint_counts += np.bincount(endpoint, minlength=len(names))
    duration = spilled.column("dur").to_numpy()[order]
    del order
    empty = np.zeros(0, np.int8)
    requests = RequestColumns(
        row=np.arange(n, dtype=np.int32), first_ts=pd.Timestamp(first_us, unit="us", tz="UTC"),
        t_s=t_s, duration_ms=duration, status=np.zeros(0, np.float32),
        key=key.astype(np.int32).ravel(), key_values=pa.array([], pa.string()),
        method=empty, methods=[], path=np.zeros(0, np.int32), paths=pa.array([], pa.string()),
    )  # fmt: skip
    del key, t_s, duration
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
    spill = Path(tempfile.mkdtemp(prefix="spill-", dir=args.tmp))
    try:
        table = PairTable() if args.endpoints == "pairs" else SkeletonCounts()
        first, rows = scan(args.trace, args.partitions, spill, table)
        spill_bytes = sum(f.stat().st_size for f in spill.iterdir())
        phases.done("scan", rows=rows, spill_mib=round(spill_bytes / 2**20, 1), **table.held())
        give_back_freed()
        names = table.fit()
        phases.done("templates", endpoints=len(names))
        totals = Totals(names, SpilledValues(spill, gather_limit=args.gather_limit))
        largest = 0
        for p in range(args.partitions):
            part = spill / f"part-{p}.arrow"
            with pa.OSFile(str(part)) as source:
                spilled = ipc.open_file(source).read_all()
            largest = max(largest, spilled.num_rows)
            sessions_of_partition(spilled, first, table, names, totals, args.timeout_s)
            del spilled
            part.unlink()  # (its bytes are counted in spill_mib)
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
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    result["rows"] = rows
    result["partitions"] = args.partitions
    result["endpoints_by"] = args.endpoints
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
            p.add_argument("--endpoints", choices=("skeletons", "pairs"), default="skeletons",
                           help="pairs: the distinct (method, path) pairs kept, templated"
                           " once; skeletons: each batch's paths cut to skeletons")  # fmt: skip
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
