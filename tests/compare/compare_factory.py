"""Request frames for the compare tests: sessions laid out on a clock, built from
`tests.factories.make_record` through `requests_frame`, so they look like loaded traces."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from tests.factories import T0, make_record, make_table
from tracereplay.models.frame import requests_frame
from tracereplay.trace import TraceRecord


def session_records(
    key: str, start_s: float, paths: Sequence[str], *, gap_s: float = 2.0, **fields: Any
) -> list[TraceRecord]:
    """One session `key`: a GET of each path, `gap_s` apart from `start_s` on."""
    return [
        make_record(
            ts=T0 + timedelta(seconds=start_s + i * gap_s), path=path, session=key, **fields
        )
        for i, path in enumerate(paths)
    ]


def frame(records: Sequence[TraceRecord]) -> pd.DataFrame:
    return requests_frame(make_table(list(records)))


ENDPOINTS = ("/api/items", "/api/users", "/api/orders")


def workload(
    sessions: int, *, seed: int, think_s: float = 1.0, prefix: str = "s",
    mix: tuple[float, ...] = (0.5, 0.3, 0.2),
) -> list[TraceRecord]:  # fmt: skip
    """`sessions` sessions starting about every 3 s (exponential gaps), 2–8 requests each
    drawn from `mix` over ENDPOINTS, pauses exponential with mean `think_s`."""
    rng = np.random.default_rng(seed)
    records, start = [], 0.0
    for i in range(sessions):
        start += float(rng.exponential(3.0))
        t = start
        for j in range(int(rng.integers(2, 9))):
            if j:
                t += float(rng.exponential(think_s))
            path = ENDPOINTS[int(rng.choice(len(ENDPOINTS), p=mix))]
            when = T0 + timedelta(seconds=t)
            records.append(make_record(ts=when, path=path, session=f"{prefix}{i}"))
    return records


# Session shapes cycled over, so that a trace's sessions differ in length and endpoints.
SHAPES: tuple[tuple[str, ...], ...] = (
    ("/api/items", "/api/users"),
    ("/api/items", "/api/items", "/api/users", "/api/orders"),
    ("/api/orders",),
    ("/api/users", "/api/items", "/api/items"),
)


def sessions_frame(
    count: int, *, every_s: float = 10.0, offset_s: float = 0.0, prefix: str = "s", **fields: Any
) -> pd.DataFrame:
    """`count` sessions starting `every_s` apart, shapes cycled from SHAPES."""
    return frame(
        session_records_list(count, every_s=every_s, offset_s=offset_s, prefix=prefix, **fields)
    )


def session_records_list(
    count: int, *, every_s: float = 10.0, offset_s: float = 0.0, prefix: str = "s", **fields: Any
) -> list[TraceRecord]:
    records: list[TraceRecord] = []
    for i in range(count):
        shape = SHAPES[i % len(SHAPES)]
        records += session_records(f"{prefix}{i}", offset_s + i * every_s, shape, **fields)
    return records
