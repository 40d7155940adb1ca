"""The sender's sessions: each its own cookie jar and connection, the host resolved once
for the whole run (replay/offload.py `ResolvedOnce`, replay/sender.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tracereplay.processes import LOOPBACK, free_port

from .children import child_result


def child(*args: str) -> dict[str, Any]:
    return child_result("tests.replay.sender_child", *args)


def test_a_lookup_is_kept_a_minute_and_a_failure_is_asked_again() -> None:
    # In a child: gevent stays out of pytest's own process (other tests check for that).
    assert child("--unit") == {
        "failed_first": True,
        "kept": True,
        "per_port": True,
        "calls": 3,  # the failure, port 80 once, port 8080 once
        "other": "kept",  # everything else is the hub's own resolver
        "within_minute": 1,
        "after_minute": 2,
    }


@pytest.fixture
def cookie_server() -> Iterator[tuple[str, list[tuple[str, str, int]]]]:
    """GET /login?u=NAME sets cookie sid=NAME, /logout clears it; every request is
    recorded as (path, Cookie header, client port)."""
    seen: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # http.server's name
            with lock:
                seen.append((self.path, self.headers.get("Cookie") or "", self.client_address[1]))
            self.send_response(200)
            if self.path.startswith("/login?u="):
                self.send_header("Set-Cookie", f"sid={self.path.split('=', 1)[1]}; Path=/")
            if self.path == "/logout":
                self.send_header("Set-Cookie", "sid=; Path=/; Max-Age=0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_sessions_keep_their_own_cookies_and_connections_with_one_lookup(
    cookie_server: tuple[str, list[tuple[str, str, int]]],
) -> None:
    url, seen = cookie_server
    names = [f"user{i}" for i in range(6)]
    result = child(url, *names)
    assert result == {"lookups": 1, "wrapped_once": True}  # six sessions, one lookup
    assert len(seen) == 3 * len(names) + 1
    for name in names:
        login_port = next(port for path, _, port in seen if path == f"/login?u={name}")
        mine = [(path, cookie) for path, cookie, port in seen if port == login_port]
        # One connection per session: every request of it, and only those, came on it.
        expected = ["/login?u=" + name, "/me", *(["/logout"] if name == "user0" else []), "/me"]
        assert [path for path, _ in mine] == expected
        # Its own cookie only: never another session's, and user0's logout cleared
        # user0's jar alone.
        cookies = [cookie for path, cookie in mine if path != f"/login?u={name}"]
        if name == "user0":
            assert cookies == ["sid=user0", "sid=user0", ""]
        else:
            assert cookies == [f"sid={name}", f"sid={name}"]
