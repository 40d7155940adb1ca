"""Run one `ReplayDriver` scenario in a child process (locust monkey-patches with gevent, so
not in pytest's own process) and print what happened as JSON.

    python -m tests.replay.driver_child HOST OUT_DIR BAD_PATH
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from locust import FastHttpUser, constant, task
from locust.env import Environment

from tracereplay.models.correlations import AuthInfo
from tracereplay.replay.driver import DriverSettings, ReplayDriver
from tracereplay.replay.plan import Plan, PlannedRequest, PlannedSession
from tracereplay.replay.results import ResultWriter
from tracereplay.replay.urls import parse_origin


class Idle(FastHttpUser):
    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


def main(host: str, out: str, bad_path: str) -> None:
    def get(path: str, think_s: float = 0.0) -> PlannedRequest:
        return PlannedRequest(f"GET {path}", "GET", path, think_s=think_s)

    slow = tuple(get("/api/items", think_s=2.0 if i else 0.0) for i in range(5))
    plan = Plan(
        (
            PlannedSession(0, 0.0, slow),
            PlannedSession(1, 0.1, slow),
            # This one's second request cannot be made by outgoing_url (a session never
            # built by a checked loader could hold it): the whole driver must stop.
            PlannedSession(2, 0.3, (get("/api/items"), get(bad_path, think_s=0.2))),
        ),
        60.0, "model", 1.0, 1.0, 0,
    )  # fmt: skip
    Idle.host = host
    user = Idle(Environment(user_classes=[Idle], host=host))
    writer = ResultWriter(Path(out), host=host, scheme="http", start=datetime.now(UTC))
    driver = ReplayDriver(
        user, plan, rules=[], auth=AuthInfo(None, None, (), None, None), credentials=[],
        writer=writer, limiter=None,
        settings=DriverSettings(origin=parse_origin(host), grace_s=30.0),
    )  # fmt: skip
    started = time.monotonic()
    try:
        driver.run(time.time(), time.monotonic())
        raised = None
    except Exception as exc:  # what the test checks
        raised = f"{type(exc).__name__}: {exc}"
    log = driver.sessions
    print(json.dumps({"raised": raised, "seconds": time.monotonic() - started,
                      "started": log.started, "cut": log.cut,
                      "completed": log.completed, "failed": log.failed}))  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:4])
