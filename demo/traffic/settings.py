"""What one staging-users run is allowed to do: a loopback host, bounded time and users.

Every value is checked here, before any locust import, so a bad option costs nothing.
"""

from __future__ import annotations

import csv
import ipaddress
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from tracereplay.errors import UsageError

Role = Literal["admin", "client"]

DEFAULT_DURATION_S = 120.0
DEFAULT_USERS = 30
DEFAULT_SEED = 7
DEFAULT_GRACE_S = 20.0
DEFAULT_USERS_PER_ACCOUNT = 3
MAX_USERS_PER_ACCOUNT = 50
MAX_USERS = 500
MAX_DURATION_S = 24 * 3600.0
MAX_GRACE_S = 300.0
MAX_FAILED_LOGIN_SHARE = 0.9
LOGIN_RETRY_SHARE = 0.7
"""Of the sessions whose first login is mistyped, the share that tries again (a think time
later, with the right password); the others give up (the session ends "failed")."""

LOGIN_WINDOW_S = 60.0
LOGINS_PER_WINDOW = 25
"""A seat never logs in more often than this per window: under the target's default limit
(30 per minute per client address), so a run at default settings sees no 429."""


@dataclass(frozen=True)
class StagingAccount:
    """Who a seat signs in as."""

    email: str
    password: str
    role: Role


@dataclass(frozen=True)
class StagingSettings:
    """One checked run of the staging users."""

    host: str
    """Base URL, loopback only, no trailing slash."""
    duration_s: float
    """The whole compressed day."""
    users: int
    """Peak number of seats (Locust users)."""
    seed: int
    accounts: tuple[StagingAccount, ...]
    grace_s: float
    """How long sessions may run on after a seat is stopped (Locust's stop_timeout)."""
    users_per_account: int = DEFAULT_USERS_PER_ACCOUNT
    """How many live seats share one account before the next account is used."""
    failed_login_share: float = 0.0
    """Share of sessions whose first login sends a mistyped password (401), as people do;
    `LOGIN_RETRY_SHARE` of them then sign in right. 0: every login is right."""


def loopback_base_url(url: str) -> str:
    """`url` without a trailing slash, if it is http(s) on a loopback address; else UsageError."""
    parts = urlsplit(url.strip())
    hostname = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not hostname:
        raise UsageError(
            f"--host must be an http(s) URL such as http://127.0.0.1:8000, not {url!r}"
        )
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--host has a bad port: {url!r}") from None
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(f"--host must be scheme://host[:port] only, not {url!r}")
    if parts.path not in ("", "/"):
        raise UsageError(f"--host must not have a path: {url!r}")
    if not _is_loopback(hostname):
        raise UsageError(
            f"refusing to send staging traffic to {hostname!r}: "
            "only loopback hosts (127.0.0.1, localhost, ::1) are allowed"
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def read_accounts_csv(path: Path) -> tuple[StagingAccount, ...]:
    """Accounts from a CSV with the header `email,password,role` (extra columns ignored)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise UsageError(f"cannot read --accounts {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--accounts {path} is not a readable CSV: {exc}") from None
    accounts = []
    for line, row in enumerate(rows, start=2):
        email, password = (row.get("email") or "").strip(), row.get("password") or ""
        role = (row.get("role") or "").strip()
        if not email or not password or role not in ("admin", "client"):
            raise UsageError(
                f"--accounts {path} line {line}: want email,password,role (admin|client)"
            )
        accounts.append(StagingAccount(email, password, "admin" if role == "admin" else "client"))
    return tuple(accounts)


def sandbox_staging_accounts(seed: int) -> tuple[StagingAccount, ...]:
    """The sandbox target's deterministic accounts for `seed`."""
    from tracereplay.demo.accounts import sandbox_accounts

    return tuple(StagingAccount(a.email, a.password, a.role) for a in sandbox_accounts(seed))


def staging_settings(
    host: str,
    duration_s: float = DEFAULT_DURATION_S,
    users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    *,
    accounts: Sequence[StagingAccount] | Path | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    users_per_account: int = DEFAULT_USERS_PER_ACCOUNT,
    failed_login_share: float = 0.0,
) -> StagingSettings:
    """Checked settings; accounts default to the sandbox's for `seed`. UsageError if bad."""
    base_url = loopback_base_url(host)
    if not 0 < duration_s <= MAX_DURATION_S:
        raise UsageError(f"--duration must be more than 0 s and at most 24 h, not {duration_s:g} s")
    if not 1 <= users <= MAX_USERS:
        raise UsageError(f"--users must be between 1 and {MAX_USERS}, not {users}")
    if not 0 <= grace_s <= MAX_GRACE_S:
        raise UsageError(f"--grace must be between 0 and {MAX_GRACE_S:g} s, not {grace_s:g} s")
    if not 1 <= users_per_account <= MAX_USERS_PER_ACCOUNT:
        raise UsageError(
            f"--users-per-account must be between 1 and {MAX_USERS_PER_ACCOUNT}, "
            f"not {users_per_account}"
        )
    if not 0 <= failed_login_share <= MAX_FAILED_LOGIN_SHARE:
        raise UsageError(
            f"--failed-logins must be a share between 0 and {MAX_FAILED_LOGIN_SHARE:g}, "
            f"not {failed_login_share:g}"
        )
    if accounts is None:
        chosen = sandbox_staging_accounts(seed)
    elif isinstance(accounts, Path):
        chosen = read_accounts_csv(accounts)
    else:
        chosen = tuple(accounts)
    roles = {account.role for account in chosen}
    if roles != {"admin", "client"}:
        raise UsageError("the staging users need at least one admin and one client account")
    return StagingSettings(
        base_url,
        float(duration_s),
        users,
        seed,
        chosen,
        float(grace_s),
        users_per_account,
        float(failed_login_share),
    )


def mistyped(account: StagingAccount, rng: random.Random) -> StagingAccount:
    """The account with one character of its password changed (a typo: it never matches)."""
    password = account.password
    at = rng.randrange(len(password)) if password else 0
    wrong = "x" if password[at : at + 1] != "x" else "y"
    return StagingAccount(account.email, password[:at] + wrong + password[at + 1 :], account.role)


def login_pacing_delay_s(
    recent_logins: Iterable[float],
    now: float,
    limit: int = LOGINS_PER_WINDOW,
    window_s: float = LOGIN_WINDOW_S,
) -> float:
    """How long to wait so that a login at `now` stays within `limit` per `window_s`."""
    last = deque(sorted(recent_logins), maxlen=limit)
    if len(last) < limit:
        return 0.0
    return max(0.0, last[0] + window_s - now)
