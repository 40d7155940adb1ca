"""The sender's sessions: each its own cookie jar and connection, the host resolved once
for the whole run (replay/offload.py `ResolvedOnce`, replay/sender.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tracereplay.processes import LOOPBACK, free_port

from .children import child_result
from .stub_server import serving


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


def test_header_lines_are_the_answers_lines_in_order_and_its_first_encoding() -> None:
    # sender.header_lines reads geventhttpclient's Headers storage (one pass): it must give
    # what items() and a scan for Content-Encoding give (a new geventhttpclient may differ).
    assert child("--lines") == {"same": [True, True, True, True]}


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

    with serving(Handler, free_port()) as server:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", seen


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


ANSWERS = {"/ok": (200, b"x" * 100), "/missing": (404, b"nope"), "/moved": (302, b""),
           "/big": (200, b"y" * 5000)}  # fmt: skip


@pytest.fixture
def answers_server() -> Iterator[str]:
    """/ok: 200 and 100 bytes; /missing: 404 and 4 bytes; /moved: a 302 elsewhere;
    /big: 200 and 5,000 bytes."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # http.server's name
            status, body = ANSWERS[self.path]
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://127.0.0.2:9/elsewhere")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    with serving(Handler, free_port()) as server:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"


def test_locust_stats_get_each_request_as_the_replay_judged_it(answers_server: str) -> None:
    """The sender fires Locust's request event itself: the stats must say what the
    replay decided (a 4xx a failure, a redirect an answer, a truncated body its kept
    size, a transport error as it came), once per request, timed."""
    result = child("--stats", answers_server, f"http://{LOOPBACK}:{free_port()}")
    assert result["answers"] == {
        "GET /ok": {"status": 200, "error": "", "body": 100, "truncated": False},
        # geventhttpclient releases a 4xx/5xx answer unread (its connection closed): the
        # replay has always recorded such bodies as empty.
        "GET /missing": {"status": 404, "error": "", "body": 0, "truncated": False},
        "GET /moved": {"status": 302, "error": "", "body": 0, "truncated": False},
        "GET /big": {"status": 200, "error": "", "body": 1000, "truncated": True},
        "GET /ok (dead)": {"status": None, "error": "ConnectionRefusedError", "body": 0,
                           "truncated": False},
    }  # fmt: skip

    def entry(failures: int, length: int) -> dict[str, Any]:
        return {"method": "GET", "requests": 1, "failures": failures, "length": length,
                "timed": True}  # fmt: skip

    assert result["entries"] == {
        "GET /ok": entry(0, 100),
        "GET /missing": entry(1, 0),
        "GET /moved": entry(0, 0),
        "GET /big": entry(0, 1000),
        "GET /ok (dead)": entry(1, 0),
    }
    assert result["errors"] == [
        "GET /missing: HTTP 404",
        "GET /ok (dead): [Errno 111] Connection refused",
    ]


def test_a_split_url_reads_and_sends_as_geventhttpclients_own_parse_of_its_text(
    cookie_server: tuple[str, list[tuple[str, str, int]]],
) -> None:
    # sender.SplitUrl keeps the parts the transport reads of a URL (parsed once, not per
    # request): every part, the request line and headers sent, and a transport error's
    # text must be what the URL's text gives.
    host, seen = cookie_server
    result = child("--split", host, f"http://{LOOPBACK}:{free_port()}")
    assert result["parts"] and all(all(same) for same in result["parts"]), result["parts"]
    assert len(result["sent"]) == 6
    assert all(text == split for text, split in result["sent"]), result["sent"]
    assert "GET /q?q=a%20b&x=%2F HTTP/1.1" in result["sent"][2][1]
    assert [path for path, _, _ in seen][4:6] == ["/q?q=a%20b&x=%2F"] * 2
    assert all(text == split and "Connection refused" in text for text, split in result["errors"])


def test_a_sessions_request_timer_bounds_each_request_from_its_own_start() -> None:
    # sender.RequestTimer stays armed across requests (not started and stopped for each):
    # it must still cut exactly the requests that outlive the bound from their own start.
    bound = 0.2
    got = child_result("tests.replay.timer_child", str(bound))
    for cut in ("long", "after_idle"):
        assert got[cut]["raised"], got
        assert bound <= got[cut]["after"] < 2 * bound, got
    for kept in ("short", "later", "after_cut"):
        assert got[kept]["raised"] is False, got


def test_content_length_is_given_only_where_the_transport_stops_at_it() -> None:
    # sender.content_length lets read_body read a plain answer in one call (replay/body.py).
    assert child("--lengths") == {"lengths": [4096, 0, None, None, None, None]}


def test_a_sessions_jar_sends_and_keeps_what_http_cookiejars_own_jar_does() -> None:
    # sender.SessionJar skips the jar's calls where they change nothing: it must send the
    # same Cookie headers and hold the same cookies as the plain jar, step by step.
    result = child("--jars")
    assert result["same_sent"] and result["same_held"]
    assert result["sent"] == [None, None, None, "sid=1", "theme=dark; sid=1", None,
                              "theme=dark; sid=2", "theme=dark", "theme=dark"]  # fmt: skip


@pytest.fixture
def port_server() -> Iterator[tuple[str, list[bool]]]:
    """GET /port answers the client's port; after each answer it closes the connection
    (still saying keep-alive) while `closing[0]` is true."""
    closing = [False]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # http.server's name
            body = str(self.client_address[1]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = closing[0]

        def log_message(self, *_: object) -> None:
            pass

    with serving(Handler, free_port()) as server:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", closing


def test_a_sessions_connection_is_kept_past_descriptor_1024_and_replaced_once_closed(
    port_server: tuple[str, list[bool]],
) -> None:
    # sender.idle_and_open checks a pooled connection with poll: Python's select refuses a
    # descriptor from 1024 on, and the pool took that for a dead connection (a new one for
    # every request of every session once a run held 1,024 descriptors).
    url, closing = port_server
    ports = child("--reuse", url, "1100")["ports"]
    assert len(ports) == 3 and len(set(ports)) == 1  # one connection for all three
    closing[0] = True  # the server closes each after its answer: a new one each time
    ports = child("--reuse", url, "0")["ports"]
    assert len(set(ports)) == 3
