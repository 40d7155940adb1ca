"""Both traces of a comparison read as light columns (issue 15): the columns compare
needs (`frame.LIGHT_COLUMNS` and `error`) batch by batch into numpy codes, strings read as
the Parquet files' own dictionaries (`frame.read_light_columns`), endpoints templated per
distinct (method, path skeleton) (Arrow works out each distinct path's skeleton), and the
sessions numbered with numpy (`frame.session_rows`, the rows of `sessionize_requests`),
never a pandas frame of every column nor pandas' sorts of string keys. Session keys first
as the model's `sessionize` has them: a key whose requests all failed auth joins its
connection's next key (`sessions.join_failed_credentials`'s answer, with the model's numpy
join: `sessionized.joined_keys`; `conn` read only then).

The frames hold what the measures, verdicts, SLOs and the report read: `session_key`,
`t_s`, `duration_ms`, `status`, `status_label` (categorical, statuses.py), `error`,
`endpoint` (categorical), `think_s`, `session_id` (int32 when it fits), with the values
`load_requests` + `sessionized_pair` give (tested against them), in the same
(session_id, seq) order.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.models.frame import (
    PLANNED_SOURCES,
    RequestColumns,
    gather,
    read_light_columns,
    session_rows,
)
from tracereplay.models.sessionized import joined_keys
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.models.shapes import cut_paths, skeleton_codes
from tracereplay.models.source import ParquetSource
from tracereplay.models.templating import Templater

from .run_summary import pauses_over_skips
from .statuses import STATUS_LABEL, code_statuses


class _Trace:
    """One trace's light columns, `error`, and its time origin."""

    def __init__(self, path: Path) -> None:
        source = ParquetSource.open(path)
        # Statuses as float32: the trace's int16 exactly, half the memory of float64.
        requests = read_light_columns(source, coded=["error"], status_dtype=np.float32)
        codes, values = requests.coded["error"]
        requests = replace(requests, coded={})
        codes = _small(codes)
        codes[codes == len(values) - 1] = -1  # the last value: null
        self.error = pd.Categorical.from_codes(
            codes, categories=pd.Index(values.to_pylist()[:-1], dtype=object)
        )
        meta = source.metadata
        first = requests.first_ts
        origin = meta.capture_start if meta.source in PLANNED_SOURCES else None
        shift_us = (
            int((first - pd.Timestamp(origin)) // pd.Timedelta(microseconds=1))
            if origin is not None and pd.Timestamp(origin) <= first
            else 0
        )
        _seconds_since(requests.t_s, shift_us)
        self.requests = replace(requests, key=_session_keys(source, requests))
        codes, self.status_labels = code_statuses(requests.status)
        self.status_codes = _small(codes)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, list[str], list[tuple[str, ...]]]:
        """Each request's code into the distinct (method, path skeleton) pairs, in order of
        first use (paths null read as "/", as `add_endpoints` does), and those pairs'
        methods and skeletons (`shapes.skeleton_codes`): all a templater reads of a path,
        worked out once per distinct path in Arrow, with no Python string per path (a
        synthesized 10 M-request trace has ~0.7 M distinct paths, ~60 distinct skeletons)."""
        r = self.requests
        path_skeleton, skeletons = path_skeleton_codes(pc.fill_null(r.paths, "/"))
        pa.default_memory_pool().release_unused()  # the paths' Arrow buffers
        width = max(len(skeletons), 1)
        pair, used = _first_use_codes(r.method, r.path, path_skeleton, width)
        return (
            _small(pair),
            [r.methods[int(m)] for m in (used // width).tolist()],
            [skeletons[int(k)] for k in (used % width).tolist()],
        )


def _first_use_codes(
    method: np.ndarray, path: np.ndarray, path_skeleton: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per request, its (method, skeleton) pair numbered in order of first use, and the
    pairs (method × `width` + skeleton) in that order: what `pd.factorize` of the pairs
    gives, without its 8-byte codes and hash table over every request (the pairs are few:
    the new ones of each chunk are found by a bincount). One array of every request,
    numbered in place a chunk at a time."""
    space = (int(method.max()) + 1) * width
    wide = np.int64 if space >= 1 << 31 else np.int32
    pair = np.take(path_skeleton.astype(wide), path)
    first = np.full(space, len(pair), np.int64)
    for start in range(0, len(pair), _CHUNK):
        part = pair[start : start + _CHUNK]
        part += method[start : start + _CHUNK].astype(wide) * width
        new = (np.bincount(part, minlength=space) > 0) & (first == len(pair))
        if new.any():
            seen = np.flatnonzero(new[part])
            found, at = np.unique(part[seen], return_index=True)
            first[found] = start + seen[at]
    used = np.flatnonzero(first < len(pair))
    used = used[np.argsort(first[used], kind="stable")]
    rank = np.zeros(max(space, 1), wide)
    rank[used] = np.arange(len(used), dtype=wide)
    for start in range(0, len(pair), _CHUNK):
        part = pair[start : start + _CHUNK]
        part[:] = rank[part]
    return pair, used


# A whole segment every shape rule reads as a value (`shapes.value_kind`: an integer, a
# UUID of any case): what most distinct segments of a trace with ids in its paths are
# (real10M: 420,555 of 420,582, all UUIDs).
_PLAIN_VALUE = (
    r"^(?:[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def path_skeleton_codes(paths: pa.Array) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """`shapes.skeleton_codes` of these paths (strings, no nulls), the shape rules run on
    fewer segments: each segment `_PLAIN_VALUE` reads is written "0" (an integer: a value
    too, so each path keeps its skeleton), which folds the paths into a few (real10M:
    644,805 distinct paths into ~60), and only those go through the rules' eleven patterns
    (~3.5 s over real10M's 0.4 M distinct segments)."""
    lists = pc.split_pattern(cut_paths(paths), "/")
    segments = pc.dictionary_encode(lists.flatten())
    words = segments.dictionary
    words = pc.if_else(pc.match_substring_regex(words, _PLAIN_VALUE), "0", words)
    folded = pc.dictionary_encode(
        pc.binary_join(pa.ListArray.from_arrays(lists.offsets, words.take(segments.indices)), "/")
    )
    codes, skeletons = skeleton_codes(folded.dictionary)
    return codes[np.asarray(folded.indices)], skeletons


_CHUNK = 1 << 20


def _seconds_since(t_s: np.ndarray, shift_us: int) -> None:
    """`t_s` (seconds since the first request) made seconds since the origin `shift_us`
    before it, in place, to the bit as `requests_frame` has them: pandas' seconds of a
    microsecond timedelta are whole seconds + the rest / 1e6 (not µs / 1e6). A chunk at a
    time: no 8-byte temporaries of every request."""
    for start in range(0, len(t_s), _CHUNK):
        part = t_s[start : start + _CHUNK]
        since_us = np.rint(part * 1_000_000).astype(np.int64) + shift_us
        seconds, rest = np.divmod(since_us, 1_000_000)
        part[:] = seconds + rest / 1_000_000


def _session_keys(source: ParquetSource, requests: RequestColumns) -> np.ndarray:
    """Each request's session key code as the model's `sessionize` reads it: a key whose
    requests all failed auth joins the key its connection carries next
    (`join_failed_credentials`), with the model's numpy join (`sessionized.joined_keys`:
    `conn` read only when some key failed throughout, batch by batch and dictionary-encoded,
    only the connections a failed key's request is on ranked; no Python string a request)."""
    joined = joined_keys(source, requests)
    if joined is None:
        return requests.key
    return np.asarray(joined, dtype=requests.key.dtype)


def fit_templater(real: _Trace) -> Templater:
    """The templater `sessionized_pair` fits on REAL: on its (method, path) counts."""
    codes, methods, skeletons = real.pairs
    counts = np.bincount(codes, minlength=len(methods)).tolist()
    return Templater.fit_skeletons(zip(methods, skeletons, counts, strict=True))


def _small(codes: np.ndarray) -> np.ndarray:
    """Codes in the smallest integer type that holds them (10 M int64 codes: 80 MB)."""
    top = int(codes.max()) if codes.size else 0
    return codes.astype(np.min_scalar_type(-max(top, 1)), copy=False)


def _sessionized(
    trace: _Trace, templater: Templater, timeout_s: float, scan_rows: bool = False
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The frame, and with `scan_rows` each of its rows' position in the trace's scan order
    (what the SLO binding reads REAL's sampled bodies by: bindings.py)."""
    codes, methods, skeletons = trace.pairs
    names = [templater.skeleton_endpoint(m, k) for m, k in zip(methods, skeletons, strict=True)]
    name_codes, distinct = pd.factorize(pd.Series(names, dtype=object))
    endpoint = _small(np.asarray(name_codes, dtype=np.int32))[codes]
    del codes, trace.pairs
    # What sessionizing reads (key, t_s, duration_ms) and the rows gathered after it: the
    # scan positions, methods and paths (16 bytes a request) are not held through its sort;
    # statuses (the trace's int16, NaN without a response) are float32: exact.
    none = np.zeros(0, np.int32)
    r = trace.requests
    scan = r.row if scan_rows else None
    status = r.status.astype(np.float32, copy=False)
    r = trace.requests = replace(r, row=none, method=none, path=none, status=status)
    # The rows `sessionize_requests` gives, its frame's columns gathered straight into
    # this one (no request, seq; session ids as int32 when they fit), each request column
    # let go once gathered.
    request, pause, sizes = session_rows(r, timeout_s)
    rows = None if scan is None else _small(scan[request])
    del scan
    ids = np.arange(len(sizes), dtype=np.int32 if len(sizes) < 1 << 31 else np.int64)
    keys, key = pd.Index(r.keys), r.key
    t_s, duration_ms, status = r.t_s, r.duration_ms, r.status
    del r
    trace.requests = replace(trace.requests, key=none, t_s=none, duration_ms=none, status=none)
    frame: dict[str, Any] = {
        "session_key": pd.Categorical.from_codes(gather(key, request), categories=keys)
    }
    del key
    frame["t_s"] = gather(t_s, request)
    # Into the times' array, which nothing reads any more: one fresh array less.
    frame["duration_ms"] = gather(duration_ms, request, out=t_s)
    del t_s, duration_ms
    frame["status"] = gather(status, request)
    del status
    frame[STATUS_LABEL] = pd.Categorical.from_codes(
        trace.status_codes[request], categories=pd.Index(trace.status_labels)
    )
    frame["error"] = trace.error[request]
    frame["endpoint"] = pd.Categorical.from_codes(
        endpoint[request], categories=pd.Index([str(n) for n in distinct])
    )
    del request, endpoint
    frame["think_s"] = pause
    frame["session_id"] = np.repeat(ids, sizes)
    return pd.DataFrame(frame, copy=False), rows


def read_pair(
    real_path: Path,
    other_path: Path,
    *,
    templater: Templater | None = None,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both traces sessionized, endpoints from a templater fitted on REAL unless given."""
    real_s, templater = read_sessionized(real_path, templater, session_timeout_s)
    return real_s, read_sessionized(other_path, templater, session_timeout_s)[0]


def read_sessionized(
    path: Path, templater: Templater | None, session_timeout_s: float
) -> tuple[pd.DataFrame, Templater]:
    """One trace sessionized, endpoints from `templater` or from one fitted on it (REAL),
    with that templater; its columns are let go before the next trace is read."""
    frame, templater, _ = read_sessionized_rows(path, templater, session_timeout_s)
    return frame, templater


def read_sessionized_rows(
    path: Path, templater: Templater | None, session_timeout_s: float, scan_rows: bool = False
) -> tuple[pd.DataFrame, Templater, np.ndarray | None]:
    """`read_sessionized`, and with `scan_rows` each frame row's scan position."""
    trace = _Trace(path)
    templater = templater or fit_templater(trace)
    frame, rows = _sessionized(trace, templater, session_timeout_s, scan_rows)
    del trace
    spans = pauses_over_skips(path, frame)  # a replay's pauses over a held-back request
    if spans is not None and spans.any():
        frame["think_s"] = np.where(spans, np.nan, frame["think_s"].to_numpy())
    pa.default_memory_pool().release_unused()
    return frame, templater, rows
