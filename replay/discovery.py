"""The discovery phase: before its first session, each replay process signs in once as
every account its sessions use and calls the learned list endpoints once (the first page),
so a session that needs an id before any answer of its own (a `?client_id=` at its start)
takes one its account can see, not a made-up one (a 404 the real traffic did not have).
For a trace replay with evidence (replay/evidence.py) it also keeps what the lists show
of their objects, which the account choice matches against what the real sessions saw.

Bounded: one login, one call per list endpoint and one logout per account, and a time
budget (`discovery_budget_s`: 5 % of the plan window, 2 to 30 s) that ends it wherever it
is, a slow request included; reads only (ownership clears every request as usual). It runs
before the run's time zero, so sessions start on time. Reported in summary.json
(`discovery`). `discover` is the pure loop; `discovery_phase` sends (inside locust).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracereplay.models.id_select import parse_json

from .credentials import Credential, assign_account
from .evidence import evidence_keys, own_objects
from .liveids import CredentialPools, RunObjects, SessionIds
from .plan import Plan, PlannedRequest
from .sources import Knowledge, spread_address

if TYPE_CHECKING:
    from .driver import DriverSettings
    from .ratelimit import RateLimiter
    from .sender import Sender

MAX_DISCOVERY_S = 30.0
MIN_DISCOVERY_S = 2.0
DISCOVERY_SHARE = 0.05
DISCOVERY_NAME = "discovery: "
"""Prefix of the name discovery requests are reported to Locust under."""


def discovery_budget_s(window_s: float) -> float:
    """How long the discovery phase may take for a plan window of `window_s`."""
    return min(MAX_DISCOVERY_S, max(MIN_DISCOVERY_S, DISCOVERY_SHARE * window_s))


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
    report: DiscoveryReport | None = None,
) -> DiscoveryReport:
    """Run the discovery (`send` sends one request for one account and answers whether it
    failed); fill `pools`; count into `report` as it goes."""
    report = report or DiscoveryReport()
    report.endpoints = [r.endpoint for r in requests]
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


def discovery_phase(
    sender: Sender,
    plan: Plan,
    knowledge: Knowledge,
    credentials: Sequence[Credential],
    settings: DriverSettings,
    limiter: RateLimiter | None,
    pools: CredentialPools,
) -> DiscoveryReport:
    """Sign in as each account the plan's sessions use and call the list endpoints once,
    within `discovery_budget_s` of the plan window; fills `pools`."""
    import gevent

    from .correlate import SessionCorrelator
    from .driver import clear_planned
    from .ownership import Skipped
    from .urls import outgoing_url

    accounts: dict[int | None, Credential | None] = {}
    for session in plan.sessions:
        account = assign_account(credentials, session.index, session.role)
        accounts.setdefault(account.index, account.credential)
    correlators: dict[int | None, tuple[SessionCorrelator, object]] = {}

    def send(request: PlannedRequest, who: DiscoverySession) -> bool:
        if who.index not in correlators:
            address = spread_address(f"discovery/{who.index}")
            correlators[who.index] = (
                SessionCorrelator(
                    knowledge.rules, knowledge.auth, who.credential, ids=knowledge.ids,
                    session_ids=who.ids, protection=settings.protection,
                    address=address if settings.spread_addresses else None,
                ),
                sender.client(),
            )  # fmt: skip
        correlator, client = correlators[who.index]
        decision = clear_planned(correlator, request, settings.protection)
        if isinstance(decision, Skipped):
            return True
        url = outgoing_url(settings.origin, decision.request.path, decision.request.query)
        if limiter is not None:
            limiter.acquire()
        answer = sender.send(client, decision, url, DISCOVERY_NAME + request.endpoint)  # type: ignore[arg-type]
        correlator.observe(request, answer.status, answer.headers, answer.body, decision.request)
        failed = answer.status is None or answer.status >= 400
        if keys and not failed:  # what the lists show of their objects, for the evidence
            pools.describe(own_objects(parse_json(answer.body), keys))
        return failed

    # Trace replays whose sessions carry evidence (replay/evidence.py) match it against
    # the objects each account's lists show.
    keys = evidence_keys(knowledge.ids) if any(s.saw for s in plan.sessions) else ()
    budget_s = discovery_budget_s(plan.duration_s)
    ordered = sorted(accounts.items(), key=lambda a: -1 if a[0] is None else a[0])
    requests = discovery_requests(plan, knowledge)
    report = DiscoveryReport(endpoints=[r.endpoint for r in requests])
    started = time.monotonic()
    try:
        with gevent.Timeout(budget_s):
            discover(
                ordered, requests, pools, RunObjects(), send,
                login_endpoint=knowledge.auth.login_endpoint, budget_s=budget_s, report=report,
            )  # fmt: skip
    except gevent.Timeout:
        report.stopped = f"time budget ({budget_s:g} s) spent"
        report.ids = pools.size()
        report.seconds = round(time.monotonic() - started, 3)
    return report
