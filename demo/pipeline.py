"""`tracereplay demo`: the pipeline on the bundled sandbox, start to finish, bounded.

Today: start the sandbox target and the capture proxy in front of it, drive the staging
users through the proxy for a bounded time, and say what happened and what was captured.
Every process it starts is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console

from tracereplay.demo.traffic.launch import run_staging_users_in_subprocess
from tracereplay.demo.traffic.summary import StagingSummary
from tracereplay.errors import UsageError
from tracereplay.processes import LOOPBACK, free_port, running
from tracereplay.trace.info import TraceInfo, describe_trace


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    target_url: str
    staging: StagingSummary
    trace: TraceInfo
    leaks: int
    """Findings of the leak scanner over the captured trace (0 = clean)."""


def default_out_dir(now: datetime | None = None) -> Path:
    """reports/demo-YYYYmmdd-HHMMSS: a new directory per run, so no run overwrites one."""
    return Path("reports") / f"demo-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}"


def run_demo(
    out_dir: Path,
    *,
    duration_s: float = 120.0,
    users: int = 30,
    seed: int = 7,
    console: Console | None = None,
) -> DemoResult:
    """Run the demo into `out_dir` (which must be new or empty)."""
    console = console or Console(stderr=True)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UsageError(f"{out_dir} is not empty; choose a new --out directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    port, proxy_port = free_port(), free_port()
    url = f"http://{LOOPBACK}:{port}"
    proxy_url = f"http://{LOOPBACK}:{proxy_port}"
    trace_dir = out_dir / "trace"
    target_argv = [
        sys.executable, "-m", "tracereplay.cli", "demo-target",
        "--port", str(port), "--seed", str(seed),
    ]  # fmt: skip
    capture_argv = [
        sys.executable, "-m", "tracereplay.cli", "capture", "--target", url,
        "--listen", f"{LOOPBACK}:{proxy_port}", "--out", str(trace_dir),
    ]  # fmt: skip
    # A fresh pseudonym key per run, handed to the capture through its environment only.
    capture_env = {"TRACEREPLAY_KEY": secrets.token_hex(32)}
    console.rule("tracereplay demo")
    console.print(f"[1/3] starting the sandbox target on {url} (log: {out_dir / 'target.log'})")
    with running(target_argv, ready_url=f"{url}/health", log=out_dir / "target.log"):
        console.print(
            f"[2/3] starting the capture proxy on {proxy_url} → {trace_dir}"
            f" (log: {out_dir / 'capture.log'})"
        )
        with running(
            capture_argv,
            ready_port=(LOOPBACK, proxy_port),
            env=capture_env,
            log=out_dir / "capture.log",
        ):
            console.print(
                f"[3/3] staging users through the proxy: {users} at peak over a compressed"
                f" day of {duration_s:g} s"
            )
            staging = run_staging_users_in_subprocess(
                proxy_url, duration_s, users, seed, quiet=False
            )
    staging.write_json(out_dir / "staging-summary.json")
    from tracereplay.capture.scan import scan_trace

    trace = describe_trace(trace_dir)
    scan = scan_trace(trace_dir)
    console.print(
        f"captured {trace.rows} rows in {trace.sessions} sessions into {trace_dir}; "
        + ("leak scan clean" if scan.clean else f"leak scan: {scan.findings} findings!")
    )
    console.print(f"results in {out_dir}/ (trace/, staging-summary.json, target.log, capture.log)")
    return DemoResult(out_dir, url, staging, trace, scan.findings)
