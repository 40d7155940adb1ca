"""Seat identities and the end-of-run summary (plain data, JSON, rich tables)."""

from __future__ import annotations

import io
import random
from collections import Counter
from pathlib import Path

import pytest
from faker import Faker
from rich.console import Console

from tracereplay.demo.traffic.behaviors import CLIENT_API, CLIENT_BROWSER
from tracereplay.demo.traffic.identity import (
    account_order,
    browser_user_agent,
    identity_headers,
    pick_account,
)
from tracereplay.demo.traffic.settings import sandbox_staging_accounts
from tracereplay.demo.traffic.summary import (
    AccountStats,
    EndpointStats,
    ErrorStats,
    SessionLog,
    StagingSummary,
    render_summary,
)


def fill(role: str, seats: int, per_account: int) -> tuple[SessionLog, list[str]]:
    """`seats` seats of `role` starting one after another; the accounts they take."""
    log, ordered = SessionLog(), account_order(sandbox_staging_accounts(7), role, 7)
    taken = []
    for _ in range(seats):
        account = pick_account(ordered, log.live, per_account)
        log.join(account.email, account.role)
        taken.append(account.email)
    return log, taken


@pytest.mark.parametrize(("seats", "per_account"), [(24, 3), (10, 2), (7, 4), (16, 1)])
def test_live_seats_share_accounts_k_at_a_time(seats: int, per_account: int) -> None:
    log, taken = fill("client", seats, per_account)
    counts = Counter(taken)
    assert len(counts) == -(-seats // per_account)  # ceil: as few accounts as k allows
    assert max(counts.values()) == min(per_account, seats)
    assert all(log.live[email] == n for email, n in counts.items())
    assert {a.role for a in sandbox_staging_accounts(7) if a.email in counts} == {"client"}


def test_more_seats_than_accounts_hold_spread_over_the_least_used() -> None:
    _, taken = fill("admin", 14, 3)  # 4 admin accounts hold 12 at k = 3
    assert sorted(Counter(taken).values()) == [3, 3, 4, 4]


def test_a_leaving_seat_frees_its_place_for_the_next() -> None:
    log, taken = fill("client", 6, 3)
    log.leave(taken[1])
    ordered = account_order(sandbox_staging_accounts(7), "client", 7)
    assert pick_account(ordered, log.live, 3).email == taken[1]
    stats = {a.email: a for a in log.account_stats()}
    assert stats[taken[0]] == AccountStats(taken[0], "client", 3, 3, 0)


def test_account_order_is_the_role_rotated_by_the_seed() -> None:
    accounts = sandbox_staging_accounts(7)
    clients = [a for a in accounts if a.role == "client"]
    assert account_order(accounts, "client", 7) == clients[7:] + clients[:7]
    assert account_order(accounts, "client", 16) == clients


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
    log.join("a@example.com", "client")
    log.join("a@example.com", "client")
    log.join("b@example.com", "admin")
    for _ in range(3):
        log.start("client_api", "a@example.com")
    log.finish("client_api", "logged_out")
    log.finish("client_api", "failed")
    log.start("admin_browser", "b@example.com")
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
        users_per_account=2,
        accounts=log.account_stats(),
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
    assert summary().accounts == (
        AccountStats("a@example.com", "client", 2, 2, 3),
        AccountStats("b@example.com", "admin", 1, 1, 1),
    )
    assert summary().users_started == 3


def test_a_summary_without_accounts_still_loads(tmp_path: Path) -> None:
    data = summary().to_dict()
    del data["accounts"], data["users_per_account"]
    old = StagingSummary.from_dict(data)
    assert old.accounts == () and old.users_per_account == 1


def test_summary_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    summary().write_json(path)
    assert StagingSummary.read_json(path) == summary()
    assert '"schema": "tracereplay.staging-summary/1"' in path.read_text()


def test_summary_renders_its_tables() -> None:
    out = io.StringIO()
    render_summary(summary(), Console(file=out, width=200))
    text = out.getvalue()
    assert "GET /api/v1/clients/{client_id}" in text
    assert "Sessions by kind" in text and "HTTPError(404)" in text
    assert "120 requests, 1 failures, 4 sessions in 63.2 s (1.9 rps" in text
    assert "Accounts shared by users" in text
    assert "3 users on 2 accounts, at most 2 at once on one" in text
