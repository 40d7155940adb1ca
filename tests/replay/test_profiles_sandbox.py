"""Each scenario profile on a short, bounded run against the sandbox target, replaying
the model of a real staging capture; the stress profile finds the sandbox's capacity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.servers import SandboxTarget
from tracereplay.cli import main
from tracereplay.demo.accounts import accounts_csv

pytestmark = pytest.mark.slow


def replay(model: Path, target: SandboxTarget, out: Path, *args: str) -> int:
    accounts = out.parent / "accounts.csv"
    accounts.write_text(accounts_csv(target.accounts))
    return main(["replay", str(model), "--host", target.url, "--out", str(out),
                 "--credentials", str(accounts), "--grace", "5s", *args])  # fmt: skip


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())  # type: ignore[no-any-return]


def test_peak_replays_the_busiest_window_at_n(
    staging_model: Path, sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    out = tmp_path / "peak"
    assert replay(staging_model, sandbox_target, out, "--profile", "peak", "--scale", "3",
                  "--duration", "5s") == 0  # fmt: skip
    s = summary(out)
    profile = s["profile"]
    assert profile["name"] == "peak" and profile["window_s"] == 5.0
    span = json.loads(staging_model.read_text())["arrivals"]["span_s"]
    lo, hi = profile["trace_window_s"]
    assert 0 <= lo < hi <= span and hi - lo == 5.0
    assert profile["window_rate_per_s"] >= profile["mean_rate_per_s"]
    # Stratified arrivals: the expected count, give or take one.
    expected = 3 * profile["window_rate_per_s"] * 5.0
    assert abs(s["sessions_planned"] - expected) <= 1.5
    assert s["sessions_started"] == s["sessions_planned"]


def test_spike_bursts_session_starts_in_the_middle_fifth(
    staging_model: Path, sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    out = tmp_path / "spike"
    assert replay(staging_model, sandbox_target, out, "--profile", "spike", "--scale", "6",
                  "--duration", "10s", "--speed", "4") == 0  # fmt: skip
    s = summary(out)
    profile = s["profile"]
    assert profile["spike_s"] == [4.0, 6.0]
    phases = profile["phases"]
    assert sum(p["requests"] for p in phases.values()) == s["requests"]
    timing = pq.read_table(out / "timing.parquet").to_pandas()
    firsts = timing[timing["seq"] == 0]["sent_s"].to_numpy(float) - s["start_s"]
    before = np.count_nonzero(firsts < 4.0) / 4.0
    during = np.count_nonzero((firsts >= 4.0) & (firsts < 6.0)) / 2.0
    assert during >= 3 * before > 0  # 6× the starts per second, with room for rounding
    assert phases["during"]["latency_p95_ms"] is not None


def test_soak_reports_latency_and_memory_drift(
    staging_model: Path, sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    out = tmp_path / "soak"
    pid = sandbox_target.server.process.pid
    assert replay(staging_model, sandbox_target, out, "--profile", "soak", "--scale", "4",
                  "--duration", "20s", "--speed", "2", "--watch-pid", str(pid)) == 0  # fmt: skip
    profile = summary(out)["profile"]
    latency = profile["latency"]
    assert len(latency["slices"]) >= 3
    assert latency["drifting"] in (True, False)
    assert latency["slope_low"] <= latency["slope"] <= latency["slope_high"]
    memory = profile["memory"]
    assert set(memory) == {"locust", f"pid-{pid}"}
    for process in memory.values():
        assert process["samples"] >= 10  # every half second after the 10 s warm-up
        assert 10 < process["start_mb"] <= process["max_mb"]


SLOS = """version = 1
[slo.latency]
metric = "latency_p95_ms"
op = "<"
threshold = 500
[slo.errors]
metric = "server_error_rate"
op = "<"
threshold = 0.01
"""


def test_stress_finds_the_sandbox_capacity(
    staging_model: Path, sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    slo = tmp_path / "slo.toml"
    slo.write_text(SLOS)
    out = tmp_path / "stress"
    code = replay(staging_model, sandbox_target, out, "--profile", "stress", "--steps",
                  "4,32,128", "--duration", "6s", "--speed", "2", "--slo", str(slo))  # fmt: skip
    doc = json.loads((out / "stress.json").read_text())
    steps = doc["steps"]
    assert code == 0, doc
    assert doc["limit_found"] is True and doc["baseline_failed_slos"] == []
    assert doc["capacity"] in (4.0, 32.0)
    assert steps[0]["passed"] is True and steps[-1]["passed"] is False
    assert steps[-1]["scale"] > doc["capacity"]
    failing = steps[-1]["slo"]["results"]
    assert any(r["passed"] is False for r in failing)
    # Each step is a whole replay of its own, with the usual outputs.
    for entry in steps:
        assert (out / entry["dir"] / "summary.json").exists()
        assert entry["requests"] > 0
    # N × the sessions, all started. Not N × the requests: past capacity the sandbox
    # (PBKDF2 logins) answers in seconds and the sessions are cut at --grace, which is what
    # a stress step is for (measured: 343 sessions, 297 cut, p95 8.7 s at N = 32).
    first, second = (summary(out / entry["dir"]) for entry in steps[:2])
    assert second["sessions_planned"] == pytest.approx(8 * first["sessions_planned"], rel=0.15)
    assert second["sessions_started"] == second["sessions_planned"]
    assert steps[1]["requests"] > steps[0]["requests"]
    html = (out / "stress.html").read_text()
    assert 'id="chart-stress-latency"' in html and "capacity" in html
