"""`tracereplay demo`: the pipeline on the bundled sandbox, start to finish, bounded.

Start the sandbox target and the capture proxy in front of it, drive the staging users
through the proxy for a bounded time, model the captured trace, replay the model at N×
against the target, and compare. Every process it starts is stopped at the end, also on
Ctrl-C or failure.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from tracereplay.capture.scan import scan_trace
from tracereplay.demo.accounts import accounts_csv, sandbox_accounts
from tracereplay.demo.traffic.launch import run_staging_users_in_subprocess
from tracereplay.demo.traffic.summary import StagingSummary
from tracereplay.errors import UsageError
from tracereplay.processes import LOOPBACK, free_port, running
from tracereplay.trace.info import TraceInfo, describe_trace

CAPTURE_STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    target_url: str
    staging: StagingSummary
    trace: TraceInfo
    leaks: int
    """Findings of the leak scanner over the captured trace (0 = clean)."""
    compare: dict[str, Any] | None = None
    """compare.json of the replay against the captured trace (None: not replayed)."""


def default_out_dir(now: datetime | None = None) -> Path:
    """reports/demo-YYYYmmdd-HHMMSS: a new directory per run, so no run overwrites one."""
    return Path("reports") / f"demo-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}"


def run_demo(
    out_dir: Path,
    *,
    duration_s: float = 120.0,
    users: int = 30,
    seed: int = 7,
    replay_scale: float = 5.0,
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
    # The login rate limit is per client address: a replay at 5× sends every login from
    # 127.0.0.1, so the demo's target runs without it (demo-target --help has the option).
    target_argv = [
        sys.executable, "-m", "tracereplay.cli", "demo-target",
        "--port", str(port), "--seed", str(seed), "--login-rate-limit", "0",
    ]  # fmt: skip
    capture_argv = [
        sys.executable, "-m", "tracereplay.cli", "capture", "--target", url,
        "--listen", f"{LOOPBACK}:{proxy_port}", "--out", str(trace_dir),
    ]  # fmt: skip
    # A fresh pseudonym key per run, handed to the capture through its environment only.
    capture_env = {"TRACEREPLAY_KEY": secrets.token_hex(32)}
    replaying = replay_scale > 0
    steps = 6 if replaying else 3
    console.rule("tracereplay demo")
    console.print(
        f"[1/{steps}] starting the sandbox target on {url} (log: {out_dir / 'target.log'})"
    )
    compare_doc: dict[str, Any] | None = None
    with running(target_argv, ready_url=f"{url}/health", log=out_dir / "target.log"):
        console.print(
            f"[2/{steps}] starting the capture proxy on {proxy_url} → {trace_dir}"
            f" (log: {out_dir / 'capture.log'})"
        )
        with running(
            capture_argv,
            ready_port=(LOOPBACK, proxy_port),
            env=capture_env,
            log=out_dir / "capture.log",
            # The capture drains its anonymizer workers and writes its last part on
            # SIGTERM; on a busy machine that takes more than the usual 10 s.
            stop_timeout_s=CAPTURE_STOP_TIMEOUT_S,
        ):
            console.print(
                f"[3/{steps}] staging users through the proxy: {users} at peak over a "
                f"compressed day of {duration_s:g} s"
            )
            staging = run_staging_users_in_subprocess(
                proxy_url, duration_s, users, seed, quiet=False
            )
        staging.write_json(out_dir / "staging-summary.json")
        trace = describe_trace(trace_dir)
        scan = scan_trace(trace_dir)
        console.print(
            f"captured {trace.rows} rows in {trace.sessions} sessions into {trace_dir}; "
            + ("leak scan clean" if scan.clean else f"leak scan: {scan.findings} findings!")
        )
        if replaying and not staging.interrupted:
            compare_doc = _model_replay_compare(out_dir, url, seed, replay_scale, console)
    console.print(f"results in {out_dir}/")
    return DemoResult(out_dir, url, staging, trace, scan.findings, compare_doc)


def _model_replay_compare(
    out_dir: Path, url: str, seed: int, scale: float, console: Console
) -> dict[str, Any]:
    """Steps 4–6: model the captured trace, replay the model at N× against the target,
    compare the replayed requests with the captured ones."""
    from tracereplay.compare.run import run_compare
    from tracereplay.compare.slo import load_slos
    from tracereplay.models.model import build_model, write_model
    from tracereplay.replay.run import ReplaySettings, run_replay

    trace_dir = out_dir / "trace"
    console.print("[4/6] modelling the captured trace")
    model = build_model(trace_dir)
    model_path = write_model(model, out_dir / "trace.model.json")
    console.print(
        f"      {len(model['endpoints'])} endpoints, {len(model['behaviors'])} behaviors, "
        f"{len(model['correlations'])} correlations → {model_path}"
    )
    accounts = out_dir / "accounts.csv"  # the sandbox's fake test accounts
    accounts.write_text(accounts_csv(sandbox_accounts(seed)), encoding="utf-8")
    console.print(f"[5/6] replaying the model at {scale:g}× against {url} (Locust, open loop)")
    outcome = run_replay(
        ReplaySettings(
            source=model_path,
            host=url,
            out=out_dir / "replay",
            scale=scale,
            credentials=accounts,
            seed=seed,
            grace_s=15.0,
        )
    )
    s = outcome.summary
    console.print(
        f"      {s['sessions_started']} sessions, {s['requests']} requests, "
        f"{s['failures']} failures, {s['achieved_rps']} req/s"
    )
    console.print("[6/6] comparing the replay with the captured trace")
    result = run_compare(
        trace_dir, out_dir / "replay" / "replayed", out=out_dir, scale=scale, slos=load_slos(),
        title=f"tracereplay demo: staging users vs the model replayed at {scale:g}×",
        console=console, errors=console,
    )  # fmt: skip
    console.print(f"report: {out_dir / 'report.html'}")
    console.print(
        "next, the scenario profiles on this model (README: Scenario profiles), e.g. with "
        "`tracereplay demo-target --login-rate-limit 0` running: `tracereplay replay "
        f"{model_path} --host http://127.0.0.1:8000 --credentials {accounts} --out "
        f"{out_dir / 'stress'} --profile stress --duration 10s`",
        highlight=False,
    )
    doc: dict[str, Any] = result.to_json()
    return doc
