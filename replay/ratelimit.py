"""`RateLimiter`: a hard cap on requests per second, shared by every session of a process.

Virtual scheduling: each request takes the next free slot `1/rate` after the previous
one, so no window of any length holds more than rate × length + 1 requests. Waiting for a
slot happens before the send, so it counts into the intended-send latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be > 0")
        self.interval_s = 1.0 / rate_per_s
        self._sleep = sleep
        self._clock = clock
        self._next = clock()

    def acquire(self) -> float:
        """Wait for the next slot; returns how long it waited (seconds)."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval_s
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait
