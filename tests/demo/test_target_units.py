"""Plain-function tests of the sandbox target's parts: accounts, settings layering, the
seeded store, metrics ranges, rate limiter, cache, tokens and service times."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tracereplay.demo.accounts import (
    ADMIN_COUNT,
    CLIENT_USER_COUNT,
    Account,
    accounts_csv,
    sandbox_accounts,
    sandbox_client_ids,
)
from tracereplay.demo.target import TargetSettings, load_settings
from tracereplay.demo.target.cache import ALL_CLIENTS, MetricsCache
from tracereplay.demo.target.envelope import error_response, ok
from tracereplay.demo.target.metrics import Period, historical, history_error, overview
from tracereplay.demo.target.passwords import (
    KDF_ITERATIONS,
    hash_password,
    kdf_iterations,
    verify_password,
)
from tracereplay.demo.target.ratelimit import SlidingWindowLimiter
from tracereplay.demo.target.service_time import (
    HISTORICAL_CAP_S,
    RouteClass,
    ServiceTimes,
    historical_base_s,
)
from tracereplay.demo.target.store import build_store, user_id
from tracereplay.demo.target.tokens import TokenRejected, TokenService
from tracereplay.errors import ConfigError

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = "unit-test-secret-0123456789abcdef-0123456789"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- accounts -------------------------------------------------------------------------


def test_accounts_are_deterministic_per_seed() -> None:
    assert sandbox_accounts(7) == sandbox_accounts(7)
    assert sandbox_accounts(7) != sandbox_accounts(8)


def test_accounts_roles_emails_and_clients() -> None:
    accounts = sandbox_accounts(7)
    admins = [a for a in accounts if a.role == "admin"]
    clients = [a for a in accounts if a.role == "client"]
    assert (len(admins), len(clients)) == (ADMIN_COUNT, CLIENT_USER_COUNT)
    assert all(a.client_id is None for a in admins)
    assert {a.client_id for a in clients} <= set(sandbox_client_ids(7))
    assert len({a.email for a in accounts}) == len(accounts)
    assert all(
        a.email.split("@")[1] in {"example.com", "example.org", "example.net"} for a in accounts
    )
    assert all(len(a.password) >= 12 for a in accounts)


def test_accounts_csv_round_trips() -> None:
    accounts = [Account("a@example.com", 'p,"x', "admin", "A", None)]
    text = accounts_csv(accounts)
    assert text.splitlines()[0] == "email,password,role"
    assert list(csv.DictReader(io.StringIO(text))) == [
        {"email": "a@example.com", "password": 'p,"x', "role": "admin"}
    ]


# --- settings -------------------------------------------------------------------------


def test_settings_layers_defaults_file_env_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("TRACEREPLAY_TARGET_")]:
        monkeypatch.delenv(name)
    assert load_settings(None, {}) == TargetSettings()
    config = tmp_path / "t.toml"
    config.write_text("[target]\nport = 9001\nseed = 11\nservice_time_scale = 2\n")
    monkeypatch.setenv("TRACEREPLAY_TARGET_SEED", "12")
    monkeypatch.setenv("TRACEREPLAY_TARGET_LOGIN_RATE_LIMIT", "5")
    settings = load_settings(config, {"login_rate_limit": 9, "port": None})
    assert settings == TargetSettings(port=9001, seed=12, service_time_scale=2, login_rate_limit=9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[target]\nport = "80"\n', "expected a int"),
        ("[target]\nport = true\n", "expected a int"),
        ("[target]\nflavour = 1\n", "unknown setting"),
        ('[target]\njwt_secret = "short"\n', "at least 32 characters"),
        ("[target]\naccess_token_ttl_s = 0\n", "must be > 0"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "t.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, {})


# --- store and metrics ----------------------------------------------------------------


def test_store_is_seeded_deterministically() -> None:
    first, second = build_store(7, NOW), build_store(7, NOW)
    assert list(first.clients) == list(second.clients) == sandbox_client_ids(7)
    assert [c.view() for c in first.clients.values()] == [c.view() for c in second.clients.values()]
    assert list(first.workflows) == list(second.workflows)
    assert build_store(8, NOW).clients.keys() != first.clients.keys()


def test_store_users_and_executions() -> None:
    store = build_store(7, NOW)
    for account in sandbox_accounts(7):
        user = store.users_by_email[account.email.lower()]
        assert user.id == user_id(account.email)
        assert account.client_id is None or account.client_id in store.clients
    runs = store.executions[sandbox_client_ids(7)[0]]
    assert runs and all(a.started_at >= b.started_at for a, b in itertools.pairwise(runs))
    assert all(r.started_at <= NOW for r in runs)
    assert any(not c.n8n_configured for c in store.clients.values())
    assert "n8n_api_key" not in json.dumps([c.view() for c in store.clients.values()])


def test_passwords_are_kept_only_as_kdf_hashes() -> None:
    store = build_store(7, NOW)
    for account in sandbox_accounts(7):
        user = store.users_by_email[account.email.lower()]
        assert not hasattr(user, "password")
        assert user.password_hash.startswith(f"pbkdf2_sha256${KDF_ITERATIONS}$")
        assert account.password not in user.password_hash
    user = store.users_by_email[account.email.lower()]
    assert verify_password(account.password, user.password_hash)
    assert not verify_password(account.password + "x", user.password_hash)
    assert not verify_password(account.password, "md5$1$c2FsdA$AAAA")


def _fastest_s(check: Callable[[], object], tries: int = 5) -> float:
    """The least time `check` took: noise on a shared machine only ever adds to it."""
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        check()
        times.append(time.perf_counter() - start)
    return min(times)


def test_a_password_check_costs_real_cpu() -> None:
    """The default cost takes well over 10 ms (about 25 ms here); a cheap hash, which
    this check must tell apart, takes microseconds."""
    slow = hash_password("correct horse", b"0123456789abcdef")
    cheap = hash_password("correct horse", b"0123456789abcdef", iterations=1)
    assert kdf_iterations(slow) == KDF_ITERATIONS >= 50_000
    assert _fastest_s(lambda: verify_password("wrong", slow)) >= 0.010
    assert _fastest_s(lambda: verify_password("wrong", cheap)) < 0.001


def test_overview_of_nothing_is_zeros() -> None:
    empty = overview("x", [], [])
    assert empty["total_executions"] == 0
    assert empty["success_rate"] == 0.0
    assert empty["last_execution_at"] is None


@pytest.mark.parametrize(
    ("period", "start", "end", "problem"),
    [
        ("day", date(2026, 1, 2), date(2026, 1, 1), "must not be before"),
        ("day", date(2020, 1, 1), date(2026, 1, 1), "at most 731 days"),
        ("hour", date(2026, 1, 1), date(2026, 6, 1), "hourly history"),
        ("month", date(2024, 1, 1), date(2025, 12, 31), None),
    ],
)
def test_history_range_checks(period: Period, start: date, end: date, problem: str | None) -> None:
    found = history_error(period, start, end)
    assert (found is None) if problem is None else (problem in str(found))


def test_historical_months_cover_the_range() -> None:
    series = historical("*", "month", date(2024, 1, 31), date(2024, 3, 1), seed=7)
    assert [p["ts"] for p in series["points"]] == [
        "2024-01-01T00:00:00Z",
        "2024-02-01T00:00:00Z",
        "2024-03-01T00:00:00Z",
    ]
    assert series == historical("*", "month", date(2024, 1, 31), date(2024, 3, 1), seed=7)


# --- rate limiter, cache, tokens ------------------------------------------------------


def test_limiter_allows_limit_per_window_and_says_when() -> None:
    limiter = SlidingWindowLimiter(limit=2, window_s=60)
    assert limiter.attempt("a", 0.0) is None
    assert limiter.attempt("a", 10.0) is None
    assert limiter.attempt("a", 20.0) == 40  # the attempt at 0 leaves the window at 60
    assert limiter.attempt("b", 20.0) is None  # per key
    assert limiter.attempt("a", 60.5) is None  # refused attempts were not counted
    assert limiter.attempt("a", 61.0) == 9


def test_limiter_zero_is_off() -> None:
    limiter = SlidingWindowLimiter(limit=0, window_s=60)
    assert all(limiter.attempt("a", 0.0) is None for _ in range(1000))


def test_cache_counts_and_expires() -> None:
    clock = FakeClock(100.0)
    cache = MetricsCache(ttl_s=10, clock=clock)
    assert cache.get("overview", "c1") is None
    cache.put("overview", "c1", {"n": 1})
    cache.put("overview", ALL_CLIENTS, {"n": 2})
    cache.put("overview", "c2", {"n": 3})
    assert cache.get("overview", "c1") == {"n": 1}
    assert cache.stats() == {"hits": 1, "misses": 1, "keys": 3, "hit_rate": 0.5}
    assert cache.clear_client("c1") == 2  # its own entry and the all-clients one
    clock.now += 11
    assert cache.get("overview", "c2") is None
    assert cache.clear() == 1


def test_tokens_repeat_within_a_second_and_rotate_by_rows() -> None:
    second = int(time.time()) - 5  # PyJWT refuses an iat in the future
    clock = FakeClock(second + 0.4)
    tokens = TokenService(SECRET, access_ttl_s=60, refresh_ttl_s=600, clock=clock)
    pair = tokens.issue_pair("user-1", "admin")
    access = tokens.check(pair.access_token, "access")
    assert (access.sub, access.role, access.type) == ("user-1", "admin", "access")
    assert (access.iat, access.exp) == (second, second + 60)
    with pytest.raises(TokenRejected, match="expected refresh"):
        tokens.check(pair.access_token, "refresh")
    clock.now += 0.5  # the same whole second: the same pair, a second row
    assert tokens.issue_pair("user-1", "admin") == pair
    assert len(tokens.refresh_rows) == 2
    assert tokens.issue_pair("user-2", "admin") != pair
    clock.now += 1
    rotated = tokens.rotate(pair.refresh_token)
    assert rotated != pair
    assert tokens.rotate(pair.refresh_token) == rotated  # its second row, the same second
    with pytest.raises(TokenRejected, match="used or revoked"):
        tokens.check(pair.refresh_token, "refresh")
    assert tokens.revoke_refresh(rotated.refresh_token, "user-2") is False  # not theirs
    assert tokens.revoke_refresh(rotated.refresh_token, "user-1") is True
    assert tokens.revoke_refresh(rotated.refresh_token, "user-1") is True
    assert tokens.revoke_refresh(rotated.refresh_token, "user-1") is False
    with pytest.raises(TokenRejected, match="used or revoked"):
        tokens.rotate(rotated.refresh_token)
    assert tokens.check(rotated.access_token, "access").sub == "user-1"  # stateless


def test_remembered_token_expires_with_the_clock() -> None:
    clock = FakeClock(time.time())
    tokens = TokenService(SECRET, access_ttl_s=60, refresh_ttl_s=600, clock=clock)
    pair = tokens.issue_pair("user-1", "client")
    tokens.check(pair.access_token, "access")  # verified by PyJWT, then remembered
    clock.now += 61
    with pytest.raises(TokenRejected, match="expired"):
        tokens.check(pair.access_token, "access")


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "e30.e30.e30"])
def test_garbage_tokens_are_rejected(token: str) -> None:
    with pytest.raises(TokenRejected, match="Could not validate"):
        TokenService(SECRET, 60, 600).check(token, "access")


def test_random_secret_per_service() -> None:
    one, two = TokenService("", 60, 600), TokenService("", 60, 600)
    with pytest.raises(TokenRejected):
        two.check(one.issue_pair("u", "admin").access_token, "access")


# --- service times and envelope -------------------------------------------------------


@pytest.mark.parametrize("route_class", list(RouteClass))
def test_service_time_samples_fall_mostly_in_their_range(route_class: RouteClass) -> None:
    times = ServiceTimes(seed=7, scale=1.0)
    samples_ms = [times.sample_s(route_class) * 1000 for _ in range(2000)]
    low, high = route_class.value
    inside = sum(low <= s <= high for s in samples_ms) / len(samples_ms)
    assert 0.85 <= inside <= 0.95
    assert low < statistics.median(samples_ms) < high


def test_historical_service_time_grows_with_days_and_is_capped() -> None:
    assert historical_base_s(7) == pytest.approx(0.034)
    assert historical_base_s(180) == pytest.approx(0.38)
    assert historical_base_s(2000) == HISTORICAL_CAP_S


def test_scale_zero_never_sleeps() -> None:
    times = ServiceTimes(seed=7, scale=0.0)

    async def run() -> list[float]:
        return [await times.sleep(RouteClass.SYNC), await times.sleep_historical(700)]

    assert asyncio.run(run()) == [0.0, 0.0]


def test_envelopes() -> None:
    assert json.loads(ok({"a": 1}, status_code=201).body) == {"status": "success", "data": {"a": 1}}
    response = error_response(
        422, "Validation error", errors=[{"field": "body.x"}], headers={"X-A": "1"}
    )
    assert response.status_code == 422 and response.headers["x-a"] == "1"
    assert json.loads(response.body) == {
        "status": "error",
        "message": "Validation error",
        "data": None,
        "errors": [{"field": "body.x"}],
    }
