"""Runs the staging users in this process, with Locust as a library, and sums them up.

Imports locust (gevent monkey-patches this process on import), so only the `demo-traffic`
command and `python -m tracereplay.demo.traffic` import this module.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from pathlib import Path

import gevent
from gevent.event import Event
from locust.env import Environment
from locust.runners import STATE_STOPPED, LocalRunner
from rich.console import Console
from rich.live import Live
from rich.text import Text

from tracereplay.demo.traffic.daycurve import clock_label
from tracereplay.demo.traffic.settings import (
    DEFAULT_DURATION_S,
    DEFAULT_GRACE_S,
    DEFAULT_SEED,
    DEFAULT_USERS,
    DEFAULT_USERS_PER_ACCOUNT,
    StagingAccount,
    StagingSettings,
    staging_settings,
)
from tracereplay.demo.traffic.shape import CompressedDayShape, StableMixDispatcher
from tracereplay.demo.traffic.summary import (
    EndpointStats,
    ErrorStats,
    StagingSummary,
    render_summary,
)
from tracereplay.demo.traffic.users import USER_CLASSES, RunContext, configure_run

POLL_S = 0.5
HARD_STOP_MARGIN_S = 15.0
"""If Locust has not stopped by duration + grace + this, the run is ended by force."""
LOG_LINE_EVERY_S = 10.0  # progress lines when the console is not a terminal


def run_staging_users(
    host: str,
    duration_s: float = DEFAULT_DURATION_S,
    users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    *,
    accounts: Sequence[StagingAccount] | Path | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    users_per_account: int = DEFAULT_USERS_PER_ACCOUNT,
    failed_login_share: float = 0.0,
    console: Console | None = None,
) -> StagingSummary:
    """Play the staging users against `host` (loopback only) for one compressed day."""
    settings = staging_settings(
        host,
        duration_s,
        users,
        seed,
        accounts=accounts,
        grace_s=grace_s,
        users_per_account=users_per_account,
        failed_login_share=failed_login_share,
    )
    return run_settings(settings, console=console)


def run_settings(settings: StagingSettings, *, console: Console | None = None) -> StagingSummary:
    """Run checked settings; progress goes to `console` (none when it is None)."""
    context = RunContext(
        settings.seed,
        settings.accounts,
        settings.users_per_account,
        failed_login_share=settings.failed_login_share,
    )
    configure_run(context)
    env = Environment(
        user_classes=list(USER_CLASSES),
        shape_class=CompressedDayShape(settings.duration_s, settings.users),
        host=settings.host,
        stop_timeout=settings.grace_s,
        dispatcher_class=StableMixDispatcher,
    )
    user_errors = 0

    def count_user_error(**_kwargs: object) -> None:
        nonlocal user_errors
        user_errors += 1

    env.events.user_error.add_listener(count_user_error)  # type: ignore[no-untyped-call]
    runner = env.create_local_runner()
    # Ctrl-C / SIGTERM only set a flag: gevent's hub would otherwise print the interrupt.
    stop = Event()
    handlers = [gevent.signal_handler(sig, stop.set) for sig in (signal.SIGINT, signal.SIGTERM)]
    started = time.monotonic()
    max_users = [0]
    runner.start_shape()
    try:
        _watch(runner, env, settings, started, console, stop, max_users)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if runner.state != STATE_STOPPED:
            env.stop_timeout = 0.0  # interrupted or overdue: stop every seat now
        runner.quit()
        for handler in handlers:
            handler.cancel()
    elapsed_s = time.monotonic() - started
    return _summarize(env, settings, context, elapsed_s, max_users[0], user_errors, stop.is_set())


def _watch(
    runner: LocalRunner,
    env: Environment,
    settings: StagingSettings,
    started: float,
    console: Console | None,
    stop: Event,
    max_users: list[int],
) -> None:
    """Wait for the shape (or `stop`) to end the run, showing progress; `max_users[0]`
    keeps the most seats seen (a list, so that it survives an interrupt)."""
    deadline = started + settings.duration_s + settings.grace_s + HARD_STOP_MARGIN_S
    next_log = started
    live = Live(console=console, auto_refresh=False) if console and console.is_terminal else None
    if live is not None:
        live.start()
    try:
        while runner.state != STATE_STOPPED and time.monotonic() < deadline:
            if stop.wait(POLL_S):
                return
            max_users[0] = max(max_users[0], runner.user_count)
            line = _progress_line(runner, env, settings, time.monotonic() - started)
            if live is not None:
                live.update(line, refresh=True)
            elif console is not None and time.monotonic() >= next_log:
                console.print(line)
                next_log += LOG_LINE_EVERY_S
    finally:
        if live is not None:
            live.stop()


def _progress_line(
    runner: LocalRunner, env: Environment, settings: StagingSettings, elapsed_s: float
) -> Text:
    total = env.stats.total
    if elapsed_s < settings.duration_s:
        when = f"day {clock_label(elapsed_s / settings.duration_s)}"
    else:
        when = "grace: sessions finishing"
    return Text(
        f"{elapsed_s:6.1f}/{settings.duration_s:.0f} s  {when}  users {runner.user_count:3d}  "
        f"requests {total.num_requests:6d}  failures {total.num_failures:4d}  "
        f"{total.current_rps:6.1f} rps"
    )


def _summarize(
    env: Environment,
    settings: StagingSettings,
    context: RunContext,
    elapsed_s: float,
    max_users: int,
    user_errors: int,
    interrupted: bool,
) -> StagingSummary:
    stats = env.stats
    endpoints = tuple(
        EndpointStats(
            method=str(entry.method),
            name=str(entry.name),
            requests=int(entry.num_requests),
            failures=int(entry.num_failures),
            median_ms=float(entry.median_response_time or 0),
            p95_ms=float(entry.get_response_time_percentile(0.95) or 0),
        )
        for entry in sorted(stats.entries.values(), key=lambda e: (e.name, e.method))
    )
    errors = tuple(
        ErrorStats(str(e.method), str(e.name), str(e.error), int(e.occurrences))
        for e in sorted(stats.errors.values(), key=lambda e: -e.occurrences)
    )
    requests = int(stats.total.num_requests)
    return StagingSummary(
        host=settings.host,
        seed=settings.seed,
        duration_s=settings.duration_s,
        elapsed_s=round(elapsed_s, 3),
        peak_users=settings.users,
        max_users=max_users,
        requests=requests,
        failures=int(stats.total.num_failures),
        total_rps=round(requests / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        endpoints=endpoints,
        sessions=context.log.stats(),
        errors=errors,
        user_errors=user_errors,
        interrupted=interrupted,
        users_per_account=settings.users_per_account,
        accounts=context.log.account_stats(),
    )


def run_and_report(settings: StagingSettings, summary_json: Path | None) -> StagingSummary:
    """The `demo-traffic` command: live progress on stderr, the summary tables on stdout."""
    progress = Console(stderr=True)
    summary = run_settings(settings, console=progress if progress.is_terminal else _wide(True))
    if summary_json is not None:
        summary.write_json(summary_json)
    out = Console()
    render_summary(summary, out if out.is_terminal else _wide(False))
    return summary


def _wide(stderr: bool) -> Console:
    """For logs and pipes, where rich would otherwise wrap at 80 columns."""
    return Console(stderr=stderr, width=120)
