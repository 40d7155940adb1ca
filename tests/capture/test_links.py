"""Links that lead clients past a reverse-proxy capture: found, warned about, avoided.

An app that builds absolute links from the Host header (Kinto's `Next-Page`) must see the
Host the client used, or a client following a link leaves the capture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.capture.proxies import capture_proxy, captured, stop, threaded_server
from tracereplay.capture.links import direct_link
from tracereplay.capture.run import CaptureSettings, check_settings
from tracereplay.errors import UsageError

PAGES = 3


@pytest.mark.parametrize(
    ("value", "linked"),
    [
        ("http://127.0.0.1:18888/v1/records?_token=abc", True),
        ("<http://127.0.0.1:18888/v1/records?page=2>; rel=next", True),
        ("0; url=HTTP://127.0.0.1:18888/", True),
        ("http://127.0.0.1:18888", True),
        ("http://127.0.0.1:8080/v1/records", False),  # the proxy: fine
        ("http://127.0.0.1:188880/v1/records", False),  # another port
        ("http://127.0.0.10:18888/v1/records", False),  # another host
        ("/v1/records?_token=abc", False),  # relative: resolved against the proxy
        ("127.0.0.1:18888", False),  # not a URL
    ],
)
def test_direct_link_finds_urls_to_the_target_only(value: str, linked: bool) -> None:
    headers = [("Content-Type", "application/json"), ("Next-Page", value)]
    assert direct_link(headers, "127.0.0.1", 18888) == ("Next-Page" if linked else None)


def test_direct_link_default_port_and_ipv6() -> None:
    assert direct_link([("Location", "https://api.example.test/x")], "api.example.test", 443,
                       "https") == "Location"  # fmt: skip
    assert direct_link([("Location", "https://API.example.test:443/x")], "api.example.test",
                       443, "https") == "Location"  # fmt: skip
    assert direct_link([("Location", "http://api.example.test/x")], "api.example.test", 8443,
                       "https") is None  # fmt: skip
    assert direct_link([("Link", "<http://[::1]:9000/a>")], "::1", 9000) == "Link"


def test_rewrite_host_is_for_reverse_mode(tmp_path: Path) -> None:
    target = "http://127.0.0.1:9"
    out = tmp_path / "trace"
    check_settings(CaptureSettings(out=out, target=target, rewrite_host=True))
    with pytest.raises(UsageError, match="--rewrite-host is for --mode reverse"):
        check_settings(CaptureSettings(out=out, target=target, mode="regular", rewrite_host=True))


@dataclass
class PagingApp:
    """A tiny API on 127.0.0.1 whose `Next-Page` header is an absolute URL built from Host."""

    url: str
    hosts_seen: list[str] = field(default_factory=list)


def _handler(app: PagingApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            headers = {"Content-Type": "application/json"}
            if parts.path == "/records":
                app.hosts_seen.append(self.headers["Host"])
                page = int(parse_qs(parts.query).get("page", ["1"])[0])
                if page < PAGES:
                    headers["Next-Page"] = f"http://{self.headers['Host']}/records?page={page + 1}"
                body = json.dumps({"data": [{"id": page}]}).encode()
            else:  # /health, polled through the proxy until it answers
                body = b"{}"
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def paging_app() -> Iterator[PagingApp]:
    app = PagingApp(url="")
    with threaded_server(_handler(app)) as url:
        app.url = url
        yield app


def follow_pages(base_url: str) -> list[str]:
    """GET /records and every Next-Page after it, as a client does; the URLs it asked."""
    asked = []
    url = f"{base_url}/records"
    with httpx.Client(timeout=10) as http:
        while url:
            asked.append(url)
            answer = http.get(url)
            assert answer.status_code == 200
            url = answer.headers.get("Next-Page", "")
    return asked


def records_captured(out: Path) -> int:
    paths: list[str] = captured(out).column("path").to_pylist()
    return paths.count("/records")


@pytest.mark.slow
def test_client_following_next_page_stays_in_the_capture(
    paging_app: PagingApp, tmp_path: Path
) -> None:
    out = tmp_path / "trace"
    with capture_proxy(paging_app.url, out) as proxy:
        asked = follow_pages(proxy.url)
        assert stop(proxy) == 0
    assert len(asked) == PAGES
    assert all(url.startswith(proxy.url) for url in asked)
    assert paging_app.hosts_seen == [f"127.0.0.1:{proxy.port}"] * PAGES
    assert records_captured(out) == PAGES
    assert "bypass the capture" not in proxy.stderr()


@pytest.mark.slow
def test_rewritten_host_sends_clients_around_the_capture_and_says_so(
    paging_app: PagingApp, tmp_path: Path
) -> None:
    out = tmp_path / "trace"
    with capture_proxy(paging_app.url, out, "--rewrite-host") as proxy:
        asked = follow_pages(proxy.url)
        assert stop(proxy) == 0
    assert [url.startswith(paging_app.url) for url in asked] == [False, True, True]
    assert records_captured(out) == 1  # pages 2 and 3 went straight to the app
    stderr = proxy.stderr()
    target = paging_app.url.removeprefix("http://")
    assert f"Next-Page header links to the target ({target}) directly" in stderr, stderr
    assert "responses linking to the target directly: 1 (first in Next-Page)" in stderr
