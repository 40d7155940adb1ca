"""`ReplayDriver`: releases planned sessions on time, each in its own greenlet with its own
HTTP session (cookies, connection pool), and measures every request. Runs inside locust.

Open loop between sessions: the driver sleeps until a session's planned start and spawns
it, whatever the target is doing (a pool that grows as needed). Closed loop inside a
session: each request waits for the previous answer plus the planned think time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.pool
from locust import User
from locust.contrib.fasthttp import FastHttpSession

from tracereplay.models.correlations import AuthInfo, CorrelationRule

from .correlate import Credential, SessionCorrelator, SharedValues, credential_for
from .plan import Plan, PlannedSession
from .ratelimit import RateLimiter
from .results import RequestResult, ResultWriter


@dataclass(frozen=True)
class DriverSettings:
    host: str
    grace_s: float = 30.0
    """How long sessions still running after the last planned start may go on."""
    network_timeout_s: float = 30.0
    connection_timeout_s: float = 10.0


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
        self._group = gevent.pool.Group()
        self._shared = SharedValues()

    def run(self, zero_wall_s: float, zero_mono_s: float) -> None:
        """Play the plan from time zero (given on both clocks); returns when done."""
        try:
            for session in sorted(self.plan.sessions, key=lambda s: (s.start_s, s.index)):
                delay = zero_mono_s + session.start_s - time.monotonic()
                if delay > 0:
                    gevent.sleep(delay)
                self._group.spawn(
                    self._session, session, zero_wall_s + session.start_s, zero_mono_s
                )
            self._group.join(timeout=self.settings.grace_s)
        finally:
            self.sessions.cut += len(self._group)
            self._group.kill(block=True, timeout=5)
            self.writer.close()

    def _session(self, session: PlannedSession, intended_wall_s: float, zero_mono_s: float) -> None:
        self.sessions.started += 1
        late_ms = (time.monotonic() - (zero_mono_s + session.start_s)) * 1000.0
        self.sessions.lateness_ms.append(max(0.0, late_ms))
        client = FastHttpSession(
            self.settings.host,
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
            if self.limiter is not None:
                self.limiter.acquire()
            url = prepared.path + (f"?{prepared.query}" if prepared.query else "")
            sent = time.time()
            started = time.perf_counter()
            status, error, headers, body = self._send(client, prepared, url, planned.endpoint)
            latency_ms = (time.perf_counter() - started) * 1000.0
            correlator.observe(planned, status, headers, body)
            self.writer.add(
                RequestResult(
                    session=session.index,
                    seq=seq,
                    endpoint=planned.endpoint,
                    method=prepared.method,
                    path=prepared.path,
                    query=prepared.query,
                    intended_s=intended,
                    sent_s=sent,
                    latency_ms=latency_ms,
                    status=status,
                    error=error,
                    req_headers=tuple(prepared.headers),
                    req_body_size=len(prepared.body or b""),
                    resp_body_size=len(body or b""),
                )
            )
            intended = time.time()  # the next request is planned from this answer
            if correlator.login_failed:
                self.sessions.login_failed += 1
                return
        self.sessions.completed += 1

    def _send(
        self, client: FastHttpSession, prepared: Any, url: str, name: str
    ) -> tuple[int | None, str | None, list[tuple[str, str]], bytes | None]:
        # Redirects are never followed: a Location could point anywhere but --host.
        with client.request(
            prepared.method,
            url,
            name=name,
            data=prepared.body,
            headers=dict(prepared.headers),
            catch_response=True,
            allow_redirects=False,
        ) as response:
            status = int(response.status_code or 0) or None
            # An HTTP answer is not a transport error, whatever its status (Locust sets
            # `error` for 4xx/5xx too); the status says what went wrong.
            error = getattr(response, "error", None) if status is None else None
            if error is None and status is not None and status >= 400:
                response.failure(f"HTTP {status}")
            elif error is None and status is not None:
                response.success()
            headers = list(response.headers.items()) if response.headers else []
            body = response.content if status is not None else None
        message = None if error is None else (type(error).__name__ + f": {error}")[:200]
        return status, message, headers, body
