"""Limit/offset pages, the shape most FastAPI backends answer lists with.

`{items, total, limit, offset, next_offset}`: at most `limit` items (1..MAX_PAGE_SIZE,
422 beyond), `total` items in the whole (filtered) list, and `next_offset` to ask for
the next page with, null on the last one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

MAX_PAGE_SIZE = 100
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PageOffset = Annotated[int, Query(ge=0)]

T = TypeVar("T")


def page(items: Sequence[T], limit: int, offset: int, render: Callable[[T], Any]) -> dict[str, Any]:
    """The page of `items` starting at `offset`, each rendered."""
    after = offset + limit
    return {
        "items": [render(item) for item in items[offset:after]],
        "total": len(items),
        "limit": limit,
        "offset": offset,
        "next_offset": after if after < len(items) else None,
    }
