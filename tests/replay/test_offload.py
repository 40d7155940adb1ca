"""offload.quiet_collector: the collector runs rarely during a replay, but it still runs."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tracereplay.replay.offload import RUN_GC_THRESHOLD, quiet_collector


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
