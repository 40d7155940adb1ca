"""A tiny controllable HTTP server for replay tests, on 127.0.0.1 in a thread: it counts
what it receives, can stall, redirect, and be stopped mid-run."""

from __future__ import annotations

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
    received: list[tuple[float, str, str]] = field(default_factory=list)
    """(time, method, path) of every request."""
    server: ThreadingHTTPServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@contextmanager
def stub_server(delay_s: float = 0.0, redirect_to: str | None = None) -> Iterator[Stub]:
    port = free_port()
    stub = Stub(f"http://127.0.0.1:{port}", delay_s, redirect_to)
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
            body = b'{"status":"success","data":{}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    stub.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.stop()
