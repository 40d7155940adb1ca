"""Test builders for importer inputs: HAR documents shaped as Chrome and Firefox export them,
and mitmproxy flow dumps. All data comes from a seeded Faker, never from real traffic.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from faker import Faker
from mitmproxy import flow, http
from mitmproxy.io import FlowWriter
from mitmproxy.test import tflow

from tracereplay.capture.exchange import Exchange
from tracereplay.trace import TraceRecord

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
TFLOW_START = datetime.fromtimestamp(946681200, UTC)  # when mitmproxy's test flows start


def seeded_faker(seed: int = 7) -> Faker:
    fake = Faker()
    fake.seed_instance(seed)
    return fake


def name_values(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def chrome_entry(
    fake: Faker,
    *,
    started: str,
    url: str,
    method: str = "GET",
    status: int = 200,
    time_ms: float = 42.5,
    req_headers: Iterable[tuple[str, str]] = (),
    post_data: dict[str, Any] | None = None,
    resp_headers: Iterable[tuple[str, str]] = (("content-type", "application/json"),),
    content: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """An entry as Chrome DevTools exports it over HTTP/2: pseudo-headers, `_` extras."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": "http/2.0",
        "headers": name_values(
            [
                (":authority", parts.netloc),
                (":method", method),
                (":path", path),
                (":scheme", parts.scheme),
                ("user-agent", fake.user_agent()),
                *req_headers,
            ]
        ),
        "queryString": [],
        "cookies": [],
        "headersSize": -1,
        "bodySize": 0,
    }
    if post_data is not None:
        request["postData"] = post_data
    response: dict[str, Any] = {
        "status": status,
        "statusText": "",
        "httpVersion": "http/2.0" if status else "",
        "headers": name_values(resp_headers) if status else [],
        "cookies": [],
        "content": content if content is not None else {"size": 0, "mimeType": "x-unknown"},
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": -1,
        "_transferSize": 0,
        "_error": error,
    }
    return {
        "_initiator": {"type": "script"},
        "_priority": "High",
        "_resourceType": "fetch",
        "cache": {},
        "connection": "443",
        "request": request,
        "response": response,
        "serverIPAddress": fake.ipv4_public(),
        "startedDateTime": started,
        "time": time_ms,
        "timings": {"blocked": 1.0, "dns": -1, "connect": -1, "send": 0.1, "wait": 40.0},
    }


def firefox_entry(
    fake: Faker,
    *,
    started: str,
    url: str,
    method: str = "GET",
    status: int = 200,
    time_ms: float = 12.0,
    req_headers: Iterable[tuple[str, str]] = (),
    resp_headers: Iterable[tuple[str, str]] = (("Content-Type", "application/json"),),
    text: str | None = None,
) -> dict[str, Any]:
    """An entry as Firefox exports it: `HTTP/2` versions, capitalized headers, comments."""
    return {
        "pageref": "page_1",
        "startedDateTime": started,
        "request": {
            "bodySize": 0,
            "method": method,
            "url": url,
            "httpVersion": "HTTP/2",
            "headers": name_values([("User-Agent", fake.firefox()), *req_headers]),
            "cookies": [],
            "queryString": [],
            "headersSize": 300,
        },
        "response": {
            "status": status,
            "statusText": "OK",
            "httpVersion": "HTTP/2",
            "headers": name_values(resp_headers),
            "cookies": [],
            "content": {"mimeType": "application/json", "size": len(text or ""), "text": text}
            if text is not None
            else {"mimeType": "application/json", "size": 0},
            "redirectURL": "",
            "headersSize": 200,
            "bodySize": len(text or ""),
        },
        "cache": {},
        "timings": {"blocked": 0, "dns": 0, "connect": 0, "ssl": 0, "send": 0, "wait": 10},
        "time": time_ms,
        "_securityState": "secure",
        "serverIPAddress": fake.ipv6(),
        "connection": "443",
        "comment": fake.sentence(),
    }


def har_document(entries: list[dict[str, Any]], creator: str = "WebInspector") -> dict[str, Any]:
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": creator, "version": "537.36"},
            "pages": [],
            "entries": entries,
        }
    }


def write_har(path: Path, entries: list[dict[str, Any]], creator: str = "WebInspector") -> Path:
    path.write_text(json.dumps(har_document(entries, creator), indent=2), encoding="utf-8")
    return path


def write_dump(path: Path, flows: Iterable[flow.Flow]) -> Path:
    """A `mitmdump -w` file holding `flows`."""
    with path.open("wb") as handle:
        writer = FlowWriter(handle)  # type: ignore[no-untyped-call]
        for item in flows:
            writer.add(item)
    return path


def chrome_har(path: Path, fake: Faker) -> tuple[Path, dict[str, Any]]:
    """Six Chrome entries: JSON, base64 image, refused, no response, data: URL, form."""
    host = f"api.{fake.domain_name()}"
    data: dict[str, Any] = {
        "token": fake.sha256(),
        "list": json.dumps({"data": [{"id": fake.uuid4(), "name": fake.company()}]}),
        "created": json.dumps({"name": fake.name(), "email": fake.email()}),
        "png": PNG_HEAD + fake.binary(length=64),
        "user": fake.user_name(),
        "host": host,
    }
    entries = [
        chrome_entry(
            fake,
            started="2026-01-05T09:00:00.123Z",
            url=f"https://{host}/api/v1/clients/caf%C3%A9?page=2&q=a%20b#frag",
            time_ms=123.4,
            req_headers=[("authorization", f"Bearer {data['token']}")],
            resp_headers=[("content-type", "application/json"), ("content-encoding", "br")],
            content={"size": 10, "mimeType": "application/json", "text": data["list"]},
        ),
        chrome_entry(
            fake,
            started="2026-01-05T09:00:01Z",
            url=f"https://{host}/api/v1/clients/",
            method="POST",
            status=201,
            req_headers=[("content-type", "application/json")],
            post_data={"mimeType": "application/json", "text": data["created"]},
            content={
                "size": 72,
                "mimeType": "image/png",
                "text": base64.b64encode(data["png"]).decode(),
                "encoding": "base64",
            },
        ),
        chrome_entry(
            fake,
            started="2026-01-05T09:00:02Z",
            url=f"https://{host}/health",
            status=0,
            time_ms=5.0,
            error="net::ERR_CONNECTION_REFUSED",
        ),
        chrome_entry(fake, started="2026-01-05T09:00:03Z", url=f"https://{host}/a", status=0),
        chrome_entry(fake, started="2026-01-05T09:00:04Z", url="data:image/png;base64,AAAA"),
        chrome_entry(
            fake,
            started="2026-01-05T09:00:05Z",
            url=f"https://{host}:8443/login",
            method="POST",
            post_data={
                "mimeType": "application/x-www-form-urlencoded",
                "params": [{"name": "user", "value": data["user"]}, {"name": "q", "value": "a&b"}],
            },
        ),
    ]
    return write_har(path, entries), data


def gzipped_flow(body: bytes) -> http.HTTPFlow:
    """An answered test flow whose response body travelled gzip-encoded."""
    gzipped = tflow.tflow(resp=True)
    assert gzipped.response is not None
    gzipped.response.content = body
    gzipped.response.encode("gzip")
    return gzipped


def mixed_flows(fake: Faker) -> list[Any]:
    """HTTP flows (ok, gzip, error, WebSocket, never answered) and TCP, UDP, DNS flows."""
    ok = tflow.tflow(resp=True)
    ok.request.path = "/api/v1/clients/caf%C3%A9?page=2"
    ok.request.headers["authorization"] = f"Bearer {fake.sha256()}"
    return [
        ok,
        gzipped_flow(json.dumps({"clients": [fake.company() for _ in range(20)]}).encode()),
        tflow.ttcpflow(),
        tflow.tflow(err=True),
        tflow.tudpflow(),
        tflow.twebsocketflow(),
        tflow.tdnsflow(resp=True),
        tflow.tflow(),
    ]


def plain_record(exchange: Exchange) -> TraceRecord:
    """A trace row straight from the exchange, no anonymization (the test's `to_record`)."""
    return TraceRecord(
        ts=exchange.ts,
        method=exchange.method,
        path=exchange.path,
        duration_ms=exchange.duration_ms,
        client=exchange.client_addr,
        scheme=exchange.scheme,
        host=exchange.host,
        query=exchange.query,
        req_headers=tuple(exchange.req_headers or ()),
        req_body=exchange.req_body,
        req_body_size=len(exchange.req_body or b""),
        status=exchange.status,
        resp_headers=tuple(exchange.resp_headers or ()),
        resp_body=exchange.resp_body,
        resp_body_size=len(exchange.resp_body or b""),
        error=exchange.error,
    )


def write_invalid_json(path: Path) -> None:
    """A HAR cut off inside log.entries."""
    path.write_text('{"log": {"entries": [}}')


def write_har_without_url(path: Path) -> None:
    """A Chrome HAR whose entries have no request.url."""
    entry = chrome_entry(seeded_faker(), started="2026-01-05T09:00:00Z", url="https://a.test/")
    del entry["request"]["url"]
    write_har(path, [entry, entry])


def write_truncated_dump(path: Path) -> None:
    """A two-flow dump whose second flow is cut short."""
    write_dump(path, [tflow.tflow(resp=True)] * 2)
    path.write_bytes(path.read_bytes()[:-10])
