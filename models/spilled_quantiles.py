"""Exact quantiles and medians per group of values too many to hold: each chunk of values
spilled to disk as it comes and counted in value bins per group; `np.quantile` (linear) and
`np.median` of every group, to the bit, from the counts and a few passes over the spill.

A float64's bits, sign-folded (`order_keys`: negative values' bits inverted, the others'
sign bit set), read as an unsigned integer, grow with the value. So the count of each
(group, leading 19 bits) says which narrow range of value holds each rank numpy reads, and a
pass over the spill gathers only the values of those ranges (at most `gather_limit`; a few
percent of a trace's pauses). A range holding more (ties: a script's fixed pause) is split
by the next 15 bits in the same pass (counts, lowest and highest value of each sub-range),
and so on down to single values (`LEVEL_SHIFTS`, three passes at most): a sub-range whose
lowest and highest value are the same answers its ranks at once (exact ties: one pass; near
ties, a fixed pause measured as a difference of times: up to three). What is held is the
level-0 counts (groups × bins, merged as they come, not values), the values gathered and the
sub-range counts of one pass. The values at the ranks are interpolated as numpy does
(`order_stats.lerp`, np.median's own mean). A group holding both -0.0 and +0.0 answers a
zero's sign as "-0.0 sorts first"; numpy's partition leaves them in an order of its own.
Prototyped and measured at 10 M rows in bench/bench_partitioned.py (bench/README.md).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from tracereplay.closing import Closing
from tracereplay.models.order_stats import lerp, quantile_points

LEVEL_SHIFTS = (45, 30, 15, 0)
"""A value's range at level i: its order key >> LEVEL_SHIFTS[i]. Level 0 (19 bits: sign,
exponent, 7 mantissa bits: 1/128 of an octave) is counted as values come; a pass splits a
wanted range of level i by the next bits; at shift 0 a range is one value."""
BIN_BITS = 64 - LEVEL_SHIFTS[0]
GROUP_LIMIT = 1 << (63 - BIN_BITS)
"""Group numbers are below this (2**44): a level-0 key, group << 19 | bin, is an int64."""
MERGE_KEYS = 1 << 17
"""Pending (key, count) pairs merged past this many: held counts follow distinct keys."""
BATCH_VALUES = 1 << 18
"""Values a spilled record batch holds at most: what a pass reads and works on at a time."""
_SIGN = np.uint64(1 << 63)


def order_keys(values: np.ndarray) -> np.ndarray:
    """Each float64's bits as a uint64 that orders as the values do (-inf lowest, -0.0 just
    below +0.0, +inf highest; NaN is not ordered: refused by `SpilledValues.add`)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    negative = (bits.view(np.int64) >> 63).view(np.uint64)  # all ones where the sign is set
    return np.asarray(bits ^ (negative | _SIGN))


def values_of(keys: np.ndarray) -> np.ndarray:
    """The float64s of order keys (`order_keys`' inverse)."""
    keys = np.asarray(keys, dtype=np.uint64)
    high = (keys.view(np.int64) >> 63).view(np.uint64)  # all ones where the key's top bit is set
    return np.asarray((keys ^ (~high | _SIGN)).view(np.float64))


MEDIAN = None
"""`Ask.points` of a median: np.median, not np.quantile(0.5) (which can differ in the last bit)."""


@dataclass(frozen=True)
class Ask:
    """One question for `SpilledValues.answer`: np.quantile at `points` (MEDIAN: np.median)
    of each of `groups` (None: every group with values)."""

    points: tuple[float, ...] | None = MEDIAN
    groups: tuple[int, ...] | None = None

    @classmethod
    def quantiles(cls, points: Sequence[float], groups: Sequence[int] | None = None) -> Ask:
        return cls(tuple(float(q) for q in points), None if groups is None else tuple(groups))

    @classmethod
    def median(cls, groups: Sequence[int] | None = None) -> Ask:
        return cls(MEDIAN, None if groups is None else tuple(groups))


@dataclass(frozen=True)
class GroupValues:
    """An answer: for each group asked that has values (`groups`, ascending), its count of
    values and its quantiles (`values[i]`, one per point) or median (`values[i]`, a float)."""

    groups: np.ndarray
    counts: np.ndarray
    values: np.ndarray

    def of(self, group: int) -> np.ndarray:
        """The answer of one group (KeyError when it has no values or was not asked)."""
        at = int(np.searchsorted(self.groups, group))
        if at == len(self.groups) or self.groups[at] != group:
            raise KeyError(group)
        return np.asarray(self.values[at])

    def as_dict(self) -> dict[int, np.ndarray]:
        return {int(g): np.asarray(v) for g, v in zip(self.groups, self.values, strict=True)}


@dataclass
class Report:
    """What the last `answer` did (for benchmarks): its passes over the spill, the values it
    gathered in all (each pass at most `gather_limit`), the most sub-range counts held in a
    pass, the deepest level reached (1: level 0 only) and the ranks asked."""

    values: int = 0
    spill_bytes: int = 0
    passes: int = 0
    values_gathered: int = 0
    counted_keys: int = 0
    levels: int = 1
    ranks: int = 0


class _Counts:
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

    def add_values(self, keys: np.ndarray, order_key: np.ndarray) -> None:
        """One piece's keys, one per value, with each value's order key (the extremes)."""
        by = np.argsort(keys)
        keys, order_key = keys[by], order_key[by]
        starts = _starts(keys)
        counts = np.diff(np.append(starts, len(keys)))
        low = np.minimum.reduceat(order_key, starts) if len(keys) else order_key
        high = np.maximum.reduceat(order_key, starts) if len(keys) else order_key
        self.add(keys[starts], counts, low, high)

    def merged(self) -> _Counts:
        """Itself, every pending piece merged: `keys` distinct and sorted."""
        if self.pending:
            parts = list(zip(*self.pending, strict=True))
            keys = np.concatenate([self.keys, *parts[0]])
            counts = np.concatenate([self.counts, *parts[1]])
            self.pending, self.pending_keys = [], 0
            by = np.argsort(keys, kind="stable")
            keys = keys[by]
            starts = _starts(keys)
            self.keys = keys[starts]
            self.counts = np.add.reduceat(counts[by], starts) if len(keys) else counts
            if self.extremes:
                low = np.concatenate([self.low, *parts[2]])[by]
                high = np.concatenate([self.high, *parts[3]])[by]
                self.low = np.minimum.reduceat(low, starts) if len(keys) else low
                self.high = np.maximum.reduceat(high, starts) if len(keys) else high
        return self


def _starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts in sorted keys."""
    if not len(sorted_keys):
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


class _Spill:
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


class SpilledValues(Closing):
    """Values in groups, spilled to Arrow IPC files under a directory of its own (made in
    `directory`, or in the system's temp dir), removed on `close` (a context manager: also
    on error). `add` chunks of values; `answer` (or `quantiles`, `medians`) np.quantile and
    np.median of every group exactly; `report` says what the last answer cost."""

    def __init__(self, directory: Path | None = None, *, gather_limit: int = 1 << 20) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tracereplay-", dir=directory))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)
        self.gather_limit = gather_limit
        self._spill = _Spill(self.directory)
        self._bins = _Counts()  # level-0 keys: group << BIN_BITS | order key >> 45
        self.report = Report()

    def close(self) -> None:
        """The spill files and their directory removed (again: nothing)."""
        for writer, *_ in self._spill.writers.values():
            writer.close()
        self._spill.writers = {}
        self._cleanup()

    def add(self, values: np.ndarray, groups: np.ndarray, *, also: int | None = None) -> None:
        """A chunk of values, each in its group (0 <= group < GROUP_LIMIT), and each also in
        group `also` when given (spilled once: the trace's every pause beside each pause's
        transition). NaN is refused (ValueError): it has no rank; drop it first."""
        self._open()
        values = np.ascontiguousarray(values, dtype=np.float64)
        groups = np.asarray(groups)
        if values.shape != groups.shape or values.ndim != 1:
            raise ValueError("values and groups must be 1-D arrays of the same length")
        if not np.issubdtype(groups.dtype, np.integer):
            raise ValueError(f"groups must be integers, not {groups.dtype}")
        if not len(values):
            return
        if np.isnan(values).any():
            raise ValueError("NaN values have no rank: drop them before adding")
        low, top = int(groups.min()), int(groups.max())
        if also is not None:
            low, top = min(low, also), max(top, also)
        if low < 0 or top >= GROUP_LIMIT:
            raise ValueError(f"groups must be in [0, 2**{63 - BIN_BITS})")
        if also is not None and (groups == also).any():
            raise ValueError(f"group {also} given as `also` holds values of the chunk too")
        keys = order_keys(values)
        groups = groups.astype(np.int32 if top < 1 << 31 else np.int64)  # (a copy: kept)
        cells, counts = np.unique(
            (groups.astype(np.int64) << BIN_BITS) | (keys >> LEVEL_SHIFTS[0]).view(np.int64),
            return_counts=True,
        )
        self._bins.add(cells, counts)
        if also is not None:  # the chunk's counts by bin alone are group `also`'s
            bins, at = np.unique(cells & ((1 << BIN_BITS) - 1), return_inverse=True)
            also_counts = np.bincount(at.ravel(), weights=counts, minlength=len(bins))
            self._bins.add((also << BIN_BITS) | bins, also_counts.astype(np.int64))
        self._spill.add(keys, groups, -1 if also is None else also)

    def _open(self) -> None:
        if not self._cleanup.alive:
            raise ValueError("closed: its spill files are removed")

    def spill_bytes(self) -> int:
        """The bytes of the spill files so far (pending values written first)."""
        self._spill.flush()
        return self._spill.size()

    def quantiles(self, points: Sequence[float]) -> GroupValues:
        """`np.quantile(values of g, points)` of every group g with values."""
        return self.answer(Ask.quantiles(points))[0]

    def medians(self) -> GroupValues:
        """`np.median(values of g)` of every group g with values."""
        return self.answer(Ask.median())[0]

    def answer(self, *asks: Ask) -> list[GroupValues]:
        """Every ask's answer, found together (one set of passes over the spill)."""
        self._open()
        for ask in asks:
            q = np.asarray(ask.points if ask.points is not MEDIAN else [], dtype=np.float64)
            if not ((q >= 0) & (q <= 1)).all():
                raise ValueError(f"quantile points must be in [0, 1], not {ask.points}")
        bins = self._bins.merged()
        group_of_cell = bins.keys >> BIN_BITS
        starts = _starts(group_of_cell)
        groups = group_of_cell[starts]
        sizes = np.add.reduceat(bins.counts, starts) if len(starts) else bins.counts
        plans = []  # per ask: its groups' rows, counts, (lo, hi, gamma) or None, first rank
        rows_all, ranks_all = [], []
        taken = 0
        for ask in asks:
            rows = np.arange(len(groups))
            if ask.groups is not None:
                asked = np.unique(np.asarray(ask.groups, dtype=np.int64))
                at = np.minimum(np.searchsorted(groups, asked), max(len(groups) - 1, 0))
                rows = at[groups[at] == asked] if len(groups) else rows
            n = sizes[rows]
            if ask.points is MEDIAN:
                lo, hi, gamma = ((n - 1) // 2)[:, None], (n // 2)[:, None], None
            else:
                lo, hi, gamma = quantile_points(n, np.asarray(ask.points, dtype=np.float64))
            plans.append((rows, n, lo.shape, gamma, taken))
            rows_all += [np.repeat(rows, lo.shape[1])] * 2
            ranks_all += [lo.ravel(), hi.ravel()]
            taken += 2 * lo.size
        row = np.concatenate(rows_all) if rows_all else np.zeros(0, np.int64)
        rank = np.concatenate(ranks_all).astype(np.int64) if ranks_all else row
        self.report = Report(values=self._spill.values, ranks=len(rank))
        found = values_of(self._ranked(bins, starts[row], rank))
        self.report.spill_bytes = self._spill.size()
        answers = []
        with np.errstate(invalid="ignore", over="ignore"):  # numpy's own NaN, inf: no warning
            for rows, n, shape, gamma, first in plans:
                size = shape[0] * shape[1]
                below = found[first : first + size].reshape(shape)
                above = found[first + size : first + 2 * size].reshape(shape)
                if gamma is None:  # np.median's own mean of the middle one or two values
                    odd = n % 2 == 1
                    value = np.empty(len(n))
                    value[odd] = np.median(below[odd], axis=1)
                    value[~odd] = np.median(np.concatenate([below, above], axis=1)[~odd], axis=1)
                else:
                    value = lerp(below, above, gamma)
                answers.append(GroupValues(groups[rows], n, value))
        return answers

    def _ranked(self, bins: _Counts, group_start: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """The order key of each wanted rank (`rank` within the group whose first level-0
        cell is `group_start`): the level-0 cells holding them from the counts, then passes
        over the spill until each is found."""
        report = self.report
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
            gather = _within_budget(sizes, self.gather_limit)
            count = np.flatnonzero(~gather)
            sub_bits = LEVEL_SHIFTS[level] - LEVEL_SHIFTS[min(level + 1, len(LEVEL_SHIFTS) - 1)]
            gathered, finer = self._pass(ancestors, frontier, gather, count, level, sub_bits)
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
        self,
        ancestors: list[np.ndarray],
        frontier: np.ndarray,
        gather: np.ndarray,
        count: np.ndarray,
        level: int,
        sub_bits: int,
    ) -> tuple[tuple[np.ndarray, np.ndarray], _Counts]:
        """One pass over the spill: the values of the frontier's cells to gather (order key,
        cell) and the sub-range counts of its cells to count (key: the cell's number among
        `count` << sub_bits | the value's next sub_bits bits; with extremes). A value's cell
        at level i > 0 is keyed by its parent's number among the cells counted at level
        i - 1 (`ancestors`, the frontier last) and its bits there."""
        lookups = [_Lookup(keys) for keys in (*ancestors, frontier)]
        number_of_counted = np.full(len(frontier), -1, np.int64)
        number_of_counted[count] = np.arange(len(count))
        also_wanted = {}  # per `also` group: whether any wanted level-0 cell is its
        values_out, cells_out = [], []
        finer = _Counts(extremes=True)
        next_shift = LEVEL_SHIFTS[level] - sub_bits
        for keys, groups, also in self._spill.batches():
            bins = (keys >> LEVEL_SHIFTS[0]).view(np.int64)
            level_0 = [(groups << BIN_BITS) | bins]
            if also >= 0:
                if also not in also_wanted:
                    first = lookups[0].wanted[:-1]  # (sorted: without the empty slot's -1)
                    lo, hi = np.searchsorted(first, [also << BIN_BITS, (also + 1) << BIN_BITS])
                    also_wanted[also] = hi > lo
                if also_wanted[also]:
                    level_0.append((also << BIN_BITS) | bins)
            for key in level_0:
                cell, hit = lookups[0].find(key)
                value = keys[hit]
                for depth in range(1, level + 1):
                    bits = LEVEL_SHIFTS[depth - 1] - LEVEL_SHIFTS[depth]
                    part = (value >> LEVEL_SHIFTS[depth]).view(np.int64) & ((1 << bits) - 1)
                    cell, hit = lookups[depth].find((cell << bits) | part)
                    value = value[hit]
                into = gather[cell]
                values_out.append(value[into])
                cells_out.append(cell[into])
                counted = ~into
                if counted.any():
                    value = value[counted]
                    part = (value >> next_shift).view(np.int64) & ((1 << sub_bits) - 1)
                    finer.add_values((number_of_counted[cell[counted]] << sub_bits) | part, value)
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
