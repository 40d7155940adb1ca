"""Checks shared by the bad-input tests: a command given bad input ends with exit 2 and
exactly one line on stderr, raises nothing (a traceback), and leaves no `--out` behind."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from tracereplay.cli import main

ERROR_PREFIX = "tracereplay: error: "


def run_cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """(exit code, stderr) of `tracereplay argv` run in this process. Anything but a
    TraceReplayError escaping `main` fails the test here (it would be a traceback)."""
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_exit_2(
    argv: Sequence[str],
    capsys: pytest.CaptureFixture[str],
    *,
    says: str | None = None,
    out: Path | None = None,
) -> str:
    """Run `argv`; it must exit 2 with one error line, the last (containing `says`; a
    command's progress lines may come before it), no traceback, and `out`, when given,
    absent or as it was before. Returns the message."""
    before = _listing(out)
    code, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert [line for line in lines if line.startswith(ERROR_PREFIX)] == lines[-1:], err
    if says is not None:
        assert says in lines[-1], lines[-1]
    if out is not None:
        assert _listing(out) == before, f"{out} changed: {before} -> {_listing(out)}"
    return lines[-1][len(ERROR_PREFIX) :]


def _listing(out: Path | None) -> list[str] | None:
    if out is None or not os.path.lexists(out):
        return None
    if not out.is_dir():
        return [out.name]
    return sorted(str(p.relative_to(out)) for p in out.rglob("*"))
