"""Child processes the pipeline starts (sandbox target, staging users, later the proxy).

Each child runs in its own process group and is always stopped: on normal exit, on an
error and on Ctrl-C (SIGTERM first, SIGKILL if it lingers), so no run leaves one behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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
    """Signal the process, wait, kill it if it lingers; returns its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextmanager
def running(
    argv: Sequence[str],
    *,
    ready_url: str | None = None,
    ready_port: tuple[str, int] | None = None,
    start_timeout_s: float = 30.0,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv`, wait until `ready_url` answers 200 (or `ready_port` accepts
    connections), and stop it when the block ends.

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
        stop_process(process)
