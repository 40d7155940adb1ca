"""`Exchange`: one raw HTTP exchange as plain data, before anonymization.

The addon and the importers turn what they read (a live mitmproxy flow, a HAR entry, a
dumped flow) into an `Exchange`; the anonymizer turns an `Exchange` into a `TraceRecord`.
An `Exchange` holds no reference to a mitmproxy object, so the addon can hand it to a
worker process and let the flow go. Text reaches the anonymizer only valid: `check()`
writes bytes that were not UTF-8 (a Latin-1 header, a raw 0xff in a path, a lone
surrogate in a HAR file) as `\\xNN` escapes and names the parts that had some in
`escaped` (the trace's `escaped` column; see tracereplay/trace/schema.py); `anonymizing`
runs it on every exchange before the anonymizer.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING

from tracereplay.trace import TraceRecord

if TYPE_CHECKING:
    from mitmproxy import http

Headers = list[tuple[str, str]]

_ESCAPE = "tracereplay-escape"


def _escape_surrogates(error: UnicodeError) -> tuple[str, int]:
    # mitmproxy (and Python's surrogateescape) decode an invalid byte 0xNN as U+DCNN.
    assert isinstance(error, UnicodeEncodeError)
    out = []
    for char in error.object[error.start : error.end]:
        code = ord(char)
        out.append(f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}")
    return "".join(out), error.end


codecs.register_error(_ESCAPE, _escape_surrogates)


def valid_text(value: str) -> str | None:
    """`value` with every byte that was not UTF-8 as a `\\xNN` escape; None if it had none."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", _ESCAPE).decode("utf-8")
    return None


_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def unescape(text: str) -> bytes:
    """The bytes a value escaped by `valid_text` stood for (see the `escaped` column)."""
    return _ESCAPED_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))


@dataclass(slots=True)
class Exchange:
    """A request, its response if one came, or the transport error that ended it.

    Bodies are as received: `*_body_encoding` names the Content-Encoding still applied to
    them (gzip, deflate, br, zstd, or several, comma-separated) and is None when the body
    is already decoded (HAR stores decoded bodies, mitmproxy keeps them encoded).
    """

    ts: datetime
    method: str
    path: str
    """Path without the query string, as sent (percent-encoding kept)."""
    query: str = ""
    """Raw query string without the leading '?'; empty when there is none."""
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    client_addr: str | None = None
    """IP address of the client that sent the request (no port), when known."""
    client_conn: str | None = None
    """Id of the client connection the request came on (mitmproxy's `client_conn.id`, a
    HAR entry's `connection` qualified by its file), when known: one connection, one client."""
    req_headers: Headers | None = None
    req_body: bytes | None = None
    req_body_encoding: str | None = None
    status: int | None = None
    resp_headers: Headers | None = None
    resp_body: bytes | None = None
    resp_body_encoding: str | None = None
    duration_ms: float | None = None
    """From the request's start until the whole response was received; None without one."""
    error: str | None = None
    http_version: str | None = None
    escaped: tuple[str, ...] = ()
    """Trace columns whose text had bytes that were not UTF-8, now `\\xNN` escapes."""

    def check(self) -> None:
        """Make every text field valid: `\\xNN` escapes, the fields named in `escaped`.

        Idempotent. `anonymizing` calls it before the anonymizer sees the exchange (in the
        capture's worker process, so the proxy's event loop does not pay for it).
        """
        escaped = list(self.escaped)
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None and (fixed := valid_text(value)) is not None:
                setattr(self, name, fixed)
                escaped.append(_COLUMN.get(name, name))
        for name in ("req_headers", "resp_headers"):
            headers = getattr(self, name)
            if headers and not all(map(str.isascii, chain.from_iterable(headers))):
                fixed_headers = [(_text(n), _text(v)) for n, v in headers]
                if fixed_headers != headers:
                    setattr(self, name, fixed_headers)
                    escaped.append(name)
        self.escaped = tuple(dict.fromkeys(escaped))


_TEXT_FIELDS = (
    "method", "path", "query", "scheme", "host", "client_addr", "client_conn", "error",
    "http_version",
)  # fmt: skip
# Exchange fields stored under another column name (the client address becomes `client`).
_COLUMN = {"client_addr": "client", "client_conn": "conn"}


def _text(value: str) -> str:
    fixed = valid_text(value)
    return value if fixed is None else fixed


def anonymizing(
    to_record: Callable[[Exchange], TraceRecord],
) -> Callable[[Exchange], TraceRecord]:
    """`to_record` (the anonymizer) given only checked exchanges, flags carried into the row.

    The one way from an `Exchange` to a row (live capture and imports alike), so the
    anonymizer and the writer never see text that is not valid.
    """

    def record(exchange: Exchange) -> TraceRecord:
        exchange.check()
        made = to_record(exchange)
        if exchange.escaped:
            return dataclasses.replace(made, escaped=exchange.escaped)
        return made

    return record


def split_target(target: str) -> tuple[str, str]:
    """A request target `/a/b?x=1` as (path, query) — `('/a/b', 'x=1')`."""
    path, _, query = target.partition("?")
    return path or "/", query


def _content_encoding(headers: Headers) -> str | None:
    for name, value in headers:
        if name.lower() == "content-encoding":
            encoding = value.strip()
            return None if encoding.lower() in ("", "identity") else encoding
    return None


def exchange_from_flow(flow: http.HTTPFlow) -> Exchange:
    """Copy what a trace row needs out of a mitmproxy flow (cheap: no decoding here)."""
    request, response = flow.request, flow.response
    path, query = split_target(request.path)
    req_headers = list(request.headers.items(multi=True))
    peer = flow.client_conn.peername
    exchange = Exchange(
        ts=datetime.fromtimestamp(request.timestamp_start, UTC),
        method=request.method,
        path=path,
        query=query,
        scheme=request.scheme,
        host=request.host,
        port=request.port,
        client_addr=str(peer[0]) if peer else None,
        client_conn=flow.client_conn.id,
        req_headers=req_headers,
        req_body=request.raw_content,
        req_body_encoding=_content_encoding(req_headers),
        http_version=request.http_version,
    )
    if response is not None:
        resp_headers = list(response.headers.items(multi=True))
        exchange.status = response.status_code
        exchange.resp_headers = resp_headers
        exchange.resp_body = response.raw_content
        exchange.resp_body_encoding = _content_encoding(resp_headers)
        end = response.timestamp_end or response.timestamp_start
        if end is not None:
            exchange.duration_ms = max(0.0, (end - request.timestamp_start) * 1000.0)
    if flow.error is not None:
        exchange.error = flow.error.msg or "error"
    return exchange
