"""compare/heap.py: after `keep_freed_memory` a freed column's memory is the next one's
(no fresh pages for the kernel to zero), and `tracereplay compare` sets it after its reads."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

import tracereplay.compare.run as run
from tests.compare.test_compare_cli import trace
from tracereplay.compare import heap

# A child process: this one's allocator is left as it is. Huge pages off, so that a block
# touched anew counts one fault per 4 KiB page.
_REUSE = """
import resource, sys
import numpy as np
from tracereplay.compare.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
column = np.ones(8 << 20)  # 64 MiB: over glibc's default mmap threshold (at most 32 MiB)
del column
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
column = np.ones(8 << 20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_of_second_column(mode: str) -> int:
    env = {"NUMPY_MADVISE_HUGEPAGE": "0", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _REUSE, mode], capture_output=True, text=True, env=env, check=True
    )
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="mallopt is glibc's",
)
def test_a_freed_column_is_reused() -> None:
    pages = (64 << 20) // 4096
    assert faults_of_second_column("default") > pages // 2  # fresh pages: each faulted
    assert faults_of_second_column("keep") < pages // 20  # the first column's pages


def test_compare_keeps_freed_memory_after_its_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(run, "keep_freed_memory", lambda: calls.append("keep") or True)
    read = run.read_compared

    def reading(*args: object, **kw: object) -> object:
        calls.append("read")
        return read(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "read_compared", reading)
    from rich.console import Console

    quiet = Console(file=(tmp_path / "log").open("w"))
    real, other = trace(tmp_path / "real", 20.0), trace(tmp_path / "other", 20.0)
    run.run_compare(real, other, out=None, title="t", console=quiet, errors=quiet)
    quiet.file.close()
    assert calls == ["read", "keep"]


def test_not_glibc_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap.ctypes.util, "find_library", lambda name: None)
    assert heap.keep_freed_memory() is False
