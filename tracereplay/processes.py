"""Child processes the pipeline starts (sandbox target, staging users, later the proxy).

Each child runs in its own process group and is always stopped: on normal exit, on an
error and on Ctrl-C (SIGTERM first, SIGKILL if it lingers), so no run leaves one behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from tracereplay.errors import TargetError

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_S = 10.0


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    """Whether `url` answers 200 right now (loopback URLs only are ever asked)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310  # http(s) URLs we built
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Poll `url` until it answers 200; raise `TargetError` if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while not http_ok(url):
        if process.poll() is not None:
            raise TargetError(f"{process.args!r} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TargetError(f"no answer from {url} within {timeout_s:.0f} s")
        time.sleep(0.05)


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until host:port accepts connections (for servers whose requests get recorded,
    like the capture proxy, where an HTTP probe would become a trace row)."""
    deadline = time.monotonic() + timeout_s
    while not port_open(host, port):
        if process.poll() is not None:
            raise TargetError(f"{process.args!r} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TargetError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")
        time.sleep(0.05)


def stop_process(
    process: subprocess.Popen[bytes],
    sig: signal.Signals = signal.SIGTERM,
    timeout_s: float = STOP_TIMEOUT_S,
) -> int:
    """Signal the process (its whole group when it leads one), wait, kill it (its group)
    if it lingers; returns its exit code."""
    stop_groups([process], sig, time.monotonic() + timeout_s)
    return process.returncode


def signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send `sig` to the process group `process` leads (start_new_session=True), else to
    the process alone; nothing when it is gone."""
    if process.returncode is not None:
        return  # reaped: its pid (and group id) may belong to someone else by now
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_groups(
    processes: Sequence[subprocess.Popen[bytes]], sig: signal.Signals, deadline: float
) -> None:
    """Send `sig` to every process's group, wait for them until `deadline` (monotonic),
    then SIGKILL the groups of those still running; returns once all have exited."""
    for process in processes:
        if process.poll() is None:
            signal_group(process, sig)
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.poll() is None:
            signal_group(process, signal.SIGKILL)
        process.wait()


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) arrived; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Within `with StopSignals() as signals:`, the first SIGINT, SIGTERM or SIGHUP raises
    `Interrupted`, so the code stops its children and writes what it has. Later ones are
    only recorded (`received`): the clean-up they would interrupt finishes. Inside
    `signals.held()` (starting a child and keeping track of it) the first one waits until
    the block ends; after `signals.hold()` none raises any more. Main thread only; in
    another thread nothing is installed."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._held = False
        self._raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handler) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *_: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    def _handler(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        self._raise_first()

    def _raise_first(self) -> None:
        if self.received and not self._held and not self._raised:
            self._raised = True
            raise Interrupted(self.received[0])

    @contextmanager
    def held(self) -> Iterator[None]:
        self._held = True
        try:
            yield
        finally:
            self._held = False
        self._raise_first()

    def hold(self) -> None:
        self._held = True


@contextmanager
def running(
    argv: Sequence[str],
    *,
    ready_url: str | None = None,
    ready_port: tuple[str, int] | None = None,
    start_timeout_s: float = 30.0,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    stop_timeout_s: float = STOP_TIMEOUT_S,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv`, wait until `ready_url` answers 200 (or `ready_port` accepts
    connections), and stop it when the block ends (SIGTERM, then SIGKILL after
    `stop_timeout_s`).

    The child's output goes to `log` (else nowhere); it gets its own process group so a
    Ctrl-C in the terminal reaches only us, and we stop it in order.
    """
    sink: IO[bytes] | int = log.open("ab") if log else subprocess.DEVNULL
    try:
        process = subprocess.Popen(  # noqa: S603  # argv built by our own code
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    finally:
        if not isinstance(sink, int):
            sink.close()
    try:
        if ready_url is not None:
            wait_for_http(ready_url, process, start_timeout_s)
        if ready_port is not None:
            wait_for_port(*ready_port, process, start_timeout_s)
        yield process
    finally:
        stop_process(process, timeout_s=stop_timeout_s)
