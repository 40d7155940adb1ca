"""Requests by endpoint without grouping them: each request's endpoint as its rank in name
order and each endpoint's count (`EndpointCodes`), and what the model reads of them in
passes over the requests, no sort of them all: the endpoints' statistics
(`endpoint_stats`: count, share, path parameter kinds, latency, status mix) and the
payload sample of a trace of several files (`payload_rows`, models/session_sample.py).

`endpoints.EndpointRows` sorts every request by endpoint (a radix sort) and gathers each
endpoint's columns through that order (random reads of every request's codes, durations
and statuses): real10M, 0.45 s for the statistics and 0.25 s for the payload sample's
grouping. Here each statistic is one sequential pass, by chunks of requests: counts of
(endpoint, status), `order_stats.group_quantiles` for the latencies, marks of (endpoint,
path) pairs for the parameter kinds; the same numbers (tests/models/test_endpoint_codes.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc

from .behaviors import sig
from .endpoints import (
    EndpointRows,
    endpoint_order,
    endpoint_ranks,
    latency_and_status,
    param_kinds,
    taken_param_kinds,
)
from .light_columns import RequestColumns
from .order_stats import CHUNK, chunked_bincount, group_quantiles

PERCENTILES = (50, 95, 99)
"""The latency percentiles of an endpoint (`endpoints.latency_and_status`)."""
_MAX_CELLS = 1 << 27
"""Cells (endpoint × status, endpoint × path) a table of marks or counts may hold; more: by
the grouped requests (`EndpointRows`), as before."""


@dataclass(frozen=True)
class EndpointCodes:
    """`EndpointRows` without its order: `names` sorted, `ranked[r]` request r's endpoint
    as an index into them, `bounds[i]:bounds[i+1]` where endpoint i's requests would be in
    `EndpointRows.order` (its count is their difference)."""

    names: list[str]
    ranked: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, endpoint: np.ndarray, names: list[str]) -> EndpointCodes:
        """From each request's endpoint code into `names` (every name used)."""
        return cls(*endpoint_ranks(endpoint, names))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.bounds)

    def grouped(self) -> EndpointRows:
        """The requests sorted by endpoint (`EndpointRows.of`'s stable order)."""
        return EndpointRows(self.names, endpoint_order(self.ranked, len(self.names)), self.bounds)


def _chunks(n: int) -> range:
    return range(0, n, CHUNK)


def endpoint_stats(requests: RequestColumns, codes: EndpointCodes) -> list[dict[str, Any]]:
    """Per endpoint (name order), what the light columns of its every request say: count,
    share, path parameter kinds, latency and status mix (`endpoints.latency_and_status`)."""
    paths = _paths_used(requests, codes)
    latency = _latencies(requests.duration_ms, codes)
    status = _status_shares(requests.status, codes)
    if paths is None or latency is None or status is None:
        return _grouped_stats(requests, codes.grouped())
    out = []
    for i, name in enumerate(codes.names):
        template = name.split(" ", 1)[1]
        kinds = {}
        if i in paths:
            kinds = taken_param_kinds(template, requests.paths, paths[i])
        count = int(codes.bounds[i + 1] - codes.bounds[i])
        entry: dict[str, Any] = {
            "count": count,
            "share": sig(count / len(requests)),
            "params": kinds,
        }
        entry.update(latency.get(i, {}))
        entry["status"] = status[i]
        out.append(entry)
    return out


def _grouped_stats(requests: RequestColumns, groups: EndpointRows) -> list[dict[str, Any]]:
    """`endpoint_stats` through each endpoint's rows (the way before, for what the passes
    refuse: a negative latency, too many cells)."""
    out = []
    for i, name in enumerate(groups.names):
        rows = groups.rows(i)
        template = name.split(" ", 1)[1]
        paths = requests.paths.take(_codes_used(requests.path[rows], len(requests.paths)))
        entry: dict[str, Any] = {
            "count": len(rows),
            "share": sig(len(rows) / len(requests)),
            "params": param_kinds(template, pc.fill_null(paths, "/")),
        }
        entry.update(latency_and_status(requests.duration_ms[rows], requests.status[rows]))
        out.append(entry)
    return out


def _codes_used(codes: np.ndarray, size: int) -> np.ndarray:
    """`distinct(codes)` of codes into `size` values, by marking them: no sort."""
    used = np.zeros(size, bool)
    used[codes] = True
    return np.flatnonzero(used)


def _has_params(name: str) -> bool:
    return any(label.startswith("{") for label in name.split(" ", 1)[1].split("/"))


def _paths_used(requests: RequestColumns, codes: EndpointCodes) -> dict[int, np.ndarray] | None:
    """Per endpoint whose template has a parameter, the codes of the distinct paths its
    requests took, ascending (None: too many cells to mark)."""
    with_params = [i for i, name in enumerate(codes.names) if _has_params(name)]
    size = len(requests.paths)
    if not with_params:
        return {}
    if len(with_params) * size > _MAX_CELLS:
        return None
    slot = np.full(len(codes.names), -1, dtype=np.int64)
    slot[with_params] = np.arange(len(with_params)) * size
    used = np.zeros(len(with_params) * size, dtype=bool)
    for start in _chunks(len(requests)):
        at = slot[codes.ranked[start : start + CHUNK]]
        mine = at >= 0
        used[at[mine] + requests.path[start : start + CHUNK][mine]] = True
    return {i: np.flatnonzero(used[j * size : (j + 1) * size]) for j, i in enumerate(with_params)}


def _latencies(durations_ms: np.ndarray, codes: EndpointCodes) -> dict[int, dict[str, Any]] | None:
    """Per endpoint with a known duration, its `latency_ms` as `latency_and_status` gives it
    (None: a duration with its sign bit set, which `group_quantiles` refuses)."""
    known = ~np.isnan(durations_ms)
    if not known.any():
        return {}
    values, group = durations_ms[known], codes.ranked[known]
    sizes = chunked_bincount(group, len(codes.names))
    wanted = np.flatnonzero(sizes)
    q = np.true_divide(np.asarray(PERCENTILES), 100)  # as np.percentile has them
    found = group_quantiles(values, group, len(codes.names), wanted, q, sizes)
    if found is None:
        return None
    return {
        int(i): {"latency_ms": {f"p{p}": sig(v, 4) for p, v in zip(PERCENTILES, row, strict=True)}}
        for i, row in zip(wanted, found, strict=True)
    }


def _status_shares(status: np.ndarray, codes: EndpointCodes) -> list[dict[str, float]] | None:
    """Per endpoint, the share of each known status code among its known ones, as
    `latency_and_status` gives it (None: too many cells to count)."""
    n = len(codes.names)
    known = ~np.isnan(status)
    if not known.any():
        return [{} for _ in range(n)]
    code = status[known].astype(int)
    group = codes.ranked[known]
    low, high = int(code.min()), int(code.max())
    width = high - low + 1
    if n * width > _MAX_CELLS:
        return None
    counts = np.zeros(n * width, dtype=np.int64)
    for start in _chunks(len(code)):
        cell = group[start : start + CHUNK].astype(np.int64) * width
        cell += code[start : start + CHUNK] - low
        counts += np.bincount(cell, minlength=n * width)
    out = []
    for row in counts.reshape(n, width):
        seen = np.flatnonzero(row)
        shares = (row[seen] / row.sum()).tolist()
        out.append({str(c + low): sig(s, 4) for c, s in zip(seen.tolist(), shares, strict=True)})
    return out
