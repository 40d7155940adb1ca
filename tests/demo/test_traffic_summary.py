"""Seat identities and the end-of-run summary (plain data, JSON, rich tables)."""

from __future__ import annotations

import io
import random
from collections import Counter
from pathlib import Path

from faker import Faker
from rich.console import Console

from tracereplay.demo.traffic.behaviors import ADMIN_API, ADMIN_BROWSER, CLIENT_API, CLIENT_BROWSER
from tracereplay.demo.traffic.identity import browser_user_agent, identity_headers, seat_account
from tracereplay.demo.traffic.settings import sandbox_staging_accounts
from tracereplay.demo.traffic.summary import (
    EndpointStats,
    ErrorStats,
    SessionLog,
    StagingSummary,
    render_summary,
)


def test_concurrent_seats_of_one_role_get_different_accounts() -> None:
    accounts = sandbox_staging_accounts(7)
    clients = [
        seat_account(accounts, b, i, 7) for i in range(8) for b in (CLIENT_BROWSER, CLIENT_API)
    ]
    assert len({a.email for a in clients}) == 16
    assert all(a.role == "client" for a in clients)
    admins = [seat_account(accounts, b, i, 7) for i in range(2) for b in (ADMIN_BROWSER, ADMIN_API)]
    assert len({a.email for a in admins}) == 4 and all(a.role == "admin" for a in admins)


def test_identity_is_seeded_and_looks_like_its_kind() -> None:
    def headers(seed: int, behavior: object) -> dict[str, str]:
        fake = Faker("en_US")
        fake.seed_instance(seed)
        return identity_headers(behavior, random.Random(seed), fake)  # type: ignore[arg-type]

    browser = headers(1, CLIENT_BROWSER)
    assert browser == headers(1, CLIENT_BROWSER)
    assert browser["User-Agent"].startswith("Mozilla/5.0 (")
    assert "Accept-Language" in browser
    api = headers(1, CLIENT_API)
    assert not api["User-Agent"].startswith("Mozilla")
    addresses = {headers(seed, CLIENT_API)["X-Forwarded-For"] for seed in range(50)}
    assert len(addresses) == 50
    assert all(not a.startswith(("10.", "127.", "192.168.")) for a in addresses)


def test_browser_user_agents_vary() -> None:
    rng = random.Random(2)
    last_products = (browser_user_agent(rng).split()[-1] for _ in range(400))
    agents = Counter(product.split("/")[0] for product in last_products)
    assert {"Safari", "Firefox", "Edg"} <= set(agents)


def summary() -> StagingSummary:
    log = SessionLog()
    for _ in range(3):
        log.start("client_api")
    log.finish("client_api", "logged_out")
    log.finish("client_api", "failed")
    log.start("admin_browser")
    log.finish("admin_browser", "ended")
    return StagingSummary(
        host="http://127.0.0.1:8000",
        seed=7,
        duration_s=60.0,
        elapsed_s=63.2,
        peak_users=10,
        max_users=9,
        requests=120,
        failures=1,
        total_rps=1.9,
        endpoints=(
            EndpointStats("GET", "GET /api/v1/clients/{client_id}", 100, 1, 12.0, 40.0),
            EndpointStats("POST", "POST /api/v1/auth/login", 20, 0, 30.0, 45.0),
        ),
        sessions=log.stats(),
        errors=(ErrorStats("GET", "GET /api/v1/clients/{client_id}", "HTTPError(404)", 1),),
        user_errors=0,
    )


def test_session_log_counts_open_sessions_as_cut() -> None:
    rows = {s.behavior: s for s in summary().sessions}
    assert [s.behavior for s in summary().sessions] == [
        "admin_browser", "admin_api", "client_browser", "client_api",
    ]  # fmt: skip
    api = rows["client_api"]
    assert (api.role, api.kind, api.started) == ("client", "api", 3)
    assert (api.logged_out, api.ended, api.cut, api.failed) == (1, 0, 1, 1)
    assert rows["admin_browser"].ended == 1
    assert summary().sessions_started == 4


def test_summary_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    summary().write_json(path)
    assert StagingSummary.read_json(path) == summary()
    assert '"schema": "tracereplay.staging-summary/1"' in path.read_text()


def test_summary_renders_its_tables() -> None:
    out = io.StringIO()
    render_summary(summary(), Console(file=out, width=100))
    text = out.getvalue()
    assert "GET /api/v1/clients/{client_id}" in text
    assert "Sessions by kind" in text and "HTTPError(404)" in text
    assert "120 requests, 1 failures, 4 sessions in 63.2 s (1.9 rps" in text
