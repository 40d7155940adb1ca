"""Real servers for tests: a free port, a process started and stopped, a wait for health.

Everything binds 127.0.0.1. `running_server` always stops what it started, so a failing
test leaves no process behind; `sandbox_target` runs `tracereplay demo-target`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tracereplay.demo.accounts import Account, sandbox_accounts
from tracereplay.processes import free_port, stop_process, wait_for_http

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
# A fixed secret so that tests can craft tokens (e.g. an expired one) the target accepts.
TEST_JWT_SECRET = "tests-only-secret-0123456789abcdef-0123456789"


@dataclass
class ServerProcess:
    """A server started by `running_server`: where it listens and what it printed."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    stderr_path: Path
    _final_stderr: str | None = None  # kept once the process is gone with its temp dir

    def stderr(self) -> str:
        """What the server wrote to stderr so far (all of it once it has stopped)."""
        if self._final_stderr is not None:
            return self._final_stderr
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_server(
    argv: Sequence[str],
    *,
    port: int,
    health_path: str = "/health",
    env: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[ServerProcess]:
    """Start `argv` (which must listen on `port`), wait for `health_path`, stop at exit."""
    with tempfile.TemporaryDirectory(prefix="tracereplay-server-") as tmp:
        stderr_path = Path(tmp) / "stderr.txt"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                list(argv),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, **(env or {})},
            )
        server = ServerProcess(f"http://{HOST}:{port}", port, process, stderr_path)
        try:
            wait_for_http(server.url + health_path, process, timeout_s)
            yield server
        except BaseException:
            stop_process(process)
            sys.stderr.write(server.stderr())  # pytest shows it with the failure
            raise
        finally:
            stop_process(process)
            server._final_stderr = server.stderr()


def target_argv(port: int, *options: str) -> list[str]:
    """The command line of `tracereplay demo-target` on `port` with extra options."""
    return [sys.executable, "-m", "tracereplay.cli", "demo-target", "--port", str(port), *options]


@dataclass
class SandboxTarget:
    """A running sandbox target and what a test needs to talk to it."""

    url: str
    port: int
    accounts: list[Account]
    jwt_secret: str
    server: ServerProcess = field(repr=False)

    def account(self, role: str, index: int = 0) -> Account:
        """The `index`-th account with `role` ("admin" or "client")."""
        return [a for a in self.accounts if a.role == role][index]

    def admin_get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """`GET path` as the first admin (signed in for this one call): the answer's `data`."""
        admin = self.account("admin")
        with httpx.Client(base_url=self.url, timeout=30) as http:
            login = http.post("/api/v1/auth/login", json={"email": admin.email,
                                                          "password": admin.password})  # fmt: skip
            bearer = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
            return http.get(path, params=params, headers=bearer).json()["data"]


@contextmanager
def sandbox_target(*options: str, seed: int = 7) -> Iterator[SandboxTarget]:
    """`tracereplay demo-target` on a free port with `options`, stopped at exit."""
    port = free_port()
    env = {"TRACEREPLAY_TARGET_JWT_SECRET": TEST_JWT_SECRET}
    argv = target_argv(port, "--seed", str(seed), *options)
    with running_server(argv, port=port, env=env) as server:
        yield SandboxTarget(server.url, port, sandbox_accounts(seed), TEST_JWT_SECRET, server)
