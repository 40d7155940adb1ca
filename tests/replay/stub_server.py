"""A tiny controllable HTTP server for replay tests, on 127.0.0.1 in a thread: it counts
what it receives, can stall, redirect, and be stopped mid-run."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tracereplay.processes import free_port


@dataclass
class Stub:
    url: str
    delay_s: float = 0.0
    redirect_to: str | None = None
    body_size: int = 0
    """When > 0, every answer is a body of this many bytes, streamed (never held)."""
    received: list[tuple[float, str, str]] = field(default_factory=list)
    """(time, method, path) of every request."""
    body_bytes_sent: list[int] = field(default_factory=list)
    """With body_size: how much of each body went out before the client closed."""
    server: ThreadingHTTPServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@contextmanager
def stub_server(
    delay_s: float = 0.0, redirect_to: str | None = None, body_size: int = 0
) -> Iterator[Stub]:
    port = free_port()
    stub = Stub(f"http://127.0.0.1:{port}", delay_s, redirect_to, body_size)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with lock:
                stub.received.append((time.time(), self.command, self.path))
            if stub.delay_s:
                time.sleep(stub.delay_s)
            if stub.redirect_to:
                self.send_response(302)
                self.send_header("Location", stub.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if stub.body_size:
                self._stream(stub.body_size)
                return
            body = b'{"status":"success","data":{}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, size: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk, sent = b"\0" * 65536, 0
            try:
                while sent < size:
                    self.wfile.write(chunk[: size - sent])
                    sent += min(len(chunk), size - sent)
            except OSError:  # the client closed the connection: what it did not read
                self.close_connection = True
            with lock:
                stub.body_bytes_sent.append(sent)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler, port) as server:
        stub.server = server
        try:
            yield stub
        finally:
            stub.stop()


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int) -> Iterator[ThreadingHTTPServer]:
    """`handler` served on 127.0.0.1:`port` in a thread, shut down at exit."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Listener:
    """A TCP port on 127.0.0.1 that only records who connects (and what they sent first)."""

    port: int
    address: str
    connections: list[tuple[float, bytes]] = field(default_factory=list)


@contextmanager
def connection_recorder() -> Iterator[Listener]:
    """A listener on another loopback port: every connection to it is recorded, read for
    a moment and closed. A replay that must talk only to --host must leave it empty."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.1)
    port = sock.getsockname()[1]
    listener = Listener(port, f"127.0.0.1:{port}")
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    first = conn.recv(4096)
                except OSError:
                    first = b""
                listener.connections.append((time.time(), first))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
