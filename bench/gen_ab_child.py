"""One side of bench/bench_generator.py's in-process A/B (`--inproc-rounds`): a process that
plays bursts of planned sessions with the `ReplayDriver` of whatever `tracereplay` is
first on PYTHONPATH (this tree or a baseline commit's), and counts its own CPU.

    python bench/gen_ab_child.py HOST PATH

Reads one command a line on stdin and answers one JSON line on stdout:

    replay SESSIONS PER_SESSION SPACING_S   sessions of PER_SESSION GETs of PATH, think 0,
                                            starting SPACING_S apart (0: all at once)
    bare USERS PER_USER                     USERS FastHttpUsers' clients, each GETting PATH
                                            PER_USER times back to back (Locust's own loop
                                            without its runner: the HTTP client's cost)
    bare_sessions SESSIONS PER_SESSION SPACING_S
                                            the replay's shape without the replay: each
                                            session a new FastHttpSession (its own
                                            connection), started SPACING_S apart on a
                                            gevent sleep, GETting PATH PER_SESSION times
    quit

The answer: {"requests", "ok", "cpu_s", "wall_s"[, "late_p99_ms", "late_p50_ms", "sessions"]}, where
cpu_s is `time.process_time()` of this whole process (the hub, every greenlet, the
writer's native thread) from just before the first start to the moment the last session
ended (before the writer's final close, which is per run, not per request); late_p99_ms is
the p99 of the sessions' start lateness (summary.json's, from the driver's own log). The
plan is built and `prepare`d, and the collector emptied, before that window, as
`replay/user.py` does before time zero. A burst is "ok" when every session completed.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import numpy as np
from locust import FastHttpUser, constant, task
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from tracereplay.models.correlations import AuthInfo
from tracereplay.replay.driver import DriverSettings, ReplayDriver
from tracereplay.replay.offload import NativeThread, quiet_collector
from tracereplay.replay.plan import Plan, PlannedRequest, PlannedSession
from tracereplay.replay.results import ResultWriter
from tracereplay.replay.urls import parse_origin

HEADERS = (("accept", "application/json"),)


class Idle(FastHttpUser):
    wait_time = constant(0)

    @task
    def idle(self) -> None:  # never run: the harness calls the client itself
        pass


def replay(env: Environment, host: str, path: str, sessions: int, k: int, spacing: float) -> Any:
    get = PlannedRequest(f"GET {path}", "GET", path, headers=HEADERS)
    plan = Plan(
        tuple(PlannedSession(i, i * spacing, (get,) * k) for i in range(sessions)),
        max(1.0, sessions * spacing), "trace", 1.0, 1.0, 0,
    )  # fmt: skip
    user = Idle(env)
    background = NativeThread()
    with tempfile.TemporaryDirectory(prefix="gen-ab-") as out:
        writer = ResultWriter(
            Path(out), host=host, scheme="http", start=datetime.now(UTC), background=background
        )
        driver = ReplayDriver(
            user, plan, rules=[], auth=AuthInfo(None, None, (), None, None), credentials=[],
            writer=writer, limiter=None,
            settings=DriverSettings(origin=parse_origin(host), grace_s=60.0),
        )  # fmt: skip
        driver.prepare()
        quiet_collector()
        ended: list[tuple[float, float]] = []
        close = writer.close

        def timed_close() -> None:
            if not ended:
                ended.append((time.process_time(), time.perf_counter()))
            close()

        writer.close = timed_close  # type: ignore[method-assign]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        driver.run(time.time(), time.monotonic())
        cpu1, wall1 = ended[0]
        log = driver.sessions
    background.close()  # a replay makes one per process: none left over from burst to burst
    return {
        "requests": sessions * k,
        "ok": log.completed == sessions and log.failed == 0,
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "late_p99_ms": float(np.percentile(log.lateness_ms, 99)) if log.lateness_ms else None,
        "late_p50_ms": float(np.percentile(log.lateness_ms, 50)) if log.lateness_ms else None,
        "sessions": {
            "started": log.started,
            "completed": log.completed,
            "cut": log.cut,
            "failed": log.failed,
            "login_failed": log.login_failed,
        },
    }


def bare(env: Environment, path: str, users: int, k: int) -> Any:
    clients = [Idle(env).client for _ in range(users)]
    failed: list[int] = []

    def loop(client: Any) -> None:
        for _ in range(k):
            response = client.get(path)
            if response.status_code != 200 or len(response.content) != 4096:
                failed.append(1)
            gevent.sleep(0)  # what Locust's constant(0) wait does between tasks

    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    gevent.joinall([gevent.spawn(loop, c) for c in clients])
    cpu1, wall1 = time.process_time(), time.perf_counter()
    return {"requests": users * k, "ok": not failed, "cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0}


def bare_sessions(env: Environment, host: str, path: str, sessions: int, k: int,
                  spacing: float) -> Any:  # fmt: skip
    user = Idle(env)
    failed: list[int] = []

    def session(i: int) -> None:
        gevent.sleep(max(0.0, zero + i * spacing - time.monotonic()))
        client = FastHttpSession(host, env.events.request, user=user)
        for _ in range(k):
            response = client.get(path)
            if response.status_code != 200 or len(response.content) != 4096:
                failed.append(1)

    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    zero = time.monotonic()
    gevent.joinall([gevent.spawn(session, i) for i in range(sessions)])
    cpu1, wall1 = time.process_time(), time.perf_counter()
    return {"requests": sessions * k, "ok": not failed, "cpu_s": cpu1 - cpu0,
            "wall_s": wall1 - wall0}  # fmt: skip


def main(host: str, path: str) -> None:
    Idle.host = host
    env = Environment(user_classes=[Idle], host=host)
    env.create_local_runner()  # its stats listen to every request, as in a real run
    sys.setswitchinterval(0.001)  # as replay/user.py: the writer's thread lets go soon
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "quit":
            break
        if cmd == "replay":
            answer = replay(env, host, path, int(args[0]), int(args[1]), float(args[2]))
        elif cmd == "bare":
            answer = bare(env, path, int(args[0]), int(args[1]))
        elif cmd == "bare_sessions":
            answer = bare_sessions(env, host, path, int(args[0]), int(args[1]), float(args[2]))
        else:
            answer = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
