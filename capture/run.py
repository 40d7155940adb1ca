"""`run_capture`: mitmproxy embedded with the `TraceCapture` addon, for `tracereplay capture`.

Reverse proxy in front of one target by default, or a regular proxy for clients that are
configured with one. Stops on --duration, SIGINT or SIGTERM, always closing the trace.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mitmproxy import options
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    next_layer,
    proxyserver,
    tlsconfig,
    update_alt_svc,
)
from mitmproxy.master import Master

from tracereplay.errors import TargetError, UsageError
from tracereplay.trace.store import LOCK_NAME

from .addon import TraceCapture
from .recorder import DEFAULT_MAX_BACKLOG_BYTES, RecorderStats

MODES = ("reverse", "regular")
STATUS_INTERVAL_S = 0.5
GIL_SWITCH_INTERVAL_S = 0.001
_STARTUP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class CaptureSettings:
    out: Path
    target: str | None = None
    """Base URL of the server to capture in front of (required in reverse mode)."""
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    mode: str = "reverse"
    policy_file: Path | None = None
    key_file: Path | None = None
    duration_s: float | None = None
    flush_interval_s: float = 1.0
    append: bool = False
    workers: int | None = None
    """Anonymizing worker processes; None: the usable cores less one."""
    max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES
    rewrite_host: bool = False
    """Reverse mode: send the target's host:port as Host (for a target routed by virtual
    host) instead of the Host the client sent, which lets the links an app builds from
    it lead back through the proxy."""


@dataclass(frozen=True)
class CaptureResult:
    stats: RecorderStats
    elapsed_s: float
    stopped_by: str
    """"duration", "SIGINT", "SIGTERM" or "write failure" (then `stats.failure` says why)."""
    listen: str
    key_source: str
    direct_links: int = 0
    """Responses whose headers linked to the target directly (clients following them
    bypassed the capture); the capture warned about them."""


StatusCallback = Callable[[RecorderStats, float], None]


def check_settings(settings: CaptureSettings) -> tuple[str, str | None]:
    """The mitmproxy mode spec and flow filter for `settings`; UsageError when unusable."""
    if settings.mode not in MODES:
        raise UsageError(f"--mode {settings.mode!r}: want reverse or regular")
    if settings.duration_s is not None and settings.duration_s <= 0:
        raise UsageError("--duration must be > 0")
    if settings.workers is not None and settings.workers < 1:
        raise UsageError("--workers must be >= 1")
    if settings.max_backlog_bytes <= 0:
        raise UsageError("--max-backlog must be > 0")
    if settings.rewrite_host and settings.mode != "reverse":
        raise UsageError("--rewrite-host is for --mode reverse (a regular proxy keeps Host)")
    check_out(settings.out)
    target_filter = None
    if settings.target:
        parts = urlsplit(settings.target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--target {settings.target!r}: want an http(s)://host[:port] URL")
        target_filter = f"~d {parts.hostname}"
    if settings.mode == "reverse":
        if not settings.target:
            raise UsageError("--target is required in reverse mode")
        return f"reverse:{settings.target}", None
    return "regular", target_filter


def check_out(out: Path) -> None:
    """A one-line UsageError for an --out that cannot become a trace directory.

    (A read-only place, or one another capture is writing, is refused when the trace is
    opened: a `TraceError` naming it.)
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    parent = out.absolute().parent
    if not out.exists() and not parent.exists():
        raise UsageError(f"--out {out}: the directory {parent} does not exist; create it first")
    if not out.exists() and not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is not a directory")


def run_capture(
    settings: CaptureSettings,
    on_status: StatusCallback | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> CaptureResult:
    """Run the capture proxy until --duration or a signal; the trace is closed on return."""
    mode, flow_filter = check_settings(settings)
    # The recorder's threads (feeder, collector, writer) share the proxy's GIL: hand it
    # back to the event loop after 1 ms of their Python work instead of 5.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return asyncio.run(_capture(settings, mode, flow_filter, on_status, on_ready))


def proxy_addons() -> list[object]:
    """The mitmproxy addons a capture proxy needs, not mitmdump's whole default set.

    mitmproxy asks every addon for every hook of every flow: its hook dispatch (with the
    hooks' own work) was 44 % of bare mitmdump's event loop under the capture bench. Kept: the core
    options, the proxy server and its layers, TLS, the refusal of non-local clients
    (`block_global`), h2c and Alt-Svc handling for reverse mode. Left out: what replays,
    rewrites, saves or serves flows (playback, map/modify, sticky cookies, save, export,
    onboarding, scripts), none of which the capture exposes.
    """
    return [
        core.Core(),
        block.Block(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        disable_h2c.DisableH2C(),
        update_alt_svc.UpdateAltSvc(),
    ]


async def _capture(
    settings: CaptureSettings,
    mode: str,
    flow_filter: str | None,
    on_status: StatusCallback | None,
    on_ready: Callable[[str], None] | None,
) -> CaptureResult:
    opts = options.Options(
        listen_host=settings.listen_host, listen_port=settings.listen_port, mode=[mode]
    )
    master = Master(opts, with_termlog=False)
    master.addons.add(*proxy_addons())
    opts.update(keep_host_header=not settings.rewrite_host)
    capture = TraceCapture()
    master.addons.add(capture)
    if flow_filter:
        opts.update(tracereplay_filter=flow_filter)
    created = not settings.out.exists()
    _start_recording(capture, settings)
    # What is loaded by now (mitmproxy, pyarrow, the policy: ~150k objects) lives as long
    # as the capture: out of the collector's reach, a full collection no longer walks it
    # (one stalled the event loop 0.24-0.34 s per run under the bench; 0.02 s frozen).
    gc.freeze()
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    stopped_by = ["duration"]
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancellation)

    def stop(name: str) -> None:
        if stopped_by[0] != "write failure":  # a signal after it does not hide it
            stopped_by[0] = name
            master.shutdown()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig.name)
    started = time.monotonic()
    run_task = asyncio.create_task(master.run())
    try:
        try:
            listen = await _wait_listening(master, run_task, errors, settings)
        except TargetError:
            await asyncio.wait({run_task}, timeout=10)
            capture.close()
            if created:
                _remove_if_empty(settings.out)  # no empty trace behind a proxy that never ran
            raise
        if on_ready is not None:
            on_ready(listen)
        deadline = started + settings.duration_s if settings.duration_s else None
        while not run_task.done():
            _poll(capture, master, stop, deadline, started, on_status)
            await asyncio.wait({run_task}, timeout=STATUS_INTERVAL_S)
        run_task.result()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        logging.getLogger().removeHandler(errors)
        if not run_task.done():
            master.shutdown()
            await asyncio.wait({run_task}, timeout=10)
        final = capture.close()
    assert final is not None
    return CaptureResult(
        stats=final,
        elapsed_s=time.monotonic() - started,
        stopped_by=stopped_by[0],
        listen=listen,
        key_source=capture.key_source,
        direct_links=capture.direct_links,
    )


def _quiet_cancellation(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Connections still open when the proxy stops end in CancelledError: no traceback."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def _poll(
    capture: TraceCapture, master: Master, stop: Callable[[str], None],
    deadline: float | None, started: float, on_status: StatusCallback | None,
) -> None:  # fmt: skip
    """One look at the running capture: time up, writer failed, status line."""
    if deadline is not None and time.monotonic() >= deadline:
        master.shutdown()
    stats = capture.stats()
    if stats is not None and stats.failure is not None:
        stop("write failure")  # the writer said why, once
    if on_status is not None and stats is not None:
        on_status(stats, time.monotonic() - started)


def _start_recording(capture: TraceCapture, settings: CaptureSettings) -> None:
    capture.start(
        settings.out,
        policy_file=settings.policy_file,
        key_file=settings.key_file,
        flush_interval_s=settings.flush_interval_s,
        append=settings.append,
        workers=settings.workers,
        max_backlog_bytes=settings.max_backlog_bytes,
    )


def _remove_if_empty(out: Path) -> None:
    if {p.name for p in out.iterdir()} <= {LOCK_NAME}:
        (out / LOCK_NAME).unlink(missing_ok=True)
        out.rmdir()


async def _wait_listening(
    master: Master, run_task: asyncio.Task[None], errors: _ErrorLog, settings: CaptureSettings
) -> str:
    """host:port the proxy listens on, once it does; TargetError when it cannot."""
    proxyserver = master.addons.get("proxyserver")
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and not run_task.done():
        if proxyserver.is_running:
            addrs = proxyserver.listen_addrs()
            if addrs:
                host, port = addrs[0][:2]
                return f"{host}:{port}"
            break
        await asyncio.sleep(0.05)
    master.shutdown()
    reason = errors.first or "the proxy did not start"
    raise TargetError(f"cannot listen on {settings.listen_host}:{settings.listen_port}: {reason}")


class _ErrorLog(logging.Handler):
    """Keeps the first error mitmproxy logs (a failed bind is logged, not raised)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None:
            self.first = " ".join(record.getMessage().split())
