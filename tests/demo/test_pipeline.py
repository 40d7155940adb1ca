"""`tracereplay demo` end to end: target up, staging users, summary, everything stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracereplay.cli import main
from tracereplay.processes import http_ok
from tracereplay.trace import read_trace


def test_demo_runs_the_whole_pipeline_and_stops_everything(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "demo", "--out", str(out),
         "--duration", "15s", "--users", "6", "--scale", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "staging-summary.json").read_text())
    assert summary["requests"] > 10
    assert summary["failures"] == 0
    assert sum(s["started"] for s in summary["sessions"]) >= 2
    assert "sandbox target on http://127.0.0.1:" in (out / "target.log").read_text()
    assert "Requests by endpoint" in done.stdout
    # Everything the staging users sent went through the capture proxy into the trace.
    trace = read_trace(out / "trace")
    assert trace.num_rows == summary["requests"]
    assert "leak scan clean" in " ".join(done.stderr.split())  # rich wraps at 80 columns
    # The model of that trace, replayed at 2× against the target, compared with it.
    assert json.loads((out / "trace.model.json").read_text())["format"] == "tracereplay.model/1"
    replay = json.loads((out / "replay" / "summary.json").read_text())
    assert replay["sessions_started"] == replay["sessions_planned"] > 0
    compare = json.loads((out / "compare.json").read_text())
    assert compare["scale"] == 2 and compare["slo"]["checked"] is True
    assert compare["requests"]["other"] == replay["requests"]
    # The target it started is gone.
    assert not http_ok(summary["host"] + "/health", timeout_s=0.5)


def test_demo_refuses_a_directory_with_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.txt").write_text("results of an earlier run")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"tracereplay: error: {tmp_path} is not empty; choose a new --out directory\n"
    )
    assert (tmp_path / "old.txt").read_text() == "results of an earlier run"
