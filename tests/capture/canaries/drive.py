"""Drive the canary corpus through each way in: exchanges, HAR files, mitmdump files, a live
target behind the capture proxy; and read back everything a trace stores.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, unquote_plus

import httpx
from faker import Faker
from mitmproxy import http
from mitmproxy.test import tflow

from tests.capture.canaries.corpus import Case
from tests.capture.har_factory import chrome_entry, write_dump, write_har
from tests.capture.proxies import threaded_server
from tracereplay.capture.exchange import Exchange
from tracereplay.trace import read_trace
from tracereplay.trace.schema import TRACE_COLUMNS

T0_ISO = "2026-01-05T09:00:00Z"
HOST = "api.canary.test"
CASE_HEADER = "X-Case"


def target(case: Case) -> str:
    return case.path + (f"?{case.query}" if case.query else "")


def exchange(case: Case) -> Exchange:
    """The case as the capture would see it (a live flow or an import)."""
    from tests.capture.test_anonymizer import T0

    return Exchange(
        ts=T0 + timedelta(seconds=case.index),
        method=case.method,
        path=case.path,
        query=case.query,
        scheme="https",
        host=HOST,
        port=443,
        client_addr="198.51.100.7",
        req_headers=list(case.req_headers),
        req_body=case.req_body,
        status=case.status,
        resp_headers=list(case.resp_headers),
        resp_body=case.resp_body,
        duration_ms=5.0,
    )


def _content(headers: Sequence[tuple[str, str]], body: bytes | None) -> dict[str, Any]:
    mime = next((v for k, v in headers if k.lower() == "content-type"), "")
    if body is None:
        return {"size": 0, "mimeType": mime}
    try:
        return {"size": len(body), "mimeType": mime, "text": body.decode("utf-8")}
    except UnicodeDecodeError:
        encoded = base64.b64encode(body).decode()
        return {"size": len(body), "mimeType": mime, "text": encoded, "encoding": "base64"}


def write_corpus_har(path: Path, cases: Sequence[Case]) -> Path:
    fake = Faker()
    fake.seed_instance(5)
    entries = []
    for case in cases:
        post = None
        if case.req_body is not None:
            mime = next((v for k, v in case.req_headers if k.lower() == "content-type"), "")
            post = {"mimeType": mime, "text": case.req_body.decode("utf-8")}
        entries.append(
            chrome_entry(
                fake,
                started=f"2026-01-05T09:{case.index // 60:02d}:{case.index % 60:02d}Z",
                url=f"https://{HOST}{target(case)}",
                method=case.method,
                status=case.status,
                req_headers=case.req_headers,
                post_data=post,
                resp_headers=case.resp_headers,
                content=_content(case.resp_headers, case.resp_body),
            )
        )
    return write_har(path, entries)


def write_corpus_dump(path: Path, cases: Sequence[Case]) -> Path:
    flows = []
    for case in cases:
        flow = tflow.tflow(resp=True)
        flow.request.host = HOST
        flow.request.method = case.method
        flow.request.path = target(case)
        flow.request.headers = http.Headers([(k.encode(), v.encode()) for k, v in case.req_headers])
        flow.request.content = case.req_body
        assert flow.response is not None
        flow.response.status_code = case.status
        flow.response.headers = http.Headers(
            [(k.encode(), v.encode()) for k, v in case.resp_headers]
        )
        flow.response.content = case.resp_body
        flows.append(flow)
    return write_dump(path, flows)


# --- a live target answering each case's canned response --------------------------------


class _Handler(BaseHTTPRequestHandler):
    cases: ClassVar[dict[int, Case]] = {}
    seen: ClassVar[set[int]] = set()

    def log_message(self, *_args: object) -> None:  # quiet
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        number = self.headers.get(CASE_HEADER)
        if number is None:  # the proxy's health probe
            self._send(200, [("Content-Type", "text/plain")], b"ok")
            return
        case = self.cases[int(number)]
        self.seen.add(case.index)
        self._send(case.status, list(case.resp_headers), case.resp_body or b"")

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer


@contextmanager
def canned_target(cases: Sequence[Case]) -> Iterator[tuple[str, set[int]]]:
    """A server on 127.0.0.1 answering each case (by its X-Case header); stopped at exit."""
    handler = type("Handler", (_Handler,), {"cases": {c.index: c for c in cases}, "seen": set()})
    with threaded_server(handler) as url:
        yield url, handler.seen


def send_live(proxy_url: str, cases: Sequence[Case]) -> None:
    with httpx.Client(base_url=proxy_url, timeout=30) as client:
        for case in cases:
            headers = [*case.req_headers, (CASE_HEADER, str(case.index))]
            answer = client.request(
                case.method, target(case), headers=headers, content=case.req_body
            )
            assert answer.status_code == case.status, (case.place, answer.status_code)


# --- what a trace stores -------------------------------------------------------------------


def stored_views(trace_dir: Path) -> list[str]:
    """Every stored string of a trace, also percent-decoded and with JSON bodies' leaves."""
    table = read_trace(trace_dir)
    views: list[str] = []
    for column in TRACE_COLUMNS:
        for cell in table.column(column).to_pylist():
            if cell is None:
                continue
            if isinstance(cell, bytes):
                text = cell.decode("utf-8", "replace")
                views.append(text)
                views.extend(_json_leaves(text))
            elif isinstance(cell, list):
                views.extend(f"{k}: {v}" for k, v in cell)
            else:
                views.append(str(cell))
    return views + [unquote_plus(v) for v in views] + [unquote(v) for v in views]


def _json_leaves(text: str) -> list[str]:
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    leaves: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                leaves.append(str(key))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif node is not None:
            leaves.append(str(node))

    walk(doc)
    return leaves


def leaked(cases: Sequence[Case], trace_dir: Path) -> list[Case]:
    """The cases whose canary is in any byte of the trace's files or any decoded cell."""
    blobs = [p.read_bytes() for p in trace_dir.rglob("*") if p.is_file()]
    views = "\n".join(stored_views(trace_dir))
    return [c for c in cases if c.canary in views or any(c.canary.encode() in b for b in blobs)]


def tally(cases: Sequence[Case], missed: Sequence[Case]) -> dict[str, tuple[int, int]]:
    """Per place: (found, missed)."""
    out: dict[str, list[int]] = {}
    missed_ids = {c.index for c in missed}
    for case in cases:
        counts = out.setdefault(case.place, [0, 0])
        counts[case.index in missed_ids] += 1
    return {place: (found, miss) for place, (found, miss) in out.items()}
