"""Sending one cleared request with a session's FastHttpSession, bounded in time and body
size, and reading its answer (runs inside locust). Only what `ownership.clear` let go is
sent, only to a URL `urls.outgoing_url` made; redirects are never followed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
from locust import User
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpSession

from .body import ACCEPT_ENCODING, read_body
from .offload import resolve_once
from .ownership import Cleared
from .urls import OutgoingUrl

if TYPE_CHECKING:
    from .driver import DriverSettings


@dataclass(frozen=True)
class Answer:
    status: int | None
    error: str | None
    headers: list[tuple[str, str]]
    body: bytes | None
    timed_out: bool = False
    truncated: bool = False


class Sender:
    """The HTTP side of a driver (and of its discovery phase)."""

    def __init__(self, user: User, settings: DriverSettings) -> None:
        self.user = user
        self.settings = settings
        resolve_once()

    def client(self) -> FastHttpSession:
        return FastHttpSession(
            self.settings.origin.base,
            self.user.environment.events.request,
            user=self.user,
            network_timeout=self.settings.network_timeout_s,
            connection_timeout=self.settings.connection_timeout_s,
        )

    def timer(self) -> gevent.Timeout:
        """A request's whole-time bound, for `send` to start and cancel: a session keeps
        one for all its requests (one libev timer made per session, not per request)."""
        return gevent.Timeout(self.settings.request_timeout_s)

    def send(
        self,
        client: FastHttpSession,
        cleared: Cleared,
        url: OutgoingUrl,
        name: str,
        timer: gevent.Timeout | None = None,
    ) -> Answer:
        """Send what ownership cleared, to the URL urls.py made (nothing else goes out),
        within the request timeout (on `timer`, the calling greenlet's own, if given)."""
        prepared = cleared.request
        headers = dict(prepared.headers)
        if not any(k.lower() == "accept-encoding" for k in headers):
            headers["Accept-Encoding"] = ACCEPT_ENCODING  # what read_body can decode
        own = timer is None
        if timer is None:
            timer = self.timer()
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
            return Answer(None, describe(exc, True), [], None, timed_out=True)
        finally:
            if own:
                timer.close()
            else:
                timer.cancel()

    def _answer(self, response: Any, timer: gevent.Timeout, started: float) -> Answer:
        status = int(response.status_code or 0) or None
        # An HTTP answer is not a transport error, whatever its status (Locust sets
        # `error` for 4xx/5xx too); the status says what went wrong.
        raw_error = getattr(response, "error", None) if status is None else None
        timed_out = raw_error is timer or isinstance(raw_error, TimeoutError)
        # `is not None`: a Headers' truth is its length, a pass over every value.
        headers = list(response.headers.items()) if response.headers is not None else []
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
        error = None if raw_error is None else describe(raw_error, timed_out)
        if error is not None and status is not None:
            response.failure(error)
        elif error is None and status is not None and status >= 400:
            response.failure(f"HTTP {status}")
        elif error is None and status is not None:
            response.success()
        # Locust's own stats get the whole time, body included (stream=True left it out).
        response.request_meta["response_time"] = (time.perf_counter() - started) * 1000.0
        response.request_meta["response_length"] = len(body or b"")
        return Answer(status, error, headers, body, timed_out, truncated)


def describe(error: BaseException, timed_out: bool) -> str:
    if timed_out:
        return "timeout: no complete answer within the request timeout"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # Transport messages may quote the URL; its query may carry a live token.
    text = text.split("?", 1)[0]
    return f"{type(error).__name__}: {text}"[:200]
