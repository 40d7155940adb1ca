"""The sessions of one key partition (every row of its session keys) and their merge across
partitions into what `build_model` computes of the whole trace's sessions, to the bit.

Per partition (`partition_sessions`): the model's own grouping (`key_split.key_runs`) and
session starts at the model's timeout and at each other timeout, kept per session only
(start, length, duration, last end, key): sessions-sized. The merge (`merged_sessions`)
numbers every session as the model does, by (start, key) with keys in the order of their
strings (the trace's key codes are ranks of its sorted distinct keys: `string_codes.ranked`),
and gives the session table, `session_stats`, the censoring and the statistics at the other
timeouts (in (key, start) order, as `key_split._stats` sums them), plus each partition's
session ids in that order. The pauses' median and 99th percentile are request-sized: each
partition hands its pauses to a sink (spilled by the caller: models/spilled_quantiles.py),
the merge takes their statistics (`TracePauses`); `HeldPauses` computes them in memory.

A key whose every request failed auth the model joins to its connection's next key
(`sessions.join_failed_credentials`), found only across the connection's rows, which
other partitions may hold: partitions of the joined keys (`failed_auth_join.KeyJoin`) are
marked `KeyPartition.joined`, and merged as the model makes the statistics of a joined
trace (`key_split.session_stats_by_timeout(id_order=True)`: at the other timeouts in
session-id order; the ids int64, as the old pandas path had them: the file shows none);
an unmarked partition holding such a key raises `CrossPartitionJoin`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .key_split import KeyRuns, key_runs, session_starts_and_keys
from .nan_quantiles import nan_median, nan_quantile
from .session_shape import CENSOR_QUANTILE, Censoring, _Ends
from .sessions import SessionStats, failed_keys, run_extremes, table_stats

PauseSink = Callable[[str | None, np.ndarray], None]
"""Given, per timeout, a partition's pauses inside sessions (not NaN: no session's first
request): the timeout's name in `timeouts_s`, None for the model's own timeout."""

RequestSink = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]
"""Given, of a partition's requests session by session (by local id, each session's in
time order): each one's row in the partition, its local session id (the
`PartitionSessions` numbering), its place in its session and the pause before it (NaN for
a session's first request), as the model's sessionized frame has them (`request`,
`session_id`, `seq`, `think_s`: the same values once the local ids are mapped to the
merge's, which keeps their order when the partition's keys are sorted, as the scan's are)."""


class CrossPartitionJoin(NotImplementedError):
    """A partition not marked `joined` holds a session key whose every request failed auth
    (401): the model joins it to the next key its connection carries
    (`sessions.joined_key_codes`), which another partition may hold, and then sums the
    statistics at other timeouts in session-id order. Partition by
    the joined key instead: `key_partitions.scan_key_partitions(join_failed_auth=True)`
    (the scan finds such keys, `failed_auth_join` their targets) and
    `Partition.key_partition`, which marks the rows."""


@dataclass(frozen=True)
class KeyPartition:
    """One partition's rows: every row of each of its session keys, in time order (ties in
    the trace's row order, as `RequestColumns` has them)."""

    t_s: np.ndarray
    """float64 seconds since the trace's first request (no NaN, no sign bit set)."""
    duration_ms: np.ndarray
    """float64, NaN when no response came."""
    status: np.ndarray
    key: np.ndarray
    """Integer codes into `key_values`."""
    key_values: pa.Array
    """The session keys (strings, distinct); no other partition holds one of them."""
    joined: bool = False
    """The trace holds keys whose every request failed auth, and these rows are keyed by
    the key each such key joins (`failed_auth_join.KeyJoin`; its own when none): the
    model's joined sessions (statistics at other timeouts in session-id order), which
    every partition of the trace must then be marked for."""

    def __len__(self) -> int:
        return len(self.t_s)


@dataclass(frozen=True)
class _AtTimeout:
    """A partition's sessions at one of the other timeouts, key by key (each key's in time
    order): what `key_split._stats` reads of them."""

    key: np.ndarray
    """Each session's key, a code into `PartitionSessions.keys`."""
    length: np.ndarray
    duration_s: np.ndarray
    start_s: np.ndarray | None = None
    """Each session's start, when the rows are `joined` (the model numbers them then)."""


@dataclass(frozen=True)
class PartitionSessions:
    """A partition's sessions at the model's timeout, in the order `sessionize_requests`
    numbers them on the partition's rows (its local ids: (start, key code)), and at each
    other timeout: sessions-sized, nothing a request."""

    rows: int
    keys: pa.Array
    """The partition's session keys, in the order of its codes."""
    key: np.ndarray
    """Each session's key, a code into `keys`."""
    start_s: np.ndarray
    length: np.ndarray
    duration_s: np.ndarray
    last_end_s: np.ndarray
    """Each session's latest end (t + duration, unknown: 0): the censoring's."""
    first_s: float
    """The partition's earliest request (inf when empty)."""
    latest_end_s: float
    """Its latest end (-inf when empty)."""
    timeout_s: float
    by_timeout: dict[str, _AtTimeout] = field(default_factory=dict)
    joined: bool = False
    """Made of `KeyPartition.joined` rows."""


def partition_sessions(
    rows: KeyPartition,
    timeout_s: float,
    timeouts_s: Mapping[str, float],
    pauses: PauseSink | None = None,
    requests: RequestSink | None = None,
) -> PartitionSessions:
    """The sessions of `rows` at `timeout_s` (`build_model`'s `session_timeout_s`) and at
    each of `timeouts_s` (its `SENSITIVITY_TIMEOUTS_S`); each timeout's pauses inside
    sessions given to `pauses`, each request's row, session, place and pause to
    `requests`. Raises `CrossPartitionJoin` when a key's every request
    failed auth (the model would join it to its connection's next key) and the rows are
    not `joined`."""
    if timeout_s <= 0:
        raise ValueError("session timeout must be > 0")
    _checked(rows)
    n = len(rows)
    if not n:
        if requests is not None:
            none = np.zeros(0, np.int32)
            requests(np.zeros(0, np.intp), none, none, np.zeros(0))
        return _no_sessions(rows, timeout_s, timeouts_s)
    runs = key_runs(rows.key, [rows.t_s], rows.duration_ms)
    # (the partition's keys compact, in the order of the caller's codes)
    used = np.sort(runs.run_key)
    keys = rows.key_values.take(pa.array(used))
    # (codes and lengths as int32 where they fit: kept across partitions, 8 B a session less)
    small = np.int32 if n < np.iinfo(np.int32).max else np.int64
    starts, key = session_starts_and_keys(runs, timeout_s)
    key = np.searchsorted(used, key).astype(small)
    # Numbered as `frame._Rows` numbers them: by start, ties by key.
    numbered = np.lexsort((key, runs.t_s[starts]))
    length = np.diff(np.append(starts, n)).astype(small)
    start_s, end_s = run_extremes(runs.t_s, starts)
    found = _Ends(runs.t_s, rows.duration_ms, runs.order).run_maxima(starts)
    assert found is not None, "an end is NaN"  # (no time is: `_checked`)
    last_end_s, latest_end_s = found
    _give(pauses, None, runs, starts)
    if requests is not None:
        _hand_out(requests, runs, starts, numbered)
    by_timeout: dict[str, _AtTimeout] = {}
    seen: list[tuple[np.ndarray, _AtTimeout]] = []  # (timeouts cutting at the same rows: one)
    for name, timeout in timeouts_s.items():
        at, at_key = session_starts_and_keys(runs, timeout)
        same = [shared for cut, shared in seen if np.array_equal(cut, at)]
        if same:
            by_timeout[name] = same[0]
        else:
            at_length = np.diff(np.append(at, n))
            # (as `key_split._stats`: the last row's time less the first's)
            duration = runs.t_s[at + at_length - 1] - runs.t_s[at]
            by_timeout[name] = _AtTimeout(
                np.searchsorted(used, at_key).astype(small), at_length.astype(small), duration,
                runs.t_s[at] if rows.joined else None,
            )  # fmt: skip
            seen.append((at, by_timeout[name]))
        _give(pauses, name, runs, at)
    return PartitionSessions(
        rows=n,
        keys=keys,
        key=key[numbered],
        start_s=start_s[numbered],
        length=length[numbered],
        duration_s=(end_s - start_s)[numbered],
        last_end_s=last_end_s[numbered],
        first_s=float(rows.t_s.min()),
        latest_end_s=float(latest_end_s),
        timeout_s=timeout_s,
        by_timeout=by_timeout,
        joined=rows.joined,
    )


def _hand_out(
    requests: RequestSink, runs: KeyRuns, starts: np.ndarray, numbered: np.ndarray
) -> None:
    """Each request's row, local session id, place and pause given to `requests`, session
    by session in local-id order: the split's sessions (each key's, in time order: `runs`)
    taken in the order they are numbered, by ranges (no sort)."""
    n = len(runs.t_s)
    kind = np.int32 if n < np.iinfo(np.int32).max else np.int64
    length = np.diff(np.append(starts, n))[numbered]
    offset = np.cumsum(length) - length  # (each session's first place in session order)
    position = np.arange(n, dtype=np.int64) + np.repeat(starts[numbered] - offset, length)
    local = np.repeat(np.arange(len(starts), dtype=kind), length)
    seq = np.arange(n, dtype=kind) - np.repeat(offset.astype(kind), length)
    think = runs.think[position]
    think[offset] = np.nan
    requests(runs.order[position], local, seq, think)


def _no_sessions(
    rows: KeyPartition, timeout_s: float, timeouts_s: Mapping[str, float]
) -> PartitionSessions:
    none, ints = np.zeros(0), np.zeros(0, dtype=np.int64)
    starts = none if rows.joined else None
    return PartitionSessions(
        0, rows.key_values[:0], ints, none, ints, none, none, math.inf, -math.inf, timeout_s,
        {name: _AtTimeout(ints, ints, none, starts) for name in timeouts_s}, rows.joined,
    )  # fmt: skip


def _checked(rows: KeyPartition) -> None:
    n = len(rows)
    if not len(rows.duration_ms) == len(rows.status) == len(rows.key) == n:
        raise ValueError("a partition's columns differ in length")
    if np.isnan(rows.t_s).any() or np.signbit(rows.t_s).any():
        # (the model's runs read NaN times another way, and a -0.0 start as reduceat does)
        raise ValueError("a partition's times hold NaN or a sign bit set")
    if n and not rows.joined and failed_keys(rows.key, rows.status, len(rows.key_values)).any():
        raise CrossPartitionJoin(
            "a session key whose every request failed auth joins its connection's next key,"
            " which another partition may hold: not made per partition"
        )


def _give(pauses: PauseSink | None, name: str | None, runs: KeyRuns, starts: np.ndarray) -> None:
    """The pauses inside the sessions starting at `starts` given to `pauses`: the thinks
    but where a session starts (a key's first request's is NaN already)."""
    if pauses is None:
        return
    inside = np.ones(len(runs.think), dtype=bool)
    inside[starts] = False
    pauses(name, runs.think[inside])


@dataclass(frozen=True)
class TracePauses:
    """The statistics of the pauses inside sessions of every partition the merge needs
    (request-sized: computed by the caller from what each partition gave its `PauseSink`,
    e.g. exact quantiles of spilled values), as the model computes them of the whole
    trace's: `nan_median` and `nan_quantile` of the values, NaN when there are none."""

    median_s: float
    """The pauses' median at the model's timeout (`session_stats`' `median_think_s`)."""
    censor_s: float
    """Their `CENSOR_QUANTILE` quantile, infinite ones left out (`censoring`'s)."""
    median_by_timeout_s: Mapping[str, float]
    """The pauses' median at each other timeout, by its name."""


class HeldPauses:
    """A `PauseSink` that keeps what it is given, in memory: `statistics()` is the whole
    trace's `TracePauses` (for tests and traces that fit: 8 B a request)."""

    def __init__(self) -> None:
        self.values: dict[str | None, list[np.ndarray]] = {}

    def __call__(self, name: str | None, values: np.ndarray) -> None:
        self.values.setdefault(name, []).append(values)

    def statistics(self) -> TracePauses:
        every = {name: np.concatenate(parts) for name, parts in self.values.items()}
        own = every.pop(None, np.zeros(0))
        finite = np.where(np.isinf(own), np.nan, own)
        return TracePauses(
            nan_median(own),
            nan_quantile(finite, CENSOR_QUANTILE),
            {name: nan_median(values) for name, values in every.items() if name is not None},
        )


@dataclass(frozen=True)
class MergedSessions:
    """The whole trace's sessions, as `build_model` makes them."""

    table: pd.DataFrame
    """`session_table`: start_s, length, duration_s by session_id."""
    stats: SessionStats
    censored: Censoring
    ids: list[np.ndarray]
    """Per partition, each of its sessions' id (by its local id): the model's."""
    stats_at: _StatsAt = field(repr=False, compare=False)

    @property
    def by_timeout(self) -> dict[str, SessionStats]:
        """The statistics at each other timeout ("timeout_sensitivity"), made when first
        asked: the partitioned model asks once its behaviors' child has its inputs (not on
        the child's path: ~0.2 s at real10M)."""
        return self.stats_at()


@dataclass
class _StatsAt:
    """The statistics at the other timeouts, made once, when first asked: what they read
    (each partition's sessions at those timeouts, the keys' ranks) let go then."""

    at: list[dict[str, _AtTimeout]] | None
    rank: list[np.ndarray] | None
    median_s: Mapping[str, float]
    joined: bool
    found: dict[str, SessionStats] | None = None

    def __call__(self) -> dict[str, SessionStats]:
        if self.found is None:
            at, rank, self.at, self.rank = self.at, self.rank, None, None
            assert at is not None and rank is not None
            stats_at = _joined_stats_at if self.joined else _stats_at
            self.found = {
                name: stats_at([a[name] for a in at], rank, self.median_s[name]) for name in at[0]
            }
        return self.found


@dataclass(frozen=True)
class Numbered:
    """The partitions' sessions numbered as the model numbers them (`numbered`)."""

    rank: list[np.ndarray]
    """Per partition, each of its keys' rank among every partition's keys."""
    start_s: np.ndarray
    """Every session's start, partition after partition."""
    order: np.ndarray
    """The sessions (partition after partition) in id order."""
    ids: np.ndarray
    """Each session's id (partition after partition)."""


def numbered(parts: Sequence[PartitionSessions]) -> Numbered:
    """The model's session ids of the partitions' sessions: by start, ties by key
    (`frame._Rows`, `sessions.sessionize`); what needs no pause's statistics (the sessions
    pass makes it while they are answered)."""
    if not parts:
        raise ValueError("no partition")
    rank = _key_ranks(parts)
    start_s = np.concatenate([p.start_s for p in parts])
    key = np.concatenate([r[p.key] for p, r in zip(parts, rank, strict=True)])
    order = np.lexsort((key, start_s))
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = np.arange(len(order))
    return Numbered(rank, start_s, order, ids)


def merged_sessions(
    parts: Sequence[PartitionSessions],
    pauses: TracePauses,
    *,
    censor_edges: bool = True,
    numbers: Numbered | None = None,
) -> MergedSessions:
    """The sessions of the partitions `parts` (each key's rows all in one of them) numbered
    as the model numbers the whole trace's (`numbers`, else `numbered(parts)` now), with their
    table, statistics, censoring (`censor_edges` as `build_model`'s) and statistics at the
    other timeouts."""
    if not parts:
        raise ValueError("no partition")
    joined = parts[0].joined
    if any(p.joined != joined for p in parts):
        raise ValueError("partitions of joined keys merged with others")
    numbers = numbered(parts) if numbers is None else numbers
    rank, start_s, order, ids = numbers.rank, numbers.start_s, numbers.order, numbers.ids
    rows = sum(p.rows for p in parts)
    # (`session_table` of sessionize's frame, the joined path's: its int64 ids)
    kind = np.int32 if rows < np.iinfo(np.int32).max and not joined else np.int64
    table = pd.DataFrame(
        {
            "start_s": start_s[order],
            "length": np.concatenate([p.length for p in parts])[order].astype(np.int64),
            "duration_s": np.concatenate([p.duration_s for p in parts])[order],
        },
        index=pd.Index(np.arange(len(order), dtype=kind), name="session_id"),
    )
    last_end_s = np.concatenate([p.last_end_s for p in parts])[order]
    # (what the statistics at the other timeouts read, held until asked: not the partitions)
    stats_at = _StatsAt([p.by_timeout for p in parts], rank, pauses.median_by_timeout_s, joined)
    return MergedSessions(
        table=table,
        stats=table_stats(table, pauses.median_s),
        censored=_censoring(parts, table, last_end_s, pauses.censor_s, censor_edges),
        ids=np.split(ids, np.cumsum([len(p.start_s) for p in parts])[:-1]),
        stats_at=stats_at,
    )


def _key_ranks(parts: Sequence[PartitionSessions]) -> list[np.ndarray]:
    """Per partition, each of its keys' rank among every partition's keys, in the binary
    order of their UTF-8 bytes (pyarrow's: the trace's key codes'). Raises when a key is in
    two partitions."""
    every = pa.concat_arrays([p.keys.cast(pa.large_string()) for p in parts])
    order = pc.sort_indices(every)
    in_order = every.take(order)
    if len(in_order) > 1 and pc.any(pc.equal(in_order[1:], in_order[:-1])).as_py():
        raise ValueError("a session key is in two partitions")
    n = len(every)
    kind = np.int32 if n <= np.iinfo(np.int32).max else np.int64  # (only ordered: lexsort)
    rank = np.empty(n, dtype=kind)
    rank[order.to_numpy()] = np.arange(n, dtype=kind)
    del every, order, in_order
    # The sorted strings' pages given back before the session arrays come (numpy's, which
    # would not reuse the Arrow pool's): real10M's partitioned peak ~450 -> ~390 MB.
    pa.default_memory_pool().release_unused()
    return np.split(rank, np.cumsum([len(p.keys) for p in parts])[:-1])


def _censoring(
    parts: Sequence[PartitionSessions],
    table: pd.DataFrame,
    last_end_s: np.ndarray,
    censor_s: float,
    censor_edges: bool,
) -> Censoring:
    """`censoring(sessions, timeout_s if censor_edges else 0.0, ...)` of the whole trace,
    its pauses' quantile given."""
    if not len(table):
        empty = np.zeros(0, dtype=bool)
        return Censoring(0.0, empty, empty)
    cap = parts[0].timeout_s if censor_edges else 0.0
    threshold = min(0.0 if math.isnan(censor_s) else censor_s, float(cap))
    trace_start = min(p.first_s for p in parts)
    trace_end = max(p.latest_end_s for p in parts)
    return Censoring(
        threshold,
        start=table["start_s"].to_numpy() - trace_start < threshold,
        end=trace_end - last_end_s < threshold,
    )


def _stats_at(at: Sequence[_AtTimeout], rank: list[np.ndarray], median_s: float) -> SessionStats:
    """`key_split._stats` of the partitions' sessions `at` another timeout: lengths and
    durations summed in (key, start) order (a key's sessions are together in one partition,
    in time order)."""
    key = np.concatenate([r[a.key] for a, r in zip(at, rank, strict=True)])
    by_key = np.argsort(key, kind="stable")
    lengths = np.concatenate([a.length for a in at])[by_key].astype(np.int64)
    durations = np.concatenate([a.duration_s for a in at])[by_key]
    return SessionStats(
        sessions=len(lengths),
        mean_length=float(np.mean(lengths)),
        median_length=float(np.median(lengths)),
        mean_duration_s=float(np.mean(durations)),
        median_think_s=0.0 if math.isnan(median_s) else median_s,
    )


def _joined_stats_at(
    at: Sequence[_AtTimeout], rank: list[np.ndarray], median_s: float
) -> SessionStats:
    """The model's statistics of the partitions' sessions `at` another timeout of a joined
    trace (`key_split.session_stats_by_timeout(id_order=True)`): the sessions in session-id
    order (by start, ties by key), its means summed in that order."""
    starts = [a.start_s for a in at]
    assert all(s is not None for s in starts), "a partition's rows not joined"
    key = np.concatenate([r[a.key] for a, r in zip(at, rank, strict=True)])
    order = np.lexsort((key, np.concatenate(starts)))  # type: ignore[arg-type]
    table = pd.DataFrame(
        {
            "length": np.concatenate([a.length for a in at])[order].astype(np.int64),
            "duration_s": np.concatenate([a.duration_s for a in at])[order],
        }
    )
    return table_stats(table, median_s)
