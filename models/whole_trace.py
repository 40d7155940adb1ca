"""The payloads and correlations stages' work over every request — the correlation sample,
every session's address, the endpoints' statistics — on one thread beside the Python that
learns from the samples.

That work is numpy and Arrow kernels and Parquet scans, which let go of the GIL; the
samples' reads, payload inference and the correlation walk are Python holding it. On one
thread, real10M's two stages took ~2.4 s of which ~1.3 s was this work (model.py)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

Result = TypeVar("Result")


class WholeTrace:
    """`with WholeTrace() as beside:` one worker thread; `beside.submit(fn, *args)` queues
    `fn(*args)` on it, in order (`.result()` waits for it and raises its error). Leaving
    the block drops what has not started and waits for what has."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="whole-trace")

    def __enter__(self) -> WholeTrace:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[..., Result], *args: object) -> Future[Result]:
        return self._pool.submit(fn, *args)
