"""The requests grouped by session key, in time order within a key, and the session
statistics at several inactivity timeouts from that one grouping (frame.py sessionizes it).

The grouping is a counting sort (pandas' own, its groupby's) of the keys relabelled
by their first request: a key's requests come together, keys in the order their sessions
start when each key has one session, so `sessionize_requests` numbers the sessions with
no sort of its own and gathers the columns in near time order (a key's requests lie close
together in time), not across the whole trace as key order did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from .light_columns import CHUNK_ROWS, RequestColumns, gather
from .nan_quantiles import nan_median
from .sessions import SessionStats


class KeyTimeSplit(NamedTuple):
    """The requests grouped by session key (`key_time_split`)."""

    order: np.ndarray
    """Positions in `RequestColumns` (int32 below 2**31 requests when grouped by the
    counting sort, else int64): a key's requests together, in time order
    (ties in their order there); keys by their first request (ties by key code) when the
    requests come in time order, else by key code (`np.lexsort((t_s, key))`)."""
    key: np.ndarray
    """The key codes in that order."""
    same_key: np.ndarray
    """Per request in that order, whether the one before it has the same key."""
    key_starts: np.ndarray
    """Where each key's requests start in that order (the False of `same_key`)."""
    think: np.ndarray
    """Per request in that order, the pause since the end of the one before it of its
    key (unknown durations read as 0; never below 0); NaN for a key's first request."""
    t_s: np.ndarray
    """`t_s` in that order."""
    duration_ms: np.ndarray | None = None
    """`duration_ms` in that order, when asked for (`key_time_split(durations=True)`: the
    sessionized frame's column, gathered once for it and the thinks)."""

    def for_stats(self) -> StatsSplit:
        """What `session_stats_by_timeout` reads of it (the thinks and times its own)."""
        small = np.int32 if len(self.t_s) < 1 << 31 else np.int64
        return StatsSplit(
            self.key_starts.astype(small), self.key[self.key_starts], self.think, self.t_s
        )


class StatsSplit(NamedTuple):
    """What the session statistics at other timeouts read of a `KeyTimeSplit`
    (`KeyTimeSplit.for_stats`): no key code nor `same_key` a request, which its key starts
    give (at 10 M requests 5 bytes a request less held until the statistics are asked for,
    after the behaviors' child forks)."""

    key_starts: np.ndarray
    """As `KeyTimeSplit.key_starts`, int32 when the requests are fewer than 2**31."""
    run_key: np.ndarray
    """The key code of each key's requests (`KeyTimeSplit.key[key_starts]`)."""
    think: np.ndarray
    t_s: np.ndarray


_LARGEST_S = float(np.finfo(np.float64).max) / 1000.0
"""An infinite duration's seconds as `np.nan_to_num` of its milliseconds, then / 1000."""


def key_time_split(requests: RequestColumns, *, durations: bool = False) -> KeyTimeSplit:
    """The requests grouped by session key, each key's in time order (`KeyTimeSplit`);
    with their durations in that order when `durations`."""
    order, run_key, key_starts = _grouping(requests.key, requests.t_s)
    if run_key is None or key_starts is None:
        key = gather(requests.key, order)  # near time order (a key's requests lie close)
        same_key, key_starts = _runs(key)
    else:  # (the keys in order and where each starts came with the grouping: no gather)
        key = keys_per_request(run_key, key_starts, len(order))
        same_key = np.ones(len(order), dtype=bool)
        same_key[key_starts] = False
    # end = t + duration / 1000 (unknown: 0), then each pause in its place: one 8-byte
    # array a request beside the times (fresh 10 M-request arrays cost the kernel more
    # than the arithmetic: bench/README.md, compare round 10).
    duration = gather(requests.duration_ms, order)
    # (the seconds into an array of their own when the milliseconds are kept)
    think = _known_seconds(duration, into=None if durations else duration)
    t = gather(requests.t_s, order)
    _thinks_in_place(think, t, key_starts)
    kept = duration if durations else None
    return KeyTimeSplit(order, key, same_key, key_starts, think, t, kept)


class KeyRuns(NamedTuple):
    """The requests grouped by session key as `KeyTimeSplit` has them, each key's code once
    (`key_runs`): no key code nor `same_key` a request, which its key starts give."""

    order: np.ndarray
    """As `KeyTimeSplit.order`."""
    run_key: np.ndarray
    """The key code of each key's requests, in that order."""
    key_starts: np.ndarray
    """Where each key's requests start in that order (intp)."""
    think: np.ndarray
    t_s: np.ndarray
    """As `KeyTimeSplit.think` and `KeyTimeSplit.t_s`."""

    def for_stats(self) -> StatsSplit:
        """What `session_stats_by_timeout` reads of it (the thinks and times its own)."""
        small = np.int32 if len(self.t_s) < 1 << 31 else np.int64
        return StatsSplit(self.key_starts.astype(small), self.run_key, self.think, self.t_s)


def key_runs(key: np.ndarray, times: list[np.ndarray], duration_ms: np.ndarray) -> KeyRuns:
    """`key_time_split` of requests with these key codes, times and durations (its order,
    key starts, thinks and times: the same arrays) as `KeyRuns`, taking the one array of
    `times` out of the list and letting it go once gathered in that order, before the
    durations are (the model's peak, where the sessions are made beside the templates:
    real10M's 8 B a request; the caller holds no other reference to it). No key code a
    request (`KeyTimeSplit.key`, `same_key`: 5 B a request less)."""
    t_s = times.pop()
    order, run_key, key_starts = _grouping(key, t_s)
    if run_key is None or key_starts is None:
        in_order = gather(key, order)
        key_starts = _runs(in_order)[1]
        run_key = in_order[key_starts]
        del in_order
    t = gather(t_s, order)
    del t_s
    duration = gather(duration_ms, order)
    think = _known_seconds(duration, into=duration)
    del duration
    _thinks_in_place(think, t, key_starts)
    return KeyRuns(order, run_key, key_starts, think, t)


def _runs(in_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of key codes in split order: per request, whether its key is the one before it
    (`KeyTimeSplit.same_key`), and where each key's run starts."""
    same_key = np.zeros(len(in_order), dtype=bool)
    np.equal(in_order[1:], in_order[:-1], out=same_key[1:])
    return same_key, np.flatnonzero(~same_key)


def keys_per_request(run_key: np.ndarray, key_starts: np.ndarray, rows: int) -> np.ndarray:
    """Each of `rows` requests' key code in split order, from each run's code and start
    (`KeyRuns`' `run_key` and `key_starts`)."""
    return np.repeat(run_key, np.diff(key_starts, append=rows))


def _thinks_in_place(think: np.ndarray, t: np.ndarray, key_starts: np.ndarray) -> None:
    """`think` (each request's known duration in seconds, in the split's order) made each
    request's pause since the end of the one before it (`KeyTimeSplit.think`): + `t`,
    then the pauses, NaN where a key starts."""
    think += t
    _pauses_in_place(think, t)
    think[key_starts] = np.nan


def _known_seconds(duration_ms: np.ndarray, into: np.ndarray | None) -> np.ndarray:
    """`np.nan_to_num(duration_ms, nan=0.0) / 1000.0` (into `into`, which may be
    `duration_ms`): divided, infinities clipped to what `nan_to_num` makes of them, NaN
    made 0; two passes and a mask, where `nan_to_num` makes three masks and copies."""
    seconds: np.ndarray = np.divide(duration_ms, 1000.0, out=into)
    np.clip(seconds, -_LARGEST_S, _LARGEST_S, out=seconds)  # (NaN stays NaN)
    np.copyto(seconds, 0.0, where=np.isnan(seconds))
    return seconds


def _pauses_in_place(end: np.ndarray, t: np.ndarray) -> None:
    """`end[i]` made max(t[i] - end[i - 1], 0) (the first: 0), in place: chunks from the
    last, so each reads ends not yet overwritten."""
    for stop in range(len(end), 1, -CHUNK_ROWS):
        start = max(stop - CHUNK_ROWS, 1)
        part = np.subtract(t[start:stop], end[start - 1 : stop - 1])
        np.maximum(part, 0.0, out=part)
        end[start:stop] = part
    if len(end):
        end[0] = 0.0


def _grouping(
    key: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The order of `KeyTimeSplit.order`: when `t` is in order (RequestColumns' is) and
    the keys are dense codes, a stable counting sort of the keys relabelled by their first
    request (ties by key code); else `np.lexsort((t, key))`. With it, from the counting
    sort, each key's code in that order (of `key`'s dtype) and where its requests start
    (intp), else None for both: the counting sort's groups are the keys, their starts its
    row pointers, so the keys in order are each key repeated over its run (a sequential
    write, not a gather across the trace)."""
    n = len(key)
    dense = key.dtype.kind in "iu" and n > 0 and int(key.min()) >= 0
    if not dense or int(key.max()) > 2 * n or (t[1:] < t[:-1]).any() or np.isnan(t).any():
        return np.lexsort((t, key)), None, None
    codes = int(key.max()) + 1
    small = np.int32 if max(n, codes) < 1 << 31 else np.int64
    positions = np.arange(n, dtype=small)
    first: np.ndarray = np.full(codes, n, dtype=small)
    np.minimum.at(first, key, positions)
    # (codes no request has are last: `n`, cut off)
    by_first = np.argsort(first)[: np.count_nonzero(first < n)]
    at = t[first[by_first]]  # each key's first time, in order
    tied = at[1:] == at[:-1]
    if (tied & (by_first[1:] < by_first[:-1])).any():  # ties by key code
        by_first = by_first[np.lexsort((by_first, at))]
    label = np.zeros(codes, dtype=small)
    label[by_first] = np.arange(len(by_first))
    order, starts = _counting_sort(gather(label, key), len(by_first))
    del label, positions
    # (every label has requests: each run is one key's, in label order)
    return order, by_first.astype(key.dtype), starts[:-1].astype(np.intp)


def grouped(codes: np.ndarray, groups: int) -> np.ndarray:
    """`np.argsort(codes, kind="stable")` of integer codes in [0, groups), as int32 when
    there are fewer than 2**31 codes and groups, else int64: a counting sort, O(len +
    groups), where numpy's stable sort of 32-bit values is not (8x faster on 1 M requests
    of 111 k keys, 5x on 10 M of 1.1 M: bench/counting_sort.py)."""
    return _counting_sort(codes, groups)[0]


def _counting_sort(codes: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """`grouped(codes, groups)` and where each code's run starts in it, with its end:
    `groups + 1` positions, of the same dtype.

    pandas' counting sort (`groupsort_indexer`, what its groupby orders rows by: a private
    function of the pinned pandas, held to `np.argsort(kind="stable")` by
    tests/models/test_frame.py). scipy.sparse's CSR conversion is the same sort and ~20 %
    faster a call, but with this one the model's caller loads no scipy at all and forks
    its child ~0.07 s sooner: scipy.sparse's import (0.07-0.09 CPU s, most of it scipy's array-API
    module loading numpy.f2py and numpy.testing) is the child's only (bench/README.md, "No
    scipy before the fork, three k-means starts")."""
    from pandas._libs.algos import groupsort_indexer

    small = np.int32 if max(len(codes), groups) < 1 << 31 else np.int64
    order, counts = groupsort_indexer(codes.astype(np.intp, copy=False), groups)
    counts[0] = 0  # (its first count is of the code -1, which none is)
    return order.astype(small, copy=False), np.cumsum(counts).astype(small, copy=False)


def session_starts(split: KeyTimeSplit | KeyRuns, timeout_s: float) -> np.ndarray:
    """Where (in split order) each session starts: the key changes or the gap between two
    starts exceeds `timeout_s`."""
    return _merged(split.key_starts, _long_gaps(split.t_s, split.key_starts, timeout_s))


def session_starts_and_keys(
    split: KeyTimeSplit | KeyRuns, timeout_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """`session_starts(split, timeout_s)` and the key code of each of them (a `KeyRuns`'
    found from its runs' codes: `_start_keys`)."""
    cuts = _long_gaps(split.t_s, split.key_starts, timeout_s)
    starts = _merged(split.key_starts, cuts)
    if isinstance(split, KeyTimeSplit):
        return starts, split.key[starts]
    return starts, _start_keys(split, starts, cuts)


def _merged(key_starts: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    return np.union1d(key_starts, cuts) if len(cuts) else key_starts


def _long_gaps(t: np.ndarray, key_starts: np.ndarray, timeout_s: float) -> np.ndarray:
    """Where (in split order: times `t`, each key's requests from `key_starts` on) a
    request follows one of its key by more than `timeout_s`."""
    found = [np.zeros(0, dtype=np.intp)]
    for start in range(1, len(t), CHUNK_ROWS):  # no 8-byte array of every gap
        stop = min(start + CHUNK_ROWS, len(t))
        long = (t[start:stop] - t[start - 1 : stop - 1]) > timeout_s
        # (the bounds as the starts' dtype: else numpy casts every start to compare)
        lo, hi = np.searchsorted(key_starts, np.array([start, stop], key_starts.dtype))
        long[key_starts[lo:hi] - start] = False  # a key's first request follows none of it
        found.append(np.flatnonzero(long) + start)
    return np.concatenate(found)


def session_stats_by_timeout(
    requests: RequestColumns | None,
    timeouts_s: Mapping[str, float],
    split: KeyTimeSplit | KeyRuns | StatsSplit | None = None,
    *,
    id_order: bool = False,
) -> dict[str, SessionStats]:
    """`session_stats(sessionize(frame, t))` for each timeout t, from one grouping of the
    requests by key: sessionize's rules (a new session where the key changes or the gap
    between two starts exceeds t; think time from the end of the previous response,
    unknown durations read as 0) without building the frame. The gaps longer than the
    shortest timeout are found once; timeouts that split at the same ones share stats.
    `requests` None: `split` given (the requests are read only to group them).
    `id_order`: the means summed over the sessions in id order (by start, ties by key),
    as `session_stats(sessionize(frame, t))` sums them, where the default sums them in
    (key, start) order as the model did before (the same values; the same bits but in
    the last place: the model's statistics of traces whose keys join their connections,
    `sessions.joined_key_codes`, made by `sessionize` before, are summed in id order)."""
    if split is None:
        assert requests is not None, "neither the requests nor their split"
        split = key_time_split(requests)
    if not isinstance(split, StatsSplit):
        split = split.for_stats()
    if not timeouts_s:
        return {}
    long = _long_gaps(split.t_s, split.key_starts, min(timeouts_s.values()))
    gap = split.t_s[long] - split.t_s[long - 1]
    out: dict[str, SessionStats] = {}
    seen: dict[bytes, SessionStats] = {}
    for name, timeout in timeouts_s.items():
        cuts = long[gap > timeout]
        if cuts.tobytes() not in seen:
            seen[cuts.tobytes()] = _stats(split, cuts, id_order)
        out[name] = seen[cuts.tobytes()]
    return out


def _start_keys(split: StatsSplit | KeyRuns, starts: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The key code of each of `starts` (the key starts and the `cuts`, none of them a key
    start: `_long_gaps`): the runs' own codes, a cut's its run's, found for the cuts only
    (a search of every start took 0.03 s a timeout at 10 M requests)."""
    if not len(cuts):
        return split.run_key
    keys = np.empty(len(starts), dtype=split.run_key.dtype)
    at = np.searchsorted(starts, cuts)
    runs = np.ones(len(starts), dtype=bool)
    runs[at] = False
    keys[runs] = split.run_key
    keys[at] = split.run_key[np.searchsorted(split.key_starts, cuts, side="right") - 1]
    return keys


def _stats(split: StatsSplit, cuts: np.ndarray, id_order: bool = False) -> SessionStats:
    """The stats of the sessions the split's keys and `cuts` start, their lengths and
    durations in (key, start) order, as `np.lexsort` ordered them before (the mean of
    the same floats in the same order: the same bits); `id_order`: in session-id order
    (by start, ties by key), their means as `session_stats` of `sessionize`'s frame
    takes them (pandas' means of its session table)."""
    t = split.t_s
    starts = _merged(split.key_starts, cuts)
    lengths = np.diff(np.append(starts, len(t)))
    durations = t[starts + lengths - 1] - t[starts]
    keys = _start_keys(split, starts, cuts)
    if id_order:
        by_id = np.lexsort((keys, t[starts]))
        lengths, durations = lengths[by_id].astype(np.int64), durations[by_id]
    elif (keys[1:] < keys[:-1]).any():
        by_key = grouped(keys, int(keys.max()) + 1)
        lengths, durations = lengths[by_key], durations[by_key]
    if np.isnan(t).any():  # NaN thinks: not only where keys start
        inside = np.ones(len(t), dtype=bool)
        inside[split.key_starts] = False
        inside[cuts] = False
        thinks = split.think[inside]  # a copy of its own: the median may partition it
        think = float(np.median(thinks, overwrite_input=True)) if len(thinks) else 0.0
    else:  # the pauses inside sessions: the think times but where keys start (NaN) and cuts
        thinks = split.think
        if len(cuts):
            thinks = thinks.copy()
            thinks[cuts] = np.nan
        think = nan_median(thinks)
        think = 0.0 if math.isnan(think) else think
    if id_order:  # (pandas' means, as `session_stats` takes them of the table)
        mean_length = float(pd.Series(lengths).mean())
        mean_duration_s = float(pd.Series(durations).mean())
    else:
        mean_length, mean_duration_s = float(np.mean(lengths)), float(np.mean(durations))
    return SessionStats(
        sessions=len(starts),
        mean_length=mean_length,
        median_length=float(np.median(lengths)),
        mean_duration_s=mean_duration_s,
        median_think_s=think,
    )
