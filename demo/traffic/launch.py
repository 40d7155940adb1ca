"""Run the staging users in a child process and read back its summary (no gevent here).

For callers that must not load locust themselves (the `demo` pipeline, tests): the child
is `python -m tracereplay.demo.traffic`, i.e. the `demo-traffic` command.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tracereplay.demo.traffic.settings import (
    DEFAULT_DURATION_S,
    DEFAULT_GRACE_S,
    DEFAULT_SEED,
    DEFAULT_USERS,
    DEFAULT_USERS_PER_ACCOUNT,
    staging_settings,
)
from tracereplay.demo.traffic.summary import StagingSummary
from tracereplay.errors import UsageError

EXIT_MARGIN_S = 60.0
"""The child ends itself by duration + grace (+15 s at worst); past this it is killed."""


def staging_users_argv(
    host: str,
    duration_s: float,
    users: int,
    seed: int,
    *,
    accounts_file: Path | None,
    grace_s: float,
    summary_json: Path,
    users_per_account: int = DEFAULT_USERS_PER_ACCOUNT,
    failed_login_share: float = 0.0,
) -> list[str]:
    """The child's command line."""
    argv = [
        sys.executable, "-m", "tracereplay.demo.traffic",
        "--host", host, "--duration", f"{duration_s:g}s", "--users", str(users),
        "--seed", str(seed), "--grace", f"{grace_s:g}s", "--summary-json", str(summary_json),
        "--users-per-account", str(users_per_account),
        "--failed-logins", f"{failed_login_share:g}",
    ]  # fmt: skip
    if accounts_file is not None:
        argv += ["--accounts", str(accounts_file)]
    return argv


def run_staging_users_in_subprocess(
    host: str,
    duration_s: float = DEFAULT_DURATION_S,
    users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    *,
    accounts_file: Path | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    users_per_account: int = DEFAULT_USERS_PER_ACCOUNT,
    failed_login_share: float = 0.0,
    quiet: bool = True,
) -> StagingSummary:
    """`run_staging_users` in a child process; its output is dropped when `quiet`."""
    settings = staging_settings(
        host,
        duration_s,
        users,
        seed,
        accounts=accounts_file,
        grace_s=grace_s,
        users_per_account=users_per_account,
        failed_login_share=failed_login_share,
    )  # fail here, with the same message, before starting anything
    with tempfile.TemporaryDirectory(prefix="tracereplay-staging-") as scratch:
        summary_json = Path(scratch) / "summary.json"
        argv = staging_users_argv(
            settings.host,
            settings.duration_s,
            settings.users,
            settings.seed,
            accounts_file=accounts_file,
            grace_s=settings.grace_s,
            summary_json=summary_json,
            users_per_account=settings.users_per_account,
            failed_login_share=settings.failed_login_share,
        )
        output = subprocess.DEVNULL if quiet else None
        done = subprocess.run(  # noqa: S603  # our own interpreter, argv from checked settings
            argv,
            stdout=output,
            stderr=subprocess.PIPE,
            text=True,
            timeout=settings.duration_s + settings.grace_s + EXIT_MARGIN_S,
            check=False,
        )
        if not summary_json.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UsageError(f"the staging users failed (exit {done.returncode}): {last}")
        return StagingSummary.read_json(summary_json)
