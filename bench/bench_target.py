"""Sandbox-target throughput: simple GETs against one uvicorn process, measured with wrk.

Starts `tracereplay demo-target` (default service times unless --service-time-scale) on
127.0.0.1, pinned to one core with taskset when there are two, and runs wrk pinned to
another: `GET /health`, then `GET /api/v1/clients/{id}` with a bearer token.

    .venv/bin/python bench/bench_target.py [--duration 10] [--connections 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.servers

from tests.servers import free_port, running_server, target_argv
from tracereplay.demo.accounts import sandbox_accounts

GOAL_RPS = 2000
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms) and error counts from `wrk --latency` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if rps is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return {
        "requests_per_s": float(rps.group(1)),
        "requests": int(total.group(1)),
        "latency_ms": {
            f"p{pct}": round(float(value) * _UNIT_MS[unit], 3)
            for pct, value, unit in _LATENCY.findall(output)
        },
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else None,
    }


def run_wrk(
    url: str, args: argparse.Namespace, pin: list[str], duration_s: float, headers: list[str]
) -> dict[str, Any]:
    argv = [*pin, "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration_s:g}s"]
    argv += ["--latency", "--timeout", "5s"]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=duration_s + 30
    )
    return parse_wrk(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--service-time-scale", default="1", help="the target's option (1 = default times)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        sys.stderr.write("bench_target: wrk is not installed (apt-get install -y wrk)\n")
        return 2
    pinned = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    server_pin = ["taskset", "-c", "0"] if pinned else []
    client_pin = ["taskset", "-c", "1"] if pinned else []

    port = free_port()
    argv = [*server_pin, *target_argv(port, "--service-time-scale", args.service_time_scale)]
    results: dict[str, Any] = {
        "tool": "wrk",
        "connections": args.connections,
        "threads": args.threads,
        "duration_s": args.duration,
        "service_time_scale": float(args.service_time_scale),
        "pinned": pinned,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "endpoints": {},
    }
    with running_server(argv, port=port) as server:
        admin = next(a for a in sandbox_accounts(7) if a.role == "admin")
        with httpx.Client(base_url=server.url) as http:
            login = http.post(
                "/api/v1/auth/login", json={"email": admin.email, "password": admin.password}
            )
            token = login.raise_for_status().json()["data"]["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            page = http.get("/api/v1/clients/", params={"limit": 1}, headers=auth)
            client_id = page.raise_for_status().json()["data"]["items"][0]["id"]
        endpoints = {
            "GET /health": (f"{server.url}/health", []),
            "GET /api/v1/clients/{id} (bearer)": (
                f"{server.url}/api/v1/clients/{client_id}",
                [f"Authorization: Bearer {token}"],
            ),
        }
        print(
            f"target pid {server.process.pid} on {server.url}"
            f"{' pinned to cpu 0, wrk to cpu 1' if pinned else ' (not pinned)'}; "
            f"{args.connections} connections, {args.duration:g}s per endpoint"
        )
        for name, (url, headers) in endpoints.items():
            if args.warmup > 0:
                run_wrk(url, args, client_pin, args.warmup, headers)
            figures = run_wrk(url, args, client_pin, args.duration, headers)
            results["endpoints"][name] = figures
            latency = figures["latency_ms"]
            print(
                f"{name:36} {figures['requests_per_s']:9.1f} req/s   "
                f"p50 {latency.get('p50', 0):7.2f} ms  p90 {latency.get('p90', 0):7.2f} ms  "
                f"p99 {latency.get('p99', 0):7.2f} ms   non-2xx {figures['non_2xx']}"
            )
    slowest = min(f["requests_per_s"] for f in results["endpoints"].values())
    results["goal_rps"] = GOAL_RPS
    results["goal_met"] = slowest >= GOAL_RPS
    print(f"goal >= {GOAL_RPS} req/s on one core: {'met' if results['goal_met'] else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
