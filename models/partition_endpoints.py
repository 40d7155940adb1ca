"""The endpoints' statistics of `endpoint_codes.endpoint_stats` (count, share, path
parameter kinds, latency percentiles, status mix) from the trace's rows seen a piece at a
time: a partition (`key_partitions.Partition`) or a scan batch, in any order.

What is held is endpoint-sized plus a spill: counts per endpoint and per (endpoint,
status) summed; the known durations spilled by endpoint (`spilled_quantiles.SpilledValues`:
np.percentile's linear p50/95/99 to the bit, negatives too); per (group, path segment
position) what `params.param_kind` decides from the segments (whether every one matches
the uuid, int, hex patterns, the least and greatest length, the `MAX_EXAMPLES` least
distinct values), merged batch by batch: `param_kind` reads each pattern as "every value
matches", lengths as their min / max and examples as the least distinct values, none of
which a duplicate changes, so the rows' segments give what the endpoint's distinct paths
give, without holding the paths. A group is what a row's path is known by when it is seen:
in the key partitions' scan its cell (`SkeletonCells.add_batch`), mapped to endpoints
once the scan has fitted them (`KeyPartitions.endpoint_of`); else its endpoint itself.

The scan's `Partition` carries no path, so the parameter kinds come from a hook of the scan
(`ParamFacts.add_batch`): `key_partitions._scan` calls it after `skeletons.add` with
the batch's distinct (method, path) pairs' cells, its path dictionary, the pairs' path
indices and those paths split (the facts of its rows: no fact counts rows; tests/models/
test_partition_endpoints.py gives it rows). One difference stays: a group holding both
-0.0 and +0.0 durations may answer a zero's sign unlike np.percentile (SpilledValues'
docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.closing import Closing

from .behaviors import sig
from .endpoint_codes import PERCENTILES
from .key_partitions import KeyPartitions, Partition
from .params import _HEX, _INT, _UUID, MAX_EXAMPLES
from .skeleton_cells import Segments
from .spilled_quantiles import Ask, SpilledValues

__all__ = ["EndpointTally", "ParamFacts", "partition_endpoint_stats"]

_STATUS_CELLS = 1 << 22
"""(endpoint, status) cells a piece's statuses are counted in at most; more: by a sort."""
_PATTERNS = (_UUID, _INT, _HEX)
"""What `params.param_kind` asks of every value, in its order: uuid, int, hex."""


@dataclass
class _Facts:
    """What `param_kind` reads of one (group, position)'s segments: how many, whether any
    fails each of `_PATTERNS`, the least and greatest length (code points), and the least
    distinct values (binary order), at most `MAX_EXAMPLES`."""

    values: int = 0
    """(distinct within each batch: only whether any is read)"""
    fails: list[bool] = field(default_factory=lambda: [False] * len(_PATTERNS))
    least_length: int = 0
    most_length: int = 0
    examples: list[str] = field(default_factory=list)

    def merge(self, other: _Facts) -> None:
        if not other.values:
            return
        if not self.values:
            self.least_length, self.most_length = other.least_length, other.most_length
        else:
            self.least_length = min(self.least_length, other.least_length)
            self.most_length = max(self.most_length, other.most_length)
        self.values += other.values
        self.fails = [a or b for a, b in zip(self.fails, other.fails, strict=True)]
        # Python orders str by code point: UTF-8's binary order, as Arrow sorts them.
        self.examples = sorted(set(self.examples) | set(other.examples))[:MAX_EXAMPLES]

    def kind(self) -> dict[str, Any]:
        """`params.param_kind` of the values these facts are of."""
        uuid, integer, hexed = (self.values > 0 and not fail for fail in self.fails)
        if uuid:
            return {"kind": "uuid"}
        if integer:
            return {"kind": "int", "digits": [self.least_length, self.most_length]}
        if hexed:
            return {"kind": "hex", "length": self.most_length}
        return {"kind": "other", "examples": list(self.examples)}


class ParamFacts:
    """Per (group, path segment position) of the paths seen, the `_Facts` of its segments,
    merged as batches come; `endpoint_kinds` the `params` entry of each endpoint."""

    def __init__(self) -> None:
        self.slot: dict[tuple[int, int], int] = {}
        """Each (group, position)'s index into the arrays below, which `_Facts` are."""
        self.values = np.zeros(0, np.int64)
        self.fails = np.zeros((0, len(_PATTERNS)), bool)
        self.least_length = np.zeros(0, np.int64)
        self.most_length = np.zeros(0, np.int64)
        self.examples: list[list[str]] = []

    @property
    def facts(self) -> dict[tuple[int, int], _Facts]:
        """Each (group, position)'s facts."""
        return {entry: self._facts(slot) for entry, slot in self.slot.items()}

    def _facts(self, slot: int) -> _Facts:
        return _Facts(
            int(self.values[slot]), self.fails[slot].tolist(), int(self.least_length[slot]),
            int(self.most_length[slot]), list(self.examples[slot]),
        )  # fmt: skip

    def add_batch(
        self, group: np.ndarray, paths: pa.Array, path: np.ndarray, split: Segments | None = None
    ) -> None:
        """Rows of `group` (ints ≥ 0) with paths given as indices `path` into `paths`
        (`len(paths)`: a null path; a null in `paths` too), a null read as "/" (as
        `taken_param_kinds` reads it). Works per distinct (group, path) and segment.
        `split`: the distinct paths of `path` (in index order, a null as "/") already
        split (`SkeletonCells.add`'s segments)."""
        if not len(path):
            return
        local, groups = _distinct(np.asarray(group, np.int64))
        width = len(paths) + 1
        pairs = _distinct_codes(local * width + np.asarray(path, np.int64), len(groups) * width)
        pair_path, used = _distinct(pairs % width, width)
        if split is None:
            texts = pa.concat_arrays([paths.cast(pa.string()), pa.nulls(1, pa.string())])
            split = Segments.of(texts.take(pa.array(used)).fill_null("/"))
        elif len(split.lists) != len(used):
            raise ValueError(f"{len(split.lists)} split paths for {len(used)} distinct ones")
        lists, encoded = split.lists, split.encoded
        segment_code = encoded.indices.to_numpy()
        offsets = np.asarray(lists.offsets)
        offsets = offsets - offsets[0]
        lengths = np.diff(offsets)[pair_path]
        starts = np.cumsum(lengths) - lengths
        position = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
        segment = segment_code[np.repeat(offsets[:-1][pair_path], lengths) + position]
        depth = int(position.max()) + 1
        key = np.repeat(pairs // width, lengths) * depth + position
        self._merge(groups, depth, _segment_facts(key, len(groups) * depth, segment,
                                                  encoded.dictionary))  # fmt: skip

    def _merge(self, groups: np.ndarray, depth: int, batch: _BatchFacts) -> None:
        """`_Facts.merge` of a batch's facts into each (group, position)'s, in arrays:
        Python only to find each one's slot and, where one may enter, its examples'."""
        g, position = np.divmod(batch.key, depth)
        slots = self.slot
        at = np.array(
            [slots.setdefault(entry, len(slots))
             for entry in zip(groups[g].tolist(), position.tolist(), strict=True)], np.int64,
        )  # fmt: skip
        grow = len(slots) - len(self.values)
        if grow:
            self.values = np.append(self.values, np.zeros(grow, np.int64))
            self.fails = np.vstack([self.fails, np.zeros((grow, len(_PATTERNS)), bool)])
            self.least_length = np.append(self.least_length, np.zeros(grow, np.int64))
            self.most_length = np.append(self.most_length, np.zeros(grow, np.int64))
            self.examples.extend([] for _ in range(grow))
        new = self.values[at] == 0  # (a batch's keys are distinct, each read ≥ 1 value)
        self.least_length[at] = np.where(
            new, batch.least, np.minimum(self.least_length[at], batch.least)
        )
        self.most_length[at] = np.where(
            new, batch.most, np.maximum(self.most_length[at], batch.most)
        )
        self.values[at] += batch.counts
        self.fails[at] |= batch.fails
        for slot, found in zip(at.tolist(), batch.examples, strict=True):
            held = self.examples[slot]
            # (sorted, distinct: a full list none of whose values is above all of its own
            # stays as it is)
            if len(held) < MAX_EXAMPLES or found[0] < held[-1]:
                self.examples[slot] = sorted(set(held) | set(found))[:MAX_EXAMPLES]

    def kinds(self, template: str, groups: Sequence[int]) -> dict[str, dict[str, Any]]:
        """`endpoints.taken_param_kinds` of `template` over the paths of `groups`."""
        out: dict[str, dict[str, Any]] = {}
        for position, label in enumerate(template.split("/")):
            if label.startswith("{") and label.endswith("}"):
                merged = _Facts()
                for group in groups:
                    slot = self.slot.get((group, position))
                    if slot is not None:
                        merged.merge(self._facts(slot))
                out[label[1:-1]] = merged.kind()
        return dict(sorted(out.items()))

    def endpoint_kinds(
        self, names: list[str], endpoint_of: np.ndarray | None = None
    ) -> list[dict[str, dict[str, Any]]]:
        """Per endpoint code into `names`, its parameters' kinds; `endpoint_of[g]`: group g's
        endpoint (None: groups are endpoint codes)."""
        groups: list[list[int]] = [[] for _ in names]
        if endpoint_of is None:
            endpoint_of = np.arange(len(names))
        for g, e in enumerate(np.asarray(endpoint_of).tolist()):
            groups[e].append(g)
        return [self.kinds(name.split(" ", 1)[1], groups[e]) for e, name in enumerate(names)]

    def held(self) -> dict[str, int]:
        """Its size (for benchmarks): (group, position) entries and examples held."""
        return {"entries": len(self.slot), "examples": sum(len(e) for e in self.examples)}


@dataclass(frozen=True)
class _BatchFacts:
    """A batch's `_Facts`, one entry a key, in arrays."""

    key: np.ndarray
    counts: np.ndarray
    fails: np.ndarray
    """(keys, patterns) bools."""
    least: np.ndarray
    most: np.ndarray
    examples: list[list[str]]


def _segment_facts(
    key: np.ndarray, keys: int, segment: np.ndarray, values: pa.Array
) -> _BatchFacts:
    """Facts of segments by key (< `keys`), `segment` indexing the batch's distinct
    segment `values`: patterns and lengths judged once a value, the rest on the
    distinct (key, value) pairs, sorted by key then value (a table marked or a sort)."""
    fails = [~np.asarray(pc.match_substring_regex(values, p), bool) for p in _PATTERNS]
    length = np.asarray(pc.utf8_length(values), np.int64)
    by_rank = pc.sort_indices(values).to_numpy()
    rank = np.empty(len(values), np.int64)
    rank[by_rank] = np.arange(len(values))
    n = len(values)
    pairs = _distinct_codes(key * n + rank[segment], keys * n)
    key, segment = pairs // n, by_rank[pairs % n]
    new_key = np.r_[True, key[1:] != key[:-1]]
    starts = np.flatnonzero(new_key)
    counts = np.diff(np.append(starts, len(key)))
    fail = np.stack([np.logical_or.reduceat(f[segment], starts) for f in fails], axis=1)
    least = np.minimum.reduceat(length[segment], starts)
    most = np.maximum.reduceat(length[segment], starts)
    # The least distinct values of each key: its first MAX_EXAMPLES ones.
    nth = np.arange(len(key)) - np.repeat(starts, counts)
    kept = np.flatnonzero(nth < MAX_EXAMPLES)
    examples = values.take(pa.array(segment[kept])).to_pylist()
    cut = [*np.searchsorted(kept, starts).tolist(), len(kept)]
    return _BatchFacts(
        key[starts], counts, fail, least, most,
        [examples[cut[i] : cut[i + 1]] for i in range(len(starts))],
    )  # fmt: skip


def _distinct(codes: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each code's index into the distinct `codes` (ints ≥ 0, below `size` when given),
    and those sorted: marked in a table when it holds at most 4 cells a code (a batch's
    (cell, path) pairs, a few thousand paths and cells: no sort), else by `np.unique`."""
    top = int(codes.max()) + 1 if size is None else size
    if top > 4 * len(codes):
        distinct, inverse = np.unique(codes, return_inverse=True)
        return inverse.ravel(), distinct
    seen = np.zeros(top, bool)
    seen[codes] = True
    distinct = np.flatnonzero(seen)
    number = np.zeros(top, np.int64)
    number[distinct] = np.arange(len(distinct))
    return number[codes], distinct


def _distinct_codes(codes: np.ndarray, size: int) -> np.ndarray:
    """The distinct `codes` (ints in [0, `size`)), sorted: marked in a table of bytes
    when it is not much longer than the codes (a batch's (group, segment) pairs: ~30 k
    codes below ~0.6 M, a tenth of np.unique's sort), else by `np.unique`."""
    if size > 32 * len(codes) + (1 << 16):
        return np.unique(codes)
    seen = np.zeros(size, bool)
    seen[codes] = True
    return np.flatnonzero(seen)


class EndpointTally(Closing):
    """Requests counted by endpoint and by (endpoint, known status), known durations
    spilled by endpoint under `directory` (a directory of its own, removed on `close`: a
    context manager). `add` pieces of rows; `stats` the endpoints' statistics."""

    def __init__(self, endpoints: int, directory: Path | None = None) -> None:
        self.counts = np.zeros(endpoints, np.int64)
        self.status_counts: dict[int, np.ndarray] = {}
        self.durations = SpilledValues(directory)

    def close(self) -> None:
        self.durations.close()

    def add(self, endpoint: np.ndarray, duration_ms: np.ndarray, status: np.ndarray) -> None:
        """Rows given by their endpoint codes, durations and statuses (NaN: unknown)."""
        n = len(self.counts)
        endpoint = np.asarray(endpoint)
        self.counts += np.bincount(endpoint, minlength=n)
        known = ~np.isnan(duration_ms)
        self.durations.add(duration_ms[known], endpoint[known])
        known = ~np.isnan(status)
        code = status[known].astype(int)  # as `latency_and_status` reads a status
        if not len(code):
            return
        low, high = int(code.min()), int(code.max())
        if (high - low + 1) * n <= _STATUS_CELLS:  # counted in a table: no sort
            cells = (code - low) * n + endpoint[known]
            by_code = np.bincount(cells, minlength=(high - low + 1) * n).reshape(-1, n)
            codes = np.flatnonzero(by_code.any(axis=1))
            by_code, codes = by_code[codes], codes + low
        else:
            codes, at = np.unique(code, return_inverse=True)
            cells = at.ravel().astype(np.int64) * n + endpoint[known]
            by_code = np.bincount(cells, minlength=len(codes) * n).reshape(len(codes), n)
        for c, row in zip(codes.tolist(), by_code, strict=True):
            if c in self.status_counts:
                self.status_counts[c] += row
            else:
                self.status_counts[c] = row.copy()

    def add_partition(self, part: Partition) -> None:
        self.add(part.endpoint, part.duration_ms, part.status)

    def stats(
        self, names: list[str], kinds: list[dict[str, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """`endpoint_stats`' list: per endpoint in name order, its count, share, `kinds`
        entry (per endpoint code into `names`), latency (when a duration is known) and
        status mix."""
        total = int(self.counts.sum())
        latency = self._latencies()
        codes = sorted(self.status_counts)
        table = (
            np.stack([self.status_counts[c] for c in codes], axis=1)
            if codes
            else np.zeros((len(names), 0), np.int64)
        )
        out = []
        for e in sorted(range(len(names)), key=names.__getitem__):
            count = int(self.counts[e])
            entry: dict[str, Any] = {
                "count": count,
                "share": sig(count / total),
                "params": kinds[e],
            }
            entry.update(latency.get(e, {}))
            row = table[e]
            seen = np.flatnonzero(row)
            shares = (row[seen] / row.sum()).tolist()
            entry["status"] = {
                str(codes[i]): sig(s, 4) for i, s in zip(seen.tolist(), shares, strict=True)
            }
            out.append(entry)
        return out

    def _latencies(self) -> dict[int, dict[str, Any]]:
        """Per endpoint with a known duration, its `latency_ms` as `latency_and_status`
        gives it (np.percentile's points: the percentiles over 100)."""
        q = np.true_divide(np.asarray(PERCENTILES), 100)
        (found,) = self.durations.answer(Ask.quantiles(q.tolist()))
        return {
            int(e): {
                "latency_ms": {f"p{p}": sig(v, 4) for p, v in zip(PERCENTILES, row, strict=True)}
            }
            for e, row in zip(found.groups, found.values, strict=True)
        }


def partition_endpoint_stats(
    parts: KeyPartitions, params: ParamFacts, directory: Path | None = None
) -> list[dict[str, Any]]:
    """`endpoint_stats` of a scanned trace: its partitions read one at a time (kept), the
    parameter kinds from `params` (filled by the scan's hook, by cell)."""
    with EndpointTally(len(parts.names), directory) as tally:
        for part in parts.partitions(release=False):
            tally.add_partition(part)
        return tally.stats(parts.names, params.endpoint_kinds(parts.names, parts.endpoint_of))
