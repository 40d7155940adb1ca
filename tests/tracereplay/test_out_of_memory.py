"""A command that runs out of memory ends with one line and exit 2, not a traceback: the
model says where its stage lines had come to and how many rows it read, in this process
or in the behaviors' child, and writes no model file; any other command says it too."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests.models.test_session_sample import _write_api_trace
from tracereplay.cli import main
from tracereplay.models import model as model_module
from tracereplay.trace import info as info_module

ARRAY = (
    "Unable to allocate 4.00 EiB for an array with shape (4611686018427387904,) and data type uint8"
)


def _error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("tracereplay: error: ")]


def test_the_model_says_its_stage_and_rows_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_api_trace(tmp_path / "t", 30)
    monkeypatch.setattr(model_module, "free_processes", lambda: 1)

    def no_memory(*_: Any, **__: Any) -> Any:
        return np.empty(1 << 62, dtype=np.uint8)  # numpy's own MemoryError

    monkeypatch.setattr(model_module, "session_table", no_memory)
    out = tmp_path / "m.json"
    assert main(["model", str(tmp_path / "t"), "--out", str(out)]) == 2
    (line,) = _error_lines(capsys)
    rows = len(pa.dataset.dataset(tmp_path / "t").to_table(columns=["ts"]))
    assert f"({rows:,} rows): out of memory in its sessions stage ({ARRAY})" in line
    assert str(tmp_path / "t") in line and "docs/SCALE.md" in line
    assert line.endswith("`--partitions N` makes the model in N key partitions on disk")
    assert not out.exists()


def test_out_of_memory_in_the_behaviors_child_is_one_line_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_api_trace(tmp_path / "t", 30)
    monkeypatch.setattr(model_module, "free_processes", lambda: 2)  # the behaviors forked

    def no_memory(*_: Any, **__: Any) -> Any:
        raise MemoryError("behaviors: no room for the pauses")

    monkeypatch.setattr(model_module, "fit_behaviors", no_memory)
    out = tmp_path / "m.json"
    assert main(["model", str(tmp_path / "t"), "--out", str(out)]) == 2
    (line,) = _error_lines(capsys)
    assert "out of memory" in line and "(behaviors: no room for the pauses)" in line
    assert not out.exists() and not multiprocessing.active_children()


def test_any_command_out_of_memory_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_api_trace(tmp_path / "t", 3)

    def no_memory(*_: Any, **__: Any) -> Any:
        raise pa.ArrowMemoryError("malloc of size 1073741824 failed")  # a MemoryError

    monkeypatch.setattr(info_module, "describe_trace", no_memory)
    assert main(["info", str(tmp_path / "t")]) == 2
    (line,) = _error_lines(capsys)
    assert line.startswith("tracereplay: error: out of memory (malloc of size 1073741824")
    assert line.endswith("per million rows)")


def test_a_bug_is_still_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_api_trace(tmp_path / "t", 3)

    def bug(*_: Any, **__: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(info_module, "describe_trace", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["info", str(tmp_path / "t")])
