"""`ReplayUser`: an abstract Locust user that replays a model or a trace, open-loop.

Subclass it in your own locustfile and set the class attributes (or use the ready
`replay/locustfile.py`, which reads them from command-line options):

    from tracereplay.replay.user import ReplayUser

    class Staging(ReplayUser):
        source = "traces/staging.model.json"   # a model file or a trace directory
        scale = 5.0                            # N × the real arrival rate
        out = "reports/my-run"

Run it with one user per process (`-u 1`, or `-u P` with P workers): each instance is a
driver that releases its share of the planned sessions on time, each session in its own
greenlet with its own cookies and connections; requests are reported to Locust under
their endpoint template.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import gevent
import gevent.event
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser
from locust.runners import LocalRunner, WorkerRunner

from tracereplay.errors import TraceReplayError, UsageError
from tracereplay.models.model_file import load_model

from .body import DEFAULT_MAX_BODY
from .credentials import Credential, load_credentials, scrub, secret_values
from .discovery import discovery_phase
from .driver import DriverSettings, ReplayDriver
from .guard import hide_secrets
from .liveids import CredentialPools
from .offload import NativeThread, off_hub, quiet_collector
from .ownership import DEFAULT_PROTECTED, Protection, parse_protect
from .plan import Plan
from .ratelimit import RateLimiter
from .results import WORKERS_DIR, ResultWriter, write_worker_error
from .sender import Sender
from .sources import Knowledge, load_source, model_knowledge, plan_from_model, plan_from_trace
from .urls import Origin, parse_origin

DONE_MESSAGE = "tracereplay_done"
ERROR_MESSAGE = "tracereplay_error"
READY_MESSAGE = "tracereplay_ready"
"""Worker → master: its shard is planned and its writer open; it waits for time zero."""
GO_MESSAGE = "tracereplay_go"
"""Master → workers, once every worker is ready: `{"zero": epoch seconds}`, the one time
zero of the whole run (a moment just ahead, so that it reaches every worker first)."""
GO_AHEAD_S = 0.25
LOCAL_AHEAD_S = 0.25
"""A single process's time zero lies this far ahead: the sessions due in its first 50 ms
(START_LEAD_S) are then spawned and waiting before zero, not at once with the run's first
work (at 0.02 s, the first two to four starts were 8-33 ms late in every run)."""
SWITCH_INTERVAL_S = 0.001
"""The interpreter's thread switch interval in a replay process: work on the writer's
native thread gives the GIL back to the sending loop within a millisecond."""
WORKER_FAILED_EXIT = 3
logger = logging.getLogger(__name__)
_RUNNING: list[ReplayDriver] = []
_ZERO = gevent.event.AsyncResult()
"""This worker's time zero, as the master's GO message gave it."""


def receive_zero(zero_s: float) -> None:
    """The GO message's handler (replay/locustfile.py registers it on a worker)."""
    _ZERO.set(float(zero_s))


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _stop_drivers(**_: object) -> None:
    """A run stopped early (Ctrl-C, SIGTERM, --run-time): Locust fires this before it kills
    the users, so the drivers cut their sessions here (recording the requests they were
    waiting on) and write whatever they gathered, before the process exits."""
    while _RUNNING:
        _RUNNING.pop().stop()


class ReplayUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    source: ClassVar[str] = ""
    """Model file (tracereplay model) or trace directory to replay."""
    out: ClassVar[str] = "reports/replay"
    """Run directory: replayed/, timing.parquet, summary.json go here."""
    scale: ClassVar[float] = 1.0
    """N × the modeled arrival rate (model) or N copies of each session (trace)."""
    speed: ClassVar[float] = 1.0
    """Explicit time compression (think times and arrivals), 1 = real time."""
    duration_s: ClassVar[float | None] = None
    """Window of planned session starts [default: the model's or trace's span / speed]."""
    seed: ClassVar[int] = 0
    max_rps: ClassVar[float | None] = None
    """Hard cap on requests per second over all processes."""
    credentials: ClassVar[str | None] = None
    """CSV email,password[,role] the sessions log in with."""
    workers: ClassVar[int] = 1
    """Processes the plan is sharded over (one ReplayUser each)."""
    grace_s: ClassVar[float] = 30.0
    arrivals: ClassVar[str] = "stratified"
    profile: ClassVar[str | None] = None
    """A scenario profile: peak, spike, soak or stress (replay/profiles.py); models only."""
    max_body: ClassVar[int] = DEFAULT_MAX_BODY
    """Bytes of a response body read at most; the rest is not read (connection closed)."""
    protect: ClassVar[str] = ",".join(sorted(DEFAULT_PROTECTED))
    """Methods whose requests go only to objects their session created (replay/ownership.py)."""
    allow_foreign_writes: ClassVar[bool] = False
    """Let protected requests go to any object (loud; see replay/ownership.py)."""
    spread_addresses: ClassVar[bool] = False
    """Send each session's X-Forwarded-For from its captured address pseudonym (only for
    targets that trust the header)."""
    discovery: ClassVar[bool] = True
    """Call the learned list endpoints once per account before the first session."""

    @task
    def replay(self) -> None:
        worker = (
            getattr(self.environment.runner, "worker_index", 0)
            if isinstance(self.environment.runner, WorkerRunner)
            else 0
        )
        secrets: frozenset[str] = frozenset()
        try:
            origin = parse_origin(self.host or "")
            creds = load_credentials(Path(self.credentials)) if self.credentials else []
            secrets = secret_values(creds)
            hide_secrets(secrets)
            self._run(worker, origin, creds)
        except (StopUser, gevent.GreenletExit):
            raise
        except Exception as exc:  # any failure ends the run, said once
            self._fail(worker, exc, secrets)
        self._finish()

    def _run(self, worker: int, origin: Origin, creds: list[Credential]) -> None:
        workers = max(1, int(self.workers))
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # Off the hub: a worker building a large shard still answers the master's heartbeats.
        plan, knowledge = off_hub(lambda: self._plan(worker, workers))
        # The plan and every module live until the end: out of the collector's sight, so
        # a full collection during the run does not walk them (they are most of the heap).
        gc.freeze()
        limiter = RateLimiter(self.max_rps / workers, sleep=gevent.sleep) if self.max_rps else None
        auth = knowledge.auth
        protection = Protection(
            methods=parse_protect(self.protect),
            stores_body=frozenset(knowledge.ids.stores_body),
            auth_endpoints=frozenset(
                e
                for e in (auth.login_endpoint, auth.refresh_endpoint, auth.logout_endpoint)
                if e is not None
            ),
            allow_foreign_writes=self.allow_foreign_writes,
        )
        settings = DriverSettings(
            origin=origin,
            grace_s=self.grace_s,
            max_body=self.max_body,
            protection=protection,
            spread_addresses=self.spread_addresses,
        )
        pools = CredentialPools()
        found = None
        if self.discovery:  # before time zero: sessions still start on time
            found = discovery_phase(
                Sender(self, settings), plan, knowledge, creds, settings, limiter, pools
            )
        writer = ResultWriter(
            Path(self.out) / WORKERS_DIR / f"worker-{worker}",
            host=origin.base,
            scheme=origin.scheme,
            start=datetime.now(UTC),
            background=NativeThread(),
        )
        writer.safety.discovery = asdict(found) if found is not None else None
        driver = ReplayDriver(
            self,
            plan,
            rules=knowledge.rules,
            auth=auth,
            credentials=creds,
            writer=writer,
            limiter=limiter,
            settings=settings,
            ids=knowledge.ids,
            pools=pools,
        )
        _RUNNING.append(driver)
        off_hub(driver.prepare)  # a pass over the whole plan: not on the hub, not after zero
        # What the setup left (discovery, the writer, the start order) out of sight too: the
        # run's collections then walk only its own objects (the longest in a run at 300
        # req/s went from 12.8 to 0.5 ms), and they come rarely (offload.quiet_collector).
        quiet_collector()
        zero_wall = self._time_zero(worker)
        driver.run(zero_wall, time.monotonic() + (zero_wall - time.time()))

    def _time_zero(self, worker: int) -> float:
        """The run's time zero (epoch seconds): with workers, the master's, sent once every
        worker is ready, so all shards start on one clock and none is still planning."""
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(READY_MESSAGE, {"worker": worker})
            return float(_ZERO.get())
        return time.time() + LOCAL_AHEAD_S

    def _fail(self, worker: int, exc: Exception, secrets: frozenset[str]) -> None:
        """Record why this process stops (one line, credentials blanked) where the parent
        reads it, and end the run: a failure must not look like a quiet, empty run."""
        said = str(exc) if isinstance(exc, TraceReplayError) else f"{type(exc).__name__}: {exc}"
        line = scrub(" ".join(said.split()), secrets) or type(exc).__name__
        write_worker_error(Path(self.out) / WORKERS_DIR / f"worker-{worker}", line)
        logger.error("replay stopped: %s", line)
        self.environment.process_exit_code = WORKER_FAILED_EXIT
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(ERROR_MESSAGE, {"worker": worker, "line": line})

    def _plan(self, worker: int, workers: int) -> tuple[Plan, Knowledge]:
        kind = load_source(Path(self.source))
        if kind == "model":
            model = load_model(Path(self.source))
            plan = plan_from_model(
                model,
                scale=self.scale,
                duration_s=self.duration_s,
                speed=self.speed,
                seed=self.seed,
                worker=worker,
                workers=workers,
                arrivals=self.arrivals,
                profile=self.profile,
            )
            return plan, model_knowledge(model)
        if self.profile is not None:
            raise UsageError(f"profile {self.profile}: profiles shape a model, not a trace")
        plan, knowledge = plan_from_trace(
            Path(self.source),
            scale=max(1, round(self.scale)),
            speed=self.speed,
            duration_s=self.duration_s,
            seed=self.seed,
            worker=worker,
            workers=workers,
        )
        return plan, knowledge

    def _finish(self) -> None:
        runner = self.environment.runner
        if isinstance(runner, LocalRunner):
            runner.quit()
        elif isinstance(runner, WorkerRunner):
            runner.send_message(DONE_MESSAGE, {"worker": runner.worker_index})
        raise StopUser()
