"""Helpers of bench_replay_fidelity.py: a sandbox target started fresh (same seed and
options as a capture's), its audit read as an admin, and a staging capture through the
proxy. Everything binds and sends to 127.0.0.1 only and stops what it started.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tracereplay.demo.accounts import Account, accounts_csv, sandbox_accounts
from tracereplay.demo.traffic.launch import run_staging_users_in_subprocess
from tracereplay.processes import LOOPBACK, free_port, running

CAPTURE_FILE = "capture.json"


@dataclass(frozen=True)
class CaptureSpec:
    """How a capture was made: enough to start a target in the state it started in."""

    seed: int = 7
    users: int = 30
    users_per_account: int = 3
    duration_s: float = 1200.0
    target_options: tuple[str, ...] = ()
    """Extra demo-target flags (the default: service times on, login limit 30/min)."""
    failed_login_share: float = 0.0
    """Share of staging sessions whose first login mistypes the password (0 before this
    option: cap20, capB, capC)."""


def target_argv(port: int, spec: CaptureSpec) -> list[str]:
    return [
        sys.executable, "-m", "tracereplay.cli", "demo-target", "--port", str(port),
        "--seed", str(spec.seed), *spec.target_options,
    ]  # fmt: skip


@contextmanager
def sandbox(spec: CaptureSpec, log: Path) -> Iterator[str]:
    """A fresh sandbox target as the capture's started; yields its base URL."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    with running(target_argv(port, spec), ready_url=f"{url}/health", log=log):
        yield url


def _post_json(url: str, doc: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # loopback sandbox only
        url, data=json.dumps(doc).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def audit(url: str, accounts: list[Account]) -> dict[str, Any]:
    """`GET /api/v1/system/audit` as the first admin account (the bench's own login)."""
    admin = next(a for a in accounts if a.role == "admin")
    login = _post_json(
        f"{url}/api/v1/auth/login", {"email": admin.email, "password": admin.password}
    )
    token = login["data"]["access_token"]
    request = urllib.request.Request(
        f"{url}/api/v1/system/audit", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(json.loads(answer.read())["data"])


@contextmanager
def capture_proxy(target_url: str, out: Path) -> Iterator[str]:
    """`tracereplay capture` in front of `target_url` into out/trace (log: out/capture.log),
    with a fresh key; yields the proxy's base URL."""
    port = free_port()
    argv = [
        sys.executable, "-m", "tracereplay.cli", "capture", "--target", target_url,
        "--listen", f"{LOOPBACK}:{port}", "--out", str(out / "trace"),
    ]  # fmt: skip
    env = {"TRACEREPLAY_KEY": secrets.token_hex(32)}
    with running(argv, ready_port=(LOOPBACK, port), env=env, log=out / "capture.log"):
        yield f"http://{LOOPBACK}:{port}"


def capture(spec: CaptureSpec, out: Path) -> Path:
    """Staging users through the capture proxy in front of a fresh target; out/trace."""
    out.mkdir(parents=True, exist_ok=False)
    accounts = sandbox_accounts(spec.seed)
    (out / "accounts.csv").write_text(accounts_csv(accounts), encoding="utf-8")
    with sandbox(spec, out / "target.log") as url:
        before = audit(url, accounts)
        load = {"start": load_average()}
        with capture_proxy(url, out) as proxy:
            staging = run_staging_users_in_subprocess(
                proxy, spec.duration_s, spec.users, spec.seed,
                users_per_account=spec.users_per_account,
                failed_login_share=spec.failed_login_share,
            )  # fmt: skip
        load["end"] = load_average()
        after = audit(url, accounts)
    staging.write_json(out / "staging-summary.json")
    doc = {
        "spec": asdict(spec),
        "audit_before": before,
        "audit_after": after,
        # the machine's load beside the captured latencies (a replay's is compared to it)
        "load_average": load,
    }
    (out / CAPTURE_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return out / "trace"


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def read_spec(capture_dir: Path) -> CaptureSpec:
    data = json.loads((capture_dir / CAPTURE_FILE).read_text(encoding="utf-8"))["spec"]
    return CaptureSpec(**{**data, "target_options": tuple(data["target_options"])})


if __name__ == "__main__":  # sandbox_run.py OUT [minutes users per-account failed-logins]
    args = sys.argv[1:]
    spec = CaptureSpec(
        duration_s=float(args[1]) * 60 if len(args) > 1 else 1200.0,
        users=int(args[2]) if len(args) > 2 else 30,
        users_per_account=int(args[3]) if len(args) > 3 else 3,
        failed_login_share=float(args[4]) if len(args) > 4 else 0.0,
    )
    print(capture(spec, Path(args[0])))
