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
counts of time bins, then only the bins holding them are gathered (`_at_places`).
The correlation sample orders every session (by first file's rank, key: sessions-sized),
takes the first `per_sample` and each endpoint's first `per_endpoint` (the lowest
(endpoint, place) pairs of each partition, merged), then its requests' rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from .frame import distinct
from .key_partitions import KeyPartitions, Partition
from .key_split import key_runs, session_starts_and_keys
from .session_sample import SessionSample, part_ranks, session_keys

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
    `part_rows()`), as `_payload_sample(parts, endpoint, names, sample, seed)`."""
    names = sorted(parts.names)
    rank_of = _name_ranks(parts.names)
    n = len(names)
    ends = _file_ends(part_rows)
    counts = np.zeros(n, np.int64)
    files = 0  # (files holding a request: `payload_rows`' parts)
    for p in _partitions(parts):
        counts += np.bincount(rank_of[p.endpoint], minlength=n)
        if ends is not None and len(p):
            files = max(files, int(_file_of(ends, p.row).max()) + 1)
    big = counts > sample
    if not big.any() or ends is None:
        note: dict[str, int] = {}
    elif files >= 2:
        return PayloadSample(
            names, *_cluster_rows(parts, rank_of, ends, files, counts, sample, seed)
        )
    else:  # (cut, but every request in one file: drawn uniformly, the note given)
        note = {"files": files, "files_sampled": 1}
    places = {int(i): _drawn(seed, int(i), int(counts[i]), sample) for i in np.flatnonzero(big)}
    found = _at_places(parts, rank_of, places)
    keep = ~big
    taken = _gathered(parts, rank_of, lambda p, e: keep[e])
    rows = [found[i] if big[i] else taken[i] for i in range(n)]
    return PayloadSample(names, rows, counts, note)


def _drawn(seed: int, i: int, count: int, sample: int) -> np.ndarray:
    """The places `endpoints.sample_rows` draws of an endpoint's `count` requests."""
    return np.random.default_rng([seed, i]).choice(count, sample, replace=False)


def _partitions(parts: KeyPartitions) -> Iterator[Partition]:
    """Every partition in turn, kept on disk (the samples pass over them more than once)."""
    return parts.partitions(release=False)


def _gathered(
    parts: KeyPartitions, rank_of: np.ndarray, kept: Callable[[Partition, np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """Per endpoint (name order), the scan positions of its requests `kept` (of a
    partition and its requests' name ranks), in the model's order: by (ts, position)."""
    got: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for p in _partitions(parts):
        ranked = rank_of[p.endpoint]
        mask = kept(p, ranked)
        got.append((ranked[mask], p.ts[mask], p.row[mask].astype(np.int64)))
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
    files: int,
    counts: np.ndarray,
    sample: int,
    seed: int,
) -> tuple[list[np.ndarray], np.ndarray, dict[str, int]]:
    """`session_sample.payload_rows` with parts (`files` ≥ 2 of them holding requests): per
    (endpoint, file's rank) counts, each big endpoint's last rank read (`cut`), the
    requests up to it gathered, the same draws; the counts and the files note."""
    n = len(rank_of)
    rank = part_ranks(files, seed)
    per = np.zeros(n * files, np.int64)
    for p in _partitions(parts):
        cell = rank_of[p.endpoint] * files + rank[_file_of(ends, p.row)]
        per += np.bincount(cell, minlength=n * files)
    cut = np.full(n, files, np.int64)
    big = np.flatnonzero(counts > sample)
    cut[big] = (np.cumsum(per.reshape(n, files)[big], axis=1) < sample).sum(axis=1)
    taken = _gathered(parts, rank_of, lambda p, e: rank[_file_of(ends, p.row)] <= cut[e])
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
    return out, counts, {"files": files, "files_sampled": len(distinct(_file_of(ends, read)))}


def _at_places(
    parts: KeyPartitions, rank_of: np.ndarray, places: dict[int, np.ndarray]
) -> dict[int, np.ndarray]:
    """Per endpoint rank in `places`, the scan positions of its requests at those places
    (0 first) in the model's order, in the order of `places`: counts of TIME_BINS equal
    time bins per endpoint, then only the requests of the bins holding a place gathered,
    sorted by (ts, position). Held: the bins' counts and what those bins hold."""
    if not places:
        return {}
    wanted = np.array(sorted(places), np.int64)
    slot = np.full(len(rank_of), -1, np.int64)
    slot[wanted] = np.arange(len(wanted))
    first, last = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for p in _partitions(parts):
        if len(p):
            first, last = min(first, int(p.ts.min())), max(last, int(p.ts.max()))
    width = (last - first) // TIME_BINS + 1
    flat_bins = np.zeros(len(wanted) * TIME_BINS, np.int64)
    for p in _partitions(parts):
        at = slot[rank_of[p.endpoint]]
        mine = at >= 0
        cell = at[mine] * TIME_BINS + (p.ts[mine] - first) // width
        flat_bins += np.bincount(cell, minlength=len(flat_bins))
    bins = flat_bins.reshape(len(wanted), TIME_BINS)
    before = np.cumsum(bins, axis=1) - bins  # requests in the bins before each
    needed = np.zeros(bins.shape, bool)
    of_place = {}
    for j, i in enumerate(wanted.tolist()):
        b = np.searchsorted(np.cumsum(bins[j]), places[i], side="right")
        needed[j, b] = True
        of_place[i] = b
    flat = needed.ravel()

    def kept(p: Partition, e: np.ndarray) -> np.ndarray:
        at = slot[e]
        mine = at >= 0
        mask = np.zeros(len(e), bool)
        mask[mine] = flat[at[mine] * TIME_BINS + (p.ts[mine] - first) // width]
        return mask

    got = _gathered(parts, rank_of, kept)
    out = {}
    for j, i in enumerate(wanted.tolist()):
        held = np.flatnonzero(needed[j])
        # where each needed bin's requests start among those gathered
        start = np.zeros(TIME_BINS, np.int64)
        start[held] = np.cumsum(bins[j, held]) - bins[j, held]
        b = of_place[i]
        out[i] = got[i][start[b] + places[i] - before[j, b]]
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
    seq = np.empty(n, np.int64)
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
) -> CorrelationRows:
    """The correlation sample of the scanned trace's sessions (`ids`: per partition, its
    local→global session ids, `MergedSessions.ids`; `timeout_s`: the sessions'), as
    `_correlation_sample` + `_correlation_rows` choose them."""
    n = sum(len(i) for i in ids)
    keys = session_keys(n, seed)
    ends = _file_ends(part_rows)
    lengths = np.zeros(n, np.int64)
    first_file = np.full(n, np.iinfo(np.int64).max, np.int64)
    files = 0
    width = 0
    for p, part in enumerate(_partitions(parts)):
        local, _ = _local_sessions(part, parts.first_ts_us, timeout_s)
        g = ids[p][local]
        lengths += np.bincount(g, minlength=n)
        if len(part):
            width = max(width, int(part.endpoint.max()) + 1)
        if ends is not None and len(part):
            f = _file_of(ends, part.row)
            files = max(files, int(f.max()) + 1)
            np.minimum.at(first_file, g, f)
    if n <= per_sample:
        sample = SessionSample(np.ones(n, bool), keys, per_sample, per_endpoint, seed, files, files)
    else:
        if files >= 2:
            group = part_ranks(files, seed)[first_file]
            order = np.lexsort((keys, group))
        else:
            order = np.argsort(keys)
        place = np.empty(n, np.int64)
        place[order] = np.arange(n)
        chosen = place < per_sample
        if per_endpoint > 0:
            lowest = [np.zeros(0, np.int64)]
            for p, part in enumerate(_partitions(parts)):
                local, _ = _local_sessions(part, parts.first_ts_us, timeout_s)
                pairs = distinct(part.endpoint.astype(np.int64) * n + place[ids[p][local]])
                lowest.append(_first_per_endpoint(pairs, n, per_endpoint))
            pairs = _first_per_endpoint(distinct(np.concatenate(lowest)), n, per_endpoint)
            chosen[order[pairs % n]] = True
        read = 0
        if files:
            seen = np.zeros(files, bool)
            for p, part in enumerate(_partitions(parts)):
                local, _ = _local_sessions(part, parts.first_ts_us, timeout_s)
                seen[_file_of(ends, part.row[chosen[ids[p][local]]])] = True  # type: ignore[arg-type]
            read = int(seen.sum())
        sample = SessionSample(chosen, keys, per_sample, per_endpoint, seed, files, read)
    sample = _bounded(sample, lengths, parts.rows, requests)
    return _rows(parts, ids, timeout_s, sample)


def _first_per_endpoint(pairs: np.ndarray, n: int, per_endpoint: int) -> np.ndarray:
    """Of distinct sorted (endpoint * n + place) pairs, each endpoint's first `per_endpoint`."""
    ep = pairs // n
    starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if len(ep) else np.zeros(0, np.int64)
    position = np.arange(len(ep)) - np.repeat(starts, np.diff(np.r_[starts, len(ep)]))
    return np.asarray(pairs[position < per_endpoint])


def _bounded(sample: SessionSample, lengths: np.ndarray, rows: int, requests: int) -> SessionSample:
    """`session_sample._bounded`, the sessions' lengths given."""
    sessions = int(sample.chosen.sum())
    if not sessions or rows <= requests:
        return sample
    sampled = lengths[sample.chosen]
    if int(sampled.sum()) <= requests:
        return sample
    per_session = max(1, requests // sessions)
    cut = int((sampled > per_session).sum())
    return replace(sample, per_session=per_session, sessions_cut=cut, lengths=lengths)


def _rows(
    parts: KeyPartitions, ids: list[np.ndarray], timeout_s: float, sample: SessionSample
) -> CorrelationRows:
    """The requests `sample` reads, gathered partition by partition, in session order."""
    got = []
    for p, part in enumerate(_partitions(parts)):
        local, seq = _local_sessions(part, parts.first_ts_us, timeout_s)
        g = ids[p][local]
        mask = sample.read(g, seq)
        got.append((g[mask], seq[mask], part.row[mask].astype(np.int64), part.endpoint[mask]))
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
