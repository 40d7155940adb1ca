"""`run_replay`: `tracereplay replay` — Locust headless (or with its web UI) running the
replay locustfile, in one process or as a master with P local workers; then the results
of every process are merged and summarised. No locust import here: Locust runs in child
processes, always bounded by --run-time, and always stopped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pyarrow.parquet as pq

from tracereplay.errors import UsageError
from tracereplay.models.arrivals import ArrivalModel
from tracereplay.processes import LOOPBACK, free_port, stop_process

from .profiles import (
    MEMORY_SAMPLE_S,
    Shape,
    check_profile,
    shape,
    soak_report,
    spike_report,
)
from .results import merge_workers
from .sources import load_source

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
RUN_TIME_MARGIN_S = 15.0


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
    grace_s: float = 30.0
    arrivals: str = "stratified"
    profile: str | None = None
    """A scenario profile (replay/profiles.py); model sources only."""
    watch_pids: tuple[int, ...] = ()
    """Processes (the target's) whose memory a soak run samples, beside its own."""


@dataclass(frozen=True)
class ReplayOutcome:
    summary: dict[str, Any]
    interrupted: bool
    out: Path


def check(settings: ReplaySettings) -> float:
    """Validate the settings; the planned window in seconds."""
    parts = urlsplit(settings.host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--host {settings.host!r}: want an http(s)://host[:port] URL")
    if parts.path not in ("", "/") or parts.query:
        raise UsageError(f"--host {settings.host!r}: give the base URL only (no path)")
    for name, value in (("--scale", settings.scale), ("--speed", settings.speed)):
        if value <= 0:
            raise UsageError(f"{name} must be > 0")
    if settings.processes < 1:
        raise UsageError("--processes must be >= 1")
    if settings.max_rps is not None and settings.max_rps <= 0:
        raise UsageError("--max-rps must be > 0")
    if settings.credentials is not None and not settings.credentials.is_file():
        raise UsageError(f"--credentials {settings.credentials}: no such file")
    if settings.out.exists() and any(settings.out.iterdir()):
        raise UsageError(f"{settings.out} is not empty; choose a new --out directory")
    for pid in settings.watch_pids:
        if not psutil.pid_exists(pid):
            raise UsageError(f"--watch-pid {pid}: no such process")
    return _window_s(settings, load_source(settings.source))


def _window_s(settings: ReplaySettings, kind: str) -> float:
    check_profile(settings.profile)
    if settings.profile is not None:
        if kind != "model":
            raise UsageError(
                f"--profile {settings.profile} shapes a model's arrivals: replay a model file "
                "(tracereplay model TRACE) instead of a trace"
            )
        return profile_shape(settings).window_s
    if settings.duration_s is not None:
        return settings.duration_s
    return _span_s(settings.source, kind) / settings.speed


def profile_shape(settings: ReplaySettings) -> Shape:
    """The arrival curve the settings' profile replays (the same one each worker plans)."""
    assert settings.profile is not None
    model = json.loads(settings.source.read_text(encoding="utf-8"))
    return shape(
        settings.profile,
        ArrivalModel.from_json(model["arrivals"]),
        scale=settings.scale,
        speed=settings.speed,
        duration_s=settings.duration_s,
    )


def _span_s(source: Path, kind: str) -> float:
    if kind == "model":
        model = json.loads(source.read_text(encoding="utf-8"))
        return float(model["arrivals"]["span_s"])
    from tracereplay.trace.info import describe_trace

    info = describe_trace(source)
    return (info.last_ts - info.first_ts).total_seconds()


def locust_argv(settings: ReplaySettings, run_time_s: float) -> list[str]:
    """The Locust command line (without the master/worker part)."""
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", settings.host]
    replay = {
        "--replay-source": settings.source,
        "--replay-out": settings.out,
        "--replay-scale": settings.scale,
        "--replay-speed": settings.speed,
        "--replay-seed": settings.seed,
        "--replay-workers": settings.processes,
        "--replay-grace": settings.grace_s,
        "--replay-arrivals": settings.arrivals,
        "--replay-duration": settings.duration_s,
        "--replay-max-rps": settings.max_rps,
        "--replay-credentials": settings.credentials,
        "--replay-profile": settings.profile,
    }
    for flag, value in replay.items():
        if value is not None:
            argv += [flag, str(value)]
    return argv


def run_replay(
    settings: ReplaySettings, on_tick: Callable[[float, float], None] | None = None
) -> ReplayOutcome:
    """Run the replay to its end (or Ctrl-C) and write summary.json; see the module doc."""
    window_s = check(settings)
    settings.out.mkdir(parents=True, exist_ok=True)
    run_time_s = window_s + settings.grace_s + RUN_TIME_MARGIN_S
    base = locust_argv(settings, run_time_s)
    users = str(settings.processes)
    main = [
        *base, "-u", users, "-r", users, "--run-time", f"{run_time_s:.0f}s",
        "--stop-timeout", "5", "--html", str(settings.out / "locust.html"),
        "--csv", str(settings.out / "locust"), "--only-summary",
    ]  # fmt: skip
    # With the web UI the run still starts at once and ends by itself (a minute after the
    # test, to look at the charts); without it, headless.
    main += (
        ["--web-host", LOOPBACK, "--autostart", "--autoquit", "60"]
        if settings.ui
        else ["--headless"]
    )
    log = (settings.out / "locust.log").open("ab")
    processes: list[subprocess.Popen[bytes]] = []
    memory: list[tuple[float, str, int]] = []
    interrupted = False
    try:
        if settings.processes > 1:
            port = free_port()
            main += ["--master", "--master-bind-host", LOOPBACK, "--master-bind-port", str(port)]
            main += ["--expect-workers", users]
        processes.append(_start(main, log))
        for _ in range(settings.processes if settings.processes > 1 else 0):
            worker = [*base, "--worker", "--master-host", LOOPBACK, "--master-port", str(port)]
            processes.append(_start(worker, log))
        started = time.monotonic()
        watched = _watched(settings, processes)
        while processes[0].poll() is None:
            if on_tick is not None:
                on_tick(time.monotonic() - started, window_s)
            memory.extend(_rss(watched, time.monotonic() - started))
            time.sleep(MEMORY_SAMPLE_S)
    except KeyboardInterrupt:
        interrupted = True
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
    finally:
        for process in processes:
            stop_process(process, timeout_s=30)
        log.close()
    summary = merge_workers(settings.out, duration_s=window_s)
    if settings.profile is not None:
        summary["profile"] = _profile_report(settings, summary, memory)
        (settings.out / "summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n"
        )
    return ReplayOutcome(summary, interrupted, settings.out)


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


def _watched(
    settings: ReplaySettings, processes: list[subprocess.Popen[bytes]]
) -> list[tuple[str, psutil.Process]]:
    """What a soak run samples: the Locust processes, and the --watch-pid ones."""
    if settings.profile != "soak":
        return []
    labels = (
        ["locust"]
        if len(processes) == 1
        else ["locust-master"] + [f"locust-worker-{k}" for k in range(len(processes) - 1)]
    )
    watched = []
    for label, pid in [*zip(labels, (p.pid for p in processes), strict=True),
                       *((f"pid-{pid}", pid) for pid in settings.watch_pids)]:  # fmt: skip
        try:
            watched.append((label, psutil.Process(pid)))
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
    return subprocess.Popen(  # noqa: S603  # our own argv
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
