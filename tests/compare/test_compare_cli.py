"""`tracereplay compare` exit codes: 0 when goals and SLOs hold, 1 when an SLO fails."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import T0, make_record, write_trace
from tracereplay.cli import main


def trace(path: Path, duration_ms: float) -> Path:
    records = [
        make_record(ts=T0 + timedelta(seconds=i * 3 + j), session=f"s{i}",
                    path=["/api/a", "/api/b"][j], duration_ms=duration_ms, status=200)
        for i in range(40) for j in range(2)
    ]  # fmt: skip
    return write_trace(path, records)


def slo_file(path: Path, threshold_ms: float) -> Path:
    path.write_text(
        f'version = 1\n[slo.latency]\nmetric = "latency_p95_ms"\nop = "<"\n'
        f"threshold = {threshold_ms}\n"
    )
    return path


@pytest.mark.parametrize(("threshold_ms", "code", "passed"), [(500, 0, True), (10, 1, False)])
def test_compare_exits_1_when_an_slo_fails(
    tmp_path: Path, threshold_ms: float, code: int, passed: bool
) -> None:
    real = trace(tmp_path / "real", 20.0)
    other = trace(tmp_path / "other", 20.0)  # the same sessions: every fidelity goal holds
    slo = slo_file(tmp_path / "slo.toml", threshold_ms)
    out = tmp_path / "out"
    args = ["compare", str(real), str(other), "--scale", "1", "--slo", str(slo), "--out", str(out)]
    assert main(args) == code
    doc = json.loads((out / "compare.json").read_text())
    assert doc["fidelity"]["all_passed"] is True
    assert doc["slo"]["checked"] is True and doc["slo"]["passed"] is passed
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_compare_bad_slo_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = trace(tmp_path / "real", 20.0)
    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[slo.x]\nmetric = "nonsense"\nop = "<"\nthreshold = 1\n')
    assert main(["compare", str(real), str(real), "--slo", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracereplay: error: ")
