"""A replayed session yields to the hub between its requests, think time or none
(replay/driver.py `_requests`), as Locust's own users do between tasks."""

from __future__ import annotations

from tests.replay.children import child_result


def test_sessions_without_think_time_take_turns_between_requests() -> None:
    # With a sender that never yields, only the driver's zero sleep lets the other session
    # send: without it session 0 sent all three requests before session 1 sent one.
    got = child_result("tests.replay.turns_child", "0")
    assert got["sent"] == ["/a", "/b", "/a", "/b", "/a", "/b"]
    assert got["completed"] == 2
    # Every request recorded as before, each session's in order.
    assert sorted(got["rows"]) == [
        [s, seq, path, 200] for s, path in ((0, "/a"), (1, "/b")) for seq in range(3)
    ]


def test_sessions_with_think_time_take_turns_as_before() -> None:
    got = child_result("tests.replay.turns_child", "0.01")
    assert got["sent"] == ["/a", "/b", "/a", "/b", "/a", "/b"]
    assert got["completed"] == 2
