"""`ReplayDriver`: releases planned sessions on time, each in its own greenlet with its own
HTTP session (cookies, connection pool), and measures every request. Runs inside locust.

Open loop between sessions: the driver sleeps until a session's planned start and spawns
it, whatever the target is doing (a pool that grows as needed). Closed loop inside a
session: each request waits for the previous answer plus the planned think time.

Bounded: a request gets `request_timeout_s` in all (then it is a timeout), its answer is
read up to `max_body` bytes (the connection is closed on the rest), and sessions still
running `grace_s` after the last planned start are cut, the request each was waiting on
recorded as timed out. A session that raises stops the whole driver: `run` re-raises it.

A request's result is a few list appends here; the ResultWriter converts and writes it
on a native thread (replay/offload.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
import gevent.pool
from locust import User
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpSession

from tracereplay.models.correlations import AuthInfo, CorrelationRule

from .accounting import offered_requests
from .body import ACCEPT_ENCODING, DEFAULT_MAX_BODY, read_body
from .correlate import Credential, PreparedRequest, SessionCorrelator, SharedValues, credential_for
from .plan import Plan, PlannedSession
from .ratelimit import RateLimiter
from .results import RequestResult, ResultWriter
from .urls import Origin, OutgoingUrl, outgoing_url

CUT_ERROR = "cut: no answer before the run ended"


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
    ) -> None:
        self.user = user
        self.plan = plan
        self.rules = list(rules)
        self.auth = auth
        self.credentials = list(credentials)
        self.writer = writer
        self.limiter = limiter
        self.settings = settings
        self.sessions = writer.sessions
        self.sessions.planned = len(plan.sessions)
        self.sessions.window_s = plan.duration_s
        self.sessions.offered = offered_requests(plan)
        self._group = gevent.pool.Group()
        self._shared = SharedValues()
        self._failed = gevent.event.Event()
        self._failure: BaseException | None = None
        self._stopping = False

    def run(self, zero_wall_s: float, zero_mono_s: float) -> None:
        """Play the plan from time zero (given on both clocks); returns when done, raises
        what a session raised (after stopping the others)."""
        self.sessions.zero_s = zero_wall_s
        flusher = gevent.spawn(self._flush_every_second)
        try:
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

    def _session(self, session: PlannedSession, intended_wall_s: float, zero_mono_s: float) -> None:
        try:
            self._play(session, intended_wall_s, zero_mono_s)
        except gevent.GreenletExit:
            self.sessions.cut += 1
            self.sessions.cut_sessions.append(session.index)
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
        client = FastHttpSession(  # its own connections and cookie jar: one user
            self.settings.origin.base,
            self.user.environment.events.request,
            user=self.user,
            network_timeout=self.settings.network_timeout_s,
            connection_timeout=self.settings.connection_timeout_s,
        )
        correlator = SessionCorrelator(
            self.rules,
            self.auth,
            credential_for(self.credentials, session.index, session.role),
            shared=self._shared,
        )
        intended = intended_wall_s
        for seq, planned in enumerate(session.requests):
            if seq > 0 and planned.think_s > 0:
                gevent.sleep(planned.think_s)
            if seq > 0:
                intended += planned.think_s
            prepared = correlator.prepare(planned)
            url = outgoing_url(self.settings.origin, prepared.path, prepared.query)
            if self.limiter is not None:
                self.limiter.acquire()
            sent = _Sent(session.index, seq, planned.endpoint, prepared, intended, time.time())
            try:
                answer = self._send(client, prepared, url, planned.endpoint)
            except gevent.GreenletExit:  # cut while waiting for the answer: it counts
                self.writer.add(sent.result(_Answer(None, CUT_ERROR, [], None, timed_out=True)))
                raise
            self.writer.add(sent.result(answer))
            correlator.observe(planned, answer.status, answer.headers, answer.body)
            intended = time.time()  # the next request is planned from this answer
            if correlator.login_failed:
                self.sessions.login_failed += 1
                return
        self.sessions.completed += 1

    def _send(
        self, client: FastHttpSession, prepared: PreparedRequest, url: OutgoingUrl, name: str
    ) -> _Answer:
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
