"""A ready locustfile: `locust -f replay/locustfile.py --host URL --replay-source MODEL|TRACE`.

Every `ReplayUser` setting is a command-line option here (Locust's own argument hooks);
`tracereplay replay` runs this file headless. Run one user per process (`-u 1`, or with
`--master --expect-workers P`, `-u P` and `--replay-workers P`): each is one driver.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from locust import events
from locust.runners import MasterRunner, WorkerRunner

from tracereplay.replay.body import DEFAULT_MAX_BODY
from tracereplay.replay.guard import watch_parent
from tracereplay.replay.results import WORKERS_DIR, write_worker_error
from tracereplay.replay.user import (
    DONE_MESSAGE,
    ERROR_MESSAGE,
    GO_AHEAD_S,
    GO_MESSAGE,
    READY_MESSAGE,
    WORKER_FAILED_EXIT,
    ReplayUser,
    receive_zero,
)


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("tracereplay", "Replay a model or a trace open-loop")
    group.add_argument("--replay-source", default="", help="Model file or trace directory")
    group.add_argument("--replay-out", default="reports/replay", help="Run directory")
    group.add_argument("--replay-scale", type=float, default=1.0, help="N x the real rate")
    group.add_argument("--replay-speed", type=float, default=1.0, help="Time compression")
    group.add_argument("--replay-duration", type=float, default=None, help="Seconds of starts")
    group.add_argument("--replay-seed", type=int, default=0, help="Seed of the plan")
    group.add_argument("--replay-max-rps", type=float, default=None, help="Hard cap, req/s")
    group.add_argument("--replay-credentials", default=None, help="CSV email,password[,role]")
    group.add_argument("--replay-workers", type=int, default=1, help="Processes sharing it")
    group.add_argument("--replay-grace", type=float, default=30.0, help="Seconds to finish")
    group.add_argument("--replay-arrivals", default="stratified", help="stratified|poisson")
    group.add_argument("--replay-profile", default=None, help="peak|spike|soak|stress (model)")
    group.add_argument("--replay-max-body", type=int, default=DEFAULT_MAX_BODY,
                       help="Bytes of a response body read at most")  # fmt: skip
    group.add_argument("--replay-protect", default="DELETE,PATCH,PUT",
                       help="Methods sent only to objects their session created")  # fmt: skip
    group.add_argument("--replay-allow-foreign-writes", action="store_true",
                       help="Let protected requests go to any object (unsafe)")  # fmt: skip
    group.add_argument("--replay-spread-addresses", action="store_true",
                       help="X-Forwarded-For from each session's captured address")  # fmt: skip
    group.add_argument("--replay-no-discovery", action="store_true",
                       help="Skip the discovery phase (list calls per account)")  # fmt: skip
    group.add_argument("--replay-parent-pid", type=int, default=None,
                       help="Stop when this process (tracereplay replay) is gone")  # fmt: skip


class TraceReplay(ReplayUser):
    """Settings come from the --replay-* options (see `configure`)."""


@events.init.add_listener
def configure(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is not None and options.replay_source:
        TraceReplay.source = options.replay_source
        TraceReplay.out = options.replay_out
        TraceReplay.scale = options.replay_scale
        TraceReplay.speed = options.replay_speed
        TraceReplay.duration_s = options.replay_duration
        TraceReplay.seed = options.replay_seed
        TraceReplay.max_rps = options.replay_max_rps
        TraceReplay.credentials = options.replay_credentials
        TraceReplay.workers = options.replay_workers
        TraceReplay.grace_s = options.replay_grace
        TraceReplay.arrivals = options.replay_arrivals
        TraceReplay.profile = options.replay_profile
        TraceReplay.max_body = options.replay_max_body
        TraceReplay.protect = options.replay_protect
        TraceReplay.allow_foreign_writes = options.replay_allow_foreign_writes
        TraceReplay.spread_addresses = options.replay_spread_addresses
        TraceReplay.discovery = not options.replay_no_discovery
        if options.replay_parent_pid is not None:
            watch_parent(options.replay_parent_pid)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(GO_MESSAGE, lambda msg, **_: receive_zero(msg.data["zero"]))
    if isinstance(runner, MasterRunner):
        done: set[int] = set()
        ready: set[int] = set()

        def on_ready(environment: Any, msg: Any, **_: Any) -> None:
            # Time zero once every worker has planned its shard: one clock for the run.
            ready.add(int(msg.data.get("worker", -1)))
            if len(ready) == TraceReplay.workers:
                runner.send_message(GO_MESSAGE, {"zero": time.time() + GO_AHEAD_S})

        def on_done(environment: Any, msg: Any, **_: Any) -> None:
            done.add(int(msg.data.get("worker", -1)))
            if len(done) >= TraceReplay.workers:
                runner.quit()  # every worker played its shard: the run is over

        def on_error(environment: Any, msg: Any, **_: Any) -> None:
            # The worker's line, kept here too: a worker on another machine writes its own
            # error file there. One failure ends the whole run.
            worker = int(msg.data.get("worker", -1))
            directory = Path(TraceReplay.out) / WORKERS_DIR / f"worker-{worker}"
            write_worker_error(directory, str(msg.data.get("line", "failed")))
            environment.process_exit_code = WORKER_FAILED_EXIT
            runner.quit()

        runner.register_message(READY_MESSAGE, on_ready)
        runner.register_message(DONE_MESSAGE, on_done)
        runner.register_message(ERROR_MESSAGE, on_error)
