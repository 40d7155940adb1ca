"""Simulated service times: a seeded lognormal per route class, slept asynchronously.

Each class is given as the range holding ~90 % of its times; `scale` multiplies them all
and 0 turns sleeping off. The historical query grows with its date range instead.
"""

from __future__ import annotations

import asyncio
import math
import random
from enum import Enum

_Z90 = 1.6449  # the 5th..95th percentile range of a normal spans ±1.645 σ
HISTORICAL_BASE_S = 0.020
HISTORICAL_PER_DAY_S = 0.002
HISTORICAL_CAP_S = 1.0
_HISTORICAL_SIGMA = 0.12


class RouteClass(Enum):
    """What kind of work a route does, by its (low, high) service time in ms."""

    SIMPLE_GET = (2.0, 8.0)
    LIST = (4.0, 15.0)
    WRITE = (10.0, 30.0)
    CACHE_MISS = (10.0, 40.0)
    CACHE_HIT = (1.0, 3.0)
    HEALTH_CHECK = (5.0, 20.0)
    TEST_CONNECTION = (50.0, 150.0)
    SYNC = (100.0, 400.0)
    EXPORT = (30.0, 120.0)

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """Parameters of the lognormal (of seconds) whose central 90 % is the range."""
        low, high = (math.log(ms / 1000) for ms in self.value)
        return (low + high) / 2, (high - low) / (2 * _Z90)


def historical_base_s(days: int) -> float:
    """Median service time of the historical query over a range of `days`."""
    return min(HISTORICAL_BASE_S + HISTORICAL_PER_DAY_S * days, HISTORICAL_CAP_S)


class ServiceTimes:
    """Draws service times from one seeded stream and sleeps them (scaled)."""

    def __init__(self, seed: int, scale: float) -> None:
        self.scale = scale
        self._rng = random.Random(seed)
        self._params = {route_class: route_class.mu_sigma for route_class in RouteClass}

    def sample_s(self, route_class: RouteClass) -> float:
        """One unscaled service time in seconds."""
        mu, sigma = self._params[route_class]
        return self._rng.lognormvariate(mu, sigma)

    def sample_historical_s(self, days: int) -> float:
        return historical_base_s(days) * self._rng.lognormvariate(0.0, _HISTORICAL_SIGMA)

    async def pause(self, unscaled_s: float) -> float:
        """Sleep `unscaled_s` times the scale; returns the seconds slept."""
        if self.scale <= 0:
            return 0.0
        seconds = unscaled_s * self.scale
        await asyncio.sleep(seconds)
        return seconds

    async def sleep(self, route_class: RouteClass) -> float:
        """Sleep a scaled sample of the route class; returns the seconds slept."""
        if self.scale <= 0:  # answer at once, without spending the random stream
            return 0.0
        return await self.pause(self.sample_s(route_class))

    async def sleep_historical(self, days: int) -> float:
        if self.scale <= 0:
            return 0.0
        return await self.pause(self.sample_historical_s(days))
