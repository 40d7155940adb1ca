"""`RateLimiter`: a hard cap on requests per second, shared by every session of a process.

A request is let go only when the clock has reached the limiter's next free time, which
then moves on by `1/rate`; waiters take turns (a lock), so only the first of them watches
the clock. Let-go times therefore never come closer than the schedule allows, however
late a waiter wakes: no window of length L holds more than rate × L + 1 of them, and a
waiter woken less than one interval late does not slow the schedule (a later one starts
it again from its own time: idle time is never banked). The send follows the let-go
with no yield in between, so the cap holds for send times, on a loaded machine too.
(Reserving each caller's slot at the call, as this module did before, let a caller woken
late send between the later slots of others: 12-13 sends in a 1 s window at 10/s.)
Waiting counts into the intended-send latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        lock: AbstractContextManager[object] | None = None,
    ) -> None:
        """`lock`: what waiters queue on (default a threading.Lock; the replay's
        greenlets pass gevent's)."""
        if rate_per_s <= 0:
            raise ValueError("rate must be > 0")
        self.interval_s = 1.0 / rate_per_s
        self._sleep = sleep
        self._clock = clock
        self._lock = lock if lock is not None else threading.Lock()
        self._next = clock()

    def acquire(self) -> float:
        """Wait for the next free time; returns how long it waited (seconds)."""
        start = self._clock()
        with self._lock:
            now = self._clock()
            while now < self._next:
                self._sleep(self._next - now)
                now = self._clock()
            # On time (less than an interval late): the schedule goes on from its own
            # time, so a late wake-up does not cost the rate; later: from now.
            due = self._next + self.interval_s
            self._next = due if now < due else now + self.interval_s
        return now - start
