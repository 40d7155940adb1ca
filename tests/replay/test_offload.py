"""offload.quiet_collector: the collector runs rarely during a replay, but it still runs.
offload.NativeThread: work given while it is busy is queued, never waited for.
offload.wait_until: wakes a greenlet at an exact monotonic time, never early, and leaves no
file descriptor behind."""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracereplay.replay.offload import (
    RUN_GC_THRESHOLD,
    NativeThread,
    quiet_collector,
    wait_until,
)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_quiet_collector_collects_rarely_but_still_frees_cycles(restored_collector: None) -> None:
    quiet_collector()
    assert gc.get_threshold() == RUN_GC_THRESHOLD
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0  # what lived before the run is out of its sight
    cycle = _Node()
    gone = weakref.ref(cycle)
    del cycle
    few: list[list[int]] = [[] for _ in range(RUN_GC_THRESHOLD[0] // 10)]
    assert gone() is not None  # not collected after 700 more objects (Python's default)
    many: list[list[int]] = [
        [] for _ in range(RUN_GC_THRESHOLD[0] * 2)
    ]  # the automatic collector runs
    assert gone() is None
    del few, many


def test_native_thread_takes_work_while_busy_without_waiting() -> None:
    """A flush given while the writer's thread is still busy must not hold the sending
    loop: `submit` returns at once, and the work still runs, in order."""
    pool = NativeThread()
    release, done = threading.Event(), []
    try:
        pool.submit(lambda: (release.wait(3.0), done.append(1)))
        started = time.monotonic()
        pool.submit(lambda: done.append(2))
        pool.submit(lambda: done.append(3))
        waited = time.monotonic() - started
        release.set()
        pool.wait()
        pool.submit(lambda: done.append(4))  # a new job once the queue ran dry
        pool.wait()
    finally:
        release.set()
        pool.close()
    assert waited < 1.0
    assert done == [1, 2, 3, 4]


def test_native_thread_runs_the_rest_and_raises_the_first_failure() -> None:
    pool = NativeThread()
    done: list[int] = []

    def fail(n: int) -> None:
        raise ValueError(n)

    try:
        pool.submit(lambda: fail(1))
        pool.submit(lambda: fail(2))
        pool.submit(lambda: done.append(3))
        with pytest.raises(ValueError, match="1"):
            pool.wait()
    finally:
        pool.close()
    assert done == [3]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")
def test_wait_until_wakes_on_time_and_closes_its_timer() -> None:
    import gevent

    fds = sum(1 for _ in Path("/proc/self/fd").iterdir())
    late_ms = []
    for _ in range(20):
        due = time.monotonic() + 0.002 + random.random() * 0.001  # not on a whole ms
        assert wait_until(due, priority=2)
        late_ms.append((time.monotonic() - due) * 1000.0)
    assert min(late_ms) >= 0.0  # never early
    # On time within what the OS gives (libev's own timers are up to 1 ms late, rounded
    # up to whole ms: the median would be ~0.5 ms); a loaded machine moves the tail.
    assert sorted(late_ms)[10] < 0.4
    # A wait cut short (the session killed before its start) closes its timer too.
    waiter = gevent.spawn(wait_until, time.monotonic() + 10.0, 2)
    gevent.sleep(0.01)
    waiter.kill()
    assert sum(1 for _ in Path("/proc/self/fd").iterdir()) == fds
