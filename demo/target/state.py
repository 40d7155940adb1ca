"""Everything one running target holds, built from its settings.

Route modules receive this object explicitly; nothing lives in module globals.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tracereplay.demo.target.audit import WriteLedger
from tracereplay.demo.target.cache import MetricsCache
from tracereplay.demo.target.ratelimit import SlidingWindowLimiter
from tracereplay.demo.target.service_time import ServiceTimes
from tracereplay.demo.target.settings import TargetSettings
from tracereplay.demo.target.store import Store, build_store
from tracereplay.demo.target.tokens import TokenService


@dataclass
class RequestCounters:
    """Requests answered, by status class ("2xx"...), for the detailed health route."""

    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)


@dataclass
class TargetState:
    settings: TargetSettings
    store: Store
    tokens: TokenService
    login_limiter: SlidingWindowLimiter
    cache: MetricsCache
    times: ServiceTimes
    counters: RequestCounters
    started_monotonic: float
    writes: WriteLedger = field(default_factory=WriteLedger)

    @classmethod
    def from_settings(cls, settings: TargetSettings, now: datetime | None = None) -> TargetState:
        now = now or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(
            settings=settings,
            store=build_store(settings.seed, now),
            tokens=TokenService(
                settings.jwt_secret, settings.access_token_ttl_s, settings.refresh_token_ttl_s
            ),
            login_limiter=SlidingWindowLimiter(
                settings.login_rate_limit, settings.login_rate_window_s
            ),
            cache=MetricsCache(settings.cache_ttl_s),
            times=ServiceTimes(settings.seed, settings.service_time_scale),
            counters=RequestCounters(),
            started_monotonic=time.monotonic(),
        )

    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_monotonic, 3)
