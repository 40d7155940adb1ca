"""`run_replay`: `tracereplay replay` — Locust headless (or with its web UI) running the
replay locustfile, in one process or as a master with P local workers; then the results
of every process are merged and summarised. No locust import here: Locust runs in child
processes.

Bounded and always stopped: every input is checked first (replay/checks.py); each child
leads its own process group and watches that this process is alive (replay/guard.py);
--run-time is a hard wall-clock bound (Locust gets it minus a stop budget, then the groups
get SIGTERM, then SIGKILL); every child's memory is sampled against --max-rss; SIGINT,
SIGTERM and SIGHUP stop the children, write what was gathered and exit 128 + signal.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq

from tracereplay.errors import ReplayFailedError
from tracereplay.processes import LOOPBACK, Interrupted, StopSignals, free_port, stop_groups

from .body import DEFAULT_MAX_BODY
from .checks import RUN_TIME_MARGIN_S, CheckedRun, check, profile_shape, stop_budget_s
from .profiles import MEMORY_SAMPLE_S, soak_report, spike_report
from .results import merge_workers, worker_errors

__all__ = ["RUN_TIME_MARGIN_S", "ReplayOutcome", "ReplaySettings", "check", "run_replay"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DEFAULT_MAX_RSS = 4 << 30
LOCUST_STOP_TIMEOUT_S = 3
MERGE_RESERVE_S = 1.0
"""Of --run-time, kept for merging the workers' results after they stopped."""
STOP_WAIT_S = 5.0
"""How long the children get to stop by themselves (within --run-time) before SIGKILL."""


@dataclass(frozen=True)
class ReplaySettings:
    source: Path
    host: str
    out: Path
    scale: float = 1.0
    duration_s: float | None = None
    speed: float = 1.0
    processes: int = 1
    max_rps: float | None = None
    credentials: Path | None = None
    seed: int = 0
    ui: bool = False
    grace_s: float | None = None
    """How long sessions may run past the last planned start [default: the source's p99
    session duration]."""
    arrivals: str = "stratified"
    profile: str | None = None
    """A scenario profile (replay/profiles.py); model sources only."""
    watch_pids: tuple[int, ...] = ()
    """Processes (the target's) whose memory a soak run samples, beside its own."""
    run_time_s: float | None = None
    """Hard wall-clock bound of the whole run [default: window + grace + margin]."""
    max_body: int = DEFAULT_MAX_BODY
    max_rss: int = DEFAULT_MAX_RSS
    """Bytes of memory any one Locust process may use before the run is stopped."""
    force: bool = False
    """Allow more --processes than cores."""
    protect: str = "DELETE,PATCH,PUT"
    """Methods whose requests go only to objects their session created (replay/ownership.py)."""
    allow_foreign_writes: bool = False
    spread_addresses: bool = False
    discovery: bool = True


@dataclass(frozen=True)
class ReplayOutcome:
    summary: dict[str, Any]
    interrupted: bool
    out: Path
    signal: int | None = None
    """The stop signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), if one did."""
    failure: str | None = None
    """Why the run was stopped early by a failure (results are written all the same)."""

    @property
    def exit_code(self) -> int:
        return 128 + self.signal if self.signal is not None else 0

    def raise_failure(self) -> None:
        if self.failure is not None:
            where = f"results so far in {self.out}"
            raise ReplayFailedError(f"replay stopped: {self.failure} ({where})")


def locust_argv(
    settings: ReplaySettings, run_time_s: float, grace_s: float | None = None
) -> list[str]:
    """The Locust command line (without the master/worker part)."""
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", settings.host]
    replay = {
        "--replay-source": settings.source,
        "--replay-out": settings.out,
        "--replay-scale": settings.scale,
        "--replay-speed": settings.speed,
        "--replay-seed": settings.seed,
        "--replay-workers": settings.processes,
        "--replay-grace": grace_s if grace_s is not None else settings.grace_s,
        "--replay-arrivals": settings.arrivals,
        "--replay-duration": settings.duration_s,
        "--replay-max-rps": settings.max_rps,
        "--replay-credentials": settings.credentials,
        "--replay-profile": settings.profile,
        "--replay-max-body": settings.max_body,
        "--replay-protect": settings.protect,
        "--replay-parent-pid": os.getpid(),
    }
    for flag, value in replay.items():
        if value is not None:
            argv += [flag, str(value)]
    switches = {
        "--replay-allow-foreign-writes": settings.allow_foreign_writes,
        "--replay-spread-addresses": settings.spread_addresses,
        "--replay-no-discovery": not settings.discovery,
    }
    return argv + [flag for flag, on in switches.items() if on]


def run_replay(
    settings: ReplaySettings,
    on_tick: Callable[[float, float], None] | None = None,
    *,
    started: float | None = None,
) -> ReplayOutcome:
    """Run the replay to its end (or a stop signal, or a failure) and write summary.json;
    see the module doc. --run-time counts from `started` (time.monotonic(); default now:
    the command passes the moment it began, before its imports)."""
    started = time.monotonic() if started is None else started
    checked = check(settings)
    # The children are stopped by the deadline; what is left is for merging the results.
    deadline = started + checked.run_time_s - MERGE_RESERVE_S
    settings.out.mkdir(exist_ok=True)
    remaining_s = deadline - time.monotonic()
    locust_s = max(1, math.floor(remaining_s - stop_budget_s(checked.run_time_s)))
    base = locust_argv(settings, locust_s, checked.grace_s)
    users = str(settings.processes)
    main = [
        *base, "-u", users, "-r", users, "--run-time", f"{locust_s}s",
        "--stop-timeout", str(LOCUST_STOP_TIMEOUT_S), "--exit-code-on-error", "0",
        "--html", str(settings.out / "locust.html"),
        "--csv", str(settings.out / "locust"), "--only-summary",
    ]  # fmt: skip
    # With the web UI the run still starts at once and ends by itself (a minute after the
    # test, to look at the charts); without it, headless.
    main += (
        ["--web-host", LOOPBACK, "--autostart", "--autoquit", "60"]
        if settings.ui
        else ["--headless"]
    )
    processes: list[subprocess.Popen[bytes]] = []
    memory: list[tuple[float, str, int]] = []
    failure: str | None = None
    with (settings.out / "locust.log").open("ab") as log, StopSignals() as signals:
        try:
            if settings.processes > 1:
                port = free_port()
                main += ["--master", "--master-bind-host", LOOPBACK,
                         "--master-bind-port", str(port), "--expect-workers", users]  # fmt: skip
            with signals.held():  # no child may start unrecorded
                processes.append(_start(main, log))
            for _ in range(settings.processes if settings.processes > 1 else 0):
                worker = [*base, "--worker", "--master-host", LOOPBACK, "--master-port", str(port)]
                with signals.held():
                    processes.append(_start(worker, log))
            failure = _watch(settings, checked, processes, memory, deadline, on_tick)
        except Interrupted:
            pass  # stopped below, like any other end
        finally:
            signals.hold()
            # Locust's own stop first (it writes its reports), SIGKILL at the bound.
            first = signal.SIGINT if signals.received[:1] == [signal.SIGINT] else signal.SIGTERM
            stop_groups(processes, first, min(deadline, time.monotonic() + STOP_WAIT_S))
    stopped_by = signals.received[0] if signals.received else None
    errors = worker_errors(settings.out)
    failure = errors[0] if errors else failure
    summary = merge_workers(settings.out, duration_s=checked.window_s, real_rps=checked.real_rps)
    nothing = not summary["sessions_planned"] and checked.sessions_expected >= 1
    if failure is None and stopped_by is None and nothing:  # not a quiet "0/0 sessions"
        failure = (
            f"no session was played: --run-time ({checked.run_time_s:g} s) ended while the "
            f"workers were still planning about {checked.sessions_expected:,.0f} sessions; "
            "give a longer --run-time or a smaller --scale"
        )
    if settings.profile is not None:
        summary["profile"] = _profile_report(settings, summary, memory)
        (settings.out / "summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n"
        )
    return ReplayOutcome(summary, stopped_by is not None, settings.out, stopped_by, failure)


def _watch(
    settings: ReplaySettings,
    checked: CheckedRun,
    processes: list[subprocess.Popen[bytes]],
    memory: list[tuple[float, str, int]],
    deadline: float,
    on_tick: Callable[[float, float], None] | None,
) -> str | None:
    """Wait for the Locust master (or the single process) to end, sampling memory; the
    reason to stop it early, if one came up (a worker died, --max-rss, --run-time)."""
    started = time.monotonic()
    labels = _labels(len(processes))
    watched = []
    for label, process in zip(labels, processes, strict=True):
        try:
            watched.append((label, psutil.Process(process.pid)))
        except psutil.Error:  # already gone: its exit code says why below
            continue
    soak = _watched_pids(settings) if settings.profile == "soak" else []
    soft_end = deadline - stop_budget_s(checked.run_time_s) / 2
    while processes[0].poll() is None:
        now = time.monotonic()
        if on_tick is not None:
            on_tick(now - started, checked.window_s)
        samples = _rss(watched, now - started)
        if settings.profile == "soak":
            memory.extend(samples + _rss(soak, now - started))
        for _, label, rss in samples:
            if rss > settings.max_rss:
                return (
                    f"{label} used {rss / 2**20:,.0f} MiB of memory, over --max-rss "
                    f"{settings.max_rss / 2**20:,.0f} MiB"
                )
        for label, process in zip(labels[1:], processes[1:], strict=True):
            if process.poll() not in (None, 0):
                return f"{label} ended with exit code {process.returncode} (see locust.log)"
        if now >= soft_end:
            return None  # --run-time is up: the caller stops the groups within the bound
        time.sleep(min(MEMORY_SAMPLE_S, max(0.05, soft_end - now)))
    code = processes[0].returncode
    if code not in (0, None) and not worker_errors(settings.out):
        return f"{labels[0]} ended with exit code {code} (see locust.log)"
    return None


def _profile_report(
    settings: ReplaySettings, summary: dict[str, Any], memory: list[tuple[float, str, int]]
) -> dict[str, Any]:
    shaped = profile_shape(settings)
    report: dict[str, Any] = {
        "name": shaped.profile,
        "scale": settings.scale,
        "speed": settings.speed,
        "window_s": round(shaped.window_s, 3),
        **shaped.info,
    }
    timing = pq.read_table(settings.out / "timing.parquet").to_pandas()
    zero_s = float(summary.get("start_s") or 0.0)
    if shaped.profile == "spike":
        report.update(spike_report(timing, zero_s, shaped))
    elif shaped.profile == "soak":
        report.update(soak_report(timing, zero_s, memory))
    return report


def _labels(count: int) -> list[str]:
    if count == 1:
        return ["locust"]
    return ["locust-master"] + [f"locust-worker-{k}" for k in range(count - 1)]


def _watched_pids(settings: ReplaySettings) -> list[tuple[str, psutil.Process]]:
    """The --watch-pid processes a soak run samples beside its own."""
    watched = []
    for pid in settings.watch_pids:
        try:
            watched.append((f"pid-{pid}", psutil.Process(pid)))
        except psutil.Error:
            continue
    return watched


def _rss(watched: list[tuple[str, psutil.Process]], t_s: float) -> list[tuple[float, str, int]]:
    out = []
    for label, process in watched:
        try:
            out.append((t_s, label, int(process.memory_info().rss)))
        except psutil.Error:  # it ended: its samples so far stand
            continue
    return out


def _start(argv: list[str], log: Any) -> subprocess.Popen[bytes]:
    # Its own session: a group to stop as one, and a Ctrl-C in the terminal reaches only us.
    return subprocess.Popen(  # noqa: S603  # our own argv
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
