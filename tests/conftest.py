"""Fixtures shared by every test package: the sandbox target as a real server.

The server helpers themselves live in tests/servers.py so other packages can start their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import SandboxTarget
from tests.servers import sandbox_target as start_sandbox_target


@pytest.fixture(scope="session")
def sandbox_target() -> Iterator[SandboxTarget]:
    """One `tracereplay demo-target` for the session: seed 7, answers at once, no
    login rate limit, a known JWT secret (`.jwt_secret`)."""
    with start_sandbox_target("--service-time-scale", "0", "--login-rate-limit", "0") as target:
        yield target
