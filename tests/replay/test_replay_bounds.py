"""A replay is bounded: stop signals stop every process it started (results kept, exit
128 + signal), a killed parent leaves no orphan loading the target, --run-time holds
including the stop, bodies are read up to --max-body, memory is watched (--max-rss), and a
target that never answers shows as cut sessions and timed-out requests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from tests.replay.stub_server import Stub, stub_server
from tests.replay.test_replay_e2e import tiny_model
from tracereplay.cli import main

pytestmark = pytest.mark.slow


def start_replay(model: Path, host: str, out: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tracereplay.cli", "replay", str(model), "--host", host,
         "--out", str(out), *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_requests(stub: Stub, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(stub.received) < count:
        assert time.monotonic() < deadline, f"only {len(stub.received)} requests"
        time.sleep(0.05)


def children_of(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def summary(out: Path) -> dict[str, object]:
    return json.loads((out / "summary.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
)
def test_a_stop_signal_stops_every_process_and_keeps_the_results(
    sig: signal.Signals, code: int, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path, sessions=60, span_s=60.0)
    out = tmp_path / "run"
    with stub_server() as stub:
        process = start_replay(model, stub.url, out, "--processes", "2")
        wait_for_requests(stub, 20)
        family = children_of(process.pid)
        assert len(family) >= 3  # the Locust master and its 2 workers
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
        ended = time.time()
        left = alive(family)
        time.sleep(2.0)  # anything still loading the target would show now
        late = [t for t, _, _ in stub.received if t > ended]
    assert process.returncode == code, stderr
    assert left == [] and late == []
    s = summary(out)
    assert s["requests"] >= 20 and s["sessions_started"] < s["sessions_planned"]  # type: ignore[operator]
    assert pq.read_table(out / "timing.parquet").num_rows == s["requests"]
    assert "Traceback" not in stderr and " planned: " in stderr and " cut, " in stderr


def test_a_killed_parent_leaves_no_orphan_loading_the_target(tmp_path: Path) -> None:
    model = tiny_model(tmp_path, sessions=60, span_s=60.0)
    with stub_server() as stub:
        process = start_replay(model, stub.url, tmp_path / "run", "--processes", "2")
        wait_for_requests(stub, 20)
        family = children_of(process.pid)
        assert len(family) >= 3
        process.kill()  # SIGKILL: no clean-up in the parent at all
        process.communicate(timeout=30)
        deadline = time.monotonic() + 15
        while alive(family) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = alive(family)
        gone = time.time()
        time.sleep(2.0)
        late = [t for t, _, _ in stub.received if t > gone]
    for orphan in orphans:  # never leave one behind, even when the test fails
        orphan.kill()
    assert orphans == [] and late == []


def test_run_time_is_a_hard_bound_and_a_silent_target_shows_as_cut_and_timed_out(
    tmp_path: Path,
) -> None:
    model = tiny_model(tmp_path, sessions=20, span_s=4.0)
    out = tmp_path / "run"
    with stub_server(delay_s=600) as stub:  # accepts, never answers
        started = time.monotonic()
        # 24 s: on a loaded 2-core machine (load 8-10) the CLI and Locust took ~10 s to start
        # and plan, and 16 s ended the run before any session (an honest exit 2, not a bound).
        process = start_replay(model, stub.url, out, "--run-time", "24s", "--grace", "60s")
        _, stderr = process.communicate(timeout=120)
        elapsed = time.monotonic() - started
    assert process.returncode == 0, stderr
    # 24 s from when the command starts, plus Python's own start-up (~0.3 s) and exit.
    assert elapsed < 24 + 2, elapsed
    s = summary(out)
    # How many sessions start within the bound depends on the machine's speed; each one
    # that did waits on its first request until it is cut, and that request counts.
    n = s["sessions_started"]
    assert isinstance(n, int) and n >= 1 and s["sessions_cut"] == n
    assert s["requests"] == s["failures"] == s["requests_timed_out"] == n
    assert f"completed, {n} cut, " in stderr and f"{n} failures ({n} timed out" in stderr


def test_bodies_are_read_up_to_max_body_and_memory_stays_bounded(tmp_path: Path) -> None:
    model = tiny_model(tmp_path, sessions=3, span_s=1.0)
    out = tmp_path / "run"
    size = 400 << 20
    with stub_server(body_size=size) as stub:
        code = main(["replay", str(model), "--host", stub.url, "--out", str(out),
                     "--grace", "20s", "--max-body", "1MiB", "--max-rss", "300MiB"])  # fmt: skip
        sent = list(stub.body_bytes_sent)
    assert code == 0
    s = summary(out)
    assert s["requests"] == s["responses_truncated"] == 9 and s["failures"] == 0
    timing = pq.read_table(out / "timing.parquet").to_pandas()
    assert timing["truncated"].all()
    assert len(sent) == 9 and max(sent) < size // 4  # the rest was never sent: closed


def test_max_rss_stops_the_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model(tmp_path, sessions=20, span_s=30.0)
    out = tmp_path / "run"
    with stub_server() as stub:
        started = time.monotonic()
        code = main(["replay", str(model), "--host", stub.url, "--out", str(out),
                     "--max-rss", "64MiB"])  # fmt: skip
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2
    assert "over --max-rss 64 MiB" in err.splitlines()[-1]
    assert elapsed < 20  # stopped at once, not at the end of the 30 s window
    assert (out / "summary.json").exists()


def test_a_run_that_ends_before_any_session_is_not_a_quiet_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--scale 1e4 of a 30-session model plans 300,000 sessions: more than 8 s of planning,
    so the bound ends the run first. That is said, with exit 2, not "0/0 sessions"."""
    model = tiny_model(tmp_path, sessions=30, span_s=8.0)
    with stub_server() as stub:
        started = time.monotonic()
        code = main(["replay", str(model), "--host", stub.url, "--out", str(tmp_path / "run"),
                     "--scale", "1e4", "--max-rps", "50", "--run-time", "8s"])  # fmt: skip
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and elapsed < 8 + 2
    assert "no session was played" in err[-1] and "300,000 sessions" in err[-1]
