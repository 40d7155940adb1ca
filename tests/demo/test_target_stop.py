"""`demo-target` stops within a second of SIGTERM (or SIGINT), whatever its clients are
doing: idle keep-alive connections, half-sent headers, a request whose body never comes."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from tests.servers import running_server, target_argv
from tracereplay.processes import free_port

STOP_WITHIN_S = 1.0
CLIENTS = {
    "idle keep-alive": b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
    "half-sent headers": b"GET /health HTTP/1.1\r\nHost: t\r\n",
    "body never comes": b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_the_target_stops_within_a_second(client: str, sig: signal.Signals, code: int) -> None:
    port = free_port()
    with running_server(target_argv(port), port=port) as server:
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        try:
            for conn in connections:
                conn.sendall(CLIENTS[client])
            time.sleep(0.2)  # every request reached the server
            started = time.monotonic()
            server.process.send_signal(sig)
            assert server.process.wait(timeout=10) == code
            assert time.monotonic() - started < STOP_WITHIN_S
        finally:
            for conn in connections:
                conn.close()
    assert "Traceback" not in server.stderr()
