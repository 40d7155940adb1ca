"""Login rate limiting: a sliding window of attempts per client address.

Pure bookkeeping over timestamps handed in by the caller, so tests need no clock.
"""

from __future__ import annotations

import math
from collections import deque

_SWEEP_EVERY_KEYS = 4096  # forget idle addresses once this many are tracked


class SlidingWindowLimiter:
    """At most `limit` attempts per key in any `window_s`; `limit` 0 means no limit."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._attempts: dict[str, deque[float]] = {}

    def attempt(self, key: str, now: float) -> int | None:
        """Record an attempt at `now`; None when allowed, else seconds until one would be.

        A refused attempt is not recorded, so waiting out Retry-After always works.
        """
        if self.limit <= 0:
            return None
        window = self._attempts.get(key)
        if window is None:
            if len(self._attempts) >= _SWEEP_EVERY_KEYS:
                self._sweep(now)
            window = self._attempts[key] = deque()
        while window and window[0] <= now - self.window_s:
            window.popleft()
        if len(window) >= self.limit:
            return max(1, math.ceil(window[0] + self.window_s - now))
        window.append(now)
        return None

    def _sweep(self, now: float) -> None:
        idle = [k for k, w in self._attempts.items() if not w or w[-1] <= now - self.window_s]
        for key in idle:
            del self._attempts[key]
