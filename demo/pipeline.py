"""`tracereplay demo`: the pipeline on the bundled sandbox, start to finish, bounded.

Today: start the sandbox target, drive the staging users against it for a bounded time,
and say what happened. Every process it starts is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console

from tracereplay.demo.traffic.launch import run_staging_users_in_subprocess
from tracereplay.demo.traffic.summary import StagingSummary
from tracereplay.errors import UsageError
from tracereplay.processes import LOOPBACK, free_port, running


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    target_url: str
    staging: StagingSummary


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
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    target_argv = [
        sys.executable, "-m", "tracereplay.cli", "demo-target",
        "--port", str(port), "--seed", str(seed),
    ]  # fmt: skip
    console.rule("tracereplay demo")
    console.print(f"[1/2] starting the sandbox target on {url} (log: {out_dir / 'target.log'})")
    with running(target_argv, ready_url=f"{url}/health", log=out_dir / "target.log"):
        console.print(
            f"[2/2] staging users: {users} at peak over a compressed day of {duration_s:g} s"
        )
        staging = run_staging_users_in_subprocess(url, duration_s, users, seed, quiet=False)
    staging.write_json(out_dir / "staging-summary.json")
    console.print(f"results in {out_dir}/ (staging-summary.json, target.log)")
    return DemoResult(out_dir, url, staging)
