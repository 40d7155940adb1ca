"""`ReplayDriver._requests` of two sessions in a child process (gevent stays out of pytest's
own), with a sender that answers at once without yielding to the hub: the order in which
the sessions' requests went out shows whether a session yields between its requests.

    python -m tests.replay.turns_child THINK_S
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

from tracereplay.models.correlations import AuthInfo
from tracereplay.replay.driver import DriverSettings, ReplayDriver
from tracereplay.replay.plan import Plan, PlannedRequest, PlannedSession
from tracereplay.replay.results import ResultWriter
from tracereplay.replay.sender import Answer
from tracereplay.replay.urls import parse_origin

HOST = "http://127.0.0.1:9"  # never connected to: the sender below answers itself


class Idle(FastHttpUser):
    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


def main(think_s: float) -> dict[str, Any]:
    def session(index: int, path: str) -> PlannedSession:
        requests = tuple(
            PlannedRequest(f"GET {path}", "GET", path, think_s=think_s if k else 0.0)
            for k in range(3)
        )
        return PlannedSession(index, 0.0, requests)

    plan = Plan((session(0, "/a"), session(1, "/b")), 10.0, "model", 1.0, 1.0, 0)
    Idle.host = HOST
    user = Idle(Environment(user_classes=[Idle], host=HOST))
    sent: list[str] = []

    def send(client: Any, cleared: Any, url: Any, name: str, timer: Any = None) -> Answer:
        sent.append(cleared.request.path)  # answered at once: no yield here
        return Answer(200, None, [("content-type", "application/json")], b"{}")

    with tempfile.TemporaryDirectory(prefix="turns-") as out:
        writer = ResultWriter(Path(out), host=HOST, scheme="http", start=datetime.now(UTC))
        driver = ReplayDriver(
            user, plan, rules=[], auth=AuthInfo(None, None, (), None, None), credentials=[],
            writer=writer, limiter=None, settings=DriverSettings(origin=parse_origin(HOST)),
        )  # fmt: skip
        driver.sender.send = send  # type: ignore[method-assign]
        now = time.time()
        timers = [driver.sender.timer() for _ in plan.sessions]
        sessions = [
            gevent.spawn(driver._requests, s, now, driver.sender.client(), timer)
            for s, timer in zip(plan.sessions, timers, strict=True)
        ]
        gevent.joinall(sessions, raise_error=True)
        for timer in timers:
            timer.close()
        rows = [(r.session, r.seq, r.path, r.status) for r in writer._rows]
        writer.close()
    return {"sent": sent, "rows": rows, "completed": driver.sessions.completed}


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]))))
