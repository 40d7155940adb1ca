"""The rate limiter is a hard cap: no window holds more than rate × length + 1 requests."""

from __future__ import annotations

import time

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


def test_a_stalled_process_does_not_send_the_missed_slots_at_once() -> None:
    """Greenlets wait together at 20/s; 0.3 s in, the whole process stalls for 0.4 s (a
    blocking call: the hub runs nobody, as on a machine whose cores are taken). Let-go
    times, read right after `acquire` as the driver reads its send time, still hold no
    more than rate × 1 s + 1 in any 1 s window. (Slots reserved at the call put every
    slot the stall missed at its end: 29 in a window here.)"""
    import gevent
    import gevent.lock

    limiter = RateLimiter(20.0, sleep=gevent.sleep, lock=gevent.lock.Semaphore())
    sent: list[float] = []

    def session() -> None:
        for _ in range(2):
            limiter.acquire()
            sent.append(time.monotonic())

    def stall() -> None:
        gevent.sleep(0.3)
        time.sleep(0.4)  # blocks the hub: no greenlet runs meanwhile

    gevent.joinall([gevent.spawn(stall), *(gevent.spawn(session) for _ in range(20))], timeout=30)
    assert len(sent) == 40
    sent.sort()
    busiest = max(sum(1 for u in sent[i:] if u < t + 1.0) for i, t in enumerate(sent))
    assert busiest <= 21


def test_waking_a_little_late_keeps_the_rate() -> None:
    """A waiter woken less than one interval late does not push the schedule back: 100
    let-goes at 50/s with every sleep 5 ms long still take 99 intervals (+ the last
    lateness), not 99 × 25 ms."""
    clock = FakeClock()

    def late_sleep(seconds: float) -> None:
        clock.now += seconds + 0.005

    limiter = RateLimiter(50.0, sleep=late_sleep, clock=clock)
    start = clock.now
    for _ in range(100):
        limiter.acquire()
    assert clock.now - start <= 99 / 50.0 + 0.005 + 1e-9
