"""offload.quiet_collector: the collector runs rarely during a replay, but it still runs.
offload.NativeThread: work given while it is busy is queued, never waited for."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import pytest

from tracereplay.replay.offload import RUN_GC_THRESHOLD, NativeThread, quiet_collector


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


def test_native_thread_runs_work_now_on_another_thread_and_waits_for_it() -> None:
    pool = NativeThread()
    seen: list[int] = []
    try:
        pool.run(lambda: (time.sleep(0.05), seen.append(threading.get_ident())))
    finally:
        pool.close()
    assert seen and seen[0] != threading.get_ident()
