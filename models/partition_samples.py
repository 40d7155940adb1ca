"""The payload and correlation samples (which requests' heavy columns the model reads)
chosen from the key partitions, without every request in memory (issue 15).

The same rows, in the same order, as `sample_reads._payload_sample` and
`_correlation_sample` (+ `_correlation_rows`) choose from the model's per-request arrays
(tests/models/test_partition_samples.py), from what `key_partitions.scan_key_partitions`
gives (each request's endpoint and scan position, a partition at a time) and the merged
sessions' local→global ids (`partition_sessions.merged_sessions`). Held across
partitions: sessions-sized (keys, order, lengths), endpoints × files counts, and the
sample. Each endpoint's requests in the model's order are ordered by (ts, scan position),
as `Partition` has them.

The payload sample draws from an endpoint's requests by their place in that order: of a
trace of several files, only the requests of its first-ranked files are gathered (the
sample and its last file's share); of one file, the places drawn are found through
counts of time bins, then only the bins holding them are gathered (`_at_places`: a
bin is as wide as the trace's span / TIME_BINS, so an endpoint whose requests bunch in
few bins gathers more of them: real10M, files not told, ~3 % of its requests). Each
spill is memory-mapped and only the columns a pass needs are read (its scan positions
ascend: each file's requests there are a run). The correlation sample orders the
sessions (by their first file's rank, key), takes the first `per_sample` and each
endpoint's first `per_endpoint` (each partition's, found without a sort of its requests,
then ranked among themselves), then its requests' rows: two passes over the sessions'
handout (`partition_sessions`' `requests`, as the caller spilled it; else each
partition sessionized again here with the model's grouping, `key_runs`), no spill of
its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
from pyarrow import compute as pc
from pyarrow import ipc

from .frame import distinct
from .key_partitions import ROW_FILE, KeyPartitions, Partition
from .key_split import key_runs, session_starts_and_keys
from .session_sample import (
    SessionOrder,
    SessionSample,
    bounded_by_lengths,
    part_ranks,
    quota_bound,
    quota_pairs,
    session_keys,
)

__all__ = ["CorrelationRows", "PayloadSample", "correlation_sample", "payload_sample"]

TIME_BINS = 1 << 16
"""Time bins per big endpoint in which `_at_places` counts its requests (of one file)."""


def _file_ends(part_rows: list[int] | None) -> np.ndarray | None:
    """Each file's end in scan positions (None: one part, as `_request_parts`)."""
    if not part_rows or len(part_rows) < 2:
        return None
    return np.cumsum(np.asarray(part_rows, np.int64))


def _file_of(ends: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Each scan position's file (`source.part_of`): the first whose end is past it."""
    return np.searchsorted(ends, row, side="right")


def _name_ranks(names: list[str]) -> np.ndarray:
    """Each endpoint code's rank in name order (`endpoints.endpoint_ranks`)."""
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), np.int64)
    rank[by_name] = np.arange(len(names))
    return rank


@dataclass(frozen=True)
class PayloadSample:
    """`_payload_sample`'s choice: `names` sorted, per endpoint (name order) the scan
    positions of its sampled requests in the model's order (`requests.row[chosen[i]]`),
    each endpoint's requests, and the files note (empty: no file was cut)."""

    names: list[str]
    rows: list[np.ndarray]
    counts: np.ndarray
    files: dict[str, int]


def payload_sample(
    parts: KeyPartitions, part_rows: list[int] | None, sample: int, seed: int
) -> PayloadSample:
    """The payload sample of the scanned trace (`part_rows`: its files' rows, the source's
    `part_rows()`), as `_payload_sample(parts, endpoint, names, sample, seed)`. Counted
    per (file, cell) from each spill's cells (and scan positions: a partition's are
    ascending, so each file's requests there are a run), then mapped to endpoints."""
    names = sorted(parts.names)
    rank_of = _name_ranks(parts.names)
    n = len(names)
    ends = _file_ends(part_rows)
    width = 1 if ends is None else len(ends)
    cells = len(parts.endpoint_of)
    per_cell = np.zeros((width, cells), np.int64)  # requests per (file, cell)
    last_ts = parts.first_ts_us  # (for the one-file draws: of one file, read here)
    for p in range(parts.count):
        spill = _Spill.of(parts, p)
        cell = spill.column("cell")
        if ends is None:
            per_cell[0] += np.bincount(cell, minlength=cells)
            last_ts = max(last_ts, spill.last_ts())
            continue
        bounds = spill.file_runs(ends)
        for f in np.flatnonzero(np.diff(bounds)).tolist():
            per_cell[f] += np.bincount(cell[bounds[f] : bounds[f + 1]], minlength=cells)
        del spill, cell
    by_file = np.zeros((n, width), np.int64)  # requests per (endpoint, file)
    np.add.at(by_file, rank_of[parts.endpoint_of], per_cell.T)
    counts = by_file.sum(axis=1)
    # (files holding a request: `payload_rows`' parts)
    files = int(np.flatnonzero(by_file.any(axis=0))[-1]) + 1 if n else 0
    big = counts > sample
    if not big.any() or ends is None:
        note: dict[str, int] = {}
    elif files >= 2:
        rows, note = _cluster_rows(parts, rank_of, ends, by_file[:, :files], sample, seed)
        return PayloadSample(names, rows, counts, note)
    else:  # (cut, but every request in one file: drawn uniformly, the note given)
        note = {"files": files, "files_sampled": 1}
    places = {int(i): _drawn(seed, int(i), int(counts[i]), sample) for i in np.flatnonzero(big)}
    rows = _at_places(parts, rank_of, places, last_ts if ends is None else None)
    return PayloadSample(names, rows, counts, note)


def _drawn(seed: int, i: int, count: int, sample: int) -> np.ndarray:
    """The places `endpoints.sample_rows` draws of an endpoint's `count` requests."""
    return np.random.default_rng([seed, i]).choice(count, sample, replace=False)


class _Spill:
    """A partition's spilled requests (in scan order), memory-mapped: only the columns
    asked for are read (copied out of the map)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    @classmethod
    def of(cls, parts: KeyPartitions, p: int) -> _Spill:
        with pa.memory_map(str(parts.directory / ROW_FILE.format(p))) as file:
            return cls(ipc.open_file(file).read_all())

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.table.column(name).to_numpy())

    def last_ts(self) -> int:
        """The last of these requests' times (read in place), 0 when none."""
        return int(pc.max(self.table.column("ts")).as_py()) if len(self) else 0

    def taken(self, name: str, at: np.ndarray) -> np.ndarray:
        """The column's values at these requests (positions in the spill) alone."""
        return np.asarray(self.table.column(name).take(pa.array(at)).to_numpy())

    def file_runs(self, ends: np.ndarray) -> np.ndarray:
        """Where each file's run of these requests starts (and the last ends): their scan
        positions ascend (each partition's rows are spilled in scan order)."""
        row = self.column("row")
        if len(row) > 1 and not (row[1:] >= row[:-1]).all():
            raise ValueError("a partition's spilled scan positions do not ascend")
        return np.concatenate([[0], np.searchsorted(row, ends)])


_Kept = Callable[["_Spill", np.ndarray], tuple[np.ndarray, np.ndarray | None]]
"""Which of a spill's requests (given their cells) are kept: their positions in it,
ascending, and their times where it read them (else None)."""


def _gathered(parts: KeyPartitions, rank_of: np.ndarray, kept: _Kept) -> list[np.ndarray]:
    """Per endpoint (name order), the scan positions of its requests `kept`, in the
    model's order: by (ts, position)."""
    got: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64),) * 3]
    ranked_cell = rank_of[parts.endpoint_of]
    for p in range(parts.count):
        spill = _Spill.of(parts, p)
        cell = spill.column("cell")
        at, ts = kept(spill, cell)
        ts = spill.taken("ts", at) if ts is None else ts
        got.append((ranked_cell[cell[at]], ts, spill.taken("row", at).astype(np.int64)))
        del spill, cell
    ranked = np.concatenate([g[0] for g in got])
    ts = np.concatenate([g[1] for g in got])
    row = np.concatenate([g[2] for g in got])
    order = np.lexsort((row, ts, ranked))
    bounds = np.searchsorted(ranked[order], np.arange(len(rank_of) + 1))
    row = row[order]
    return [row[bounds[i] : bounds[i + 1]] for i in range(len(rank_of))]


def _cluster_rows(
    parts: KeyPartitions,
    rank_of: np.ndarray,
    ends: np.ndarray,
    by_file: np.ndarray,
    sample: int,
    seed: int,
) -> tuple[list[np.ndarray], dict[str, int]]:
    """`session_sample.payload_rows` with parts (`by_file`: requests per endpoint and file,
    of the F ≥ 2 files holding requests): each big endpoint's last file rank read (`cut`),
    the requests up to it gathered, the same draws; and the files note."""
    n, files = by_file.shape
    rank = part_ranks(files, seed)
    per = np.zeros((n, files), np.int64)  # requests per (endpoint, file's rank)
    per[:, rank] = by_file
    counts = by_file.sum(axis=1)
    cut = np.full(n, files, np.int64)
    big = np.flatnonzero(counts > sample)
    cut[big] = (np.cumsum(per[big], axis=1) < sample).sum(axis=1)
    cut_of_cell = cut[rank_of[parts.endpoint_of]]
    every = np.r_[rank, np.zeros(len(ends) - files, np.int64)]  # (files past: no request)

    def kept(spill: _Spill, cell: np.ndarray) -> tuple[np.ndarray, None]:
        rank_at = np.repeat(every, np.diff(spill.file_runs(ends)))
        return np.flatnonzero(cut_of_cell[cell] >= rank_at), None

    taken = _gathered(parts, rank_of, kept)
    out = []
    for i in range(n):
        rows = taken[i]
        if counts[i] > sample:
            at = rank[_file_of(ends, rows)]
            whole, last = rows[at < cut[i]], rows[at == cut[i]]
            rng = np.random.default_rng([seed, i])
            more = last[rng.choice(len(last), sample - len(whole), replace=False)]
            rows = np.concatenate([whole, more])[rng.permutation(sample)]
        out.append(rows)
    read = np.concatenate(out) if out else np.zeros(0, np.int64)
    return out, {"files": files, "files_sampled": len(distinct(_file_of(ends, read)))}


def _at_places(
    parts: KeyPartitions, rank_of: np.ndarray, places: dict[int, np.ndarray], last: int | None
) -> list[np.ndarray]:
    """Per endpoint (name order): of those in `places`, the scan positions of its requests
    at those places (0 first) in the model's order, in the order of `places`; of the
    others, all of them in that order. The requests of the endpoints in `places` counted
    in TIME_BINS equal bins of the trace's span (first and `last` ts, None: read here),
    then only those of the bins holding a place gathered, sorted by (ts, position). Held:
    the bins' counts and what those bins hold."""
    wanted = np.array(sorted(places), np.int64)
    slot = np.full(len(rank_of), -1, np.int64)
    slot[wanted] = np.arange(len(wanted))
    slot_of_cell = slot[rank_of[parts.endpoint_of]]
    first = parts.first_ts_us
    if last is None:
        last = max([first] + [_Spill.of(parts, p).last_ts() for p in range(parts.count)])
    width = (last - first) // TIME_BINS + 1
    bins = np.zeros((len(wanted), TIME_BINS), np.int64)
    if len(wanted):
        for p in range(parts.count):
            spill = _Spill.of(parts, p)
            at = slot_of_cell[spill.column("cell")]
            mine = at >= 0
            cell = at[mine] * TIME_BINS + (spill.column("ts")[mine] - first) // width
            bins += np.bincount(cell, minlength=bins.size).reshape(bins.shape)
    ends = np.cumsum(bins, axis=1)  # requests up to each bin's end
    needed = np.zeros(bins.shape, bool)
    of_place = {}
    for j, i in enumerate(wanted.tolist()):
        of_place[i] = np.searchsorted(ends[j], places[i], side="right")
        needed[j, of_place[i]] = True
    flat = needed.ravel()

    def kept(spill: _Spill, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = slot_of_cell[cell]
        mine = at >= 0
        ts = spill.column("ts")
        mask = ~mine
        mask[mine] = flat[at[mine] * TIME_BINS + (ts[mine] - first) // width]
        kept = np.flatnonzero(mask)
        return kept, ts[kept]

    out = _gathered(parts, rank_of, kept)
    for j, i in enumerate(wanted.tolist()):
        held = np.flatnonzero(needed[j])
        # where each needed bin's requests start among those gathered
        start = np.zeros(TIME_BINS, np.int64)
        start[held] = np.cumsum(bins[j, held]) - bins[j, held]
        b = of_place[i]
        out[i] = out[i][start[b] + places[i] - (ends[j, b] - bins[j, b])]
    return out


@dataclass(frozen=True)
class CorrelationRows:
    """The correlation sample (`SessionSample`, as `_correlation_sample`'s) and the
    requests it reads, in session order (by session id, then place in the session) as
    `_correlation_rows` has them: scan positions, session ids, places, endpoint codes
    (into `KeyPartitions.names`)."""

    sample: SessionSample
    row: np.ndarray
    session_id: np.ndarray
    seq: np.ndarray
    endpoint: np.ndarray


def _local_sessions(
    part: Partition, first_ts_us: int, timeout_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each request's local session id (as `partition_sessions` numbers them: by start,
    ties by key code) and its place in its session, from the model's own grouping."""
    columns = part.request_columns(first_ts_us)
    n = len(part)
    runs = key_runs(columns.key, [columns.t_s], columns.duration_ms)
    starts, key = session_starts_and_keys(runs, timeout_s)
    numbered = np.lexsort((key, runs.t_s[starts]))
    local = np.empty(len(starts), np.int64)
    local[numbered] = np.arange(len(starts))
    lengths = np.diff(np.append(starts, n))
    in_split = np.repeat(np.arange(len(starts)), lengths)
    seq_split = np.arange(n) - np.repeat(starts, lengths)
    session = np.empty(n, np.int64)
    seq = np.empty(n, np.int32 if n < 1 << 31 else np.int64)
    session[runs.order] = local[in_split]
    seq[runs.order] = seq_split
    return session, seq


def correlation_sample(
    parts: KeyPartitions,
    ids: list[np.ndarray],
    part_rows: list[int] | None,
    timeout_s: float,
    *,
    per_sample: int,
    per_endpoint: int,
    seed: int,
    requests: int,
    handed: Callable[[int], tuple[np.ndarray, ...]] | None = None,
) -> CorrelationRows:
    """The correlation sample of the scanned trace's sessions (`ids`: per partition, its
    local→global session ids, `MergedSessions.ids`; `timeout_s`: the sessions'), as
    `_correlation_sample` + `_correlation_rows` choose them. `handed`: partition p's
    requests' (local session id, place in its session, scan position, endpoint), session
    by session in local id order (`partition_sessions`' `requests` handout, as the caller
    spilled it); None: each partition read and sessionized again here, each time.

    Two passes over the handout. The first: each session's length and first file (of
    its lowest scan position: files are runs of scan positions), and each partition's
    first `per_endpoint` sessions per endpoint in the sample's order (a session's requests
    are all in its partition), found as `sample_sessions` finds them (the requests of the
    partition's first sessions, then of the endpoints short of their quota there: no sort
    of its requests). Then the first `per_sample` sessions of the trace (no sort of every
    session) and each endpoint's first `per_endpoint` among the partitions' (their order
    among themselves is their order in the trace). The second: the chosen sessions' runs
    of requests, the rows read of them."""
    n = sum(len(i) for i in ids)
    keys = session_keys(n, seed)
    ends = _file_ends(part_rows)
    # A file's rank among the first F files orders them as among all: its key is its own.
    file_rank = part_ranks(len(ends), seed) if ends is not None else np.zeros(1, np.int64)
    read = handed if handed is not None else _again(parts, timeout_s)
    lengths = np.zeros(n, np.int64)
    group = np.zeros(n, np.int64)  # the rank of each session's first file
    files = 0
    quota: list[tuple[np.ndarray, np.ndarray]] = []  # (endpoint, session id) candidates
    for p in range(parts.count):
        local, seq, row, endpoint = read(p)
        sessions = ids[p]
        if not len(row):
            continue
        starts = _starts(local, seq, len(sessions))
        lengths[sessions] = np.diff(np.append(starts, len(row)))
        if ends is not None:
            files = max(files, int(_file_of(ends, row.max())) + 1)
            group[sessions] = file_rank[_file_of(ends, np.minimum.reduceat(row, starts))]
        if per_endpoint > 0:
            quota.append(_quota(endpoint, local, sessions, keys, group, per_endpoint))
        del local, seq, row, endpoint
    if n <= per_sample:
        chosen = np.ones(n, bool)
    else:
        order = SessionOrder(keys, group if files >= 2 else None)
        chosen = np.zeros(n, bool)
        chosen[order.first(per_sample)[:per_sample]] = True
        if quota:
            endpoint = np.concatenate([q[0] for q in quota])
            some = np.concatenate([q[1] for q in quota])
            them = distinct(some)
            m = len(them)
            place = np.empty(m, np.int64)  # their places in the order, among them
            place[order.argsort(them)] = np.arange(m)
            pairs = distinct(endpoint * m + place[np.searchsorted(them, some)])
            by_place = np.empty(m, np.int64)
            by_place[place] = them
            chosen[by_place[_first_per_endpoint(pairs, m, per_endpoint) % m]] = True
    sample = SessionSample(chosen, keys, per_sample, per_endpoint, seed, files, files)
    sample = bounded_by_lengths(sample, lengths, parts.rows, requests)
    return _rows(read, ids, sample, ends if files and n > per_sample else None)


def _starts(local: np.ndarray, seq: np.ndarray, sessions: int) -> np.ndarray:
    """Where each session's run of requests starts (its place 0), the handout being
    session by session in local id order: checked at the runs' ends (each run's first and
    last requests of the run's session), not at every request."""
    starts = np.flatnonzero(seq == 0)
    if len(starts) != sessions or not (
        np.array_equal(local[starts], np.arange(sessions))
        and np.array_equal(local[np.append(starts[1:], len(seq)) - 1], np.arange(sessions))
    ):
        raise ValueError("the handout is not its sessions' runs, session by session")
    return starts


def _quota(
    endpoint: np.ndarray,
    local: np.ndarray,
    sessions: np.ndarray,
    keys: np.ndarray,
    group: np.ndarray,
    per_endpoint: int,
) -> tuple[np.ndarray, np.ndarray]:
    """A partition's first `per_endpoint` sessions per endpoint in the sample's order (by
    (group, key)): (endpoint, global session id) pairs, by `quota_pairs` over its
    requests (session by session: `local`, their local session ids, ascend)."""
    count = len(sessions)
    mine = group[sessions]
    # (one group: by key alone, `SessionOrder.first` then sorts only the first sessions' keys)
    order = SessionOrder(keys[sessions], mine if mine.min() < mine.max() else None, by_session=True)
    head = order.first(quota_bound(per_endpoint))
    rank = np.full(count, count, np.int64)
    rank[head] = np.arange(len(head))
    pairs, later = quota_pairs(endpoint, local, rank, order, len(head), per_endpoint)
    pairs = _first_per_endpoint(pairs, count, per_endpoint)
    return pairs // count, sessions[np.concatenate([head, later])[pairs % count]]


def _again(parts: KeyPartitions, timeout_s: float) -> Callable[[int], tuple[np.ndarray, ...]]:
    """Partition p's requests as the handout gives them, made again: each read and
    sessionized (`_local_sessions`), then put session by session."""

    def of(p: int) -> tuple[np.ndarray, ...]:
        part = parts.partition(p)
        session, seq = _local_sessions(part, parts.first_ts_us, timeout_s)
        order = np.lexsort((seq, session))
        return session[order], seq[order], part.row[order], part.endpoint[order]

    return of


def _first_per_endpoint(pairs: np.ndarray, n: int, per_endpoint: int) -> np.ndarray:
    """Of distinct sorted (endpoint * n + place) pairs, each endpoint's first `per_endpoint`."""
    ep = pairs // n
    starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if len(ep) else np.zeros(0, np.int64)
    position = np.arange(len(ep)) - np.repeat(starts, np.diff(np.r_[starts, len(ep)]))
    return np.asarray(pairs[position < per_endpoint])


def _rows(
    read: Callable[[int], tuple[np.ndarray, ...]],
    ids: list[np.ndarray],
    sample: SessionSample,
    ends: np.ndarray | None,
) -> CorrelationRows:
    """The requests `sample` reads, gathered partition by partition (of its sessions'
    runs alone), in session order; with `ends`, the sample's `parts_read` counted (files
    holding its sessions' rows)."""
    got = [(np.zeros(0, np.int64),) * 4]
    seen = np.zeros(sample.parts, bool)
    for p in range(len(ids)):
        mine = np.flatnonzero(sample.chosen[ids[p]])
        if not len(mine):
            continue
        local, seq, row, endpoint = read(p)
        starts = _starts(local, seq, len(ids[p]))
        length = np.diff(np.append(starts, len(seq)))[mine]
        at = np.repeat(starts[mine] - np.cumsum(length) + length, length)
        at += np.arange(len(at))
        g, seq, row = ids[p][local[at]], seq[at], row[at]
        if ends is not None:
            seen[_file_of(ends, row)] = True
        mask = sample.read(g, seq)
        got.append((g[mask], seq[mask], row[mask].astype(np.int64), endpoint[at][mask]))
    if ends is not None:
        sample = replace(sample, parts_read=int(seen.sum()))
    g = np.concatenate([x[0] for x in got])
    seq = np.concatenate([x[1] for x in got])
    order = np.lexsort((seq, g))
    return CorrelationRows(
        sample,
        np.concatenate([x[2] for x in got])[order],
        g[order],
        seq[order],
        np.concatenate([x[3] for x in got])[order],
    )
