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
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gevent
import gevent.event
import gevent.pool
from locust import User
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpSession

from tracereplay.models.correlations import AuthInfo, CorrelationRule, auth_to_json
from tracereplay.models.ids import NO_IDS, IdModel, ids_to_json

from .body import ACCEPT_ENCODING, DEFAULT_MAX_BODY, read_body
from .correlate import Credential, PreparedRequest, SessionCorrelator
from .credentials import assign_account, blank_login_body
from .discovery import DISCOVERY_NAME, DiscoverySession, discover, discovery_requests
from .liveids import CredentialPools, RunObjects, SessionIds
from .ownership import Cleared, Protection, Skipped, clear
from .plan import Plan, PlannedRequest, PlannedSession
from .ratelimit import RateLimiter
from .results import RequestResult, ResultWriter
from .sources import Knowledge, spread_address
from .urls import Origin, OutgoingUrl, outgoing_url

CUT_ERROR = "cut: no answer before the run ended"
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
    discovery: bool = True


@dataclass(frozen=True)
class _Answer:
    status: int | None
    error: str | None
    headers: list[tuple[str, str]]
    body: bytes | None
    timed_out: bool = False
    truncated: bool = False


@dataclass(frozen=True)
class _Sent:
    """A request on its way: what the result of it will say besides the answer."""

    session: int
    seq: int
    endpoint: str
    prepared: PreparedRequest
    intended_s: float
    sent_s: float
    started: float = field(default_factory=time.perf_counter)

    def result(self, answer: _Answer) -> RequestResult:
        return RequestResult(
            session=self.session,
            seq=self.seq,
            endpoint=self.endpoint,
            method=self.prepared.method,
            path=self.prepared.path,
            query=self.prepared.query,
            intended_s=self.intended_s,
            sent_s=self.sent_s,
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
            status=answer.status,
            error=answer.error,
            req_headers=tuple(self.prepared.headers),
            req_body_size=len(self.prepared.body or b""),
            resp_body_size=len(answer.body or b""),
            timed_out=answer.timed_out,
            truncated=answer.truncated,
        )


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
        self._group = gevent.pool.Group()
        self._pools = CredentialPools()
        self._run = RunObjects(writer.created_event)
        self._unmatched_said = False
        self._failed = gevent.event.Event()
        self._failure: BaseException | None = None
        self._stopping = False

    def run(self, zero_wall_s: float, zero_mono_s: float) -> None:
        """Play the plan from time zero (given on both clocks); returns when done, raises
        what a session raised (after stopping the others)."""
        try:
            self._record_cleanup_info()
            if self.settings.discovery:
                self._discover()
            for session in sorted(self.plan.sessions, key=lambda s: (s.start_s, s.index)):
                delay = zero_mono_s + session.start_s - time.monotonic()
                if delay > 0 and self._failed.wait(delay):
                    break
                if self._failed.is_set():
                    break
                self._group.spawn(
                    self._session, session, zero_wall_s + session.start_s, zero_mono_s
                )
            if not self._failed.is_set():
                done = gevent.spawn(self._group.join)
                gevent.wait([done, self._failed], timeout=self.settings.grace_s, count=1)
                done.kill()
        finally:
            self._group.kill(block=True, timeout=5)  # each one killed counts itself as cut
            self.writer.close()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """End now (Locust is quitting): cut the running sessions, recording the request
        each was waiting on, and close the writer. `run` then returns at once."""
        self._stopping = True
        self._group.kill(block=True, timeout=5)
        self.writer.close()

    def _session(self, session: PlannedSession, intended_wall_s: float, zero_mono_s: float) -> None:
        try:
            self._play(session, intended_wall_s, zero_mono_s)
        except gevent.GreenletExit:
            self.sessions.cut += 1
            raise
        except Exception as exc:  # a bug or an unsafe request: the run must not go on quietly
            self.sessions.failed += 1
            if self._failure is None and not self._stopping:
                self._failure = exc
            self._failed.set()

    def _play(self, session: PlannedSession, intended_wall_s: float, zero_mono_s: float) -> None:
        self.sessions.started += 1
        late_ms = (time.monotonic() - (zero_mono_s + session.start_s)) * 1000.0
        self.sessions.lateness_ms.append(max(0.0, late_ms))
        client = self._client()
        correlator = self._correlator(session)
        intended = intended_wall_s
        for seq, planned in enumerate(session.requests):
            if seq > 0 and planned.think_s > 0:
                gevent.sleep(planned.think_s)
            if seq > 0:
                intended += planned.think_s
            decision = self._clear(correlator, planned)
            if isinstance(decision, Skipped):
                self.safety.skip(decision.endpoint, decision.reason)
                continue
            prepared = decision.request
            url = outgoing_url(self.settings.origin, prepared.path, prepared.query)
            if self.limiter is not None:
                self.limiter.acquire()
            sent = _Sent(session.index, seq, planned.endpoint, prepared, intended, time.time())
            try:
                answer = self._send(client, decision, url, planned.endpoint)
            except gevent.GreenletExit:  # cut while waiting for the answer: it counts
                self.writer.add(sent.result(_Answer(None, CUT_ERROR, [], None, timed_out=True)))
                raise
            self.writer.add(sent.result(answer))
            correlator.observe(planned, answer.status, answer.headers, answer.body, prepared)
            intended = time.time()  # the next request is planned from this answer
            if correlator.login_failed and planned.endpoint == self.auth.login_endpoint:
                if not session.login_fails:
                    self.sessions.login_failed += 1
                    return
                self.safety.logins_failed_planned += 1  # as the real one: it goes on
        self.sessions.completed += 1

    def _correlator(self, session: PlannedSession) -> SessionCorrelator:
        """The session's correlation state, signed in as the account that fits its role."""
        account = assign_account(self.credentials, session.index, session.role, session.login_fails)
        if not account.matched:
            self.safety.role_unmatched += 1
            if not self._unmatched_said:
                self._unmatched_said = True
                logger.warning(
                    "a session showed role %r, which no --credentials account has: such "
                    "sessions sign in as other accounts (counted in sessions_role_unmatched)",
                    session.role,
                )
        rng = random.Random(f"{self.plan.seed}/{session.index}")
        ids = SessionIds(session.index, rng, self._run, self._pools, account.index)
        address = session.address if self.settings.spread_addresses else None
        return SessionCorrelator(
            self.rules,
            self.auth,
            account.credential,
            ids=self.ids,
            session_ids=ids,
            protection=self.settings.protection,
            address=address,
        )

    def _clear(self, correlator: SessionCorrelator, planned: PlannedRequest) -> Cleared | Skipped:
        prepared = correlator.prepare(planned)
        decision = clear(
            prepared,
            planned.endpoint,
            correlator.owned,
            self.settings.protection,
            correlator.id_places(planned.endpoint),
        )
        if isinstance(decision, Cleared) and decision.foreign:
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

    def _discover(self) -> None:
        requests = discovery_requests(self.plan, Knowledge(self.rules, self.auth, self.ids))
        accounts: dict[int | None, Credential | None] = {}
        for session in self.plan.sessions:
            account = assign_account(self.credentials, session.index, session.role)
            accounts.setdefault(account.index, account.credential)

        def send(request: PlannedRequest, who: DiscoverySession) -> bool:
            correlator, client = self._discovery_clients.get(who.index, (None, None))
            if correlator is None or client is None:
                address = spread_address(f"discovery/{who.index}")
                correlator = SessionCorrelator(
                    self.rules, self.auth, who.credential, ids=self.ids, session_ids=who.ids,
                    protection=self.settings.protection,
                    address=address if self.settings.spread_addresses else None,
                )  # fmt: skip
                client = self._client()
                self._discovery_clients[who.index] = (correlator, client)
            decision = self._clear(correlator, request)
            if isinstance(decision, Skipped):
                return True
            url = outgoing_url(self.settings.origin, decision.request.path, decision.request.query)
            if self.limiter is not None:
                self.limiter.acquire()
            answer = self._send(client, decision, url, DISCOVERY_NAME + request.endpoint)
            correlator.observe(
                request, answer.status, answer.headers, answer.body, decision.request
            )
            return answer.status is None or answer.status >= 400

        self._discovery_clients: dict[int | None, tuple[SessionCorrelator, FastHttpSession]] = {}
        report = discover(
            sorted(accounts.items(), key=lambda a: -1 if a[0] is None else a[0]),
            requests,
            self._pools,
            self._run,
            send,
            login_endpoint=self.auth.login_endpoint,
        )
        self._discovery_clients.clear()
        self.safety.discovery = asdict(report)

    def _client(self) -> FastHttpSession:
        return FastHttpSession(
            self.settings.origin.base,
            self.user.environment.events.request,
            user=self.user,
            network_timeout=self.settings.network_timeout_s,
            connection_timeout=self.settings.connection_timeout_s,
        )

    def _send(
        self, client: FastHttpSession, cleared: Cleared, url: OutgoingUrl, name: str
    ) -> _Answer:
        """Send what ownership cleared, to the URL urls.py made (nothing else goes out)."""
        prepared = cleared.request
        headers = dict(prepared.headers)
        if not any(k.lower() == "accept-encoding" for k in headers):
            headers["Accept-Encoding"] = ACCEPT_ENCODING  # what read_body can decode
        timer = gevent.Timeout(self.settings.request_timeout_s)
        timer.start()
        started = time.perf_counter()
        try:
            # Redirects are never followed: a Location could point anywhere but --host.
            with client.request(
                prepared.method,
                url.text,
                name=name,
                data=prepared.body,  # type: ignore[arg-type]  # bytes are sent as is
                headers=headers,
                catch_response=True,
                allow_redirects=False,
                stream=True,  # read_body bounds what is read
            ) as response:
                return self._answer(response, timer, started)
        except gevent.Timeout as exc:  # fired outside what _answer guards (rare)
            if exc is not timer:
                raise
            return _Answer(None, _describe(exc, True), [], None, timed_out=True)
        finally:
            timer.close()

    def _answer(self, response: Any, timer: gevent.Timeout, started: float) -> _Answer:
        status = int(response.status_code or 0) or None
        # An HTTP answer is not a transport error, whatever its status (Locust sets
        # `error` for 4xx/5xx too); the status says what went wrong.
        raw_error = getattr(response, "error", None) if status is None else None
        timed_out = raw_error is timer or isinstance(raw_error, TimeoutError)
        headers = list(response.headers.items()) if response.headers else []
        body: bytes | None = None
        truncated = False
        if status is not None:
            encoding = next((v for k, v in headers if k.lower() == "content-encoding"), None)
            try:
                body, truncated = read_body(response.read, encoding, self.settings.max_body)
            except gevent.Timeout as exc:
                if exc is not timer:
                    raise
                raw_error, timed_out = exc, True
            except FAILURE_EXCEPTIONS as exc:  # the connection broke mid-body
                raw_error = exc
            if truncated or raw_error is not None:
                response._response.release()  # unread rest: close, never reuse
        error = None if raw_error is None else _describe(raw_error, timed_out)
        if error is not None and status is not None:
            response.failure(error)
        elif error is None and status is not None and status >= 400:
            response.failure(f"HTTP {status}")
        elif error is None and status is not None:
            response.success()
        # Locust's own stats get the whole time, body included (stream=True left it out).
        response.request_meta["response_time"] = (time.perf_counter() - started) * 1000.0
        response.request_meta["response_length"] = len(body or b"")
        return _Answer(status, error, headers, body, timed_out, truncated)


def _describe(error: BaseException, timed_out: bool) -> str:
    if timed_out:
        return "timeout: no complete answer within the request timeout"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # Transport messages may quote the URL; its query may carry a live token.
    text = text.split("?", 1)[0]
    return f"{type(error).__name__}: {text}"[:200]


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
