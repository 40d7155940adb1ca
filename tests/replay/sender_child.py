"""Sessions of one `Sender` against HOST in a child process (locust monkey-patches with
gevent, so not in pytest's own process): each NAME signs in (GET /login?u=NAME, which
sets its cookie), calls /me, the first signs out, all call /me again. Prints the host
lookups the hub's resolver was asked for, as JSON.

    python -m tests.replay.sender_child HOST NAME...
    python -m tests.replay.sender_child --unit    # ResolvedOnce alone, a fake resolver
    python -m tests.replay.sender_child --lines    # sender.header_lines vs Headers.items()
    python -m tests.replay.sender_child --stats HOST DEAD_HOST
        # Sender.send of GET /ok, /missing, /moved, /big (max_body 1000) to HOST and of
        # GET /ok to DEAD_HOST (nothing listens): each answer, and Locust's stats of them
    python -m tests.replay.sender_child --split HOST DEAD_HOST
        # sender.SplitUrl against geventhttpclient's URL of the same text: its parts, and
        # the request each sends to HOST (and the error each gets from DEAD_HOST)
"""

from __future__ import annotations

import json
import sys
from typing import Any

import gevent
from locust import FastHttpUser
from locust.env import Environment

from tracereplay.replay.driver import DriverSettings
from tracereplay.replay.offload import ResolvedOnce, resolve_once
from tracereplay.replay.ownership import Cleared, Protection, clear
from tracereplay.replay.rewrite import PreparedRequest
from tracereplay.replay.sender import Sender, SplitUrl
from tracereplay.replay.urls import outgoing_url, parse_origin


class Counting:
    """The hub's resolver, counting the lookups it is asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.getaddrinfo(*args, **kwargs)


class _User(FastHttpUser):
    abstract = True


def main(host: str, names: list[str]) -> None:
    hub = gevent.get_hub()
    counting = hub.resolver = Counting(hub.resolver)
    _User.host = host
    user = _User(Environment(user_classes=[_User]))
    sender = Sender(user, DriverSettings(origin=parse_origin(host)))
    Sender(user, DriverSettings(origin=parse_origin(host)))  # discovery's, then the driver's
    resolve_once()
    wrapped = isinstance(hub.resolver, ResolvedOnce) and hub.resolver._inner is counting
    clients = {name: sender.client() for name in names}

    def session(name: str) -> None:
        client = clients[name]
        client.get(f"/login?u={name}")
        client.get("/me")
        if name == names[0]:
            client.get("/logout")  # one session signs out; the others go on
        client.get("/me")

    gevent.joinall([gevent.spawn(session, n) for n in names], raise_error=True, timeout=20)
    print(json.dumps({"lookups": counting.calls, "wrapped_once": wrapped}))


class Fake:
    """A resolver that counts its lookups and fails the first `fail` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.calls, self.fail, self.other = 0, fail, "kept"

    def getaddrinfo(self, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.calls += 1
        if self.calls <= self.fail:
            raise OSError("no answer this time")
        return [("answer", self.calls, args)]


def unit() -> None:
    """ResolvedOnce alone: a failure asked again, an answer kept, then kept a minute."""
    inner = Fake(fail=1)
    resolver = ResolvedOnce(inner)
    failed = False
    try:
        resolver.getaddrinfo("target.test", 80)
    except OSError:
        failed = True
    first = resolver.getaddrinfo("target.test", 80)
    again = resolver.getaddrinfo("target.test", 80)
    other_port = resolver.getaddrinfo("target.test", 8080)
    clocked, now = Fake(), [100.0]
    timed = ResolvedOnce(clocked, ttl_s=60.0, clock=lambda: now[0])
    timed.getaddrinfo("target.test", 80)
    now[0] += 59.9
    timed.getaddrinfo("target.test", 80)
    within = clocked.calls
    now[0] += 0.1
    timed.getaddrinfo("target.test", 80)
    timed.getaddrinfo("target.test", 80)
    print(json.dumps({
        "failed_first": failed, "kept": again is first, "per_port": other_port != first,
        "calls": inner.calls, "other": resolver.other, "within_minute": within,
        "after_minute": clocked.calls,
    }))  # fmt: skip


def stats(host: str, dead: str) -> None:
    """What `Sender.send` answers and what Locust's stats (a local runner's) record."""
    _User.host = host
    env = Environment(user_classes=[_User])
    env.create_local_runner()  # its stats listen to the request event, as in a run
    user = _User(env)
    answers: dict[str, Any] = {}
    for base, paths in ((host, ("/ok", "/missing", "/moved", "/big")), (dead, ("/ok",))):
        sender = Sender(user, DriverSettings(origin=parse_origin(base), max_body=1000))
        client, timer = sender.client(), sender.timer()
        for path in paths:
            name = f"GET {path}" + (" (dead)" if base == dead else "")
            cleared = clear(PreparedRequest("GET", path, None, [], None), name, (), Protection())
            assert isinstance(cleared, Cleared)
            answer = sender.send(client, cleared, outgoing_url(sender.settings.origin, path),
                                 name, timer)  # fmt: skip
            answers[name] = {
                "status": answer.status, "error": (answer.error or "").split(":")[0],
                "body": len(answer.body or b""), "truncated": answer.truncated,
            }  # fmt: skip
        timer.close()
    entries = {
        e.name: {"method": e.method, "requests": e.num_requests, "failures": e.num_failures,
                 "length": e.total_content_length, "timed": e.total_response_time > 0}
        for e in env.stats.entries.values()
    }  # fmt: skip
    errors = sorted(f"{e.name}: {e.error}" for e in env.stats.errors.values())
    print(json.dumps({"answers": answers, "entries": entries, "errors": errors}))


SPLIT_CASES = (("/items", None), ("/items/42", "page=2&sort=-name"), ("/q", "q=a b&x=%2F"),
               ("/caf%C3%A9/é", "k=ü"), ("/x;v=1/y", None), ("/p%2Fq", "a=%zz&b"))  # fmt: skip
PARTS = ("scheme", "netloc", "host", "hostname", "port", "path", "params", "query",
         "fragment", "request_uri", "quoted_uri")  # fmt: skip


def split(host: str, dead: str) -> None:
    """Each case sent through the transport as its text and as a `SplitUrl`."""
    from geventhttpclient.url import URL

    _User.host = host
    user = _User(Environment(user_classes=[_User]))
    found: dict[str, Any] = {"parts": [], "sent": [], "errors": []}
    for base in (host, dead):
        sender = Sender(user, DriverSettings(origin=parse_origin(base)))
        client = sender.client()
        for path, query in SPLIT_CASES:
            text = outgoing_url(sender.settings.origin, path, query).text
            made = SplitUrl(text)
            if base == host:
                found["parts"].append(
                    [getattr(made, p) == getattr(URL(text), p) for p in PARTS]
                    + [str(made) == text, tuple(made) == tuple(URL(text))]
                )
            got = []
            for url in (text, made):
                got.append(client._send_request_safe_mode("GET", url, headers={"a": "b"}))
                if base == host:  # its body read: the connection goes back to the pool
                    assert got[-1].content == b"{}"
            if base == host:
                found["sent"].append([r._sent_request for r in got])
            else:
                found["errors"].append([repr(r.error) + " " + str(r.error) for r in got])
    print(json.dumps(found))


def _headers(lines: list[tuple[str, str]]) -> Any:
    """geventhttpclient's own Headers holding `lines`, in order."""
    from geventhttpclient.header import Headers

    headers = Headers()
    for name, value in lines:
        headers.add(name, value)
    return headers


def lines() -> None:
    """`header_lines` against `items()` and a pass for Content-Encoding, on geventhttpclient's
    own Headers: repeated names (in either case), one name, none."""
    from tracereplay.replay.sender import header_lines

    cases = [
        [("Content-Type", "application/json"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
         ("Content-Encoding", "gzip"), ("X-Next", "/p?page=2"), ("content-encoding", "br")],
        [("content-encoding", "deflate")],
        [("Server", "nginx"), ("Content-Length", "4096")],
        [],
    ]  # fmt: skip
    out = []
    for case in cases:
        headers = _headers(case)
        items = list(headers.items())
        first = next((v for k, v in items if k.lower() == "content-encoding"), None)
        out.append(header_lines(headers) == (items, first))
    print(json.dumps({"same": out}))


def lengths() -> None:
    """`content_length` on geventhttpclient's own Headers: a length the transport stops at,
    or None (none, repeated, not a number, with a Transfer-Encoding)."""
    from tracereplay.replay.sender import content_length

    cases = [
        [("Content-Length", "4096")], [("content-length", "0")], [],
        [("Content-Length", "5"), ("content-length", "5")], [("Content-Length", "-1")],
        [("Content-Length", "12"), ("Transfer-Encoding", "chunked")],
    ]  # fmt: skip
    out = [content_length(_headers(case)) for case in cases]
    print(json.dumps({"lengths": out}))


def jars() -> None:
    """`SessionJar` against http.cookiejar's own jar, request by request through a
    session's life: no cookie yet, answers without and with Set-Cookie (any case), an
    expiring one, a second domain's; the Cookie header each request got, and the jar."""
    from http.cookiejar import CookieJar

    from geventhttpclient.header import Headers
    from geventhttpclient.useragent import _make_request

    from tracereplay.replay.sender import SessionJar

    class Answer:
        def __init__(self, lines: list[tuple[str, str]]) -> None:
            self.headers = Headers()
            for name, value in lines:
                self.headers.add(name, value)

        def info(self) -> Headers:
            return self.headers

    steps: list[tuple[str, list[tuple[str, str]]]] = [
        ("http://api.test/a", []),
        ("http://api.test/a", [("Content-Type", "application/json")]),
        ("http://api.test/login", [("Set-Cookie", "sid=1; Path=/")]),
        ("http://api.test/a", [("set-cookie", "theme=dark; Path=/a")]),
        ("http://api.test/a", [("SET-COOKIE", "sid=2; Path=/")]),
        ("http://other.test/b", [("Set-Cookie", "o=1; Path=/")]),
        ("http://api.test/a", [("Set-Cookie", "sid=; Path=/; Max-Age=0")]),
        ("http://api.test/a", [("Set-Cookie2", 'v=1; Version="1"; Path="/"')]),
        ("http://api.test/a", []),
    ]
    sent: dict[str, list[str | None]] = {"plain": [], "session": []}
    held: dict[str, list[str]] = {}
    for name, jar in (("plain", CookieJar()), ("session", SessionJar())):
        for url, answer in steps:
            request = _make_request(url, "GET", headers=Headers())
            jar.add_cookie_header(request)
            sent[name].append(request.headers.get("Cookie"))
            jar.extract_cookies(Answer(answer), request)  # type: ignore[arg-type]
        held[name] = sorted(f"{c.domain} {c.path} {c.name}={c.value}" for c in jar)
    print(json.dumps({"same_sent": sent["plain"] == sent["session"], "sent": sent["session"],
                      "same_held": held["plain"] == held["session"]}))  # fmt: skip


def reuse(host: str, spare_fds: int) -> None:
    """Three GETs of one session's client, after `spare_fds` descriptors were opened (so its
    connection's is past them): the client port of each answer, as the server echoes it."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # Locust raises it so too
    if soft < spare_fds + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, spare_fds + 100), hard))
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(spare_fds)]
    _User.host = host
    user = _User(Environment(user_classes=[_User]))
    client = Sender(user, DriverSettings(origin=parse_origin(host))).client()
    ports = [client.get("/port").content.decode() for _ in range(3)]
    for fd in spare:
        os.close(fd)
    print(json.dumps({"ports": ports}))


if __name__ == "__main__":
    if sys.argv[1:] == ["--unit"]:
        unit()
    elif sys.argv[1:] == ["--lengths"]:
        lengths()
    elif sys.argv[1:] == ["--jars"]:
        jars()
    elif sys.argv[1:2] == ["--reuse"]:
        reuse(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:] == ["--lines"]:
        lines()
    elif sys.argv[1:2] == ["--stats"]:
        stats(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["--split"]:
        split(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2:])
