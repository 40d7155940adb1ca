"""`tracereplay demo-traffic` end to end: a short compressed day against a real target.

The staging users run in a child process (locust never enters the pytest process),
against a target of their own: they create, edit and delete data, which must not leak
into the shared `sandbox_target`, and its login rate limit stays ON (the default), so
the per-seat X-Forwarded-For addresses are tested too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import SandboxTarget, sandbox_target
from tracereplay.demo.accounts import accounts_csv
from tracereplay.demo.traffic.summary import StagingSummary

DURATION_S, GRACE_S, USERS = 25, 8, 10
RUN_TIMEOUT_S = DURATION_S + GRACE_S + 60


@pytest.fixture(scope="module")
def own_target() -> Iterator[SandboxTarget]:
    with sandbox_target("--service-time-scale", "0") as target:
        yield target


@pytest.mark.slow
def test_demo_traffic_plays_a_short_day_without_failures(
    own_target: SandboxTarget, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(accounts_csv(own_target.accounts), encoding="utf-8")
    summary_json = tmp_path / "summary.json"
    argv = [
        sys.executable, "-m", "tracereplay.cli", "demo-traffic",
        "--host", own_target.url, "--duration", f"{DURATION_S}s", "--users", str(USERS),
        "--grace", f"{GRACE_S}s", "--seed", "7", "--accounts", str(accounts),
        "--summary-json", str(summary_json),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Requests by endpoint" in done.stdout
    summary = StagingSummary.read_json(summary_json)

    assert summary.failures == 0, summary.errors
    assert summary.user_errors == 0, done.stderr[-3000:]
    assert DURATION_S <= summary.elapsed_s <= DURATION_S + GRACE_S + 5
    assert 2 <= summary.max_users <= USERS

    started = {(s.role, s.kind): s.started for s in summary.sessions}
    assert started[("admin", "browser")] >= 1
    assert started[("client", "browser")] >= 1
    assert started[("client", "api")] >= 3
    assert all(s.failed == 0 for s in summary.sessions)
    assert sum(s.logged_out for s in summary.sessions) >= 1

    routes = {e.name for e in summary.endpoints}
    assert len(routes) >= 15, sorted(routes)
    assert {
        "POST /api/v1/auth/login",
        "GET /api/v1/metrics/overview",
        "GET /api/v1/metrics/executions",
        "GET /api/v1/metrics/historical",
        "GET /api/v1/workflows/",
    } <= routes
    assert not any(re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", r) for r in routes)  # templates only
    assert summary.requests == sum(e.requests for e in summary.endpoints) > 50

    # users share accounts, up to --users-per-account (3 by default) at once
    assert summary.users_per_account == 3
    assert summary.users_started >= summary.max_users
    assert max(a.peak_concurrent_users for a in summary.accounts) >= 2
    assert all(a.peak_concurrent_users <= 3 for a in summary.accounts)
    assert len(summary.accounts) < summary.users_started
    assert sum(a.sessions for a in summary.accounts) == summary.sessions_started


@pytest.mark.slow
def test_demo_traffic_mistypes_passwords_at_the_asked_share(
    own_target: SandboxTarget, tmp_path: Path
) -> None:
    """--failed-logins: some first logins fail with 401 (nothing else fails); most of those
    sessions sign in right afterwards, so logins outnumber sessions."""
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(accounts_csv(own_target.accounts), encoding="utf-8")
    summary_json = tmp_path / "summary.json"
    argv = [
        sys.executable, "-m", "tracereplay.cli", "demo-traffic",
        "--host", own_target.url, "--duration", "15s", "--users", "6",
        "--grace", f"{GRACE_S}s", "--seed", "7", "--accounts", str(accounts),
        "--summary-json", str(summary_json), "--failed-logins", "0.8",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = StagingSummary.read_json(summary_json)
    login = next(e for e in summary.endpoints if e.name == "POST /api/v1/auth/login")
    assert login.failures >= 2
    assert summary.failures == login.failures  # only logins fail
    assert {(e.name, e.error) for e in summary.errors} <= {
        ("POST /api/v1/auth/login", e.error) for e in summary.errors if "401" in e.error
    }
    assert login.requests > summary.sessions_started  # retries after a mistyped password
