"""A real staging-users trace for model tests: `tracereplay demo` (sandbox target, capture
proxy, staging users) run once per session for a short compressed day."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

STAGING_DURATION = "75s"
STAGING_USERS = "24"


@pytest.fixture(scope="session")
def staging_trace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("staging") / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "demo", "--out", str(out),
         "--duration", STAGING_DURATION, "--users", STAGING_USERS],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    yield out / "trace"
