"""A session's wait for its planned start (replay/driver.py spawns it START_LEAD_S ahead).

On a high-priority libev timer (run before the other events of the loop iteration it
fires in) set START_SPIN_S early, then yielding to the hub until the start is due: epoll
rounds a timer's wait up to whole milliseconds, and libev's loop time lags while
callbacks run. A timerfd woken by the OS was tried instead and was later (bench/README.md,
gen7). While the hub has nothing else to run, that last stretch naps on the hub's epoll
descriptor rather than spinning (the CPU of an idle spin: up to a millisecond per start).
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from gevent import monkey

START_SPIN_S = 0.001
"""The timer fires this early; the rest is spent yielding to the hub until the start."""
START_PRIORITY = 2
"""libev's highest watcher priority: a due start runs before the I/O of its iteration."""
START_TAIL_S = 0.00015
"""The last part of a start's wait is always yielded to the hub (never napped)."""
START_NAP_S = 0.00025
"""A nap of the start's wait lasts at most this (what a timer of the hub may wait)."""
IDLE_YIELD_S = 0.00002
"""A yield to the hub that came back within this ran nothing else (idle: ~1.5 us)."""
_real_select: Any = monkey.get_original("select", "select")


def sleep_until(due_mono_s: float, spin_s: float = START_SPIN_S) -> None:
    """Wait (this greenlet) until `time.monotonic()` reaches `due_mono_s`: on a timer of
    the highest priority set `spin_s` early from the loop's fresh time, then yielding to
    the hub until it is due. A start already due returns at once.

    While the hub has nothing else to run (a yield came straight back) and the start is
    more than START_TAIL_S away, the wait naps on the hub's own epoll descriptor instead
    of yielding in a busy loop: any I/O the hub watches ends the nap at once (an answer
    to another session is not held), a timer of the hub's waits at most START_NAP_S, and
    the last START_TAIL_S is yielded as before (the start is as exact as it was)."""
    remaining = due_mono_s - time.monotonic() - spin_s
    hub = gevent.get_hub()
    if remaining > 0:
        hub.loop.update_now()  # the loop's own time lags while callbacks run
        timer = hub.loop.timer(remaining, priority=START_PRIORITY)
        try:
            hub.wait(timer)
        finally:
            timer.close()
    before = time.monotonic()
    while before < due_mono_s:
        gevent.sleep(0)
        now = time.monotonic()
        nap = min(START_NAP_S, due_mono_s - now - START_TAIL_S)
        if now - before < IDLE_YIELD_S and nap > 0:
            _nap_on(hub, nap)
            now = time.monotonic()
        before = now


def _nap_on(hub: Any, seconds: float) -> None:
    """Block the thread (the GIL let go) until the hub's epoll descriptor has an event or
    `seconds` pass; where the loop has no such descriptor, do not nap."""
    try:
        fd = hub.loop.fileno()
    except (AttributeError, ValueError):
        return
    if isinstance(fd, int) and fd >= 0:
        _real_select([fd], [], [], seconds)
