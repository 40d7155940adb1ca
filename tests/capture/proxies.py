"""The capture proxy as a real process in front of a target, for end-to-end tests; small
targets served by threads in the test process."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa

from tests.servers import ServerProcess, running_server
from tracereplay.processes import free_port
from tracereplay.trace import read_trace

TEST_KEY = "tests-only-pseudonym-key-6f1d2c"
PROBE_PATH = "/health"  # what running_server polls through the proxy until it answers
REPO = Path(__file__).resolve().parents[2]


def capture_argv(target_url: str, out: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tracereplay.cli", "capture",
        "--target", target_url, "--listen", f"127.0.0.1:{port}", "--out", str(out), *extra,
    ]  # fmt: skip


def mitmdump_argv(target_url: str, out: Path, port: int, *extra: str) -> list[str]:
    mitmdump = Path(sys.executable).with_name("mitmdump")
    return [
        str(mitmdump), "-q", "-s", str(REPO / "capture" / "addon.py"),
        "--mode", f"reverse:{target_url}", "--listen-host", "127.0.0.1",
        "--listen-port", str(port), "--set", f"tracereplay_out={out}", *extra,
    ]  # fmt: skip


@contextmanager
def capture_proxy(
    target_url: str, out: Path, *extra: str, key: str = TEST_KEY, mitmdump: bool = False
) -> Iterator[ServerProcess]:
    """`tracereplay capture` (or mitmdump with the addon) on a free port, stopped at exit."""
    port = free_port()
    make = mitmdump_argv if mitmdump else capture_argv
    argv = make(target_url, out, port, *extra)
    with running_server(argv, port=port, env={"TRACEREPLAY_KEY": key}) as server:
        yield server


def stop(server: ServerProcess, sig: signal.Signals = signal.SIGTERM) -> int:
    """Signal the proxy and wait for it to exit; its exit code."""
    server.process.send_signal(sig)
    return server.process.wait(timeout=30)


def captured(out: Path, *, with_probes: bool = False) -> pa.Table:
    """The trace's rows sorted by time, without running_server's health probes."""
    table = read_trace(out)
    if with_probes:
        return table
    paths = table.column("path").to_pylist()
    keep = [i for i, p in enumerate(paths) if p != PROBE_PATH]
    return table.take(pa.array(keep, type=pa.int64()))


@contextmanager
def threaded_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served by threads on a free 127.0.0.1 port: its base URL; stopped at exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
