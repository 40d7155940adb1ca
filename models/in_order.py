"""Work on a sequence of partitions given back in their order while the next few are made
on threads (the partitioned model's passes: numpy over one partition lets go of the GIL
for most of its time, so a second core takes the next one while the caller uses this one),
and items read ahead of their caller on a thread (`read_ahead`: the scan's batches).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from queue import Empty, Full, Queue
from typing import Any, TypeVar

T = TypeVar("T")
X = TypeVar("X")


def in_order(work: Callable[[X], T], items: Iterable[X], ahead: int, name: str) -> Iterator[T]:
    """`work(item)` of each of `items` (taken here, as they are needed), given in their
    order, up to `ahead` of them made on threads (named `name`) beside the one the caller
    holds; `ahead` 0: each made here when asked. An error of a work is raised where its
    result is given; the works started after it are waited for, not given."""
    if ahead < 1:
        for item in items:
            yield work(item)
        return
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix=name) as pool:
        pending: deque[Future[T]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def read_ahead(items: Iterable[X], ahead: int, name: str) -> Iterator[X]:
    """`items` in their order, taken from their iterator by a thread of their own (named
    `name`) up to `ahead` ahead of the caller: their reads (a Parquet file's decoding)
    beside the caller's work. An error of the iterator is raised where its item would have
    been given. Left early, the thread stops at its next item."""
    if ahead < 1:
        yield from items
        return
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=ahead)
    stop = threading.Event()

    def taken() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put((True, item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((False, None))
        except BaseException as error:  # (given to the caller, raised there)
            queue.put((False, error))

    thread = threading.Thread(target=taken, name=name, daemon=True)
    thread.start()
    try:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # (its last put may wait for room)
            with suppress(Empty):
                queue.get_nowait()
            thread.join(timeout=0.05)
