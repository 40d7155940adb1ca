"""Running the target: bind 127.0.0.1 (a busy port is a TargetError), serve with uvicorn.

One process, uvloop + httptools, no access log. SIGINT/SIGTERM shut down gracefully, and
within STOP_DEADLINE_S whatever the clients are doing: uvicorn alone waits for a request
whose body never comes (a client stopped mid-send) far longer, so the process then exits
at the deadline (the store lives in memory: nothing is lost by not unwinding).
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn

from tracereplay.demo.accounts import sandbox_accounts
from tracereplay.demo.target.app import create_app
from tracereplay.demo.target.settings import TargetSettings
from tracereplay.errors import TargetError

GRACEFUL_SHUTDOWN_S = 5  # longer than the deadline: requests are never cancelled mid-way
STOP_DEADLINE_S = 0.7
"""After the first SIGINT/SIGTERM, the process is gone by then, shut down or not."""


class _Server(uvicorn.Server):
    """uvicorn's server, with a deadline on stopping."""

    _deadline_armed = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if not self._deadline_armed:
            self._deadline_armed = True
            code = 130 if sig == signal.SIGINT else 0  # as a graceful stop would exit
            threading.Thread(target=_exit_after, args=(STOP_DEADLINE_S, code), daemon=True).start()


def _exit_after(seconds: float, code: int) -> None:
    time.sleep(seconds)
    sys.stderr.write("sandbox target: stopped at its deadline (clients were mid-request)\n")
    sys.stderr.flush()
    os._exit(code)


def bind_listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn, or a TargetError saying why there is none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise TargetError(
            f"cannot bind the sandbox target to {host}:{port}: {exc.strerror}"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise TargetError(
                f"port {port} on {host} is already in use (choose another with --port)"
            ) from None
        raise TargetError(
            f"cannot bind the sandbox target to {host}:{port}: {exc.strerror}"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(settings: TargetSettings) -> None:
    """Serve until SIGINT (re-raised as KeyboardInterrupt after shutdown) or SIGTERM."""
    sock = bind_listen_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    app = create_app(settings)
    gc.freeze()  # the seeded store lives as long as the process: keep it out of GC passes
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For is the app's business (login rate limit)
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config)
    count = len(sandbox_accounts(settings.seed))
    url_host = f"[{host}]" if ":" in host else host
    sys.stderr.write(
        f"sandbox target on http://{url_host}:{port} "
        f"({count} accounts: tracereplay demo-target --print-accounts)\n"
    )
    sys.stderr.flush()
    # uvicorn re-raises the signal that stopped it once it has shut down; SIGTERM then
    # lands here and ends serve() normally instead of killing the process mid-exit, and
    # SIGINT in Python's handler: KeyboardInterrupt, exit 130. Also where the process
    # started with SIGINT ignored (a background job of a shell without job control): there
    # Python installs no handler, and the re-raised SIGINT did nothing (exit 0).
    previous = signal.signal(signal.SIGTERM, _ignore)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        sock.close()


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """Stopped by SIGTERM after a graceful shutdown: nothing left to do."""
