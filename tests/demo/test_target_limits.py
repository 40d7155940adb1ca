"""The sandbox target with its limits on, over HTTP: the login rate limit (429 with
Retry-After) and service times (the historical query slows with its range)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from tests.demo.target_api import Session, api_client, data, error, login, sign_in
from tests.servers import SandboxTarget, sandbox_target

LOGIN_LIMIT = 3


@pytest.fixture(scope="module")
def limited_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxTarget]:
    """A target with a small login limit (from a TOML file, so `--config` is exercised)
    and real service times."""
    config = Path(tmp_path_factory.mktemp("target")) / "target.toml"
    config.write_text(f"[target]\nlogin_rate_limit = {LOGIN_LIMIT}\n", encoding="utf-8")
    with sandbox_target("--config", str(config), "--service-time-scale", "1") as target:
        yield target


@pytest.fixture(scope="module")
def limited_http(limited_target: SandboxTarget) -> Iterator[httpx.Client]:
    with api_client(limited_target) as client:
        yield client


def test_login_past_the_limit_is_429_with_retry_after(
    limited_target: SandboxTarget, limited_http: httpx.Client
) -> None:
    account = limited_target.account("client", 6)
    me = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    for _ in range(LOGIN_LIMIT):
        assert login(limited_http, account, headers=me).status_code == 200
    refused = login(limited_http, account, headers=me)
    assert "Too many" in error(refused, 429)["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # the limit is per client address: the first X-Forwarded-For entry
    other = {"X-Forwarded-For": "203.0.113.8"}
    assert login(limited_http, account, headers=other).status_code == 200


def test_failed_logins_count_towards_the_limit(limited_http: httpx.Client) -> None:
    address = {"X-Forwarded-For": "198.51.100.23"}
    bad = {"email": "nobody@example.com", "password": "wrong"}
    statuses = [
        limited_http.post("/api/v1/auth/login", json=bad, headers=address).status_code
        for _ in range(LOGIN_LIMIT + 1)
    ]
    assert statuses == [401] * LOGIN_LIMIT + [429]


def test_rate_limit_zero_turns_it_off(sandbox_target: SandboxTarget, http: httpx.Client) -> None:
    """The session target runs with --login-rate-limit 0."""
    account = sandbox_target.account("client", 7)
    for _ in range(40):
        assert login(http, account).status_code == 200


def _historical_s(http: httpx.Client, session: Session, days: int) -> float:
    """Seconds one historical query over `days` days takes, seen from the client."""
    start = date(2025, 1, 1)
    params = {"start_date": str(start), "end_date": str(start + timedelta(days=days - 1))}
    started = time.perf_counter()
    response = http.get("/api/v1/metrics/historical", params=params, headers=session.headers)
    elapsed = time.perf_counter() - started
    assert len(data(response)["points"]) == days
    return elapsed


def test_historical_is_slower_for_longer_ranges(
    limited_target: SandboxTarget, limited_http: httpx.Client
) -> None:
    session = sign_in(limited_http, limited_target.account("admin", 1))
    week = statistics.median(_historical_s(limited_http, session, 7) for _ in range(3))
    half_year = statistics.median(_historical_s(limited_http, session, 180) for _ in range(3))
    # ~34 ms against ~380 ms of simulated service time
    assert half_year > 0.2
    assert half_year > 3 * week


def test_simple_get_takes_a_few_milliseconds(limited_http: httpx.Client) -> None:
    limited_http.get("/health")
    times = []
    for _ in range(10):
        started = time.perf_counter()
        data(limited_http.get("/health"))
        times.append(time.perf_counter() - started)
    assert 0.002 <= statistics.median(times) < 0.1
