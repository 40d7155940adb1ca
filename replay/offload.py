"""Work the sending loop must not wait on, on a real OS thread (Locust processes only).

Under gevent's monkey-patching `threading.Thread` is a greenlet: Arrow conversion, file
writes and plan building on it would run on the hub, between the requests, and show up
as target latency and late session starts (a 120 k-request run once stalled 231 ms
compacting its trace). gevent's own `ThreadPool` runs work on native threads; Arrow and
file writes release the GIL, and the short interpreter switch interval the replay sets
(`sys.setswitchinterval`) bounds how long pure-Python work there holds it.

`resolve_once` keeps the other per-session trip through that pool off the sending loop:
one name lookup per new connection.

`quiet_collector` keeps the garbage collector from walking the run's live sessions over
and over while they pile up (an overloaded replay).
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.threadpool
from gevent import monkey

_T = TypeVar("_T")
DNS_TTL_S = 60.0
RUN_GC_THRESHOLD = (50_000, 20, 20)
"""The collector's thresholds while sessions run (Python's default: 700, 10, 10)."""
_real_sleep: Callable[[float], None] = monkey.get_original("time", "sleep")
_NativeLock: Callable[[], Any] = monkey.get_original("threading", "Lock")
"""A lock of the OS (not gevent's): the hub and the native thread both take it."""


class NativeThread:
    """One native thread running submitted work in order (replay/results.py `Background`).

    `submit` never waits: work given while the thread is busy joins a queue the running
    job drains (gevent's `ThreadPool.spawn` makes the caller wait for a free thread: a
    session whose request set off a flush while the last one was still being written
    waited for it, 4-13 ms in a loaded run, before its next request)."""

    def __init__(self) -> None:
        self._pool = gevent.threadpool.ThreadPool(1)
        self._pending: list[gevent.event.AsyncResult] = []
        self._queue: deque[Callable[[], None]] = deque()
        self._lock = _NativeLock()
        self._busy = False

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(work)
            start, self._busy = not self._busy, True
        if start:  # else the running job takes it
            self._pending = [r for r in self._pending if not r.ready() or not r.successful()]
            self._pending.append(self._pool.spawn(self._drain))

    def _drain(self) -> None:
        """On the native thread: run queued work until none is left; raise the first
        failure once the queue is empty (later work still runs, as it did one job each)."""
        failure: BaseException | None = None
        while True:
            with self._lock:
                if not self._queue:
                    self._busy = False
                    break
                work = self._queue.popleft()
            try:
                work()
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def wait(self) -> None:
        """Until everything submitted ran (the greenlet waits; the hub goes on); raises the
        first failure."""
        try:
            for result in self._pending:
                result.get()
        finally:
            self._pending = []

    def pause(self) -> None:
        _real_sleep(0)  # drops the GIL: the hub runs now if it wants to

    def run(self, work: Callable[[], None]) -> None:
        """`work()` on a native thread now, the calling greenlet waiting (`off_hub`)."""
        off_hub(work)

    def close(self) -> None:
        self._pool.kill()


def off_hub(work: Callable[[], _T]) -> _T:
    """`work()` on a native thread, the calling greenlet waiting for it (the hub keeps
    serving heartbeats and timers meanwhile)."""
    result: _T = gevent.get_hub().threadpool.apply(work)
    return result


class ResolvedOnce:
    """The hub's resolver, each `getaddrinfo` answer kept for `ttl_s` (a minute).

    Every session has its own connection, and geventhttpclient resolves the host for every
    new connection: with gevent's default resolver that is a round trip through the hub's
    thread pool per session. A replay talks to one host (--host), so it is looked up once
    a minute, as a browser keeps a lookup for a while (a long soak still follows a DNS
    change). Sessions that ask while a lookup is under way wait for its answer; a failure
    is given to them and not kept (the next connection asks again)."""

    def __init__(
        self, inner: Any, ttl_s: float = DNS_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner = inner
        self._ttl_s, self._clock = ttl_s, clock
        self._answers: dict[tuple[Any, ...], tuple[float, gevent.event.AsyncResult]] = {}

    def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        key = (*args, *sorted(kwargs.items()))
        now = self._clock()
        expires, answer = self._answers.get(key, (now, None))
        if answer is None or now >= expires:  # the first to ask looks up; the others wait
            answer = gevent.event.AsyncResult()
            self._answers[key] = (now + self._ttl_s, answer)
            try:
                answer.set(self._inner.getaddrinfo(*args, **kwargs))
            except BaseException as exc:
                del self._answers[key]
                answer.set_exception(exc)
                raise
        return answer.get()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def resolve_once() -> None:
    """Install `ResolvedOnce` on this thread's hub (once)."""
    hub = gevent.get_hub()
    if not isinstance(hub.resolver, ResolvedOnce):
        hub.resolver = ResolvedOnce(hub.resolver)


def quiet_collector() -> None:
    """Before time zero: collect, put what survives (plan, modules, setup) out of the
    collector's sight, and let it run only every 50,000 more live container objects.

    Python collects its youngest generation every 700 more live objects than last time.
    Each running session holds a few hundred (its connection, cookie jar, parser,
    greenlet): in a replay of short sessions whose starts outrun the target they pile up,
    and a run of 22,500 requests collected 446 times after time zero (1.33 s of CPU,
    7-10 % of the run's; ~2 ms a pass, walking the open sessions). A session leaves
    almost no cyclic garbage (0 objects found in those passes), so collecting less often
    costs little memory; the collector stays on, so the cycles a failing request leaves
    (an exception, its traceback and frame) are still freed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*RUN_GC_THRESHOLD)
