"""Per-endpoint statistics of a model (count, share, path parameter kinds, latency, status
mix) from the columns of every request, and the request-body and query generators learned
from a seeded sample of each endpoint's requests.

Payload sample: per endpoint, all its requests when it has at most `sample` of them, else
`sample` drawn uniformly without replacement by a generator seeded by (seed, endpoint's
rank in name order), so the same trace and options give the same sample. The model's
provenance says how many requests were read and how stable the learned field kinds are:
the share of fields of the sampled endpoints that get the same kind from half the sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .behavior_paths import grouped
from .behaviors import sig
from .order_stats import chunked_bincount
from .params import param_kind
from .payloads import Parsed, infer_body, infer_query
from .shapes import cut_paths

PAYLOAD_SAMPLE_REQUESTS = 1000
"""Requests per endpoint whose bodies and query strings payload inference reads."""
PAYLOAD_COLUMNS = ["req_body", "req_headers", "query"]


@dataclass(frozen=True)
class EndpointRows:
    """Requests grouped by endpoint: `order` lists request indices endpoint by endpoint
    (names sorted), `bounds[i]:bounds[i+1]` being those of `names[i]`."""

    names: list[str]
    order: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, endpoint: np.ndarray, names: list[str]) -> EndpointRows:
        """From each request's endpoint code into `names` (every name used)."""
        by_name, ranked, bounds = endpoint_ranks(endpoint, names)
        return cls(by_name, endpoint_order(ranked, len(by_name)), bounds)

    def rows(self, i: int) -> np.ndarray:
        return self.order[self.bounds[i] : self.bounds[i + 1]]


def endpoint_ranks(
    endpoint: np.ndarray, names: list[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """`names` sorted, each request's endpoint as a rank into them, and `bounds` (`bounds[i]:
    bounds[i+1]` where rank i's requests lie once sorted by rank; counts are the
    differences). Ranks of 16 bits when they fit: what the radix sort takes, made at that
    width (real10M: no 80 MB int64 array and its 20 MB copy)."""
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.uint16 if len(names) <= 1 << 16 else np.int64)
    rank[by_name] = np.arange(len(names))
    ranked = rank[np.asarray(endpoint)]
    counts = chunked_bincount(ranked, len(names))
    return [names[i] for i in by_name], ranked, np.concatenate([[0], np.cumsum(counts)])


def endpoint_order(ranked: np.ndarray, n: int) -> np.ndarray:
    """Request indices sorted by rank, stable: a radix sort for 16-bit ranks (5x a stable
    int64 sort at 10 M), `grouped` for wider ones."""
    return np.argsort(ranked, kind="stable") if ranked.dtype == np.uint16 else grouped(ranked, n)


def sample_rows(groups: EndpointRows, sample: int, seed: int) -> list[np.ndarray]:
    """Per endpoint, the request indices payload inference reads (see the module doc)."""
    out = []
    for i in range(len(groups.names)):
        rows = groups.rows(i)
        if len(rows) > sample:
            rng = np.random.default_rng([seed, i])
            rows = rows[rng.choice(len(rows), sample, replace=False)]
        out.append(rows)
    return out


def param_kinds(template: str, paths: pa.Array) -> dict[str, dict[str, Any]]:
    """`params.param_kind` of each parameter of `template` over the `paths` that took it."""
    labels = template.split("/")
    if not any(label.startswith("{") for label in labels):
        return {}
    lists = pc.split_pattern(cut_paths(paths), "/")
    out: dict[str, dict[str, Any]] = {}
    for position, label in enumerate(labels):
        if label.startswith("{") and label.endswith("}"):
            out[label[1:-1]] = param_kind(pc.list_element(lists, position))
    return dict(sorted(out.items()))


PARAM_CHUNK_PATHS = 1 << 16
"""Paths `taken_param_kinds` splits into segments at a time."""


def taken_param_kinds(
    template: str, paths: pa.Array, taken: np.ndarray
) -> dict[str, dict[str, Any]]:
    """`param_kinds(template, pc.fill_null(paths.take(taken), "/"))`, the paths taken and
    split into segments a chunk at a time, only the parameters' segments kept: no copy of
    every taken path nor list of all their segments (real10M, on the templates' thread
    beside the sessions' peak: the endpoints' statistics' Arrow memory ~0.1 GB → those
    segments)."""
    labels = template.split("/")
    if not any(label.startswith("{") for label in labels) or not len(taken):
        return param_kinds(template, pc.fill_null(paths.take(taken), "/"))
    params = [
        (position, label[1:-1])
        for position, label in enumerate(labels)
        if label.startswith("{") and label.endswith("}")
    ]
    segments: list[list[pa.Array]] = [[] for _ in params]
    for start in range(0, len(taken), PARAM_CHUNK_PATHS):
        part = pc.fill_null(paths.take(taken[start : start + PARAM_CHUNK_PATHS]), "/")
        lists = pc.split_pattern(cut_paths(part), "/")
        del part
        for (position, _), kept in zip(params, segments, strict=True):
            kept.append(pc.list_element(lists, position))
        del lists
    out: dict[str, dict[str, Any]] = {}
    for (_, name), kept in zip(params, segments, strict=True):
        values = pa.concat_arrays(kept)
        kept.clear()
        out[name] = param_kind(values)
        del values
    return dict(sorted(out.items()))


def latency_and_status(durations_ms: np.ndarray, statuses: np.ndarray) -> dict[str, Any]:
    """`latency_ms` (p50/95/99 of the known durations) and `status` (share of each code)."""
    entry: dict[str, Any] = {}
    durations = durations_ms[~np.isnan(durations_ms)]
    if len(durations):
        p50, p95, p99 = np.percentile(durations, [50, 95, 99])
        entry["latency_ms"] = {"p50": sig(p50, 4), "p95": sig(p95, 4), "p99": sig(p99, 4)}
    known = statuses[~np.isnan(statuses)].astype(int)
    if len(known) and known.min() >= 0 and known.max() < 1000:  # counted, not sorted
        every = np.bincount(known)
        codes = np.flatnonzero(every)
        counts = every[codes]
    else:
        codes, counts = np.unique(known, return_counts=True)
    shares = (counts / len(known)).tolist()
    entry["status"] = {str(c): sig(s, 4) for c, s in zip(codes.tolist(), shares, strict=True)}
    return entry


@dataclass(frozen=True)
class Payloads:
    body: dict[str, Any] | None
    query: dict[str, Any] | None
    fields: int
    stable_fields: int


def infer_payloads(table: pa.Table, half_check: bool) -> Payloads:
    """Body and query generators of one endpoint's sampled requests (`PAYLOAD_COLUMNS`);
    with `half_check`, how many fields keep their kind when learned from half of them."""
    bodies, headers, queries = (table[c].to_pylist() for c in PAYLOAD_COLUMNS)
    types = [_content_type(h) for h in headers]
    # Each distinct body parsed and query string split once, for the whole sample and its
    # half (real1M: 10.5 k bodies parsed, 18.6 k queries split for 27.9 k requests).
    parsed: Parsed = {}
    split: dict[str, list[tuple[str, str]]] = {}
    body, query = infer_body(bodies, types, parsed), infer_query(queries, split)
    full = _field_kinds(body, query)
    stable = len(full)
    if half_check:
        half = len(bodies) // 2
        halves = _field_kinds(
            infer_body(bodies[:half], types[:half], parsed), infer_query(queries[:half], split)
        )
        stable = sum(1 for name, kind in full.items() if halves.get(name) == kind)
    return Payloads(
        body.to_json() if body is not None else None,
        query.to_json() if query is not None else None,
        len(full),
        stable,
    )


def _content_type(pairs: list[tuple[str, str]] | None) -> str | None:
    for name, value in pairs or ():
        if str(name).lower() == "content-type":
            return str(value)
    return None


def _field_kinds(*models: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for prefix, model in zip(("body", "query"), models, strict=True):
        if model is not None:
            _walk(model.root, prefix, out.__setitem__)
    return out


def _walk(node: dict[str, Any], where: str, put: Callable[[str, str], None]) -> None:
    put(where, str(node.get("k")))
    for entry in node.get("fields", ()):
        _walk(entry, f"{where}/{entry['key']}", put)
    if "item" in node:
        _walk(node["item"], f"{where}/*", put)
    for i, option in enumerate(node.get("of", ())):
        _walk(option, f"{where}|{i}", put)
