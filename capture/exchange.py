"""`Exchange`: one raw HTTP exchange as plain data, before anonymization.

The addon and the importers turn what they read (a live mitmproxy flow, a HAR entry, a
dumped flow) into an `Exchange`; the anonymizer turns an `Exchange` into a `TraceRecord`.
An `Exchange` holds no reference to a mitmproxy object, so the addon can hand it to a
worker thread and let the flow go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mitmproxy import http

Headers = list[tuple[str, str]]


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
