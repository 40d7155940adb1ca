"""Session starts and pauses (replay/driver.py): a session waits for its own start and
never goes early; one the run stops before its start is not started (skipped), not cut;
no recorded pause is shorter than the planned think time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .children import child_result
from .stub_server import stub_server


def child(*args: str) -> dict[str, Any]:
    return child_result("tests.replay.start_child", *args)


def test_a_start_is_never_early_on_a_busy_hub() -> None:
    result = child("sleep")
    assert result["earliest_ms"] >= 0.0  # 40 waits, another greenlet holding the hub
    assert result["past_ms"] < 50.0  # a start already due waits for nothing


def test_a_start_naps_on_an_idle_hub_and_the_hubs_io_wakes_it() -> None:
    """A start's last millisecond was a busy loop of yields when the hub had nothing else
    to run (0.64 ms of CPU per start, measured): it naps on the hub's epoll descriptor
    instead, is still never early and as exact, and I/O the hub waits on ends the nap."""
    result = child("idle")
    # 40 waits of 5 ms each way, alternated in rounds (0.22 against 0.64 ms measured
    # quiet; a loaded CI run once took 0.47 ms napping, so the CPU is judged against the
    # busy loop's in the same run, not against a constant).
    assert result["naps"] >= 40
    assert result["cpu_ms_nap"] < 0.7 * result["cpu_ms_spin"]
    assert result["earliest_ms"] >= 0.0
    assert result["median_ms"] < 0.5  # the tail is still yielded: exact (~0.003 ms)
    assert result["read"] == "x"
    assert result["woken_ms"] < 100.0  # a socket with data: the 1 s nap ends at once
    assert result["quiet_ms"] >= 45.0  # nothing to wake it: the nap lasts its time


def test_a_session_stopped_before_its_start_is_not_started(tmp_path: Path) -> None:
    with stub_server() as stub:
        result = child("stop", stub.url, str(tmp_path / "w"))
    # The second session was spawned (START_LEAD_S ahead) but never started: it is
    # skipped (planned - started), and only the running first one is cut.
    assert result == {"spawned": 2, "planned": 2, "started": 1, "cut": 1, "lateness": 1}


def test_no_recorded_pause_is_shorter_than_planned(tmp_path: Path) -> None:
    # Issue 11: replays at 5x and 10x showed mean pauses 6 % below the plan's. The replay
    # itself waits the whole think time after the answer (measured as sessionize does);
    # that gap came from which pauses were compared (see bench/README.md), not from here.
    with stub_server() as stub:
        result = child("pauses", stub.url, str(tmp_path / "w"))
    assert result["pauses"] == 40 * 5
    assert result["min_over_ms"] >= 0.0
    assert result["median_over_ms"] < 20.0  # what the session does between the answer
    # and its next send (correlation, the URL) is short, never a second pause
