"""The trace's light columns made into sessions, for `build_model` (model.py) and
`learned_auth`: each request's endpoint (`_templates`), the sessionized frame and the
session statistics at other timeouts, computed later from the sort kept (`_Later`), and
the frame trimmed to what the stages after the sessions read (and given its endpoints,
when it was made without: `build_model` makes it while it learns the templates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.allocator import give_back_freed

from .endpoint_codes import EndpointCodes, endpoint_stats
from .frame import (
    RequestColumns,
    gather,
    key_time_split,
    session_stats_by_timeout,
    sessionize_requests,
    sessions_and_sizes,
    with_endpoints,
    with_positions,
    with_session_ids,
)
from .key_split import key_runs
from .sessions import (
    SessionStats,
    failed_keys,
    joined_key_codes,
)
from .source import RequestSource
from .templating import Templater, request_endpoints


def _sessionized(
    trace: RequestSource,
    requests: RequestColumns,
    endpoint: np.ndarray | None,
    names: list[str],
    timeout_s: float,
    timeouts_s: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, _Later]:
    """The sessions (numpy's `sessionize_requests`, as `sessionize` makes them; a key
    whose requests all failed auth joined to its connection's next key first:
    `joined_keys`), and what gives the session statistics
    at each of `timeouts_s` when called (from the same numpy sort, kept until then:
    `build_model` calls it once the behaviors' child has forked, real10M's 0.5 s).
    `endpoint` None: the frame without its endpoint column, put in by `_completed` or
    `with_endpoints` (the sessions need no endpoint:
    `build_model` groups them while the templates are learned), and without
    its `seq` column, put in by `frame.with_positions` (no stage of the sessions reads it:
    4 B a request less at the parent's peak, real10M's 41 MiB), nor its `duration_ms`
    (`censoring` reads the requests' own: `censoring(duration_ms=)`)."""
    joined = joined_keys(trace, requests)
    if joined is not None:  # (the frame's `session_key`: the joined codes, as sessionize's)
        requests = replace(requests, key=joined)
    timeouts = dict(timeouts_s or {})
    narrow = endpoint is None  # (the model's frame: `_completed` puts them in)
    # (the durations gathered once, for the thinks and the frame's column; the model's
    # frame has none: its thinks are made in the gathered durations' own array)
    split = key_time_split(requests, durations=not narrow)
    # (the model's `seq` made once the sessions' stage is done: `with_positions`)
    sessions = sessionize_requests(
        requests, endpoint, names, timeout_s, split, narrow=narrow, seq=not narrow,
        durations=not narrow,
    )  # fmt: skip
    kept = split.for_stats()  # (what the statistics read: no durations, keys, same_key)
    del split
    # (the statistics read the kept sort only: no light column is held for them)
    id_order = joined is not None
    return sessions, _Later(
        lambda: session_stats_by_timeout(None, timeouts, kept, id_order=id_order), kept.t_s
    )


def joined_keys(trace: RequestSource, requests: RequestColumns) -> np.ndarray | None:
    """Each request's session key code with each key whose requests all failed auth
    joined to its connection's next key (`sessions.joined_key_codes`, numpy's
    `join_failed_credentials`; `conn` read only then), else None."""
    keys = len(requests.key_values)
    failed = failed_keys(requests.key, requests.status, keys)
    if not failed.any():
        return None
    conn = _connection_ranks(trace, requests, failed)
    return joined_key_codes(requests.key, requests.t_s, requests.status, conn, keys)


def _connection_ranks(
    trace: RequestSource, requests: RequestColumns, failed: np.ndarray
) -> np.ndarray:
    """Each request's `conn` as what `joined_key_codes` reads: on a connection some
    request of a `failed` key (per key code) has, the connection's rank among those in
    the order pandas sorts the values (strings: by code point, UTF-8's binary order,
    Arrow's); elsewhere -1, as where it has none (null, or NaN: what `notna` drops). The
    other connections' rows take no part in the join: no rank is made of them (a sort of
    every request's connection string took 20 s at 10 M requests), and no string is
    gathered a request: the column read batch by batch in scan order, each batch's
    values encoded (its distinct strings kept, not its rows'), then each request's code
    taken by its scan position (`requests.row`)."""
    values, code = _connection_codes(trace)
    code = gather(code, requests.row)  # (-1: no connection)
    pa.default_memory_pool().release_unused()  # (the scan's batches)
    on_failed = np.zeros(len(values) + 1, dtype=bool)  # (the last: no connection)
    on_failed[code[failed[requests.key]]] = True
    on_failed[-1] = False
    if pa.types.is_floating(values.type):  # (NaN: no connection, as for pandas)
        on_failed[:-1] &= ~np.asarray(pc.fill_null(pc.is_nan(values), False), dtype=bool)
    involved = np.flatnonzero(on_failed)
    rank = np.full(len(values) + 1, -1, dtype=np.int32)
    in_order = np.asarray(pc.sort_indices(values.take(pa.array(involved))), dtype=np.int64)
    rank[involved[in_order]] = np.arange(len(involved))
    ranks: np.ndarray = rank[code]
    return ranks


def _connection_codes(trace: RequestSource) -> tuple[pa.Array, np.ndarray]:
    """The trace's distinct `conn` values and each request's code into them in scan
    order (int32; -1: null)."""
    dictionaries: list[pa.Array] = []
    indices: list[np.ndarray] = []
    for batch in trace.batches(["conn"]):
        column = batch.column(0)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        encoded = pc.dictionary_encode(column)
        dictionaries.append(encoded.dictionary)
        indices.append(np.asarray(encoded.indices.fill_null(-1), dtype=np.int32))
    if not dictionaries:
        return pa.array([], pa.string()), np.zeros(0, dtype=np.int32)
    every = pc.dictionary_encode(pa.concat_arrays(dictionaries))
    values, global_code = every.dictionary, np.asarray(every.indices, dtype=np.int32)
    code = np.empty(sum(len(i) for i in indices), dtype=np.int32)
    at = taken = 0
    for dictionary, index in zip(dictionaries, indices, strict=True):
        # (a slot past the batch's values for its nulls: -1)
        mapped = np.append(global_code[taken : taken + len(dictionary)], np.int32(-1))
        code[at : at + len(index)] = mapped[index]
        at, taken = at + len(index), taken + len(dictionary)
    return values, code


def _model_sessions(
    trace: RequestSource,
    held: list[RequestColumns],
    timeout_s: float,
    timeouts_s: Mapping[str, float],
) -> tuple[pd.DataFrame, np.ndarray | None, _Later, RequestColumns]:
    """`build_model`'s `_sessionized(trace, requests, None, [], timeout_s, timeouts_s)`
    (the requests taken out of `held`, whose caller holds them no more), without its
    `session_key` column, and, when numpy made it (its times without NaN), without its
    `session_id` column either: where each session's rows start instead (else None; the
    ids are put in by `_completed`, after the sessions' table and censoring read the runs:
    `session_table(starts=)`, `censoring(starts=)`); and the requests without their times
    and methods (`_after_the_sessions`). The times are let go as soon as the sort has its own
    (`key_split.key_runs`), and no key code a request is made: at the parent's peak,
    where the sessions are made beside the templates, 17 B a request less (real10M:
    the times' 81 MiB, the keys in order 41 MiB, the ids 41 MiB, `same_key` 10 MiB).
    Keys whose requests all failed auth are joined to their connection's next key
    (`joined_keys`) for the sort only: the requests keep their own key codes."""
    requests = held.pop()
    joined = joined_keys(trace, requests)
    key = requests.key if joined is None else joined
    times = [requests.t_s]
    requests = _after_the_sessions(requests)  # (the times: in `times` only)
    split = key_runs(key, times, requests.duration_ms)
    id_order = joined is not None
    del key, joined
    ids = bool(np.isnan(split.t_s).any())  # (runs read as `session_runs` would not)
    sessions, sizes = sessions_and_sizes(
        requests, None, [], timeout_s, split, narrow=True, seq=False, durations=False,
        session_key=False, session_id=ids,
    )  # fmt: skip
    kept = split.for_stats()
    del split
    timeouts = dict(timeouts_s)
    later = _Later(
        lambda: session_stats_by_timeout(None, timeouts, kept, id_order=id_order), kept.t_s
    )
    return sessions, None if ids else np.cumsum(sizes) - sizes, later, requests


@dataclass
class _Later:
    """Session statistics computed when asked, from arrays kept until then (`_sessionized`'s
    sort as `key_split.StatsSplit`: at 10 M requests its times, 80 MB, and each key's start
    and code, 8 MB; its thinks are the frame's), once: asking lets them go, and gives
    glibc's free memory back to the system (`give_back_freed`)."""

    compute: Callable[[], dict[str, SessionStats]] | None
    times: np.ndarray | None = None
    """Every request's `t_s`, in some order (the kept sort's: key by key), until the
    statistics are asked for: what `request_curve` counts (the light columns' own times
    need not be held for it: `_after_the_sessions`)."""

    def __call__(self) -> dict[str, SessionStats]:
        compute, self.compute, self.times = self.compute, None, None
        assert compute is not None, "asked twice"
        stats = compute()
        del compute
        # The sort's times and thinks are free now (16 B a request), with what the sessions
        # freed since their trim: given back to the system, not kept for the payloads and
        # correlations (their growth, ~0.1 GB at 10 M, is fresh pages instead). On a
        # 9.8 M-request trace the parent's RSS at the correlations ~1.0 → ~0.82 GiB: the
        # peak of both processes together (parent + child) −0.15 to −0.2 GiB.
        give_back_freed()
        return stats


def _keep_what_later_stages_read(sessions: pd.DataFrame) -> None:
    """Drop, in place, the columns of the sessionized frame no stage after sessions reads
    (`t_s`, `duration_ms`, `session_key`: the requests' own, kept in `RequestColumns`), and hold the
    ids, positions and request numbers as int32 where they fit: ~0.32 GB less from the
    behaviors on at 10 M requests (behaviors read session_id, endpoint and think_s;
    correlations session_id, seq, request and endpoint). A frame `_sessionized` made
    without its endpoint column gets it after, from `_completed`."""
    for column in ("t_s", "duration_ms", "session_key"):
        if column in sessions.columns:  # (`build_model` drops `session_key` first)
            del sessions[column]
    if len(sessions) < np.iinfo(np.int32).max:
        for column in ("session_id", "seq", "request"):
            # (a column put back is copied, even of its own dtype: real10M's three int32
            # columns, 120 MB, and `request` no longer the sort's `order`)
            if column in sessions.columns and sessions[column].dtype != np.int32:
                sessions[column] = sessions[column].to_numpy().astype(np.int32)
    give_back_freed()


def _completed(
    sessions: pd.DataFrame, endpoint: np.ndarray, names: list[str], sizes: np.ndarray
) -> None:
    """The frame `_keep_what_later_stages_read` left, given its endpoint column (each
    request's code into `names`: `with_endpoints`) and, when it was made without, its
    `session_id` (`with_session_ids`) and `seq` (`with_positions`; `sizes`: each session's
    rows): the frame the stages after read."""
    if "session_id" not in sessions.columns:
        with_session_ids(sessions, sizes)
    with_endpoints(sessions, endpoint, names)
    if "seq" not in sessions.columns:
        with_positions(sessions, sizes)


def _after_the_sessions(requests: RequestColumns) -> RequestColumns:
    """The light columns the stages after the sessions read: `requests` without its times
    and method codes (empty arrays: the sessions have their own times, the templates their
    own methods, `build_model` the request curve from `_Later.times`, and no later stage
    reads them), so those can be let go (9 B a request: real10M's 86 MiB, from the
    sessions' censoring on)."""
    return replace(requests, t_s=requests.t_s[:0].copy(), method=requests.method[:0].copy())


def _templates(requests: RequestColumns) -> tuple[Templater, np.ndarray, list[str]]:
    """The templater (fitted on distinct (method, path skeleton) with counts) and each
    request's endpoint code into the returned names (templating.request_endpoints)."""
    return _templating(requests)()


def _templating(
    requests: RequestColumns,
) -> Callable[[], tuple[Templater, np.ndarray, list[str]]]:
    """`_templates(requests)` when called, holding only the columns it reads (not
    `requests`: its other columns may be let go while it runs on a thread), then the memory
    it freed given back: Arrow's (mimalloc's heaps are per thread: this one's) and glibc's
    (the thread's own arena keeps what it freed, beside the sessions' arrays until
    `give_back_freed` is called: real10M-sized traces' parent peak ~1.24 → ~1.17-1.22 GiB)."""
    methods, method, paths, path = requests.methods, requests.method, requests.paths, requests.path

    def work() -> tuple[Templater, np.ndarray, list[str]]:
        found = request_endpoints(methods, method, paths, path)
        pa.default_memory_pool().release_unused()
        give_back_freed()
        return found

    return work


def _templating_and_stats(
    requests: RequestColumns,
) -> Callable[[], tuple[Templater, np.ndarray, list[str], list[dict[str, Any]]]]:
    """`_templating(requests)`, then the endpoints' statistics over the light columns
    (`endpoint_codes.endpoint_stats`: numpy and Arrow, on the templates' thread beside the
    sessions), so that the columns only they read (durations, statuses, paths: 16 B a
    request and the distinct paths) can be let go once the templates are waited for
    (`_after_the_stats`), before the payloads and correlations, where both processes
    together peak. The columns are let go by the work once it is done (not held by it)."""
    templates = _templating(requests)
    # (empty arrays of their own: a view of no element would hold the whole column)
    held = [replace(requests, t_s=requests.t_s[:0].copy(), method=requests.method[:0].copy(),
                    key=requests.key[:0].copy())]  # fmt: skip

    def work() -> tuple[Templater, np.ndarray, list[str], list[dict[str, Any]]]:
        templater, endpoint, names = templates()
        columns = held.pop()
        stats = endpoint_stats(columns, EndpointCodes.of(endpoint, names))
        del columns
        pa.default_memory_pool().release_unused()
        give_back_freed()
        return templater, endpoint, names, stats

    return work


def _after_the_stats(requests: RequestColumns) -> RequestColumns:
    """The light columns the stages after the endpoints' statistics read (the rows, keys
    and their values, the paths): `requests` without its durations and statuses, so those
    can be let go (12 B a request). The paths stay (4 B a request): the correlation
    sample's are taken from them, not decoded from every file again by its scan
    (`sample_reads.CORRELATION_SCANNED`)."""
    return replace(
        requests,
        duration_ms=requests.duration_ms[:0].copy(),
        status=requests.status[:0].copy(),
    )
