"""Session starts (replay/driver.py) in a child process (locust monkey-patches with gevent,
so not in pytest's own process); prints what happened as JSON.

    python -m tests.replay.start_child sleep    # waits for due times on a busy hub
    python -m tests.replay.start_child idle     # ... on an idle hub: their CPU; a nap and I/O
    python -m tests.replay.start_child stop HOST OUT_DIR
    python -m tests.replay.start_child pauses HOST OUT_DIR
"""

from __future__ import annotations

import json
import random
import socket
import sys
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

from tracereplay.models.correlations import AuthInfo
from tracereplay.replay import starts
from tracereplay.replay.driver import START_LEAD_S, DriverSettings, ReplayDriver
from tracereplay.replay.plan import Plan, PlannedRequest, PlannedSession
from tracereplay.replay.results import RESULTS_FILE, ResultWriter
from tracereplay.replay.starts import _nap_on, sleep_until
from tracereplay.replay.urls import parse_origin
from tracereplay.trace.store import read_journal

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


def idle_waits() -> None:
    """80 waits for due times 5 ms apart on an idle hub, half of them with naps turned off:
    the CPU a wait took each way (ms), how many naps, and how far from its due time each
    napping one returned; then a nap of up to 1 s on the hub while a socket a
    greenlet waits on has data (how long it took) and one with nothing to wake it."""
    gevent.sleep(0.01)
    offsets: list[float] = []
    cpu_ms = {"nap": 0.0, "spin": 0.0}
    naps = 0

    def counted_nap(hub: object, seconds: float) -> None:
        nonlocal naps
        naps += 1
        _nap_on(hub, seconds)

    # Rounds of 10 waits that nap, then 10 whose naps are turned off (the busy loop of
    # yields it replaced), alternated: the same load weighs on both CPU figures.
    for _ in range(4):
        for mode, nap in (("nap", counted_nap), ("spin", lambda hub, seconds: None)):
            starts._nap_on = nap
            cpu0 = time.process_time()
            for _ in range(10):
                due = time.monotonic() + 0.005
                sleep_until(due)
                if mode == "nap":
                    offsets.append((time.monotonic() - due) * 1000.0)
            cpu_ms[mode] += (time.process_time() - cpu0) * 1000.0 / 40
    starts._nap_on = _nap_on
    hub = gevent.get_hub()
    a, b = socket.socketpair()
    reader = gevent.spawn(a.recv, 10)
    gevent.sleep(0.01)  # the loop goes round: the reader's socket is in its epoll set
    b.send(b"x")
    begin = time.monotonic()
    _nap_on(hub, 1.0)
    woken_ms = (time.monotonic() - begin) * 1000.0
    reader.join()
    begin = time.monotonic()
    _nap_on(hub, 0.05)
    quiet_ms = (time.monotonic() - begin) * 1000.0
    a.close()
    b.close()
    offsets.sort()
    print(json.dumps({"cpu_ms_nap": cpu_ms["nap"], "cpu_ms_spin": cpu_ms["spin"], "naps": naps,
                      "earliest_ms": offsets[0],
                      "median_ms": offsets[20], "woken_ms": woken_ms, "quiet_ms": quiet_ms,
                      "read": reader.value.decode()}))  # fmt: skip


class Idle(FastHttpUser):
    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


def _driver(host: str, out: str, plan: Plan) -> ReplayDriver:
    Idle.host = host
    user = Idle(Environment(user_classes=[Idle], host=host))
    writer = ResultWriter(Path(out), host=host, scheme="http", start=datetime.now(UTC))
    return ReplayDriver(
        user, plan, rules=[], auth=AuthInfo(None, None, (), None, None), credentials=[],
        writer=writer, limiter=None,
        settings=DriverSettings(origin=parse_origin(host), grace_s=30.0),
    )  # fmt: skip


def pauses(host: str, out: str) -> None:
    """40 overlapping sessions of 6 GETs, exponential think times (mean 0.15 s): each
    pause the run recorded (a send minus the previous send's end, as sessionize measures
    it) minus the planned think time, in ms."""
    rng = random.Random(1)
    sessions, thinks = [], {}
    for i in range(40):
        requests = []
        for k in range(6):
            thinks[i, k] = rng.expovariate(1 / 0.15) if k else 0.0
            requests.append(PlannedRequest("GET /a", "GET", "/a", think_s=thinks[i, k]))
        sessions.append(PlannedSession(i, i * 0.05, tuple(requests)))
    driver = _driver(host, out, Plan(tuple(sessions), 60.0, "model", 1.0, 1.0, 0))
    driver.run(time.time(), time.monotonic())
    table = read_journal(Path(out) / RESULTS_FILE)
    assert table is not None
    rows = sorted(table.to_pylist(), key=lambda r: (r["session"], r["seq"]))
    over = [
        (b["sent_s"] - a["sent_s"] - a["latency_ms"] / 1000.0 - thinks[b["session"], b["seq"]])
        * 1000.0
        for a, b in pairwise(rows)
        if a["session"] == b["session"]
    ]
    print(json.dumps({"pauses": len(over), "min_over_ms": min(over),
                      "median_over_ms": sorted(over)[len(over) // 2]}))  # fmt: skip


def stopped(host: str, out: str) -> None:
    """Two sessions, the second due at 1 s; the driver is stopped between the second's
    spawn (START_LEAD_S early) and its start: it never started."""
    slow = tuple(
        PlannedRequest("GET /api/items", "GET", "/api/items", think_s=2.0 if i else 0.0)
        for i in range(3)
    )
    plan = Plan((PlannedSession(0, 0.0, slow), PlannedSession(1, 1.0, slow)),
                60.0, "model", 1.0, 1.0, 0)  # fmt: skip
    driver = _driver(host, out, plan)
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
    elif sys.argv[1] == "pauses":
        pauses(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "idle":
        idle_waits()
    else:
        waits()
