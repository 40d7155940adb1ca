"""The spill and the passes under `spilled_quantiles.SpilledValues`: the spill files (`Spill`),
counts by key merged as they come (`Counts`: level-0 bins, sub-ranges) and the passes over the
spill (`ranked_keys`) that narrow each wanted rank from its level-0 bin down to its value's
order key, a value's range found in an open-addressing table (`_Lookup`). The levels, bins
and passes are told in models/spilled_quantiles.py's docstring.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from .in_order import in_order

LEVEL_SHIFTS = (45, 30, 15, 0)
"""A value's range at level i: its order key >> LEVEL_SHIFTS[i]. Level 0 (19 bits: sign,
exponent, 7 mantissa bits: 1/128 of an octave) is counted as values come; a pass splits a
wanted range of level i by the next bits; at shift 0 a range is one value."""
BIN_BITS = 64 - LEVEL_SHIFTS[0]
MERGE_KEYS = 1 << 17
"""Pending (key, count) pairs merged past this many: held counts follow distinct keys."""
BATCH_VALUES = 1 << 18
"""Values a spilled record batch holds at most: what a pass reads and works on at a time."""
AHEAD = 2
"""Batches a pass works on on threads beside the one it adds up (`in_order`)."""


@dataclass
class Report:
    """What the last `SpilledValues.answer` did (for benchmarks): its passes over the spill,
    the values it gathered in all (each pass at most `gather_limit`), the most sub-range
    counts held in a pass, the deepest level reached (1: level 0 only) and the ranks asked."""

    values: int = 0
    spill_bytes: int = 0
    passes: int = 0
    values_gathered: int = 0
    counted_keys: int = 0
    levels: int = 1
    ranks: int = 0


class Counts:
    """Counts by int64 key (and, with `extremes`, the lowest and highest order key of each),
    added in pieces and merged when the pending keys pass MERGE_KEYS."""

    def __init__(self, extremes: bool = False) -> None:
        self.extremes = extremes
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)
        self.low = np.zeros(0, np.uint64)
        self.high = np.zeros(0, np.uint64)
        self.pending: list[tuple[np.ndarray, ...]] = []
        self.pending_keys = 0

    def add(self, keys: np.ndarray, counts: np.ndarray, *low_high: np.ndarray) -> None:
        self.pending.append((keys, counts, *low_high))
        self.pending_keys += len(keys)
        if self.pending_keys > MERGE_KEYS:
            self.merged()

    @staticmethod
    def piece(keys: np.ndarray, order_key: np.ndarray) -> tuple[np.ndarray, ...]:
        """A piece for `add` (with `extremes`) of keys, one per value, with each value's
        order key: the distinct keys, their counts, lowest and highest order keys (made
        without the counts: on a pass's threads)."""
        by = np.argsort(keys)
        keys, order_key = keys[by], order_key[by]
        starts = run_starts(keys)
        counts = np.diff(np.append(starts, len(keys)))
        low = np.minimum.reduceat(order_key, starts) if len(keys) else order_key
        high = np.maximum.reduceat(order_key, starts) if len(keys) else order_key
        return keys[starts], counts, low, high

    def merged(self) -> Counts:
        """Itself, every pending piece merged: `keys` distinct and sorted."""
        if self.pending:
            parts = list(zip(*self.pending, strict=True))
            keys = np.concatenate([self.keys, *parts[0]])
            counts = np.concatenate([self.counts, *parts[1]])
            self.pending, self.pending_keys = [], 0
            by = np.argsort(keys, kind="stable")
            keys = keys[by]
            starts = run_starts(keys)
            self.keys = keys[starts]
            self.counts = np.add.reduceat(counts[by], starts) if len(keys) else counts
            if self.extremes:
                low = np.concatenate([self.low, *parts[2]])[by]
                high = np.concatenate([self.high, *parts[3]])[by]
                self.low = np.minimum.reduceat(low, starts) if len(keys) else low
                self.high = np.maximum.reduceat(high, starts) if len(keys) else high
        return self


def run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts in sorted keys."""
    if not len(sorted_keys):
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


class Spill:
    """The spill files written (closed) and, per record batch, the chunk's `also` group (-1:
    none); values pending (one `also`, one group width) until a batch is worth writing."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: list[tuple[Path, list[int]]] = []
        self.writers: dict[str, tuple[ipc.RecordBatchFileWriter, pa.Schema, Path, list[int]]] = {}
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_also = -1
        self.pending_values = 0
        self.values = 0

    def add(self, keys: np.ndarray, groups: np.ndarray, also: int) -> None:
        if self.pending and (also != self.pending_also or groups.dtype != self.pending[0][1].dtype):
            self.flush()
        self.pending.append((keys, groups))
        self.pending_also = also
        self.pending_values += len(keys)
        self.values += len(keys)
        if self.pending_values >= BATCH_VALUES // 4:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        keys = np.concatenate([k for k, _ in self.pending])
        groups = np.concatenate([g for _, g in self.pending])
        self.pending, self.pending_values = [], 0
        kind = groups.dtype.name
        if kind not in self.writers:  # a file per group width (int32, int64)
            schema = pa.schema([("key", pa.uint64()), ("group", pa.from_numpy_dtype(groups.dtype))])
            path = self.directory / f"values-{len(self.files) + len(self.writers)}-{kind}.arrow"
            self.writers[kind] = (ipc.new_file(str(path), schema), schema, path, [])
        writer, schema, _, also = self.writers[kind]
        for start in range(0, len(keys), BATCH_VALUES):
            stop = start + BATCH_VALUES
            writer.write_batch(
                pa.record_batch([pa.array(keys[start:stop]), pa.array(groups[start:stop])],
                                schema=schema)
            )  # fmt: skip
            also.append(self.pending_also)

    def close_writers(self) -> None:
        """Every value written and its file closed (a file is read once closed)."""
        self.flush()
        for writer, _, path, also in self.writers.values():
            writer.close()
            self.files.append((path, also))
        self.writers = {}

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """Each spilled batch's order keys, groups (int64) and `also` group (-1: none), read
        one batch at a time."""
        self.close_writers()
        for path, also in self.files:
            with pa.OSFile(str(path)) as source:
                reader = ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i)
                    keys = batch.column(0).to_numpy()
                    groups = batch.column(1).to_numpy().astype(np.int64, copy=False)
                    yield keys, groups, also[i]

    def size(self) -> int:
        paths = [p for p, _ in self.files] + [w[2] for w in self.writers.values()]
        return sum(p.stat().st_size for p in paths if p.exists())


def ranked_keys(
    spill: Spill,
    bins: Counts,
    group_start: np.ndarray,
    rank: np.ndarray,
    gather_limit: int,
    report: Report,
) -> np.ndarray:
    """The order key of each wanted rank (`rank` within the group whose first level-0 cell
    is `group_start`; `bins` the level-0 counts): the level-0 cells holding them from the
    counts, then passes over `spill` (each gathering at most `gather_limit` values) until
    each is found; what the passes did added to `report`."""
    keys = np.zeros(len(rank), np.uint64)
    cum = np.cumsum(bins.counts)
    before = cum - bins.counts
    target = before[group_start] + rank
    cell = np.searchsorted(cum, target, side="right")
    within = target - before[cell]
    # The frontier: the cells of the wanted ranks not found yet, at this level.
    frontier, at = np.unique(bins.keys[cell], return_inverse=True)
    at = at.ravel()
    open_rank = np.arange(len(rank))
    sizes = bins.counts[np.searchsorted(bins.keys, frontier)]
    ancestors: list[np.ndarray] = []  # per level before the frontier's, its counted cells
    level = 0
    while len(open_rank):
        gather = _within_budget(sizes, gather_limit)
        count = np.flatnonzero(~gather)
        sub_bits = LEVEL_SHIFTS[level] - LEVEL_SHIFTS[min(level + 1, len(LEVEL_SHIFTS) - 1)]
        gathered, finer = _pass(spill, ancestors, frontier, gather, count, level, sub_bits)
        report.passes += 1
        # The gathered cells' ranks: their values sorted within each cell.
        values, cells = gathered
        report.values_gathered += len(values)
        by = np.lexsort((values, cells))
        values, cells = values[by], cells[by]
        first = np.searchsorted(cells, np.arange(len(frontier)))
        from_gather = gather[at]
        keys[open_rank[from_gather]] = values[first[at[from_gather]] + within[from_gather]]
        if not len(count):
            break
        # The counted cells' ranks: the sub-range holding each, from the sub-range counts.
        finer.merged()
        report.levels = level + 2
        report.counted_keys = max(report.counted_keys, len(finer.keys))
        keep = ~from_gather
        open_rank, at, within = open_rank[keep], at[keep], within[keep]
        parent = np.searchsorted(count, at)  # the cell's number among the counted ones
        cum = np.cumsum(finer.counts)
        before = cum - finer.counts
        target = before[np.searchsorted(finer.keys, parent << sub_bits)] + within
        sub = np.searchsorted(cum, target, side="right")
        within = target - before[sub]
        one_value = finer.low[sub] == finer.high[sub]
        keys[open_rank[one_value]] = finer.low[sub[one_value]]
        open_rank, within, sub = open_rank[~one_value], within[~one_value], sub[~one_value]
        ancestors.append(frontier[count])
        frontier, at = np.unique(finer.keys[sub], return_inverse=True)
        at = at.ravel()
        sizes = finer.counts[np.searchsorted(finer.keys, frontier)]
        level += 1
    return keys


def _pass(
    spill: Spill,
    ancestors: list[np.ndarray],
    frontier: np.ndarray,
    gather: np.ndarray,
    count: np.ndarray,
    level: int,
    sub_bits: int,
) -> tuple[tuple[np.ndarray, np.ndarray], Counts]:
    """One pass over `spill`: the values of the frontier's cells to gather (order key, cell)
    and the sub-range counts of its cells to count (key: the cell's number among `count`
    << sub_bits | the value's next sub_bits bits; with extremes). A value's cell at level
    i > 0 is keyed by its parent's number among the cells counted at level i - 1
    (`ancestors`, the frontier last) and its bits there."""
    lookups = [_Lookup(keys) for keys in (*ancestors, frontier)]
    number_of_counted = np.full(len(frontier), -1, np.int64)
    number_of_counted[count] = np.arange(len(count))
    first = lookups[0].wanted[:-1]  # (sorted: without the empty slot's -1)
    values_out, cells_out = [], []
    finer = Counts(extremes=True)
    next_shift = LEVEL_SHIFTS[level] - sub_bits

    def of(batch: tuple[np.ndarray, np.ndarray, int]) -> list[tuple[np.ndarray, ...]]:
        """A batch's values to gather and cells (per key it is read by: its group's, and
        its `also` group's where some wanted cell is one), and its pieces to count."""
        keys, groups, also = batch
        bins = (keys >> LEVEL_SHIFTS[0]).view(np.int64)
        level_0 = [(groups << BIN_BITS) | bins]
        if also >= 0:
            lo, hi = np.searchsorted(first, [also << BIN_BITS, (also + 1) << BIN_BITS])
            if hi > lo:
                level_0.append((also << BIN_BITS) | bins)
        found = []
        for key in level_0:
            cell, hit = lookups[0].find(key)
            value = keys[hit]
            for depth in range(1, level + 1):
                bits = LEVEL_SHIFTS[depth - 1] - LEVEL_SHIFTS[depth]
                part = (value >> LEVEL_SHIFTS[depth]).view(np.int64) & ((1 << bits) - 1)
                cell, hit = lookups[depth].find((cell << bits) | part)
                value = value[hit]
            into = gather[cell]
            counted = ~into
            piece: tuple[np.ndarray, ...] = ()
            if counted.any():
                rest = value[counted]
                part = (rest >> next_shift).view(np.int64) & ((1 << sub_bits) - 1)
                piece = Counts.piece((number_of_counted[cell[counted]] << sub_bits) | part, rest)
            found.append((value[into], cell[into], *piece))
        return found

    # (each batch's lookups on threads ahead, read and added here in the spill's order)
    for found in in_order(of, spill.batches(), AHEAD, "spill"):
        for value, cell, *piece in found:
            values_out.append(value)
            cells_out.append(cell)
            if piece:
                finer.add(*piece)
    values = np.concatenate(values_out) if values_out else np.zeros(0, np.uint64)
    cells = np.concatenate(cells_out) if cells_out else np.zeros(0, np.int64)
    return (values, cells), finer


_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


class _Lookup:
    """Where keys are in `wanted` (sorted, distinct, non-negative int64), by an
    open-addressing table of 4-8 slots a wanted key (multiplicative hash, linear probing):
    a few vector steps a key, where a binary search took ~40 ns (a mispredicted branch per
    halving: 0.7 of the 1.0 CPU s of bench_partitioned's quantiles at 10 M pauses)."""

    def __init__(self, wanted: np.ndarray) -> None:
        self.wanted = np.append(wanted, -1)  # an empty slot's number: a key no key equals
        self.empty = len(wanted)
        bits = max(4, (4 * len(wanted)).bit_length())
        self.mask = (1 << bits) - 1
        self.shift = np.uint64(64 - bits)
        self.slots = np.full(1 << bits, self.empty, np.int64)
        home = self._home(wanted)
        pending = np.arange(len(wanted))
        self.probes = 0
        while len(pending):  # each round: every free slot taken by one of the keys probing it
            slot = (home[pending] + self.probes) & self.mask
            free = np.flatnonzero(self.slots[slot] == self.empty)
            taken, first = np.unique(slot[free], return_index=True)
            self.slots[taken] = pending[free[first]]
            placed = np.zeros(len(pending), bool)
            placed[free[first]] = True
            pending = pending[~placed]
            self.probes += 1

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return np.asarray((keys.view(np.uint64) * _MULTIPLIER) >> self.shift).view(np.int64)

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of keys, the number in `wanted` of those in it, and where they are (in no order)."""
        home = self._home(keys)
        asked: np.ndarray | None = None  # where the keys still probing are (None: all)
        numbers, where = [], []
        for probe in range(self.probes):
            if probe:
                home = (home + 1) & self.mask
            slot = self.slots[home]
            match = self.wanted[slot] == keys
            found = np.flatnonzero(match)
            numbers.append(slot[found])
            where.append(found if asked is None else asked[found])
            go_on = np.flatnonzero(slot != self.empty)  # a slot of another key: probe on
            go_on = go_on[~match[go_on]]
            if not len(go_on):
                break
            home, keys = home[go_on], keys[go_on]
            asked = go_on if asked is None else asked[go_on]
        if len(numbers) == 1:
            return numbers[0], where[0]
        return np.concatenate(numbers), np.concatenate(where)


def _within_budget(sizes: np.ndarray, limit: int) -> np.ndarray:
    """Which cells to gather: the smallest first while their values add up to `limit`."""
    by = np.argsort(sizes, kind="stable")
    gather = np.zeros(len(sizes), bool)
    gather[by[np.cumsum(sizes[by]) <= limit]] = True
    return gather
