"""`tracereplay replay` end to end: Locust in child processes against servers on 127.0.0.1,
short bounded runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.factories import T0, make_record, write_trace
from tests.replay.stub_server import stub_server
from tracereplay.cli import main
from tracereplay.models.model import build_model, write_model
from tracereplay.trace import read_trace

pytestmark = pytest.mark.slow


def tiny_model(tmp_path: Path, sessions: int = 30, span_s: float = 8.0) -> Path:
    """A model of sessions GET /api/items → GET /api/items/{id} → POST /api/items/{id}/x,
    starting evenly over `span_s` (no login, no correlation needed)."""
    records = []
    for i in range(sessions):
        t = T0 + timedelta(seconds=span_s * i / sessions)
        item = str(uuid.UUID(int=i + 1, version=4))
        for j, (method, path) in enumerate(
            [("GET", "/api/items"), ("GET", f"/api/items/{item}"), ("POST", f"/api/items/{item}/x")]
        ):
            records.append(
                make_record(
                    ts=t + timedelta(seconds=0.3 * j),
                    session=f"s{i}",
                    method=method,
                    path=path,
                    duration_ms=5.0,
                    resp_body=None,
                )
            )
    trace = write_trace(tmp_path / "trace", records)
    return write_model(build_model(trace), tmp_path / "tiny.model.json")


def replay(*args: str, grace: str = "5s") -> int:
    return main(["replay", *args, "--grace", grace])


def summary(out: Path) -> dict[str, object]:
    return json.loads((out / "summary.json").read_text())  # type: ignore[no-any-return]


def test_model_replay_at_2x_doubles_sessions_with_the_same_sessions(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    with stub_server() as stub:
        assert replay(str(model), "--host", stub.url, "--out", str(tmp_path / "r1")) == 0
        assert replay(str(model), "--host", stub.url, "--out", str(tmp_path / "r2"),
                      "--scale", "2") == 0  # fmt: skip
    one, two = summary(tmp_path / "r1"), summary(tmp_path / "r2")
    assert one["sessions_planned"] == one["sessions_started"] == 30
    assert two["sessions_started"] == 60
    assert one["requests"] == 90 and two["requests"] == 180  # same 3 requests per session
    assert one["failures"] == two["failures"] == 0
    for run in ("r1", "r2"):
        out = tmp_path / run
        assert (out / "locust.html").exists() and (out / "locust_stats.csv").exists()
        names = {
            row.split(",")[1] for row in (out / "locust_stats.csv").read_text().splitlines()[1:]
        }
        assert "GET /api/items/{item_id}" in names  # reported under the template, not the URL
        assert read_trace(out / "replayed").num_rows == summary(out)["requests"]


def test_two_processes_send_the_same_sessions_as_one(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    with stub_server() as stub:
        assert replay(str(model), "--host", stub.url, "--out", str(tmp_path / "p1"),
                      "--seed", "4") == 0  # fmt: skip
        assert replay(str(model), "--host", stub.url, "--out", str(tmp_path / "p2"),
                      "--seed", "4", "--processes", "2") == 0  # fmt: skip

    def sent(out: Path) -> set[tuple[int, int, str]]:
        table = pq.read_table(out / "timing.parquet")
        return set(zip(table["session"].to_pylist(), table["seq"].to_pylist(),
                       table["endpoint"].to_pylist(), strict=True))  # fmt: skip

    assert sent(tmp_path / "p1") == sent(tmp_path / "p2")
    assert len(sent(tmp_path / "p1")) == 90


def test_max_rps_is_a_hard_cap_and_queueing_shows_in_intended_latency(tmp_path: Path) -> None:
    model = tiny_model(tmp_path, sessions=40, span_s=4.0)  # ~30 req/s planned
    with stub_server() as stub:
        assert replay(str(model), "--host", stub.url, "--out", str(tmp_path / "cap"),
                      "--max-rps", "10", grace="20s") == 0  # fmt: skip
        arrived = sorted(t for t, _, _ in stub.received)
    sent = sorted(pq.read_table(tmp_path / "cap" / "timing.parquet")["sent_s"].to_pylist())
    assert len(arrived) == len(sent) == 120

    def busiest_second(times: list[float]) -> int:
        return max(len([t for t in times[i:] if t < times[i] + 1.0]) for i in range(len(times)))

    # No 1 s window of sends holds more than 10 requests (+1 at its edge). At the target,
    # one request held up on its way (a loaded machine) may land in the next window.
    assert busiest_second(sent) <= 11
    assert busiest_second(arrived) <= 12
    s = summary(tmp_path / "cap")
    assert s["latency_intended_ms"]["p95"] > s["latency_ms"]["p95"] + 1000  # type: ignore[index]


def test_stalled_target_shows_in_latency_not_in_arrivals(tmp_path: Path) -> None:
    model = tiny_model(tmp_path, sessions=20, span_s=4.0)
    with stub_server(delay_s=1.5) as stub:
        assert replay(str(model), "--host", stub.url, "--out", str(tmp_path / "slow")) == 0
    s = summary(tmp_path / "slow")
    assert s["sessions_started"] == s["sessions_planned"] == 20  # arrivals kept their times
    assert s["start_lateness_ms"]["p99"] < 500  # type: ignore[index]
    assert s["latency_intended_ms"]["p50"] >= 1500  # type: ignore[index]


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    records = [make_record(ts=T0 + timedelta(seconds=i), session=f"s{i}", path="/api/items")
               for i in range(6)]  # fmt: skip
    trace = write_trace(tmp_path / "trace", records)
    with stub_server() as other, stub_server(redirect_to=other.url) as target:
        assert replay(str(trace), "--host", target.url, "--out", str(tmp_path / "h")) == 0
        assert len(target.received) == 6
        assert other.received == []  # a Location pointing elsewhere is never followed
    assert {p for _, _, p in target.received} == {"/api/items"}


def test_target_killed_mid_run_completes_with_failures(tmp_path: Path) -> None:
    model = tiny_model(tmp_path, sessions=30, span_s=6.0)
    with stub_server() as stub:

        def kill_after_20_requests() -> None:
            while len(stub.received) < 20:
                time.sleep(0.01)
            stub.stop()

        threading.Thread(target=kill_after_20_requests, daemon=True).start()
        assert replay(str(model), "--host", stub.url, "--out", str(tmp_path / "k")) == 0
    s = summary(tmp_path / "k")
    assert s["sessions_started"] == 30
    assert 0 < s["failures"] < s["requests"]  # type: ignore[operator]


def test_bad_replay_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model(tmp_path)
    assert main(["replay", str(model), "--host", "ftp://x", "--out", str(tmp_path / "a")]) == 2
    assert main(["replay", str(tmp_path / "nope"), "--host", "http://127.0.0.1:9",
                 "--out", str(tmp_path / "b")]) == 2  # fmt: skip
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("tracereplay: error: ") for e in errors)


def test_ctrl_c_stops_and_keeps_what_was_gathered(tmp_path: Path) -> None:
    model = tiny_model(tmp_path, sessions=40, span_s=60.0)
    out = tmp_path / "int"
    with stub_server() as stub:
        process = subprocess.Popen(
            [sys.executable, "-m", "tracereplay.cli", "replay", str(model), "--host", stub.url,
             "--out", str(out)],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(stub.received) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    s = summary(out)
    assert s["requests"] >= 10 and s["sessions_started"] < s["sessions_planned"]  # type: ignore[operator]
    assert read_trace(out / "replayed").num_rows == s["requests"]
