"""Sessions of one `Sender` against HOST in a child process (locust monkey-patches with
gevent, so not in pytest's own process): each NAME signs in (GET /login?u=NAME, which
sets its cookie), calls /me, the first signs out, all call /me again. Prints the host
lookups the hub's resolver was asked for, as JSON.

    python -m tests.replay.sender_child HOST NAME...
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
from tracereplay.replay.sender import Sender
from tracereplay.replay.urls import parse_origin


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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
