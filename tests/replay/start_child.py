"""Session starts (replay/driver.py) in a child process (locust monkey-patches with gevent,
so not in pytest's own process); prints what happened as JSON.

    python -m tests.replay.start_child sleep    # waits for due times on a busy hub
    python -m tests.replay.start_child stop HOST OUT_DIR
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

from tracereplay.models.correlations import AuthInfo
from tracereplay.replay.driver import START_LEAD_S, DriverSettings, ReplayDriver, sleep_until
from tracereplay.replay.plan import Plan, PlannedRequest, PlannedSession
from tracereplay.replay.results import ResultWriter
from tracereplay.replay.urls import parse_origin

BUSY_S = 0.003


def waits() -> None:
    """40 waits for due times 7 ms apart while another greenlet holds the hub 3 ms at a
    time (every 0.5 ms): how far from its due time each one returned (ms; negative = early)."""
    stop = False

    def busy() -> None:
        while not stop:
            end = time.perf_counter() + BUSY_S
            while time.perf_counter() < end:
                pass
            gevent.sleep(0.0005)  # a timer: the loop goes round (its time is updated)

    worker = gevent.spawn(busy)
    gevent.sleep(0.01)
    begin = time.monotonic()
    sleep_until(begin - 1.0)  # already due: at once
    past_ms = (time.monotonic() - begin) * 1000.0
    offsets = []
    for k in range(40):
        due = time.monotonic() + 0.007 + k * 0.0001
        sleep_until(due)
        offsets.append((time.monotonic() - due) * 1000.0)
    stop = True
    worker.join()
    print(json.dumps({"earliest_ms": min(offsets), "latest_ms": max(offsets), "past_ms": past_ms}))


class Idle(FastHttpUser):
    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


def stopped(host: str, out: str) -> None:
    """Two sessions, the second due at 1 s; the driver is stopped between the second's
    spawn (START_LEAD_S early) and its start: it never started."""
    slow = tuple(
        PlannedRequest("GET /api/items", "GET", "/api/items", think_s=2.0 if i else 0.0)
        for i in range(3)
    )
    plan = Plan((PlannedSession(0, 0.0, slow), PlannedSession(1, 1.0, slow)),
                60.0, "model", 1.0, 1.0, 0)  # fmt: skip
    Idle.host = host
    user = Idle(Environment(user_classes=[Idle], host=host))
    writer = ResultWriter(Path(out), host=host, scheme="http", start=datetime.now(UTC))
    driver = ReplayDriver(
        user, plan, rules=[], auth=AuthInfo(None, None, (), None, None), credentials=[],
        writer=writer, limiter=None,
        settings=DriverSettings(origin=parse_origin(host), grace_s=30.0),
    )  # fmt: skip
    zero = time.monotonic()
    runner = gevent.spawn(driver.run, time.time(), zero)
    gevent.sleep(max(0.0, zero + 1.0 - START_LEAD_S / 2 - time.monotonic()))
    spawned = len(driver._group)
    driver.stop()
    runner.join(timeout=10)
    log = driver.sessions
    print(json.dumps({"spawned": spawned, "planned": log.planned, "started": log.started,
                      "cut": log.cut, "lateness": len(log.lateness_ms)}))  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "stop":
        stopped(sys.argv[2], sys.argv[3])
    else:
        waits()
