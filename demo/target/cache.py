"""The metrics cache: answers kept per (kind, client) for a while, with hit/miss counters.

The cache-stats and cache-clear routes read and empty it; writes to a client evict its keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ALL_CLIENTS = "*"  # the client part of a key for an admin's all-clients answer


class MetricsCache:
    """A dict of (kind, client key) -> (expiry, data), counting hits and misses."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, kind: str, client_key: str) -> Any | None:
        """The cached data, counted as a hit; None (a miss) when absent or expired."""
        entry = self._entries.get((kind, client_key))
        if entry is not None and entry[0] > self.clock():
            self.hits += 1
            return entry[1]
        self.misses += 1
        return None

    def put(self, kind: str, client_key: str, data: Any) -> None:
        self._entries[(kind, client_key)] = (self.clock() + self.ttl_s, data)

    def clear(self) -> int:
        """Drop every entry; returns how many there were."""
        count = len(self._entries)
        self._entries.clear()
        return count

    def clear_client(self, client_id: str) -> int:
        """Drop a client's entries and the all-clients ones that include it."""
        doomed = [key for key in self._entries if key[1] in (client_id, ALL_CLIENTS)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def stats(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "keys": len(self._entries),
            "hit_rate": round(self.hits / lookups, 4) if lookups else 0.0,
        }
