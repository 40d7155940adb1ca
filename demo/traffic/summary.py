"""What a staging-users run did: requests per endpoint, sessions per kind, as plain data.

`StagingSummary` round-trips through JSON (`--summary-json`) and renders as rich tables.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from tracereplay.demo.traffic.behaviors import BEHAVIORS

SUMMARY_SCHEMA = "tracereplay.staging-summary/1"

Outcome = Literal["logged_out", "ended", "cut", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("logged_out", "ended", "cut", "failed")
"""logged_out: ran its chain and logged out; ended: ran its chain and just stopped;
cut: a scale-down or the end of the run stopped it midway; failed: its login failed."""


@dataclass(frozen=True)
class EndpointStats:
    """Requests to one route template (Locust's request name)."""

    method: str
    name: str
    requests: int
    failures: int
    median_ms: float
    p95_ms: float


@dataclass(frozen=True)
class SessionStats:
    """Sessions of one behavior (role × kind) and how they ended."""

    behavior: str
    role: str
    kind: str
    started: int
    logged_out: int
    ended: int
    cut: int
    failed: int


@dataclass(frozen=True)
class AccountStats:
    """One account and the seats (users) that shared it."""

    email: str
    role: str
    users: int
    """Seats that signed in with it over the run (each its own connections)."""
    peak_concurrent_users: int
    """Most seats using it at the same time."""
    sessions: int


@dataclass(frozen=True)
class ErrorStats:
    method: str
    name: str
    error: str
    occurrences: int


@dataclass(frozen=True)
class StagingSummary:
    """The outcome of `run_staging_users`."""

    host: str
    seed: int
    duration_s: float
    elapsed_s: float
    peak_users: int
    max_users: int
    requests: int
    failures: int
    total_rps: float
    endpoints: tuple[EndpointStats, ...]
    sessions: tuple[SessionStats, ...]
    errors: tuple[ErrorStats, ...]
    user_errors: int
    """Exceptions in the users' own code (bugs), not failed requests."""
    interrupted: bool = False
    users_per_account: int = 1
    """The run's setting: live seats that share one account."""
    accounts: tuple[AccountStats, ...] = ()
    """Per account used, in first-use order."""

    @property
    def sessions_started(self) -> int:
        return sum(s.started for s in self.sessions)

    @property
    def users_started(self) -> int:
        """Seats (users) that signed in over the run."""
        return sum(a.users for a in self.accounts)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SUMMARY_SCHEMA, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StagingSummary:
        if data.get("schema") != SUMMARY_SCHEMA:
            raise ValueError(f"not a {SUMMARY_SCHEMA} document")
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["endpoints"] = tuple(EndpointStats(**e) for e in data["endpoints"])
        values["sessions"] = tuple(SessionStats(**s) for s in data["sessions"])
        values["errors"] = tuple(ErrorStats(**e) for e in data["errors"])
        values["accounts"] = tuple(AccountStats(**a) for a in data.get("accounts", ()))
        return cls(**values)

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read_json(cls, path: Path) -> StagingSummary:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


class SessionLog:
    """Counts sessions as the users start and finish them, and which seats use which
    account (one process, no locking)."""

    def __init__(self) -> None:
        self.started: Counter[str] = Counter()
        self.finished: Counter[tuple[str, Outcome]] = Counter()
        self.live: Counter[str] = Counter()  # account email -> seats using it now
        self._seats: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()
        self._sessions: Counter[str] = Counter()
        self._roles: dict[str, str] = {}  # in first-use order

    def join(self, email: str, role: str) -> None:
        """A seat starts using the account `email`."""
        self._roles.setdefault(email, role)
        self.live[email] += 1
        self._seats[email] += 1
        self._peak[email] = max(self._peak[email], self.live[email])

    def leave(self, email: str) -> None:
        """A seat stops (it never uses another account)."""
        self.live[email] -= 1

    def start(self, behavior: str, email: str | None = None) -> None:
        self.started[behavior] += 1
        if email is not None:
            self._sessions[email] += 1

    def finish(self, behavior: str, outcome: Outcome) -> None:
        self.finished[behavior, outcome] += 1

    def stats(self) -> tuple[SessionStats, ...]:
        """One row per behavior, in BEHAVIORS order; sessions still open count as cut."""
        rows = []
        for behavior in BEHAVIORS:
            counts = {outcome: self.finished[behavior.name, outcome] for outcome in OUTCOMES}
            open_now = self.started[behavior.name] - sum(counts.values())
            counts["cut"] += max(0, open_now)
            rows.append(
                SessionStats(
                    behavior.name, behavior.role, behavior.kind, self.started[behavior.name],
                    **counts,
                )
            )  # fmt: skip
        return tuple(rows)

    def account_stats(self) -> tuple[AccountStats, ...]:
        return tuple(
            AccountStats(email, role, self._seats[email], self._peak[email], self._sessions[email])
            for email, role in self._roles.items()
        )


def render_summary(summary: StagingSummary, console: Console) -> None:
    """The end-of-run tables: endpoints, sessions by kind, totals and errors."""
    endpoints = Table(title="Requests by endpoint", title_justify="left")
    endpoints.add_column("endpoint (route template)", no_wrap=True)
    for column in ("requests", "failures", "p50 ms", "p95 ms"):
        endpoints.add_column(column, justify="right")
    for row in sorted(summary.endpoints, key=lambda e: (-e.requests, e.name)):
        endpoints.add_row(
            row.name, str(row.requests), str(row.failures), f"{row.median_ms:.0f}",
            f"{row.p95_ms:.0f}",
        )  # fmt: skip
    console.print(endpoints)

    sessions = Table(title="Sessions by kind", title_justify="left")
    for column in ("role", "kind", "sessions", "logged out", "ended", "cut", "failed"):
        sessions.add_column(column, justify="left" if column in ("role", "kind") else "right")
    for s in summary.sessions:
        sessions.add_row(
            s.role, s.kind, str(s.started), str(s.logged_out), str(s.ended), str(s.cut),
            str(s.failed),
        )  # fmt: skip
    console.print(sessions)

    if summary.accounts:
        accounts = Table(title="Accounts shared by users", title_justify="left")
        accounts.add_column("account", no_wrap=True)
        accounts.add_column("role")
        for column in ("users", "at once (max)", "sessions"):
            accounts.add_column(column, justify="right")
        for a in summary.accounts:
            accounts.add_row(
                a.email, a.role, str(a.users), str(a.peak_concurrent_users), str(a.sessions)
            )
        console.print(accounts)

    if summary.errors:
        errors = Table(title="Failures", title_justify="left")
        errors.add_column("endpoint", no_wrap=True)
        errors.add_column("error")
        errors.add_column("count", justify="right")
        for error in summary.errors:
            errors.add_row(error.name, error.error, str(error.occurrences))
        console.print(errors)

    state = " (interrupted)" if summary.interrupted else ""
    console.print(
        f"{summary.requests} requests, {summary.failures} failures, "
        f"{summary.sessions_started} sessions in {summary.elapsed_s:.1f} s "
        f"({summary.total_rps:.1f} rps; peak {summary.max_users} of {summary.peak_users} users; "
        f"{summary.users_started} users on {len(summary.accounts)} accounts, at most "
        f"{max((a.peak_concurrent_users for a in summary.accounts), default=0)} at once on one)"
        f"{state}; "
        f"user errors: {summary.user_errors}"
    )
