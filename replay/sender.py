"""Sending one cleared request with a session's FastHttpSession, bounded in time and body
size, and reading its answer (runs inside locust). Only what `ownership.clear` let go is
sent, only to a URL `urls.outgoing_url` made; redirects are never followed.
"""

from __future__ import annotations

import time
from http.cookiejar import CookieJar
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import ParseResult

import gevent
from gevent import monkey
from geventhttpclient.url import URL
from locust import User
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpSession
from locust.exception import CatchResponseError

from .body import ACCEPT_ENCODING, read_body
from .offload import resolve_once
from .ownership import Cleared
from .urls import OutgoingUrl

if TYPE_CHECKING:
    from .driver import DriverSettings

SPLIT_CACHE_MAX = 4096
"""URLs whose `SplitUrl` a sender keeps (a plan repeats its paths; the driver keeps as many)."""


class Answer(NamedTuple):
    """What a request got (a tuple: one per request, built on the sending loop)."""

    status: int | None
    error: str | None
    headers: list[tuple[str, str]]
    body: bytes | None
    timed_out: bool = False
    truncated: bool = False


class RequestTimer(gevent.Timeout):  # type: ignore[misc]  # gevent is untyped
    """A request's whole-time bound, started and cancelled for every request of a session
    at the cost of two attribute writes: its libev timer, armed at the first start, stays
    armed across requests (starting and stopping it was ~1 us of every request). When it
    fires, it raises (itself, as a `gevent.Timeout` does) only if the request running then
    started `seconds` ago or more; for a later request it is armed again for what that one
    has left, and with none running it waits for the next start."""

    timer: Any  # gevent's libev timer watcher

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self._due: float | None = None
        self._after = float(seconds)

    def start(self) -> None:
        self._due = time.monotonic() + self.seconds
        if not self.timer.active:
            if self._after != self.seconds:  # it was armed for what a request had left
                self._arm(self.seconds)
            super().start()

    def cancel(self) -> None:
        self._due = None

    def _arm(self, after: float) -> None:
        self.timer.close()
        self.timer = gevent.get_hub().loop.timer(after)
        self._after = after

    def _on_expiration(self, prev_greenlet: Any, ex: BaseException) -> None:
        due = self._due
        if due is None:
            return  # no request running: the next start arms it
        left = due - time.monotonic()
        if left > 0:
            self._arm(left)
            self.timer.start(self._on_expiration, prev_greenlet, ex, update=True)
            return
        prev_greenlet.throw(ex)


class SessionJar(CookieJar):
    """A session's cookie jar: http.cookiejar's, as Locust gives every FastHttpSession,
    without the work of its two calls per request where they can change nothing. Holding
    no cookie, `add_cookie_header` adds no header and finds nothing expired; an answer
    with no Set-Cookie or Set-Cookie2 line sets no cookie. Each call took the jar's lock
    (gevent's, twice in the first), read the clock and scanned: ~7 % of a request's
    samples against a target that sets no cookies. With a cookie held, or a Set-Cookie in
    the answer, the jar's own code runs as before."""

    def add_cookie_header(self, request: Any) -> None:
        if self._cookies:  # type: ignore[attr-defined]  # http.cookiejar's own store
            super().add_cookie_header(request)

    def extract_cookies(self, response: Any, request: Any) -> None:
        headers = response.info()  # geventhttpclient's Headers: `in` ignores the case
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response, request)


class SplitUrl(URL):
    """geventhttpclient's `URL` of an outgoing URL's text, its parts read once: the
    transport parsed the text again for every request (`urlparse`), split its host and
    port out of the netloc at each of five reads, and requoted the path (`quoted_uri`,
    a regex pass): ~15 us a request, for a URL the replay sends many times. The values are
    the base class's own, taken when made; `str()` gives the text it was made from (what
    the transport took as the request's URL before, in its errors too)."""

    __slots__ = ("_host", "_netloc", "_port", "_quoted_uri", "_request_uri", "_scheme", "_text")

    def __init__(self, url: str | ParseResult = "", params: Any = None) -> None:
        parsed = URL(url, params)  # the base class's reading, kept
        self._parsed = parsed._parsed
        self._text = url if isinstance(url, str) and params is None else str(parsed)
        self._scheme: str = parsed.scheme
        self._netloc: str = parsed.netloc
        self._host: str = parsed.host
        self._port: int | None = parsed.port
        self._request_uri: str = parsed.request_uri
        self._quoted_uri: str = parsed.quoted_uri

    def __str__(self) -> str:
        return self._text

    scheme = property(attrgetter("_scheme"))
    netloc = property(attrgetter("_netloc"))
    hostname = host = property(attrgetter("_host"))
    port = property(attrgetter("_port"))
    request_uri = property(attrgetter("_request_uri"))
    quoted_uri = property(attrgetter("_quoted_uri"))


_poll: Any = monkey.get_original("select", "poll")  # the OS's, not gevent's
_NOT_IDLE = 0x001 | 0x008 | 0x010 | 0x020  # POLLIN, POLLERR, POLLHUP, POLLNVAL


def idle_and_open(sock: Any) -> bool:
    """geventhttpclient's check of a pooled connection before it is used again (open, and
    not readable while idle: readable means the server closed it or sent something not
    asked for), made with the OS's poll and no wait. The pool's own check used gevent's
    select, which yields to the hub after every check (a loop iteration per request; the
    request then waits for its answer anyway), and Python's select refuses a descriptor
    from 1024 on, which the pool took for a dead connection and replaced with a new one."""
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _poll()
        poller.register(fd, 0x001)
        return not any(events & _NOT_IDLE for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


class Sender:
    """The HTTP side of a driver (and of its discovery phase)."""

    def __init__(self, user: User, settings: DriverSettings) -> None:
        self.user = user
        self.settings = settings
        self._split: dict[str, SplitUrl] = {}
        resolve_once()

    def client(self) -> FastHttpSession:
        session = FastHttpSession(
            self.settings.origin.base,
            self.user.environment.events.request,
            user=self.user,
            network_timeout=self.settings.network_timeout_s,
            connection_timeout=self.settings.connection_timeout_s,
        )
        # Redirects are never followed: a Location could point anywhere but --host. (What
        # Locust's `request(allow_redirects=False)` sets around each request, set once.)
        session.client.redirect_response_codes = frozenset()  # type: ignore[misc]  # as Locust
        session.cookiejar = session.client.cookiejar = SessionJar()
        # The connection pool of --host, made now (the first request would make it), with
        # its reuse check made without a yield to the hub (`idle_and_open`).
        pool = session.client.clientpool.get_client(URL(self.settings.origin.base))
        pool._connection_pool._is_socket_alive = idle_and_open  # type: ignore[method-assign]
        return session

    def split(self, url: OutgoingUrl) -> SplitUrl:
        """`url` as the transport's parse (`SplitUrl`), kept for the URLs sent again."""
        split = self._split.get(url.text)
        if split is None:
            if len(self._split) >= SPLIT_CACHE_MAX:
                self._split.clear()
            split = self._split[url.text] = SplitUrl(url.text)
        return split

    def timer(self) -> RequestTimer:
        """A request's whole-time bound, for `send` to start and cancel: a session keeps
        one for all its requests (one libev timer made per session, not per request)."""
        return RequestTimer(self.settings.request_timeout_s)

    def send(
        self,
        client: FastHttpSession,
        cleared: Cleared,
        url: OutgoingUrl,
        name: str,
        timer: RequestTimer | None = None,
    ) -> Answer:
        """Send what ownership cleared, to the URL urls.py made (nothing else goes out),
        within the request timeout (on `timer`, the calling greenlet's own, if given).

        Locust's stats get the request through its request event, fired here with what
        `FastHttpSession.request(catch_response=True)` and its context manager would give
        them (the replay decides success itself, and the time includes the body), without
        the context manager's copy of the response and its second pass over the status."""
        prepared = cleared.request
        headers = dict(prepared.headers)
        # (Names of its length only are lowered: most requests have no Accept-Encoding.)
        if not any(len(k) == 15 and k.lower() == "accept-encoding" for k in headers):
            headers["Accept-Encoding"] = ACCEPT_ENCODING  # what read_body can decode
        own = timer is None
        if timer is None:
            timer = self.timer()
        timer.start()
        start_time = time.time()
        started = time.perf_counter()
        try:
            # `request` without its wrapping: transport errors come back as a response
            # whose `error` is set, as there. The client never follows a redirect
            # (`client()`), and the URL is absolute (urls.py), as `request` would build it;
            # given parsed (`SplitUrl`), which the transport takes as its own `URL`.
            response = client._send_request_safe_mode(
                prepared.method,
                self.split(url),  # type: ignore[arg-type]  # Locust says str; urlopen takes a URL
                payload=prepared.body,
                headers=headers,
            )
            answer, exception = self._answer(response, timer)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
        except gevent.Timeout as exc:  # fired outside what _answer guards (rare)
            if exc is not timer:
                raise
            return Answer(None, describe(exc, True), [], None, timed_out=True)
        finally:
            if own:
                timer.close()
            else:
                timer.cancel()
        # Locust's own stats get the whole time, body included (as the context manager's exit
        # did, only for a request that answered or failed: not for one cut or timed out).
        client.request_event.fire(
            request_type=prepared.method,
            name=name or url.text,  # as request() names it
            context=self.user.context(),
            response=response,
            exception=exception,
            start_time=start_time,
            url=url.text,
            response_time=elapsed_ms,
            response_length=len(answer.body or b""),
        )
        return answer

    def _answer(self, response: Any, timer: RequestTimer) -> tuple[Answer, Exception | None]:
        """The answer, and the exception Locust's stats get for it (None: a success)."""
        status = int(response.status_code or 0) or None
        # An HTTP answer is not a transport error, whatever its status (Locust sets
        # `error` for 4xx/5xx too); the status says what went wrong.
        raw_error = getattr(response, "error", None) if status is None else None
        timed_out = raw_error is timer or isinstance(raw_error, TimeoutError)
        # `is not None`: a Headers' truth is its length, a pass over every value.
        headers, encoding = (
            header_lines(response.headers) if response.headers is not None else ([], None)
        )
        body: bytes | None = None
        truncated = False
        if status is not None:
            try:
                length = content_length(response.headers)
                body, truncated = read_body(response.read, encoding, self.settings.max_body, length)
            except gevent.Timeout as exc:
                if exc is not timer:
                    raise
                raw_error, timed_out = exc, True
            except FAILURE_EXCEPTIONS as exc:  # the connection broke mid-body
                raw_error = exc
            if truncated or raw_error is not None:
                response._response.release()  # unread rest: close, never reuse
        error = None if raw_error is None else describe(raw_error, timed_out)
        exception: Exception | None = None
        if error is not None and status is not None:
            exception = CatchResponseError(error)
        elif error is None and status is not None and status >= 400:
            exception = CatchResponseError(f"HTTP {status}")
        elif status is None:  # a transport error: Locust's stats get it as it came
            exception = raw_error if isinstance(raw_error, Exception) else None
        return Answer(status, error, headers, body, timed_out, truncated), exception


def header_lines(headers: Any) -> tuple[list[tuple[str, str]], str | None]:
    """Every (name, value) line of geventhttpclient's `Headers`, in order (`items()`), and
    the first Content-Encoding, in one pass over its storage: a dict of the lowered name to
    one line or a list of them. `items()` is a generator resumed once per line, and a
    second pass lowered every name again: ~10 us a request in a busy replay."""
    if not isinstance(headers, dict):
        lines = list(headers.items())
        return lines, next((v for k, v in lines if k.lower() == "content-encoding"), None)
    lines = []
    for stored in dict.values(headers):
        if type(stored) is tuple:
            lines.append(stored)
        else:
            lines.extend(stored)
    encoding = dict.get(headers, "content-encoding")
    if encoding is not None:
        encoding = encoding[1] if type(encoding) is tuple else encoding[0][1]
    return lines, encoding


def content_length(headers: Any) -> int | None:
    """The answer's Content-Length where the transport stops at it: one such line, a
    number, and no Transfer-Encoding (else None: read_body reads in bounded chunks)."""
    if not isinstance(headers, dict) or dict.__contains__(headers, "transfer-encoding"):
        return None
    stored = dict.get(headers, "content-length")  # geventhttpclient's (name, value) or a list
    if type(stored) is not tuple or not stored[1].isdigit():
        return None
    return int(stored[1])


def describe(error: BaseException, timed_out: bool) -> str:
    if timed_out:
        return "timeout: no complete answer within the request timeout"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # Transport messages may quote the URL; its query may carry a live token.
    text = text.split("?", 1)[0]
    return f"{type(error).__name__}: {text}"[:200]
