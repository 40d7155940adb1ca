"""Work on a sequence of partitions given back in their order while the next few are made
on threads (the partitioned model's passes: numpy over one partition lets go of the GIL
for most of its time, so a second core takes the next one while the caller uses this one).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

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
