"""Bounds of a staging-users run: loopback only, bounded time and users, accounts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracereplay.cli import main
from tracereplay.demo.traffic.launch import run_staging_users_in_subprocess, staging_users_argv
from tracereplay.demo.traffic.settings import (
    StagingAccount,
    login_pacing_delay_s,
    loopback_base_url,
    read_accounts_csv,
    staging_settings,
)
from tracereplay.errors import UsageError


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("http://localhost:1234", "http://localhost:1234"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("http://127.0.0.2", "http://127.0.0.2"),
    ],
)
def test_loopback_hosts_are_accepted(url: str, base: str) -> None:
    assert loopback_base_url(url) == base


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:8000",
        "http://10.0.0.1:8000",
        "http://192.168.1.5",
        "https://8.8.8.8",
        "http://0.0.0.0:8000",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
    ],
)
def test_other_hosts_are_refused(url: str) -> None:
    with pytest.raises(UsageError, match="only loopback hosts"):
        loopback_base_url(url)


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8000", "ftp://127.0.0.1", "http://127.0.0.1/api", "http://u:p@127.0.0.1"]
)
def test_malformed_hosts_are_refused(url: str) -> None:
    with pytest.raises(UsageError, match="--host"):
        loopback_base_url(url)


# Run in a fresh interpreter: whether locust is loaded can only be told in a process no
# earlier test (of the whole suite, in any order) has imported it into.
_REFUSE_CHILD = """
import sys
from tracereplay.cli import main
code = main(["demo-traffic", "--host", "http://example.com:8000", "--duration", "5s"])
print(code, "locust" in sys.modules, "gevent.monkey" in sys.modules)
"""


def test_cli_refuses_a_remote_host_in_one_line_without_loading_locust() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _REFUSE_CHILD],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["2", "False", "False"], (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "tracereplay: error: refusing to send staging traffic to 'example.com'"
    )


def test_cli_refuses_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-traffic", "--host", "http://127.0.0.1:1", "--duration", "soon"]) == 2
    assert "not a duration" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": 0.0}, "--duration"),
        ({"duration_s": 90_000.0}, "--duration"),
        ({"users": 0}, "--users"),
        ({"users": 10_000}, "--users"),
        ({"grace_s": -1.0}, "--grace"),
        ({"users_per_account": 0}, "--users-per-account"),
        ({"users_per_account": 51}, "--users-per-account"),
        ({"failed_login_share": -0.1}, "--failed-logins"),
        ({"failed_login_share": 0.95}, "--failed-logins"),
    ],
)
def test_run_is_bounded(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        staging_settings("http://127.0.0.1:8000", **kwargs)  # type: ignore[arg-type]


def test_default_accounts_are_the_sandbox_accounts_of_the_seed() -> None:
    from tracereplay.demo.accounts import sandbox_accounts

    settings = staging_settings("http://127.0.0.1:8000", seed=3)
    assert [a.email for a in settings.accounts] == [a.email for a in sandbox_accounts(3)]
    assert {a.role for a in settings.accounts} == {"admin", "client"}
    assert settings.users == 30 and settings.duration_s == 120.0 and settings.seed == 3
    assert settings.users_per_account == 3


def test_accounts_csv(tmp_path: Path) -> None:
    good = tmp_path / "accounts.csv"
    good.write_text("email,password,role\na@x.io,pw1,admin\nb@x.io,pw2,client\n")
    assert read_accounts_csv(good) == (
        StagingAccount("a@x.io", "pw1", "admin"),
        StagingAccount("b@x.io", "pw2", "client"),
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("email,password,role\na@x.io,pw1,root\n")
    with pytest.raises(UsageError, match="line 2"):
        read_accounts_csv(bad)
    with pytest.raises(UsageError, match="cannot read"):
        read_accounts_csv(tmp_path / "missing.csv")
    only_admins = tmp_path / "admins.csv"
    only_admins.write_text("email,password,role\na@x.io,pw1,admin\n")
    with pytest.raises(UsageError, match="one admin and one client"):
        staging_settings("http://127.0.0.1:8000", accounts=only_admins)


def test_login_pacing_keeps_a_seat_under_the_limit() -> None:
    assert login_pacing_delay_s([], now=100.0) == 0.0
    logins = [float(t) for t in range(25)]  # 25 logins at t = 0..24
    assert login_pacing_delay_s(logins, now=30.0) == pytest.approx(30.0)  # until t=60
    assert login_pacing_delay_s(logins, now=61.0) == 0.0
    assert login_pacing_delay_s(logins[:24], now=30.0) == 0.0


def test_launcher_builds_the_demo_traffic_command_and_checks_first(tmp_path: Path) -> None:
    argv = staging_users_argv(
        "http://127.0.0.1:9",
        90.0,
        5,
        11,
        accounts_file=tmp_path / "a.csv",
        grace_s=4.0,
        summary_json=tmp_path / "s.json",
    )
    assert argv[:3] == [sys.executable, "-m", "tracereplay.demo.traffic"]
    assert argv[3:] == [
        "--host", "http://127.0.0.1:9", "--duration", "90s", "--users", "5", "--seed", "11",
        "--grace", "4s", "--summary-json", str(tmp_path / "s.json"),
        "--users-per-account", "3", "--failed-logins", "0", "--accounts", str(tmp_path / "a.csv"),
    ]  # fmt: skip
    with pytest.raises(UsageError, match="only loopback"):
        run_staging_users_in_subprocess("http://example.com", 5.0)


def test_a_mistyped_password_differs_in_one_character_and_keeps_the_account() -> None:
    import random

    from tracereplay.demo.traffic.settings import mistyped

    rng = random.Random(3)
    for password in ("pw", "xxxx", "x", "correct horse"):
        account = StagingAccount("a@x.io", password, "client")
        wrong = mistyped(account, rng)
        assert (wrong.email, wrong.role) == (account.email, account.role)
        assert wrong.password != password and len(wrong.password) == len(password)
        assert sum(a != b for a, b in zip(wrong.password, password, strict=True)) == 1
