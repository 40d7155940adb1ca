"""Capture cost against a bare `mitmdump` reverse proxy: same target, same cores, same run.

Starts a small target (uvicorn, raw ASGI) that answers every request with a new 4-5 KB
JSON page of 20 clients (faker names, unique emails, phones, UUIDs, timestamps: nothing
repeats, so pseudonyms are made, not looked up), then in A/B pairs puts a bare `mitmdump
--mode reverse:` and `tracereplay capture` in front of it and drives each with wrk
(bearer + cookie, 127.0.0.1 only): saturated (`-c16`), and at a fixed rate (half the
first bare run's, `-c4` with a Lua delay) for latency, once the workers have drained the
saturated run's backlog (a capture that keeps up). Nothing is pinned: proxy,
anonymizer workers, target and wrk share the machine's cores, as on a staging host.
The side-by-side phase also reports what the capture kept of its paced traffic (rows
written ÷ flows, dropped_backlog). `--sweep 100,150,...` runs the capture alone at each
offered rate and reports the same, so where drops begin can be read off. Also times the
anonymizer in-process on distinct and on repeated exchanges, and the workers' ceiling:
rows/s through the capture's own `Recorder` with one worker process, and rows per
second of that worker's CPU.

    .venv/bin/python bench/bench_capture.py [--pairs 2] [--duration 15] [--json out.json]
    .venv/bin/python bench/bench_capture.py --pairs 0 --side-by-side 2 --paced-rps 140 \
        --sweep 100,150,200,250,300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.* and bench.*

from bench.bench_target import parse_wrk
from tests.capture.proxies import TEST_KEY, capture_argv, mitmdump_argv
from tracereplay.processes import LOOPBACK, free_port, running
from tracereplay.trace import read_trace

PATH = "/api/v1/clients/"
HEADERS = [
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJlLWJlbmNo",
    "Cookie: session=sess-7f3a9c2e4b1d8f60a5e3c7b9d2f4a6e8; theme=dark",
]
SUMMARY = re.compile(
    r"(\d+) flows, (\d+) rows written .*?, (\d+) dropped, (\d+) dropped_backlog", re.S
)


# -- the target: a new page of clients per request -------------------------------------
class Pages:
    """Distinct 4-5 KB JSON pages: pools drawn once from faker, combined per request."""

    def __init__(self, seed: int = 7) -> None:
        from faker import Faker

        fake = Faker("en_US")
        fake.seed_instance(seed)
        self.first = [fake.first_name() for _ in range(400)]
        self.last = [fake.last_name() for _ in range(400)]
        self.companies = [fake.company() for _ in range(300)]
        self.domains = [fake.free_email_domain() for _ in range(20)] + ["acme.example"]
        self.rng = random.Random(seed)
        self.t0 = datetime(2026, 1, 5, tzinfo=UTC)
        self.page = 0

    def next(self) -> bytes:
        rng, self.page = self.rng, self.page + 1
        items = []
        for _ in range(20):
            first, last = rng.choice(self.first), rng.choice(self.last)
            created = self.t0 + timedelta(seconds=rng.randrange(10**7))
            items.append({
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "name": f"{first} {last}",
                "email": f"{first}.{last}{rng.randrange(10**6)}@{rng.choice(self.domains)}".lower(),
                "phone": f"+1-{rng.randrange(201, 989)}-555-{rng.randrange(10**4):04d}",
                "company": rng.choice(self.companies),
                "status": rng.choice(("active", "inactive", "pending")),
                "created_at": created.isoformat(),
                "owner_id": rng.randrange(10**6),
            })  # fmt: skip
        page = {"status": "success", "data": {"items": items, "page": self.page, "total": 20}}
        return json.dumps(page).encode()


def serve(port: int) -> None:
    """The target process: every GET gets `Pages.next()`."""
    import uvicorn

    pages = Pages()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = pages.next()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools")  # fmt: skip


# -- measuring ----------------------------------------------------------------------------
def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    kib = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(kib.group(1)) / 1024 if kib else float("nan")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def wrk(url: str, duration_s: float, connections: int, delay_ms: float | None = None) -> dict:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration_s:g}s", "--latency", "--timeout", "5s"]
    for header in HEADERS:
        argv += ["-H", header]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f"function delay() return {delay_ms or 0:.1f} end\n")
    if delay_ms:
        argv += ["-s", script.name]
    try:
        done = subprocess.run([*argv, url], capture_output=True, text=True, check=True,
                              timeout=duration_s + 30)  # fmt: skip
    finally:
        Path(script.name).unlink()
    return parse_wrk(done.stdout)


def wait_idle(pids: list[int], quiet_s: float = 1.0, limit_s: float = 300.0) -> float:
    """Seconds until `pids` use no more CPU for `quiet_s` (their backlog is done)."""
    start = last_busy = time.monotonic()
    before = sum(cpu_s(p) for p in pids)
    while pids and time.monotonic() - last_busy < quiet_s and time.monotonic() - start < limit_s:
        time.sleep(0.2)
        now = sum(cpu_s(p) for p in pids)
        if now - before > 0.02:
            last_busy = time.monotonic()
        before = now
    return last_busy - start


@contextmanager
def proxy(kind: str, target: str, out: Path, log: Path) -> Iterator[tuple[str, Any]]:
    port = free_port()
    argv = (capture_argv if kind == "capture" else mitmdump_argv)(target, out, port)
    if kind == "bare":
        argv = [a for a in argv if a not in ("-s", argv[argv.index("-s") + 1])]
        argv = argv[: argv.index("--set")]
    env = {"TRACEREPLAY_KEY": TEST_KEY, "COLUMNS": "300"}
    with running(argv, ready_port=(LOOPBACK, port), env=env, log=log) as process:
        yield f"http://{LOOPBACK}:{port}{PATH}", process


def one_run(kind: str, target: str, args: argparse.Namespace, pace: dict[str, float]) -> dict:
    """Saturated then paced wrk runs through a fresh proxy; the first run fixes the pace."""
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        out, log = Path(tmp) / "trace", Path(tmp) / "proxy.log"
        with proxy(kind, target, out, log) as (url, process):
            wrk(url, args.warmup, args.connections)  # also starts the anonymizer workers
            pids = [process.pid, *children(process.pid)]
            cpu0 = {pid: cpu_s(pid) for pid in pids}
            saturated = wrk(url, args.duration, args.connections)
            rss = rss_mib(process.pid)
            if "delay_ms" not in pace:  # 4 connections, each waiting this long between
                pace["delay_ms"] = 4 * 1000 / (args.paced_share * saturated["requests_per_s"])
            drain_s = wait_idle(pids[1:])  # the workers finish the saturated run's backlog
            paced = wrk(url, args.duration, 4, pace["delay_ms"])  # steady state: no backlog
            wait_idle(pids[1:])
            cpu = {pid: cpu_s(pid) - cpu0[pid] for pid in pids}
            stopping = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=600)
            figures = {
                "saturated": saturated, "paced": paced, "rss_mib": round(rss, 1),
                "proxy_cpu_s": round(cpu[process.pid], 2),
                "proxy_cpu_ms_per_request": round(
                    1000 * cpu[process.pid] / (saturated["requests"] + paced["requests"]), 3
                ),
                "workers_cpu_s": round(sum(v for p, v in cpu.items() if p != process.pid), 2),
                "sigterm_to_exit_s": round(time.monotonic() - stopping, 2), "exit_code": code,
                "drain_after_load_s": round(drain_s, 1),
            }  # fmt: skip
        if kind == "capture":
            figures |= capture_summary(log) | {"trace_rows": read_trace(out).num_rows}
    return figures


def side_by_side(target: str, args: argparse.Namespace, pace: dict[str, float]) -> dict[str, Any]:
    """Added latency with the machine's noise shared: both proxies up at once in front of
    the same target, one paced wrk on each at the same time, `--side-by-side` rounds.

    Run one after the other, two paced runs of the *same* bare proxy differ by tens of ms
    at p99 on a busy machine; run together, a burst of load from elsewhere hits both.
    Also what the capture kept of this paced traffic: per round, the rows its trace gained
    (read while it runs, once its workers are idle and a flush has passed) against the
    requests wrk completed; for the whole phase, its own summary (flows, rows written,
    dropped_backlog) after SIGTERM."""
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        base, out = Path(tmp), Path(tmp) / "trace"
        log = base / "capture.log"
        with proxy("bare", target, base / "b", base / "bare.log") as (bare_url, _), proxy(
            "capture", target, out, log
        ) as (capture_url, process):  # fmt: skip
            for url in (bare_url, capture_url):
                wrk(url, args.warmup, 4, pace["delay_ms"])  # also starts the workers
            workers = children(process.pid)
            rows_before = settled_rows(out, workers)
            for n in range(args.side_by_side):
                with ThreadPoolExecutor(2) as pool:
                    bare, capture = pool.map(
                        lambda url: wrk(url, args.duration, 4, pace["delay_ms"]),
                        (bare_url, capture_url),
                    )
                rows_now = settled_rows(out, workers)
                one = {"round": n, "bare": bare["latency_ms"], "capture": capture["latency_ms"],
                       "bare_rps": bare["requests_per_s"],
                       "capture_rps": capture["requests_per_s"],
                       "capture_requests": capture["requests"],
                       "rows_recorded": rows_now - rows_before}  # fmt: skip
                rows_before = rows_now
                rounds.append(one)
                print(f"side by side {n}: p50 {bare['latency_ms']['p50']:.2f} / "
                      f"{capture['latency_ms']['p50']:.2f} ms, p99 "
                      f"{bare['latency_ms']['p99']:.2f} / {capture['latency_ms']['p99']:.2f}"
                      f" ms (bare / capture); capture recorded {one['rows_recorded']} rows of "
                      f"{capture['requests']} requests", flush=True)  # fmt: skip
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=600)
        summary = capture_summary(log)
    print(f"side by side, whole paced capture: {summary['flows']} flows, {summary['rows']} "
          f"rows written, {summary['dropped_backlog']} dropped_backlog", flush=True)  # fmt: skip
    return {"rounds": rounds, "capture": summary}


def settled_rows(out: Path, workers: list[int]) -> int:
    """Rows in the running capture's trace once its workers are idle and it has flushed."""
    wait_idle(workers)
    time.sleep(1.5)  # the writer flushes every second
    return int(read_trace(out, ["ts"]).num_rows)


def capture_summary(log: Path) -> dict[str, int]:
    """flows, rows, dropped, dropped_backlog from a stopped capture's last line."""
    found = SUMMARY.search(log.read_text(encoding="utf-8", errors="replace"))
    assert found, log.read_text()
    keys = ("flows", "rows", "dropped", "dropped_backlog")
    return dict(zip(keys, (int(g) for g in found.groups()), strict=True))


def sweep(target: str, args: argparse.Namespace, rates: list[float]) -> list[dict[str, Any]]:
    """The capture alone at each offered rate (paced wrk, `--connections` connections,
    `--duration`): what it kept. Each rate gets a fresh capture, started and idle before
    the load. wrk waits the delay after each answer, so the achieved rate is lower."""
    steps = []
    for rate in rates:
        with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
            log = Path(tmp) / "capture.log"
            with proxy("capture", target, Path(tmp) / "trace", log) as (url, process):
                workers = children(process.pid)
                wait_idle(workers, quiet_s=2.0)  # the workers have loaded the anonymizer
                cpu0 = {pid: cpu_s(pid) for pid in [process.pid, *workers]}
                load = wrk(url, args.duration, args.connections, args.connections * 1000 / rate)
                drain_s = wait_idle(workers)
                cpu = {pid: cpu_s(pid) - cpu0[pid] for pid in cpu0}
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=600)
            summary = capture_summary(log)
        step = {"offered_rps": rate, "achieved_rps": load["requests_per_s"],
                "p99_ms": load["latency_ms"]["p99"], **summary,
                "share_recorded": round(summary["rows"] / max(1, summary["flows"]), 4),
                "workers_cpu_s": round(sum(v for p, v in cpu.items() if p != process.pid), 2),
                "proxy_cpu_s": round(cpu[process.pid], 2),
                "drain_after_load_s": round(drain_s, 1)}  # fmt: skip
        steps.append(step)
        print(f"sweep {rate:6.1f} req/s offered: {step['achieved_rps']:.1f} achieved, "
              f"{summary['flows']} flows, {summary['rows']} rows "
              f"({100 * step['share_recorded']:.1f} %), dropped_backlog "
              f"{summary['dropped_backlog']}, workers {step['workers_cpu_s']} CPU s, "
              f"proxy {step['proxy_cpu_s']} CPU s", flush=True)  # fmt: skip
    return steps


def worker_ceiling(n: int = 600, workers: int = 1) -> dict[str, float]:
    """Rows/s through the capture's own `Recorder` with `workers` worker processes and
    no proxy: `n` distinct pages submitted at once (no backlog bound), timed until the
    last row reaches the writer; and rows per CPU-second of the workers (what one core
    sustains, however busy the machine is). Workers start (and load the anonymizer)
    before the clock starts."""
    from tracereplay.capture.anonymize.policy import load_policy
    from tracereplay.capture.recorder import Recorder
    from tracereplay.capture.workers import AnonymizerSpec
    from tracereplay.trace import MemorySink, TraceWriter, trace_schema

    pages = Pages(seed=13)
    exchanges = [bench_exchange(pages.next()) for _ in range(n + 1)]
    spec = AnonymizerSpec(load_policy(None), TEST_KEY.encode())
    schema = trace_schema()
    writer = TraceWriter(MemorySink(schema), schema)
    before = set(children(os.getpid()))
    recorder = Recorder(spec, writer, order=spec.session_order().apply, workers=workers,
                        max_backlog_bytes=1 << 40)  # fmt: skip
    try:
        recorder.submit(exchanges[0])
        while recorder.stats().rows < 1:
            time.sleep(0.01)
        pids = [p for p in children(os.getpid()) if p not in before]
        cpu0 = sum(cpu_s(p) for p in pids)
        start = time.perf_counter()
        for ex in exchanges[1:]:
            recorder.submit(ex)
        while recorder.stats().rows < n + 1:
            time.sleep(0.005)
        wall = time.perf_counter() - start
        cpu = sum(cpu_s(p) for p in pids) - cpu0
    finally:
        stats = recorder.close()
    assert stats.rows == n + 1 and stats.dropped == 0, stats
    return {"workers": workers, "rows": n, "rows_per_s": round(n / wall, 1),
            "rows_per_worker_cpu_s": round(n / cpu, 1) if cpu else float("nan"),
            "worker_cpu_ms_per_row": round(1000 * cpu / n, 2)}  # fmt: skip


def bench_exchange(body: bytes) -> Any:
    """A GET of the bench's path with its headers, answered by `body`."""
    from tracereplay.capture.exchange import Exchange

    head = [(h.split(": ", 1)[0], h.split(": ", 1)[1]) for h in HEADERS]
    return Exchange(ts=datetime.now(UTC), method="GET", path=PATH, req_headers=head,
                    status=200, resp_headers=[("content-type", "application/json")],
                    resp_body=body, client_addr="127.0.0.1")  # fmt: skip


def anonymizer_cost(rounds: int = 3, n: int = 300) -> dict[str, float]:
    """µs per exchange through the capture's anonymizer: distinct pages vs one page."""
    from tracereplay.capture.anonymize.policy import load_policy
    from tracereplay.capture.workers import AnonymizerSpec

    pages = Pages(seed=11)
    spec = AnonymizerSpec(load_policy(None), TEST_KEY.encode())
    best: dict[str, float] = {}
    for name in ("distinct", "repeated"):
        for _ in range(rounds):
            anonymize = spec.build()  # fresh caches each round
            anonymize(-1, bench_exchange(pages.next()))  # faker and the policy loaded, not timed
            same = pages.next()
            bodies = [pages.next() if name == "distinct" else same for _ in range(n)]
            exchanges = [bench_exchange(b) for b in bodies]
            start = time.perf_counter()
            for seq, ex in enumerate(exchanges):
                anonymize(seq, ex)
            per = (time.perf_counter() - start) / n * 1e6
            best[name] = min(best.get(name, per), per)
    return {f"{k}_us": round(v) for k, v in best.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="bare/capture A/B pairs")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--paced-share", type=float, default=0.5,
                        help="fixed rate as a share of the first bare run's req/s")  # fmt: skip
    parser.add_argument(
        "--side-by-side",
        type=int,
        default=3,
        metavar="ROUNDS",
        help="paced rounds with both proxies loaded at once (added latency)",
    )
    parser.add_argument(
        "--paced-rps",
        type=float,
        help="fix the paced rate (req/s) instead of taking it from a bare run",
    )
    parser.add_argument(
        "--sweep",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[],
        metavar="RATES",
        help="comma-separated offered req/s: the capture alone at each, what it kept",
    )
    parser.add_argument(
        "--ceiling-rows",
        type=int,
        default=600,
        help="exchanges for the workers' rows/s ceiling (0: skip)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the target process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if shutil.which("wrk") is None:
        sys.stderr.write("bench_capture: wrk is not installed (apt-get install -y wrk)\n")
        return 2
    load = os.getloadavg()
    results: dict[str, Any] = {
        "cpu_count": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(), "mitmproxy": version("mitmproxy"),
        "connections": args.connections, "duration_s": args.duration, "runs": [],
    }  # fmt: skip
    port = free_port()
    target_argv = [sys.executable, __file__, "--serve", str(port)]
    with tempfile.TemporaryDirectory() as tmp, running(
        target_argv, ready_port=(LOOPBACK, port), log=Path(tmp) / "target.log"
    ):  # fmt: skip
        target = f"http://{LOOPBACK}:{port}"
        pace: dict[str, float] = {"delay_ms": 4 * 1000 / args.paced_rps} if args.paced_rps else {}
        for pair in range(args.pairs):
            order = ("bare", "capture") if pair % 2 == 0 else ("capture", "bare")
            for kind in order:
                figures = one_run(kind, target, args, pace)
                results["runs"].append({"pair": pair, "kind": kind, **figures})
                print(row(kind, pair, figures), flush=True)
        if args.side_by_side and pace:
            results["side_by_side"] = side_by_side(target, args, pace)
        if args.sweep:
            results["sweep"] = sweep(target, args, args.sweep)
    if pace:
        results["paced_rps"] = round(4 * 1000 / pace["delay_ms"], 1)
    results["anonymizer"] = anonymizer_cost()
    if args.ceiling_rows:
        results["worker_ceiling"] = worker_ceiling(args.ceiling_rows)
        print(f"worker ceiling: {results['worker_ceiling']}", flush=True)
    summarize(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def row(kind: str, pair: int, f: dict[str, Any]) -> str:
    s, p = f["saturated"], f["paced"]
    lat = s["latency_ms"]
    text = (f"pair {pair} {kind:8} {s['requests_per_s']:8.1f} req/s  p50 {lat['p50']:7.2f}"
            f"  p99 {lat['p99']:7.2f} ms")  # fmt: skip
    text += f" | paced p50 {p['latency_ms']['p50']:6.2f} p99 {p['latency_ms']['p99']:6.2f} ms"
    text += f" | proxy CPU {f['proxy_cpu_ms_per_request']} ms/req, workers {f['workers_cpu_s']} s"
    if "rows" in f:
        text += (f" | flows {f['flows']} rows {f['rows']} dropped_backlog {f['dropped_backlog']}"
                 f" dropped {f['dropped']}, drained {f['drain_after_load_s']} s after the load,"
                 f" SIGTERM->exit {f['sigterm_to_exit_s']} s")  # fmt: skip
    return text


def summarize(results: dict[str, Any]) -> None:
    runs = results["runs"]
    summary: dict[str, Any] = {}
    ratios, added_p99, cpu_ratios = [], [], []
    for pair in sorted({r["pair"] for r in runs}):
        bare = next(r for r in runs if r["pair"] == pair and r["kind"] == "bare")
        cap = next(r for r in runs if r["pair"] == pair and r["kind"] == "capture")
        ratios.append(cap["saturated"]["requests_per_s"] / bare["saturated"]["requests_per_s"])
        added_p99.append(cap["paced"]["latency_ms"]["p99"] - bare["paced"]["latency_ms"]["p99"])
        cpu_ratios.append(bare["proxy_cpu_ms_per_request"] / cap["proxy_cpu_ms_per_request"])
    captures = [r for r in runs if r["kind"] == "capture"]
    if captures:
        recorded = sum(r["rows"] for r in captures) / max(1, sum(r["flows"] for r in captures))
        worker_ms = (
            1000
            * sum(r["workers_cpu_s"] for r in captures)
            / max(1, sum(r["rows"] for r in captures))
        )
        summary |= {
            "capture_over_bare_rps": [round(x, 3) for x in ratios],
            "median_ratio": round(statistics.median(ratios), 3),
            "added_p99_ms_paced": [round(x, 2) for x in added_p99],
            "bare_over_capture_proxy_cpu_per_request": [round(x, 3) for x in cpu_ratios],
            "share_of_flows_recorded_saturated_and_paced": round(recorded, 3),
            "worker_cpu_ms_per_row": round(worker_ms, 2),
        }
    if "side_by_side" in results:
        rounds, whole = results["side_by_side"]["rounds"], results["side_by_side"]["capture"]
        added = {q: [r["capture"][q] - r["bare"][q] for r in rounds] for q in ("p50", "p99")}
        summary |= {
            f"side_by_side_added_{q}_ms": [round(x, 2) for x in v] for q, v in added.items()
        } | {
            "side_by_side_median_added_p99_ms": round(statistics.median(added["p99"]), 2),
            "paced_rows_over_requests_per_round": [
                round(r["rows_recorded"] / max(1, r["capture_requests"]), 4) for r in rounds
            ],
            "paced_rows_over_flows": round(whole["rows"] / max(1, whole["flows"]), 4),
            "paced_dropped_backlog": whole["dropped_backlog"],
        }
    if "sweep" in results:
        dropping = [s["offered_rps"] for s in results["sweep"] if s["dropped_backlog"]]
        summary["sweep_drops_begin_at_offered_rps"] = min(dropping) if dropping else None
    results["summary"] = summary
    shown = {k: results[k] for k in ("summary", "anonymizer", "worker_ceiling", "paced_rps")
             if k in results}  # fmt: skip
    print(json.dumps(shown, indent=1))


if __name__ == "__main__":
    sys.exit(main())
