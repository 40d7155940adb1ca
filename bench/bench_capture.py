"""Capture-proxy cost: wrk direct vs through `tracereplay capture`, and its memory over time.

Starts the sandbox target (service time 0, no login limit) and the capture proxy pinned to
one core, wrk pinned to another, all on 127.0.0.1; drives the authenticated
`GET /api/v1/clients/` (faker emails and phones: real anonymizing work) directly, then
through a capture (rows checked against wrk's count), then through a fresh capture for a
longer soak while sampling the proxy's RSS from /proc.

    .venv/bin/python bench/bench_capture.py [--duration 15] [--soak 60] [--json out.json]
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
from concurrent.futures import ThreadPoolExecutor, wait
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.* and bench.*

from bench.bench_target import run_wrk
from tests.capture.proxies import TEST_KEY, capture_argv
from tests.servers import running_server, target_argv
from tracereplay.demo.accounts import sandbox_accounts
from tracereplay.processes import LOOPBACK, free_port, running
from tracereplay.trace import read_trace

ENDPOINT = "/api/v1/clients/"
SAMPLE_EVERY_S = 2.0
SOAK_WARMUP_S = 5.0
STOP_WAIT_S = 600.0  # the recorder drains its whole backlog before the process exits
_STATUS = re.compile(
    r"([\d.]+)s\s+flows (\d+)\s+rows written (\d+)\s+transport errors (\d+)"
    r"\s+dropped (\d+)\s+backlog (\d+)"
)


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` (VmRSS), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    kib = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(kib.group(1)) / 1024 if kib else float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(
    url: str, args: argparse.Namespace, pin: list[str], duration_s: float, headers: list[str],
    pids: dict[str, int], rss_pid: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One wrk run; adds each pid's CPU use (% of one core) and, if asked, RSS samples."""
    cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
    samples: list[tuple[float, float]] = []
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(run_wrk, url, args, pin, duration_s, headers)
        started = time.monotonic()
        while not job.done():
            if rss_pid is not None:
                samples.append((round(time.monotonic() - started, 2), rss_mib(rss_pid)))
            wait([job], timeout=SAMPLE_EVERY_S)
        figures = job.result()
    figures["cpu_pct"] = {
        name: round(100 * (cpu_s(pid) - cpu_before[name]) / duration_s, 1)
        for name, pid in pids.items()
    }
    if samples:
        figures["rss_samples_mib"] = samples
    return figures


def rss_summary(samples: list[tuple[float, float]], rps: float) -> dict[str, Any]:
    """RSS after warm-up, mid-run and at the end, and its slope per 100k requests."""
    kept = [(t, rss) for t, rss in samples if t >= SOAK_WARMUP_S]
    t = np.array([s[0] for s in kept])
    rss = np.array([s[1] for s in kept])
    slope, _ = np.polyfit(t * rps, rss, 1)
    return {
        "start_mib": round(rss[0], 1),
        "mid_mib": round(rss[len(rss) // 2], 1),
        "end_mib": round(rss[-1], 1),
        "slope_mib_per_100k_requests": round(float(slope) * 100_000, 2),
        "samples_fitted": len(kept),
    }


def through_capture(
    target_url: str, args: argparse.Namespace, pins: tuple[list[str], list[str]],
    headers: list[str], target_pid: int, duration_s: float, warmup_s: float,
) -> dict[str, Any]:  # fmt: skip
    """wrk through a fresh capture, then SIGTERM: figures, drain time, rows vs requests."""
    server_pin, client_pin = pins
    port = free_port()
    env = {"TRACEREPLAY_KEY": TEST_KEY, "COLUMNS": "200"}
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        out, log = Path(tmp) / "trace", Path(tmp) / "capture.log"
        argv = [*server_pin, *capture_argv(target_url, out, port)]
        # Ready when the port accepts connections: an HTTP probe would become a row.
        with running(argv, ready_port=(LOOPBACK, port), env=env, log=log) as proxy:
            url = f"http://{LOOPBACK}:{port}{ENDPOINT}"
            requests = 0
            if warmup_s > 0:
                requests = run_wrk(url, args, client_pin, warmup_s, headers)["requests"]
            pids = {"capture": proxy.pid, "target": target_pid}
            figures = drive(url, args, client_pin, duration_s, headers, pids, proxy.pid)
            figures["rss_end_mib"] = round(rss_mib(proxy.pid), 1)
            stopping = time.monotonic()
            proxy.send_signal(signal.SIGTERM)
            figures["capture_exit_code"] = proxy.wait(timeout=STOP_WAIT_S)
            figures["sigterm_to_exit_s"] = round(time.monotonic() - stopping, 2)
        table = read_trace(out)
        statuses = table.column("status").to_pylist()
        figures["wrk_requests_total"] = requests + figures["requests"]
        figures["trace_rows"] = table.num_rows
        figures["trace_rows_200"] = sum(1 for s in statuses if s == 200)
        figures["status_lines"] = [
            {"elapsed_s": float(m[0]), "flows": int(m[1]), "rows_written": int(m[2]),
             "backlog": int(m[5])}
            for m in _STATUS.findall(log.read_text(encoding="utf-8", errors="replace"))
        ]  # fmt: skip
    return figures


def machine_info() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "cpu_model": model.group(1) if model else platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mitmproxy": version("mitmproxy"),
        "wrk": (wrk.stdout + wrk.stderr).split("[")[0].strip(),
        "machine": platform.machine(),
    }


def row(name: str, f: dict[str, Any]) -> str:
    lat, cpu = f["latency_ms"], f["cpu_pct"]
    capture = f"{cpu['capture']:8.0f}%" if "capture" in cpu else f"{'-':>9}"
    return (
        f"{name:16} {f['requests_per_s']:8.1f} {lat.get('p50', 0):8.2f} {lat.get('p90', 0):8.2f}"
        f" {lat.get('p99', 0):8.2f} {f['non_2xx']:7} {capture}"
        f" {cpu['target']:9.0f}%"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--soak", type=float, default=60.0, help="seconds of the memory run")
    parser.add_argument("--warmup", type=float, default=2.0, help="wrk seconds before each")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        sys.stderr.write("bench_capture: wrk is not installed (apt-get install -y wrk)\n")
        return 2
    pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    pins = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if pinned else ([], [])
    results: dict[str, Any] = {
        "tool": "wrk", "endpoint": f"GET {ENDPOINT} (bearer)", "threads": args.threads,
        "connections": args.connections, "duration_s": args.duration, "soak_s": args.soak,
        "pinned": pinned, **machine_info(),
    }  # fmt: skip
    port = free_port()
    options = ("--service-time-scale", "0", "--login-rate-limit", "0")
    with running_server([*pins[0], *target_argv(port, *options)], port=port) as server:
        admin = next(a for a in sandbox_accounts(7) if a.role == "admin")
        with httpx.Client(base_url=server.url) as http:
            login = http.post(
                "/api/v1/auth/login", json={"email": admin.email, "password": admin.password}
            )
            token = login.raise_for_status().json()["data"]["access_token"]
            body = http.get(ENDPOINT, headers={"Authorization": f"Bearer {token}"})
            results["response_bytes"] = len(body.raise_for_status().content)
        headers = [f"Authorization: Bearer {token}"]
        target_pid = server.process.pid
        print(
            f"target on {server.url}{', target+capture on cpu 0, wrk on cpu 1' if pinned else ''}"
            f"; wrk -t{args.threads} -c{args.connections}, {args.duration:g}s, "
            f"soak {args.soak:g}s"
        )
        if args.warmup > 0:
            run_wrk(server.url + ENDPOINT, args, pins[1], args.warmup, headers)
        direct = drive(
            server.url + ENDPOINT, args, pins[1], args.duration, headers, {"target": target_pid}
        )
        proxied = through_capture(
            server.url, args, pins, headers, target_pid, args.duration, args.warmup
        )
        soak = through_capture(server.url, args, pins, headers, target_pid, args.soak, 0)
    soak["rss"] = rss_summary(soak["rss_samples_mib"], soak["requests_per_s"])
    results.update(direct=direct, capture=proxied, soak=soak)
    results["capture_over_direct"] = round(proxied["requests_per_s"] / direct["requests_per_s"], 3)

    print(f"{'run':16} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'non-2xx':>7}"
          f" {'capture CPU':>9} {'target CPU':>10}")  # fmt: skip
    for name, figures in (("direct", direct), ("through capture", proxied), ("soak", soak)):
        print(row(name, figures))
    print(f"through capture / direct: {results['capture_over_direct']:.3f}")
    for name, f in (("capture", proxied), ("soak", soak)):
        backlogs = [s["backlog"] for s in f["status_lines"]]
        print(
            f"{name}: wrk requests {f['wrk_requests_total']}, trace rows {f['trace_rows']} "
            f"({f['trace_rows_200']} with 200), SIGTERM -> exit {f['sigterm_to_exit_s']} s "
            f"(code {f['capture_exit_code']}), backlog seen {backlogs}"
        )
    rss = soak["rss"]
    print(
        f"soak RSS: start {rss['start_mib']} MiB, mid {rss['mid_mib']} MiB, end "
        f"{rss['end_mib']} MiB; slope {rss['slope_mib_per_100k_requests']} MiB/100k requests"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
