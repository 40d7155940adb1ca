"""Running a test's gevent part in a child process (gevent stays out of pytest's own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def child_result(module: str, *args: str) -> dict[str, Any]:
    """Run `python -m module args` from the repo root; its last stdout line, as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def child_output(code: str) -> str:
    """What `python -c code` prints, in a fresh interpreter (what it imports stays there)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
