"""`Exchange`: one raw HTTP exchange as plain data, before anonymization.

The addon and the importers turn what they read (a live mitmproxy flow, a HAR entry, a
dumped flow) into an `Exchange`; the anonymizer turns an `Exchange` into a `TraceRecord`.
An `Exchange` holds no reference to a mitmproxy object, so the addon can hand it to a
worker process and let the flow go. It holds only valid text: bytes that were not UTF-8
(a Latin-1 header, a raw 0xff in a path, a lone surrogate in a HAR file) are written as
`\\xNN` escapes when it is built, and the parts that had some are named in `escaped`
(stored in the trace's `escaped` column; see tracereplay/trace/schema.py).
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
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

    def __setattr__(self, name: str, value: object) -> None:
        # The one door text comes in by: live flows, HAR entries and flow dumps all set
        # fields here (at construction or later), so neither the anonymizer nor the writer
        # ever sees a str that cannot be encoded.
        if name not in _CHECKED:
            object.__setattr__(self, name, value)
            return
        column = None
        if isinstance(value, str) and name in _TEXT_FIELDS:
            if (fixed := valid_text(value)) is not None:
                value, column = fixed, _COLUMN.get(name, name)
        elif name in _HEADER_FIELDS and value:
            headers: Headers = value  # type: ignore[assignment]
            if not all(n.isascii() and v.isascii() for n, v in headers):
                fixed_headers = [(_text(n), _text(v)) for n, v in headers]
                if fixed_headers != headers:
                    value, column = fixed_headers, name
        elif name == "escaped":
            value = tuple(dict.fromkeys((*getattr(self, "escaped", ()), *value)))  # type: ignore[misc]
        object.__setattr__(self, name, value)
        if column is not None:
            flags = (*getattr(self, "escaped", ()), column)
            object.__setattr__(self, "escaped", tuple(dict.fromkeys(flags)))


_TEXT_FIELDS = frozenset(
    ("method", "path", "query", "scheme", "host", "client_addr", "error", "http_version")
)
_HEADER_FIELDS = frozenset(("req_headers", "resp_headers"))
_CHECKED = _TEXT_FIELDS | _HEADER_FIELDS | {"escaped"}
# Exchange fields stored under another column name (the client address becomes `client`).
_COLUMN = {"client_addr": "client"}


def _text(value: str) -> str:
    fixed = valid_text(value)
    return value if fixed is None else fixed


def keeping_flags(
    to_record: Callable[[Exchange], TraceRecord],
) -> Callable[[Exchange], TraceRecord]:
    """`to_record` (the anonymizer) that also carries `Exchange.escaped` into the row."""

    def record(exchange: Exchange) -> TraceRecord:
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
