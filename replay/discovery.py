"""The discovery phase: before its first session, each replay process signs in once as
every account its sessions use and calls the learned list endpoints once (the first page),
so a session that needs an id before any answer of its own (a `?client_id=` at its start)
takes one its account can see, not a made-up one (a 404 the real traffic did not have).

Bounded: at most `MAX_DISCOVERY_S` in all and one login, one call per list endpoint and one
logout per account; reads only (ownership clears every request as usual). Reported in
summary.json (`discovery`). No I/O here but through the `send` callable the driver gives.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .credentials import Credential
from .liveids import CredentialPools, RunObjects, SessionIds
from .plan import Plan, PlannedRequest
from .sources import Knowledge

MAX_DISCOVERY_S = 30.0
DISCOVERY_NAME = "discovery: "
"""Prefix of the name discovery requests are reported to Locust under."""


@dataclass
class DiscoveryReport:
    accounts: int = 0
    requests: int = 0
    failures: int = 0
    ids: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    """Why it ended early (time budget, no --credentials), else None."""
    endpoints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DiscoverySession:
    """One account's discovery: its index, the account, its id state."""

    index: int | None
    credential: Credential | None
    ids: SessionIds


def discovery_requests(plan: Plan, knowledge: Knowledge) -> list[PlannedRequest]:
    """Login (as planned in the first session that has one), each list producer's first
    page, logout (as planned): the requests one account's discovery sends."""
    auth = knowledge.auth
    planned = [r for s in plan.sessions for r in s.requests]
    login = next((r for r in planned if r.endpoint == auth.login_endpoint), None)
    logout = next((r for r in planned if r.endpoint == auth.logout_endpoint), None)
    lists = [
        PlannedRequest(endpoint=endpoint, method="GET", path=endpoint.partition(" ")[2])
        for endpoint in dict.fromkeys(p.endpoint for p in knowledge.ids.list_producers())
    ]
    if not lists:
        return []
    return [r for r in (login, *lists, logout) if r is not None]


def discover(
    accounts: Sequence[tuple[int | None, Credential | None]],
    requests: Sequence[PlannedRequest],
    pools: CredentialPools,
    run: RunObjects,
    send: Callable[[PlannedRequest, DiscoverySession], bool],
    *,
    login_endpoint: str | None,
    budget_s: float = MAX_DISCOVERY_S,
    clock: Callable[[], float] = time.monotonic,
) -> DiscoveryReport:
    """Run the discovery (`send` sends one request for one account and answers whether it
    failed); fill `pools`."""
    report = DiscoveryReport(endpoints=[r.endpoint for r in requests])
    if not requests:
        report.stopped = "no list endpoint hands out ids"
        return report
    if login_endpoint is not None and all(c is None for _, c in accounts):
        report.stopped = "no --credentials to sign in with"
        return report
    started = clock()
    for index, credential in accounts:
        if clock() - started > budget_s:
            report.stopped = f"time budget ({budget_s:g} s) spent"
            break
        session = DiscoverySession(
            index, credential, SessionIds(-1, random.Random(0), run, pools, index)
        )
        report.accounts += 1
        for request in requests:
            failed = send(request, session)
            report.requests += 1
            report.failures += int(failed)
            if request.endpoint == login_endpoint and failed:
                break  # this account signs in no more than its sessions will
            if clock() - started > budget_s:
                break
    report.ids = pools.size()
    report.seconds = round(clock() - started, 3)
    return report
