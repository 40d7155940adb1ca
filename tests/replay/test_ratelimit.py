"""The rate limiter is a hard cap: no window holds more than rate × length + 1 requests."""

from __future__ import annotations

from tracereplay.replay.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_burst_is_spread_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50.0, sleep=clock.sleep, clock=clock)
    times = []
    for _ in range(500):
        limiter.acquire()
        times.append(clock.now)
    assert times[-1] - times[0] >= 499 / 50.0 - 1e-9
    for i, t in enumerate(times):  # any 1 s window from a request on
        assert sum(1 for u in times[i:] if u < t + 1.0) <= 51


def test_idle_time_is_not_banked() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, sleep=clock.sleep, clock=clock)
    limiter.acquire()
    clock.now += 60.0  # a minute idle must not allow a burst of 600 afterwards
    start = clock.now
    for _ in range(21):
        limiter.acquire()
    assert clock.now - start >= 2.0 - 1e-9
