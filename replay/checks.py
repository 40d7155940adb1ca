"""Every input of a replay checked in the parent, before Locust starts: --host, the option
ranges (NaN and inf included), --out, --credentials, and the source (a model's schema and
ranges, what it or a trace would send). A bad input is one line and exit 2, never a quiet
run that sends nothing and says "0 failures".
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from tracereplay.errors import UsageError
from tracereplay.models.arrivals import ARRIVAL_PROCESSES, ArrivalModel
from tracereplay.models.model import load_model
from tracereplay.models.model_check import MAX_PLANNED_SESSIONS, check_draw
from tracereplay.outdir import check_out_dir

from .credentials import Credential, load_credentials
from .discovery import discovery_budget_s
from .ownership import parse_protect
from .profiles import Shape, check_profile, shape
from .sources import check_model_requests, check_trace_source, load_source
from .urls import Origin, parse_origin
from .window import run_figures

if TYPE_CHECKING:
    from .run import ReplaySettings

RUN_TIME_MARGIN_S = 15.0
"""Default --run-time: the plan window + --grace + this (start-up, the last answers) + the
stop budget."""
STOP_BUDGET_S = 10.0
"""Of --run-time, what stopping may take at most (a quarter of short runs)."""
MIN_MAX_RSS = 64 << 20


@dataclass(frozen=True)
class CheckedRun:
    """What the checks found out, for the run to use."""

    kind: str
    """"model" or "trace"."""
    origin: Origin
    window_s: float
    """Wall seconds of planned session starts."""
    run_time_s: float
    """Hard bound on the whole run, stopping included."""
    credentials: tuple[Credential, ...]
    sessions_expected: float
    """About how many sessions the plan holds (model: expected count; trace: captured
    sessions × copies)."""
    grace_s: float = 30.0
    """--grace, or the source's p99 session duration (replay/window.py)."""
    real_rps: float | None = None
    """The real trace's request rate over the window (replay/window.py)."""


def check(settings: ReplaySettings) -> CheckedRun:
    """Check the settings (UsageError / ConfigError naming what is wrong); see the module."""
    origin = parse_origin(settings.host)
    _check_numbers(settings)
    check_profile(settings.profile)
    parse_protect(settings.protect)
    if settings.arrivals not in ARRIVAL_PROCESSES:
        raise UsageError(
            f"--arrivals {settings.arrivals!r}: choose one of {', '.join(ARRIVAL_PROCESSES)}"
        )
    for pid in settings.watch_pids:
        if not psutil.pid_exists(pid):
            raise UsageError(f"--watch-pid {pid}: no such process")
    check_out_dir(settings.out)
    credentials: tuple[Credential, ...] = ()
    if settings.credentials is not None:
        if not settings.credentials.is_file():
            raise UsageError(f"--credentials {settings.credentials}: no such file")
        credentials = tuple(load_credentials(settings.credentials))
    kind = load_source(settings.source)
    window_s, expected = _check_source(settings, kind)
    grace_s, real_rps = run_figures(
        settings.source, kind, window_s=window_s, speed=settings.speed,
        grace_s=settings.grace_s, profile=settings.profile,
    )  # fmt: skip
    run_time_s = settings.run_time_s or (
        window_s
        + grace_s
        + RUN_TIME_MARGIN_S
        + STOP_BUDGET_S
        + (discovery_budget_s(window_s) if settings.discovery else 0.0)
    )
    return CheckedRun(kind, origin, window_s, run_time_s, credentials, expected, grace_s, real_rps)


def stop_budget_s(run_time_s: float) -> float:
    """The part of --run-time kept for stopping: Locust runs the rest."""
    return min(STOP_BUDGET_S, run_time_s / 4)


def _check_numbers(settings: ReplaySettings) -> None:
    positive = {
        "--scale": settings.scale,
        "--speed": settings.speed,
        "--duration": settings.duration_s,
        "--max-rps": settings.max_rps,
        "--run-time": settings.run_time_s,
    }
    for name, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{name} must be a finite number > 0, not {value!r}")
    if settings.grace_s is not None and not (
        math.isfinite(settings.grace_s) and settings.grace_s >= 0
    ):
        raise UsageError(f"--grace must be a finite time >= 0, not {settings.grace_s!r}")
    if not 0 <= settings.seed < 2**63:
        raise UsageError(f"--seed must be in [0, 2^63), not {settings.seed}")
    cores = os.cpu_count() or 1
    if settings.processes < 1:
        raise UsageError(f"--processes must be >= 1, not {settings.processes}")
    if settings.processes > cores and not settings.force:
        raise UsageError(
            f"--processes {settings.processes} is more than the {cores} cores here "
            "(each worker wants one); add --force to run them anyway"
        )
    if settings.max_body < 1:
        raise UsageError(f"--max-body must be >= 1 byte, not {settings.max_body}")
    if settings.max_rss < MIN_MAX_RSS:
        raise UsageError(f"--max-rss must be >= {MIN_MAX_RSS >> 20} MiB")


def _check_source(settings: ReplaySettings, kind: str) -> tuple[float, float]:
    """(the plan window in wall seconds, the sessions expected), after checking what the
    source would send and how many sessions it would plan."""
    if kind == "model":
        model = load_model(settings.source)
        check_model_requests(model, str(settings.source))
        if settings.profile is not None:
            shaped = profile_shape(settings)
            expected = check_draw(shaped.arrivals, scale=shaped.scale, speed=settings.speed,
                                  duration_s=None, seed=settings.seed)  # fmt: skip
            return shaped.window_s, expected
        arrivals = ArrivalModel.from_json(model["arrivals"])
        expected = check_draw(arrivals, scale=settings.scale, speed=settings.speed,
                              duration_s=settings.duration_s, seed=settings.seed)  # fmt: skip
        if settings.duration_s is not None:
            return settings.duration_s, expected
        return arrivals.span_s / settings.speed, expected
    if settings.profile is not None:
        raise UsageError(
            f"--profile {settings.profile} shapes a model's arrivals: replay a model file "
            "(tracereplay model TRACE) instead of a trace"
        )
    from tracereplay.trace.info import describe_trace

    check_trace_source(settings.source)
    info = describe_trace(settings.source)
    copies = max(1, round(settings.scale))
    if info.sessions * copies > MAX_PLANNED_SESSIONS:
        raise UsageError(
            f"--scale {settings.scale:g} plans {info.sessions * copies:,} sessions (at most "
            f"{MAX_PLANNED_SESSIONS:,}): lower --scale"
        )
    if settings.duration_s is not None:
        return settings.duration_s, float(info.sessions * copies)
    return (info.last_ts - info.first_ts).total_seconds() / settings.speed, float(
        info.sessions * copies
    )


def profile_shape(settings: ReplaySettings) -> Shape:
    """The arrival curve the settings' profile replays (the same one each worker plans)."""
    assert settings.profile is not None
    model = json.loads(Path(settings.source).read_text(encoding="utf-8"))
    return shape(
        settings.profile,
        ArrivalModel.from_json(model["arrivals"]),
        scale=settings.scale,
        speed=settings.speed,
        duration_s=settings.duration_s,
    )
