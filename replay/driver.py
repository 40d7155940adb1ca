"""`ReplayDriver`: releases planned sessions on time, each in its own greenlet with its own
HTTP session (cookies, connection pool), and measures every request. Runs inside locust.

Open loop between sessions: the driver sleeps until a session's planned start and spawns
it, whatever the target is doing (a pool that grows as needed). Closed loop inside a
session: each request waits for the previous answer plus the planned think time.

Bounded: a request gets `request_timeout_s` in all (then it is a timeout), its answer is
read up to `max_body` bytes (the connection is closed on the rest), and sessions still
running `grace_s` after the last planned start are cut, the request each was waiting on
recorded as timed out. A session that raises stops the whole driver: `run` re-raises it.

Safe: every request goes through `ownership.clear` (a modifying one only to objects its
session created; the rest are skipped and counted) and `urls.outgoing_url`. Before the
first session, a bounded discovery phase (replay/discovery.py) fills each account's pool.

A request's result is one tuple appended to a list here; the ResultWriter converts and
writes it on a native thread (replay/offload.py).

Starts on time: the driver spawns each session START_LEAD_S before its start, and the
session waits for its own start itself (replay/starts.py `sleep_until`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
import gevent.pool
from locust import User
from locust.contrib.fasthttp import FastHttpSession

from tracereplay.models.correlations import AuthInfo, CorrelationRule, auth_to_json
from tracereplay.models.ids import NO_IDS, IdModel, ids_to_json

from .accounting import offered_requests
from .body import DEFAULT_MAX_BODY
from .correlate import Credential, PreparedRequest, SessionCorrelator
from .credentials import assign_account, blank_login_body
from .idvalues import account_preference
from .liveids import CredentialPools, RunObjects, SessionIds
from .ownership import NOT_OWNED, Cleared, Protection, Skipped
from .placeholders import recorded_query
from .plan import Plan, PlannedRequest, PlannedSession
from .ratelimit import RateLimiter
from .results import RequestResult, ResultWriter
from .sender import Answer, RequestTimer, Sender
from .standins import StandIns
from .starts import sleep_until
from .urls import Origin, OutgoingUrl, outgoing_url

CUT_ERROR = "cut: no answer before the run ended"
CUT_ANSWER = Answer(None, CUT_ERROR, [], None, timed_out=True)
START_LEAD_S = 0.05
"""A session is spawned this long before its planned start (it then waits for it itself)."""
URL_CACHE_MAX = 4096
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriverSettings:
    origin: Origin
    grace_s: float = 30.0
    """How long sessions still running after the last planned start may go on."""
    network_timeout_s: float = 30.0
    connection_timeout_s: float = 10.0
    request_timeout_s: float = 60.0
    """A request's whole time: connect, send, answer, body."""
    max_body: int = DEFAULT_MAX_BODY
    protection: Protection = field(default_factory=Protection)
    """What ownership protects (--protect, learned body-storing POSTs, --allow-foreign-writes)."""
    spread_addresses: bool = False
    """Send each session's X-Forwarded-For (its captured address pseudonym)."""


class ReplayDriver:
    def __init__(
        self,
        user: User,
        plan: Plan,
        *,
        rules: Sequence[CorrelationRule],
        auth: AuthInfo,
        credentials: Sequence[Credential],
        writer: ResultWriter,
        limiter: RateLimiter | None,
        settings: DriverSettings,
        ids: IdModel = NO_IDS,
        pools: CredentialPools | None = None,
    ) -> None:
        self.user = user
        self.plan = plan
        self.rules = list(rules)
        self.auth = auth
        self.ids = ids
        self.credentials = list(credentials)
        self.writer = writer
        self.limiter = limiter
        self.settings = settings
        self.sessions = writer.sessions
        self.sessions.planned = len(plan.sessions)
        self.safety = writer.safety
        self.sessions.window_s = plan.duration_s
        self._group = gevent.pool.Group()
        self.sender = Sender(user, settings)
        self._pools = pools or CredentialPools()
        self._run = RunObjects(writer.created_event, writer.safety.selection)
        self._unmatched_said = False
        self._failed = gevent.event.Event()
        self._failure: BaseException | None = None
        self._stopping = False
        self._order: list[PlannedSession] | None = None
        self._urls: dict[tuple[str, str | None], OutgoingUrl] = {}
        self._stand_ins = StandIns({}, self.safety)

    def prepare(self) -> None:
        """Work on the whole plan, done before time zero: the requests it offers within its
        window, the order of its starts, how cleanup signs in. On a large plan this holds
        the interpreter for a while: run it with `offload.off_hub` (the hub goes on with a
        worker's heartbeats); `run` does it first if nobody did."""
        self.sessions.offered = offered_requests(self.plan)
        self._order = sorted(self.plan.sessions, key=lambda s: (s.start_s, s.index))
        self._stand_ins = StandIns.from_plan(self.plan, self.ids, self.safety)
        self._record_cleanup_info()

    def run(self, zero_wall_s: float, zero_mono_s: float) -> None:
        """Play the plan from time zero (given on both clocks); returns when done, raises
        what a session raised (after stopping the others)."""
        self.sessions.zero_s = zero_wall_s
        flusher = gevent.spawn(self._flush_every_second)
        try:
            if self._order is None:
                self.prepare()
            for session in self._order or ():
                due_mono_s = zero_mono_s + session.start_s
                delay = due_mono_s - START_LEAD_S - time.monotonic()
                if delay > 0 and self._failed.wait(delay):
                    break
                if self._failed.is_set():
                    break
                self._group.spawn(self._session, session, zero_wall_s + session.start_s, due_mono_s)
            if not self._failed.is_set():
                done = gevent.spawn(self._group.join)
                grace_s = self.settings.grace_s + START_LEAD_S  # from the last start
                gevent.wait([done, self._failed], timeout=grace_s, count=1)
                done.kill()
        finally:
            self._group.kill(block=True, timeout=5)  # each one killed counts itself as cut
            flusher.kill()
            self.writer.close()
        if self._failure is not None:
            raise self._failure

    def _flush_every_second(self) -> None:
        while True:
            gevent.sleep(1.0)
            self.writer.flush()

    def stop(self) -> None:
        """End now (Locust is quitting): cut the running sessions, recording the request
        each was waiting on, and close the writer. `run` then returns at once."""
        self._stopping = True
        self._group.kill(block=True, timeout=5)
        self.writer.close()

    def _session(self, session: PlannedSession, intended_wall_s: float, due_mono_s: float) -> None:
        try:
            sleep_until(due_mono_s)
        except gevent.GreenletExit:
            return  # stopped before its start: not started (counted as skipped)
        try:
            self._play(session, intended_wall_s, due_mono_s)
        except gevent.GreenletExit:
            self.sessions.cut += 1
            self.sessions.cut_sessions.append(session.index)
            raise
        except Exception as exc:  # a bug or an unsafe request: the run must not go on quietly
            self.sessions.failed += 1
            if self._failure is None and not self._stopping:
                self._failure = exc
            self._failed.set()

    def _play(self, session: PlannedSession, intended_wall_s: float, due_mono_s: float) -> None:
        self.sessions.started += 1
        late_ms = (time.monotonic() - due_mono_s) * 1000.0
        self.sessions.lateness_ms.append(late_ms if late_ms > 0.0 else 0.0)
        client, timer = self.sender.client(), self.sender.timer()
        try:
            self._requests(session, intended_wall_s, client, timer)
        finally:
            timer.close()

    def _requests(
        self,
        session: PlannedSession,
        intended_wall_s: float,
        client: FastHttpSession,
        timer: RequestTimer,
    ) -> None:
        correlator = self._correlator(session)
        intended = intended_wall_s
        add, index = self.writer.add, session.index
        for seq, planned in enumerate(session.requests):
            if seq > 0:
                # With no think time too: a zero sleep yields to the hub, as Locust's
                # `constant(0)` wait does between tasks. The sessions whose answers came
                # in the same loop iteration then all read and record them before any
                # sends its next request: sends leave together (one wake-up of a target
                # on the same machine, not one each; the same code hot for every session)
                # and long sessions cost 9-25 % less CPU a request (bench/README.md, gen13). The
                # request is cleared after the yield, right before it is sent.
                gevent.sleep(planned.think_s)
                intended += planned.think_s
            decision = self._clear(correlator, planned)
            if isinstance(decision, Skipped) and decision.reason == NOT_OWNED:
                decision = self._stand_in(correlator, planned, decision, index, client, timer)
            if isinstance(decision, Skipped):
                self.safety.skip(decision.endpoint, decision.reason)
                continue
            prepared = decision.request
            url = self._url(prepared.path, prepared.query)
            if self.limiter is not None:
                self.limiter.acquire()
            sent_s, started = time.time(), time.perf_counter()
            try:
                answer = self.sender.send(client, decision, url, planned.endpoint, timer)
            except gevent.GreenletExit:  # cut while waiting for the answer: it counts
                add(_result(index, seq, planned.endpoint, prepared, intended, sent_s, started,
                            CUT_ANSWER))  # fmt: skip
                raise
            add(_result(index, seq, planned.endpoint, prepared, intended, sent_s, started, answer))
            correlator.observe(planned, answer.status, answer.headers, answer.body, prepared)
            intended = time.time()  # the next request is planned from this answer
            if correlator.login_failed and planned.endpoint == self.auth.login_endpoint:
                if not (session.login_fails or planned.login_refused):
                    self.sessions.login_failed += 1
                    return
                self.safety.logins_failed_planned += 1  # as the real one: it goes on
        self.sessions.completed += 1

    def _stand_in(
        self,
        correlator: SessionCorrelator,
        planned: PlannedRequest,
        skipped: Skipped,
        index: int,
        client: FastHttpSession,
        timer: RequestTimer,
    ) -> Cleared | Skipped:
        """A stand-in of the session's own for the object a protected request named
        (replay/standins.py): its learned create first (not in timing.parquet, counted in
        `stand_ins`), then the request as ownership decides it again."""
        role = correlator.credential.role if correlator.credential else None
        create = self._stand_ins.template(correlator.stand_in_create(planned), role, index)
        made = self._clear(correlator, create) if create is not None else None
        if create is None or not isinstance(made, Cleared):
            return skipped
        if self.limiter is not None:
            self.limiter.acquire()
        url = self._url(made.request.path, made.request.query)
        answer = self.sender.send(client, made, url, create.endpoint, timer)
        correlator.observe(create, answer.status, answer.headers, answer.body, made.request)
        decision = self._clear(correlator, planned)
        used = isinstance(decision, Cleared)
        self._stand_ins.answered(planned.endpoint, create.endpoint, role, answer.status, used)
        return decision

    def _url(self, path: str, query: str | None) -> OutgoingUrl:
        """`outgoing_url` of the run's origin, kept for the paths sessions send again (most
        of them: a plan repeats its endpoints' paths); a path that fails is never kept."""
        key = (path, query)
        url = self._urls.get(key)
        if url is None:
            url = outgoing_url(self.settings.origin, path, query)
            if len(self._urls) >= URL_CACHE_MAX:
                self._urls.clear()
            self._urls[key] = url
        return url

    def _correlator(self, session: PlannedSession) -> SessionCorrelator:
        """The session's correlation state, signed in as the account that fits its role."""
        prefer = account_preference(self.ids, self._pools, session)
        account = assign_account(
            self.credentials, session.index, session.role, session.login_fails, prefer
        )
        if not account.matched:
            self.safety.role_unmatched += 1
            if not self._unmatched_said:
                self._unmatched_said = True
                logger.warning(
                    "a session showed role %r, which no --credentials account has: such "
                    "sessions sign in as other accounts (counted in sessions_role_unmatched)",
                    session.role,
                )
        seed = f"{self.plan.seed}/{session.index}"  # its generator, made when first used
        ids = SessionIds(session.index, seed, self._run, self._pools, account.index)
        address = session.address if self.settings.spread_addresses else None
        return SessionCorrelator(
            self.rules,
            self.auth,
            account.credential,
            ids=self.ids,
            session_ids=ids,
            protection=self.settings.protection,
            address=address,
            evidence=session.saw,
        )

    def _clear(self, correlator: SessionCorrelator, planned: PlannedRequest) -> Cleared | Skipped:
        decision = correlator.clear(planned, self.settings.protection)  # as clear_planned
        if type(decision) is Cleared and decision.foreign:
            self.safety.foreign(planned.endpoint)
        return decision

    # ---- before the sessions ----------------------------------------------------------------

    def _record_cleanup_info(self) -> None:
        """How `tracereplay cleanup` signs in (the planned login and logout, their
        credential fields blanked: no account in it) and which ids it may delete."""
        auth = self.auth
        planned: dict[str, PlannedRequest] = {}
        for session in self.plan.sessions:
            for request in session.requests:
                planned.setdefault(request.endpoint, request)
        templates = {
            name: _template(planned.get(endpoint) if endpoint else None)
            for name, endpoint in (("login", auth.login_endpoint), ("logout", auth.logout_endpoint))
        }
        self.writer.cleanup_info(
            {"host": self.settings.origin.base, "auth": auth_to_json(auth),
             "ids": ids_to_json(self.ids), **templates}
        )  # fmt: skip


def clear_planned(
    correlator: SessionCorrelator, planned: PlannedRequest, protection: Protection
) -> Cleared | Skipped:
    """The planned request with its live values, as ownership decides it."""
    return correlator.clear(planned, protection)


def _template(request: PlannedRequest | None) -> dict[str, Any] | None:
    """A planned login or logout as cleanup replays it: credential fields blanked."""
    if request is None:
        return None
    return {
        "endpoint": request.endpoint,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": [list(h) for h in request.headers if h[0].lower() == "content-type"],
        "body": blank_login_body(request.body, list(request.headers)),
    }


def _result(
    session: int,
    seq: int,
    endpoint: str,
    prepared: PreparedRequest,
    intended_s: float,
    sent_s: float,
    started: float,
    answer: Answer,
) -> RequestResult:
    """What the run records of one request (`started`: perf_counter at the send)."""
    return RequestResult(
        session,
        seq,
        endpoint,
        prepared.method,
        prepared.path,
        recorded_query(prepared.query),  # no live cursor or key on disk
        intended_s,
        sent_s,
        (time.perf_counter() - started) * 1000.0,
        answer.status,
        answer.error,
        prepared.headers,
        len(prepared.body or b""),
        len(answer.body or b""),
        answer.timed_out,
        answer.truncated,
    )
