"""The model's row-sized aggregates in DuckDB (and Polars' streaming engine), read straight
from the trace's Parquet: is peak memory flat in rows that way, at what CPU cost (issue 15)?

Bench only: duckdb and polars are not dependencies of the package. Install them into the
venv, pinned (bench/requirements-duckdb.txt):

    .venv/bin/pip install duckdb==2.0.0 polars==2.1.0   # = -r bench/requirements-duckdb.txt

Steps (each run in its own process by `sweep`, under /usr/bin/time -v):
  distinct     GROUP BY upper(method), path → count (what the templater is fitted on)
  sessions     sessionization (key = session, else client; a new session where the key
               changes or the gap between two starts exceeds the timeout): session count,
               sessions per length, mean and median length, mean duration
  transitions  each request's endpoint (the package's templater fitted on `distinct`'s
               result, joined back as a (method, path) → endpoint table), then per session
               its (from, to) counts (START→first, a→b, last→END), summed per transition
  quantiles    think time (start − previous end, unknown durations as 0) quantiles per
               transition (21 points, quantile_cont: numpy's linear), per-endpoint count and
               duration p50/p95/p99
  all          the templating, one window pass kept as a temp table (DuckDB spills it),
               then sessions per length, transitions and quantiles from it
Variants: --approx (approx_quantile, T-Digest), --key-hash (hash(key) sorted, not the
strings), --engine polars (distinct and sessions only; Polars has no memory limit).
Requests of one key are ordered by (ts, file, row in file): the model's order (time, ties
in scan order).

    # one step, this process (results JSON on --out)
    .venv/bin/python bench/duckdb_aggregates.py step --trace /work/data/real1M \\
        --step sessions --memory-limit 256MB --out /tmp/duck19-s.json
    # the numpy model's answers for the same aggregates (package code), and the check
    .venv/bin/python bench/duckdb_aggregates.py reference --trace /work/data/real1M \\
        --out /tmp/duck19-ref1M.json
    .venv/bin/python bench/duckdb_aggregates.py check --reference /tmp/duck19-ref1M.json \\
        --model /work/data/models/real1M.main.json /tmp/duck19-sweep/*.json
    # every step × memory limit, each its own process under /usr/bin/time -v
    .venv/bin/python bench/duckdb_aggregates.py sweep --trace /work/data/real1M \\
        --limits 128MB 256MB 512MB default --out-dir /tmp/duck19-sweep
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

STEPS = ("distinct", "sessions", "transitions", "quantiles", "all")
TIMEOUT_S = 1800.0
NO_SESSION = "(no session)"
POINTS = [i / 20 for i in range(21)]  # behaviors.QUANTILE_POINTS
LATENCY_POINTS = [0.5, 0.95, 0.99]


class TempWatch:
    """The largest size the engine's temp directory reached (spilling), polled."""

    def __init__(self, directory: Path, every_s: float = 0.02) -> None:
        self.directory, self.every_s, self.peak = directory, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        total = 0
        for root, _, files in os.walk(self.directory):
            for name in files:
                try:
                    total += (Path(root) / name).stat().st_size
                except OSError:
                    continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._size())
            self._stop.wait(self.every_s)

    def __enter__(self) -> TempWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._size())


# ---------------------------------------------------------------- DuckDB


def _base_sql(glob: str, first_us: int, key_hash: bool = False) -> str:
    """Every request's light columns as the model reads them: key, t (seconds since the
    first request, as float64 the same way: (µs − first µs) / 1e6), d (seconds, unknown 0),
    upper-case method, path, and the scan order for ties. `key_hash`: the key as its
    64-bit hash (8 bytes a row to sort, not the string; two keys colliding would merge)."""
    key = f"""CASE WHEN session IS NOT NULL AND session <> '' THEN session
                   ELSE coalesce(client, '{NO_SESSION}') END"""
    return f"""
        SELECT {f"hash({key})" if key_hash else key} AS key,
               (epoch_us(ts) - {first_us}) / 1e6 AS t,
               coalesce(duration_ms, 0) / 1000.0 AS d,
               duration_ms, upper(method) AS m, path,
               file_index AS fi, file_row_number AS rn
        FROM read_parquet('{glob}')"""


def _endpoint_table(con: Any, glob: str) -> tuple[list[str], Any, float]:
    """The package's templater fitted on the distinct (method, path) counts, and the
    (m, path, e) table of each pair's endpoint code (an Arrow table, registered)."""
    import pyarrow as pa

    from tracereplay.models.templating import Templater, endpoint_names

    pairs = con.sql(
        f"SELECT upper(method) AS m, path, count(*) AS n FROM read_parquet('{glob}') GROUP BY ALL"
    ).to_arrow_table()
    started = time.perf_counter()
    m, p, n = (pairs.column(c).to_pylist() for c in ("m", "path", "n"))
    templater = Templater.fit_counts(
        {(mm, "None" if pp is None else pp): nn for mm, pp, nn in zip(m, p, n, strict=True)}
    )
    names: dict[str, int] = {}
    every = endpoint_names(templater, m, ["/" if pp is None else pp for pp in p])
    codes = [names.setdefault(name, len(names)) for name in every]
    table = pa.table({"m": m, "path": p, "e": pa.array(codes, pa.int16())})
    con.register("endpoint_of", table)
    return list(names), table, time.perf_counter() - started


def duckdb_step(step: str, trace: Path, args: argparse.Namespace) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={args.threads}")
    if args.memory_limit != "default":
        con.execute(f"SET memory_limit='{args.memory_limit}'")
    con.execute(f"SET temp_directory='{args.temp}'")
    con.execute("SET preserve_insertion_order=false")
    glob = f"{trace}/*.parquet"
    out: dict[str, Any] = {"engine": "duckdb", "version": duckdb.__version__}
    if step == "distinct":
        row = con.execute(
            "SELECT count(*), sum(n) FROM (SELECT upper(method) AS m, path, count(*) AS n "
            f"FROM read_parquet('{glob}') GROUP BY ALL)"
        ).fetchall()[0]
        assert row is not None
        out.update(distinct_pairs=row[0], requests=int(row[1]))
        return out
    first = con.execute(f"SELECT min(epoch_us(ts)) FROM read_parquet('{glob}')").fetchall()[0]
    assert first is not None
    base = _base_sql(glob, int(first[0]), args.key_hash)
    order = "ORDER BY t, fi, rn"
    if step == "sessions":
        con.execute(f"CREATE VIEW base AS {base}")
        # one window over rows (new: key's first or a gap), a running sum of it (the
        # session within the key), then a group-by per session and per length
        per_session = f"""
            WITH w1 AS (
                SELECT key, t, d, fi, rn,
                       lag(t) OVER w AS pt, lag(t + d) OVER w AS pe
                FROM base WINDOW w AS (PARTITION BY key {order})),
            w2 AS (
                SELECT key, t, (pt IS NULL OR t - pt > {TIMEOUT_S})::INT AS new,
                       CASE WHEN pt IS NULL OR t - pt > {TIMEOUT_S} THEN NULL
                            ELSE greatest(t - pe, 0) END AS think, fi, rn
                FROM w1),
            w3 AS (
                SELECT key, t, think,
                       sum(new) OVER (PARTITION BY key {order} ROWS UNBOUNDED PRECEDING) AS s
                FROM w2)
            SELECT key, s, t FROM w3"""
        out.update(_session_lengths(con, f"({per_session})"))
        return out
    if args.endpoint_table:  # made by another process (`endpoint-table`): DuckDB's part alone
        table = args.endpoint_table
        con.execute(f"CREATE TEMP TABLE endpoint_of AS SELECT * FROM read_parquet('{table}')")
        names = json.loads(Path(f"{table}.names.json").read_text())
        templating_s = 0.0
    else:
        names, pairs, templating_s = _endpoint_table(con, glob)
        out["distinct_pairs"] = pairs.num_rows
    out["templating_s"] = templating_s
    out["rss_after_templating_kb"] = _peak_rss_kb()
    out["endpoints"] = names
    con.execute(
        f"CREATE VIEW base AS SELECT b.*, e.e FROM ({base}) b "
        "JOIN endpoint_of e ON b.m = e.m AND b.path IS NOT DISTINCT FROM e.path"
    )
    start, end = -1, -2  # START and END codes
    moves = f"""
        SELECT key, t, fi, rn, e, duration_ms,
               (pt IS NULL OR t - pt > {TIMEOUT_S}) AS new,
               (nt IS NULL OR nt - t > {TIMEOUT_S}) AS last,
               CASE WHEN pt IS NULL OR t - pt > {TIMEOUT_S} THEN {start} ELSE pe END AS prev,
               CASE WHEN pt IS NULL OR t - pt > {TIMEOUT_S} THEN NULL
                    ELSE greatest(t - pend, 0) END AS think
        FROM (SELECT key, t, fi, rn, e, duration_ms, lag(t) OVER w AS pt, lead(t) OVER w AS nt,
                     lag(e) OVER w AS pe, lag(t + d) OVER w AS pend
              FROM base WINDOW w AS (PARTITION BY key {order}))"""
    running = f"sum(new::INT) OVER (PARTITION BY key {order} ROWS UNBOUNDED PRECEDING) AS s"
    if step == "all":  # one window pass, kept (DuckDB spills a temp table), then each aggregate
        con.execute(f"CREATE TEMP TABLE s AS SELECT *, {running} FROM ({moves})")
        out.update(_session_lengths(con, "s"))
        out.update(_transitions(con, "s", end))
        out.update(_quantiles(con, "s", "s", args.approx))
        return out
    if step == "transitions":
        out.update(_transitions(con, f"(SELECT *, {running} FROM ({moves}))", end))
        return out
    assert step == "quantiles"
    out.update(_quantiles(con, f"({moves})", "base", args.approx))
    return out


def _session_lengths(con: Any, sessions: str) -> dict[str, Any]:
    """Sessions per length and the sessions' stats, from rows with (key, s, t)."""
    con.execute(
        "CREATE TEMP TABLE per_session AS SELECT key, s, count(*) AS n, "
        f"max(t) - min(t) AS dur FROM {sessions} GROUP BY key, s"
    )
    lengths = con.execute("SELECT n, count(*) FROM per_session GROUP BY n ORDER BY n").fetchall()
    stats = con.execute("SELECT count(*), avg(n), median(n), avg(dur) FROM per_session").fetchall()[
        0
    ]
    return {
        "sessions": stats[0],
        "lengths": {str(k): v for k, v in lengths},
        "mean_length": stats[1],
        "median_length": stats[2],
        "mean_duration_s": stats[3],
    }


def _transitions(con: Any, sessions: str, end: int) -> dict[str, Any]:
    """Per session its (from, to) counts, summed per transition, and how many
    (session, transition) cells are not zero."""
    rows = con.execute(
        f"""WITH pairs AS (SELECT key, s, prev AS a, e AS b FROM {sessions}
                           UNION ALL SELECT key, s, e AS a, {end} AS b FROM {sessions}
                           WHERE last)
            SELECT a, b, sum(n) AS n, count(*) AS cells
            FROM (SELECT key, s, a, b, count(*) AS n FROM pairs GROUP BY ALL)
            GROUP BY a, b ORDER BY a, b"""
    ).fetchall()
    return {
        "transitions": [[a, b, n] for a, b, n, _ in rows],
        "session_cells": sum(c for *_, c in rows),
    }


def _quantiles(con: Any, moves: str, requests: str, approx: bool) -> dict[str, Any]:
    """Think-time quantiles per transition and per-endpoint count and latency: exact
    (holistic: every value of a group held) or T-Digest (bounded per group)."""
    quantile = "approx_quantile" if approx else "quantile_cont"
    q = ", ".join(str(p) for p in POINTS)
    think = con.execute(
        f"""SELECT prev, e, count(think), {quantile}(think, [{q}])
            FROM {moves} WHERE NOT new GROUP BY prev, e ORDER BY prev, e"""
    ).fetchall()
    lq = ", ".join(str(p) for p in LATENCY_POINTS)
    per_endpoint = con.execute(
        f"""SELECT e, count(*), count(duration_ms), {quantile}(duration_ms, [{lq}])
            FROM {requests} GROUP BY e ORDER BY e"""
    ).fetchall()
    return {
        "approx": approx,
        "think": [[a, b, n, qs] for a, b, n, qs in think],
        "endpoint_stats": [[e, n, k, qs] for e, n, k, qs in per_endpoint],
    }


# ---------------------------------------------------------------- Polars


def polars_step(step: str, trace: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same steps in Polars' lazy API, collected on the streaming engine."""
    import polars as pl

    out: dict[str, Any] = {"engine": "polars", "version": pl.__version__}
    scan = pl.scan_parquet(f"{trace}/*.parquet", row_index_name="rn")
    if step == "distinct":
        got = (
            scan.group_by(pl.col("method").cast(pl.String).str.to_uppercase(), "path")
            .len()
            .select(pl.len().alias("pairs"), pl.col("len").sum().alias("requests"))
            .collect(engine="streaming")
        )
        out.update(distinct_pairs=got.item(0, 0), requests=got.item(0, 1))
        return out
    first = scan.select(pl.col("ts").min()).collect().item()
    key = (
        pl.when(pl.col("session").is_not_null() & (pl.col("session") != ""))
        .then(pl.col("session"))
        .otherwise(pl.col("client").fill_null(NO_SESSION))
    )
    base = scan.select(
        key.alias("key"),
        ((pl.col("ts") - first).dt.total_microseconds() / 1e6).alias("t"),
        (pl.col("duration_ms").fill_null(0.0) / 1000.0).alias("d"),
        "rn",
    )
    if step != "sessions":
        raise SystemExit("polars: only the distinct and sessions steps are written")
    # rn is the row in the scan (files in name order): the (file, row) tie order
    s = base.sort("key", "t", "rn")
    gap = pl.col("t") - pl.col("t").shift(1)
    same = pl.col("key") == pl.col("key").shift(1)
    new = (~same.fill_null(False)) | (gap > TIMEOUT_S)
    s = s.with_columns(new.alias("new")).with_columns(pl.col("new").cum_sum().alias("sid"))
    per_session = s.group_by("sid").agg(
        pl.len().alias("n"), (pl.col("t").max() - pl.col("t").min()).alias("dur")
    )
    lengths = per_session.group_by("n").len().sort("n").collect(engine="streaming")
    out.update(
        sessions=int(lengths["len"].sum()),
        lengths={str(k): v for k, v in zip(lengths["n"], lengths["len"], strict=True)},
    )
    return out


# ---------------------------------------------------------------- the numpy model


def reference(trace: Path) -> dict[str, Any]:
    """The same aggregates from the model's own numpy code (read_light_columns,
    request_endpoints, sessionize_requests, SessionPaths, Pairs), over every session."""
    import numpy as np

    from tracereplay.models.behavior_paths import Pairs, SessionPaths, transition_counts
    from tracereplay.models.endpoints import latency_and_status
    from tracereplay.models.frame import connections_to_join, sessionize_requests
    from tracereplay.models.light_columns import read_light_columns
    from tracereplay.models.source import ParquetSource
    from tracereplay.models.templating import request_endpoints

    source = ParquetSource.open(trace)
    requests = read_light_columns(source)
    _, endpoint, names = request_endpoints(
        requests.methods, requests.method, requests.paths, requests.path
    )
    joined = connections_to_join(source, requests) is not None
    sessions = sessionize_requests(requests, endpoint, names, TIMEOUT_S)
    sizes = np.bincount(sessions["session_id"].to_numpy())
    lengths, per_length = np.unique(sizes, return_counts=True)
    paths = SessionPaths.of(sessions)
    pairs = Pairs.of(paths)
    totals = pairs.totals()
    vocabulary = pairs.vocabulary(paths.labels)
    matrix, _ = transition_counts(paths)
    inside = ~np.isnan(paths.think_s)
    column = pairs.column[inside]
    pause = paths.think_s[inside]
    think = {}
    order = np.argsort(column, kind="stable")
    used, starts = np.unique(column[order], return_index=True)
    for c, values in zip(used.tolist(), np.split(pause[order], starts[1:]), strict=True):
        think[" -> ".join(vocabulary[c])] = [len(values), np.quantile(values, POINTS).tolist()]
    per_endpoint = {}
    for code, name in enumerate(names):
        mine = endpoint == code
        entry = latency_and_status(requests.duration_ms[mine], requests.status[mine])
        per_endpoint[name] = {"count": int(mine.sum()), "latency_ms": entry.get("latency_ms")}
    t = sessions["t_s"].to_numpy()
    ids = sessions["session_id"].to_numpy()
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    return {
        "joined_failed_credentials": joined,
        "sessions": len(sizes),
        "lengths": {str(k): int(v) for k, v in zip(lengths, per_length, strict=True)},
        "mean_length": float(np.mean(sizes)),
        "median_length": float(np.median(sizes)),
        "mean_duration_s": float(np.mean(t[first + sizes - 1] - t[first])),
        "distinct_pairs": len(
            np.unique(requests.method.astype(np.int64) * (1 << 32) + requests.path)
        ),
        "transitions": {" -> ".join(v): int(n) for v, n in zip(vocabulary, totals, strict=True)},
        "session_cells": int(matrix.nnz),
        "think": think,
        "endpoints": per_endpoint,
        "rows": len(ids),
    }


def _label(names: list[str], code: int) -> str:
    return {-1: "START", -2: "END"}.get(code) or names[code]


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def check(ref: dict[str, Any], model: dict[str, Any] | None, found: dict[str, Any]) -> list[str]:
    """What matches and what differs between one step's results and the numpy model."""
    lines: list[str] = []

    def same(what: str, a: object, b: object) -> None:
        lines.append(
            f"{'same' if a == b else 'DIFFERS'}: {what}" + ("" if a == b else f" {a} != {b}")
        )

    step = found["step"]
    if "distinct_pairs" in found:
        same("distinct (method, path)", found["distinct_pairs"], ref["distinct_pairs"])
        if "requests" in found:
            same("requests", found["requests"], ref["rows"])
    if step in ("sessions", "all"):
        same("sessions (numpy)", found["sessions"], ref["sessions"])
        same("sessions per length (numpy)", found["lengths"], ref["lengths"])
        for k in ("mean_length", "median_length", "mean_duration_s"):
            a, b = found.get(k), ref[k]
            if a is not None:
                lines.append(
                    f"{k}: {a!r} vs numpy {b!r} (rel {abs(a - b) / max(abs(b), 1e-300):.1e})"
                )
        if model is not None:
            same("sessions (model file)", found["sessions"], model["provenance"]["sessions"])
            stats = model["sessions"]["stats"]
            for k in ("mean_length", "median_length", "mean_duration_s"):
                if found.get(k) is not None:
                    same(f"{k} to 5 digits (model file)", _sig(found[k], 5), stats[k])
            same(
                "max length (model file)",
                float(max(map(int, found["lengths"]))),
                model["sessions"]["length"]["max"],
            )
    names = found.get("endpoints", [])
    if step in ("transitions", "all"):
        got = {f"{_label(names, a)} -> {_label(names, b)}": n for a, b, n in found["transitions"]}
        same("transition totals (numpy)", got, ref["transitions"])
        same(
            "per-session (session, transition) cells (numpy nnz)",
            found["session_cells"],
            ref["session_cells"],
        )
    if step in ("quantiles", "all"):
        worst, keys = 0.0, set()
        for a, b, n, qs in found["think"]:
            name = f"{_label(names, a)} -> {_label(names, b)}"
            keys.add(name)
            rn, rq = ref["think"][name]
            if n != rn:
                same(f"think samples {name}", n, rn)
            for x, y in zip(qs, rq, strict=True):
                worst = max(worst, abs(x - y) / max(abs(y), 1e-300) if y else abs(x))
        same("think transitions", sorted(keys), sorted(ref["think"]))
        lines.append(f"think quantiles: max relative difference to numpy {worst:.2e}")
        counts = {names[e]: n for e, n, _, _ in found["endpoint_stats"]}
        same(
            "endpoint counts (numpy)", counts, {k: v["count"] for k, v in ref["endpoints"].items()}
        )
        if model is not None:
            same(
                "endpoint counts (model file)",
                counts,
                {k: v["count"] for k, v in model["endpoints"].items()},
            )
            lat = {
                names[e]: ({"p50": _sig(q[0]), "p95": _sig(q[1]), "p99": _sig(q[2])} if k else None)
                for e, n, k, q in found["endpoint_stats"]
            }
            same(
                "endpoint latency_ms to 4 digits (model file)",
                lat,
                {k: v.get("latency_ms") for k, v in model["endpoints"].items()},
            )
    return lines


# ---------------------------------------------------------------- runs


_TIME_FIELDS = {
    "wall": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)",
    "user": r"User time \(seconds\): (\S+)",
    "sys": r"System time \(seconds\): (\S+)",
    "rss_kb": r"Maximum resident set size \(kbytes\): (\d+)",
}


def _time_v(text: str) -> dict[str, float]:
    out = {}
    for name, pattern in _TIME_FIELDS.items():
        m = re.search(pattern, text)
        if m is None:
            continue
        value = m.group(1)
        if name == "wall":
            parts = [float(p) for p in value.split(":")]
            out[name] = sum(p * 60**i for i, p in enumerate(reversed(parts)))
        else:
            out[name] = float(value)
    return out


def _peak_rss_kb() -> int:
    """This process's peak RSS so far (VmHWM), KiB."""
    text = Path("/proc/self/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(m.group(1)) if m else 0


def sweep(args: argparse.Namespace) -> None:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print("engine step limit | wall s  query s  user+sys s  maxRSS MB (before)  spilled MB | load")
    for step in args.steps:
        for limit in args.limits:
            approx = ("-approx" if args.approx else "") + ("-hash" if args.key_hash else "")
            approx += "-table" if args.endpoint_table else ""
            tag = f"{args.engine}-{Path(args.trace).name}-{step}-{limit}{approx}"
            result = out_dir / f"{tag}.json"
            temp = Path(f"/tmp/duck19-temp-{tag}")
            cmd = [
                "/usr/bin/time",
                "-v",
                sys.executable,
                __file__,
                "step",
                "--engine",
                args.engine,
                "--trace",
                args.trace,
                "--step",
                step,
                "--memory-limit",
                limit,
                "--threads",
                str(args.threads),
                "--temp",
                str(temp),
                "--out",
                str(result),
                *(["--approx"] if args.approx else []),
                *(["--key-hash"] if args.key_hash else []),
                *(["--endpoint-table", args.endpoint_table] if args.endpoint_table else []),
            ]
            load = os.getloadavg()[0]
            done = subprocess.run(
                cmd, check=False, capture_output=True, text=True, timeout=args.timeout_s
            )
            times = _time_v(done.stderr)
            if done.returncode != 0:
                error = done.stderr.strip().splitlines()
                err = next((e for e in error if "Error" in e), error[-1] if error else "?")
                payload = {"step": step, "limit": limit, "error": err[:300], **times}
                result.write_text(json.dumps(payload))
                print(
                    f"{args.engine} {step} {limit} | FAILED ({err[:120]}) "
                    f"user+sys {times.get('user', 0) + times.get('sys', 0):.2f} "
                    f"maxRSS {times.get('rss_kb', 0) / 1024:.0f} MB | {load:.1f}"
                )
                continue
            found = json.loads(result.read_text())
            found.update(times, load=load)
            result.write_text(json.dumps(found))
            print(
                f"{args.engine} {step} {limit} | {times['wall']:.2f} {found['query_s']:.2f} "
                f"{times['user'] + times['sys']:.2f} {times['rss_kb'] / 1024:.0f} "
                f"({found['rss_before_kb'] / 1024:.0f}) "
                f"{found['spilled_bytes'] / 2**20:.0f} | {load:.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("step")
    one.add_argument("--engine", choices=("duckdb", "polars"), default="duckdb")
    one.add_argument("--trace", required=True)
    one.add_argument("--step", choices=STEPS, required=True)
    one.add_argument("--memory-limit", default="default")
    one.add_argument("--threads", type=int, default=2)
    one.add_argument("--temp", default="/tmp/duck19-temp")
    one.add_argument("--out", required=True)
    one.add_argument("--approx", action="store_true", help="quantiles: approx_quantile")
    one.add_argument("--key-hash", action="store_true", help="sort keys as 64-bit hashes")
    one.add_argument("--endpoint-table", help="a Parquet file from `endpoint-table`")
    table = sub.add_parser("endpoint-table", help="the (m, path, e) table, for --endpoint-table")
    table.add_argument("--trace", required=True)
    table.add_argument("--out", required=True)
    ref = sub.add_parser("reference")
    ref.add_argument("--trace", required=True)
    ref.add_argument("--out", required=True)
    chk = sub.add_parser("check")
    chk.add_argument("--reference", required=True)
    chk.add_argument("--model")
    chk.add_argument("results", nargs="+")
    many = sub.add_parser("sweep")
    many.add_argument("--engine", choices=("duckdb", "polars"), default="duckdb")
    many.add_argument("--trace", required=True)
    many.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS[:4]))
    many.add_argument("--limits", nargs="+", default=["128MB", "256MB", "512MB", "default"])
    many.add_argument("--threads", type=int, default=2)
    many.add_argument("--timeout-s", type=float, default=900.0)
    many.add_argument("--out-dir", required=True)
    many.add_argument("--approx", action="store_true", help="quantiles: approx_quantile")
    many.add_argument("--key-hash", action="store_true", help="sort keys as 64-bit hashes")
    many.add_argument("--endpoint-table", help="a Parquet file from `endpoint-table`")
    args = parser.parse_args()
    if args.command == "step":
        temp = Path(args.temp)
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        if args.engine == "polars":
            os.environ["POLARS_MAX_THREADS"] = str(args.threads)
            os.environ["POLARS_TEMP_DIR"] = str(temp)
        importlib.import_module(args.engine)  # (its import apart from the step's peak)
        before_kb = _peak_rss_kb()
        started = time.perf_counter()
        try:
            with TempWatch(temp) as watch:
                run = duckdb_step if args.engine == "duckdb" else polars_step
                found = run(args.step, Path(args.trace), args)
        finally:  # (spill files of a run that ran out of memory too)
            shutil.rmtree(temp, ignore_errors=True)
        found.update(
            step=args.step,
            limit=args.memory_limit,
            trace=args.trace,
            query_s=time.perf_counter() - started,
            spilled_bytes=watch.peak,
            rss_before_kb=before_kb,
        )
        Path(args.out).write_text(json.dumps(found))
    elif args.command == "endpoint-table":
        import duckdb
        import pyarrow.parquet as pq

        names, pairs, _ = _endpoint_table(duckdb.connect(), f"{args.trace}/*.parquet")
        pq.write_table(pairs, args.out)
        Path(f"{args.out}.names.json").write_text(json.dumps(names))
    elif args.command == "reference":
        started = time.perf_counter()
        found = reference(Path(args.trace))
        found["seconds"] = time.perf_counter() - started
        Path(args.out).write_text(json.dumps(found))
    elif args.command == "check":
        ref_found = json.loads(Path(args.reference).read_text())
        model = json.loads(Path(args.model).read_text()) if args.model else None
        for name in args.results:
            found = json.loads(Path(name).read_text())
            if "error" in found:
                print(f"{name}: failed ({found['error']})")
                continue
            print(f"{name}:")
            for line in check(ref_found, model, found):
                print("   ", line)
    else:
        sweep(args)


if __name__ == "__main__":
    main()
