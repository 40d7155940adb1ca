"""Fixtures shared by every test package: the sandbox target as a real server.

The server helpers themselves live in tests/servers.py so other packages can start their own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import SandboxTarget
from tests.servers import sandbox_target as start_sandbox_target


@pytest.fixture(scope="session")
def sandbox_target() -> Iterator[SandboxTarget]:
    """One `tracereplay demo-target` for the session: seed 7, answers at once, no
    login rate limit, a known JWT secret (`.jwt_secret`)."""
    with start_sandbox_target("--service-time-scale", "0", "--login-rate-limit", "0") as target:
        yield target


# A real staging-users trace: `tracereplay demo` (sandbox target, capture proxy, staging
# users) run once per test session for a short compressed day.
STAGING_DURATION = "75s"
STAGING_USERS = "24"


@pytest.fixture(scope="session")
def staging_trace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("staging") / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "demo", "--out", str(out),
         "--duration", STAGING_DURATION, "--users", STAGING_USERS, "--scale", "0"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    yield out / "trace"


@pytest.fixture(scope="session")
def staging_model(staging_trace: Path) -> Path:
    """The model of `staging_trace` (tracereplay model), written once per test session."""
    from tracereplay.models.model import build_model, write_model

    return write_model(build_model(staging_trace), staging_trace.parent / "staging.model.json")
