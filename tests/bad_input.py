"""Checks shared by the bad-input tests: a command given bad input ends with exit 2 and
exactly one line on stderr, raises nothing (a traceback), and leaves no `--out` behind."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def bad_model(model: dict[str, Any], case: str) -> dict[str, Any]:
    """A copy of `model` with the defect `case` names (a key of BAD_MODELS)."""
    model = copy.deepcopy(model)
    behavior = model["behaviors"][0]
    first = next(iter(behavior["entry"]))
    if case == "no arrivals":
        del model["arrivals"]
    elif case == "NaN probability":
        behavior["entry"][first] = float("nan")
    elif case == "negative probability":
        behavior["entry"][first] = -0.5
    elif case == "probabilities sum to 0.5":
        behavior["entry"][first] = 0.5
    elif case == "bad first_ts":
        model["provenance"]["first_ts"] = "last tuesday"
    elif case == "rate 1e12":
        model["arrivals"]["rates_per_s"][0] = 1e12
    elif case == "missing endpoint":
        del model["endpoints"][first]
    elif case == "think time inf":
        think = next(iter(next(iter(behavior["think_s"].values())).values()))
        think["q"][3] = float("inf")
    return model


BAD_MODELS = {
    "no arrivals": "arrivals: missing",
    "NaN probability": "is out of range [0, 1]",
    "negative probability": "is out of range [0, 1]",
    "probabilities sum to 0.5": "probabilities sum to 0.5, not 1",
    "bad first_ts": "provenance.first_ts: 'last tuesday' is not an ISO date",
    "rate 1e12": "arrivals.rates_per_s[0]: 1000000000000.0 is out of range",
    "missing endpoint": "unknown endpoint",
    "think time inf": "inf is out of range",
}
"""A model's defects, each with what the one-line error says about it."""
