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
Prototyped and measured at 10 M rows in bench/bench_partitioned.py (bench/README.md). The
spill files, the counts and the passes are models/spilled_ranks.py's; this module holds the
order keys, the questions (`Ask`), the answers (`GroupValues`) and `SpilledValues` itself.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracereplay.closing import Closing
from tracereplay.models.order_stats import lerp, quantile_points
from tracereplay.models.spilled_ranks import (
    BIN_BITS,
    LEVEL_SHIFTS,
    Counts,
    Report,
    Spill,
    ranked_keys,
    run_starts,
)

GROUP_LIMIT = 1 << (63 - BIN_BITS)
"""Group numbers are below this (2**44): a level-0 key, group << 19 | bin, is an int64."""
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


@dataclass(frozen=True)
class Chunk:
    """A chunk of values in groups made ready for `SpilledValues.put`: their order keys
    and their counts by level-0 bin, made without the spill (`of` may run on threads
    while another chunk is put)."""

    keys: np.ndarray
    groups: np.ndarray
    also: int | None
    cells: np.ndarray | None
    """The chunk's level-0 keys (group << BIN_BITS | bin), distinct; None: no value."""
    counts: np.ndarray
    also_cells: np.ndarray
    also_counts: np.ndarray
    """Group `also`'s level-0 keys and counts: the chunk's counts by bin alone."""

    @classmethod
    def of(cls, values: np.ndarray, groups: np.ndarray, *, also: int | None = None) -> Chunk:
        """`SpilledValues.add`'s chunk, checked (ValueError as it says)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        groups = np.asarray(groups)
        if values.shape != groups.shape or values.ndim != 1:
            raise ValueError("values and groups must be 1-D arrays of the same length")
        if not np.issubdtype(groups.dtype, np.integer):
            raise ValueError(f"groups must be integers, not {groups.dtype}")
        none = np.zeros(0, np.int64)
        if not len(values):
            return cls(none, none, also, None, none, none, none)
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
        also_cells, also_counts = none, none
        if also is not None:  # the chunk's counts by bin alone are group `also`'s
            bins, at = np.unique(cells & ((1 << BIN_BITS) - 1), return_inverse=True)
            also_cells = (also << BIN_BITS) | bins
            also_counts = np.bincount(at.ravel(), weights=counts, minlength=len(bins))
            also_counts = also_counts.astype(np.int64)
        return cls(keys, groups, also, cells, counts, also_cells, also_counts)


class SpilledValues(Closing):
    """Values in groups, spilled to Arrow IPC files under a directory of its own (made in
    `directory`, or in the system's temp dir), removed on `close` (a context manager: also
    on error). `add` chunks of values; `answer` (or `quantiles`, `medians`) np.quantile and
    np.median of every group exactly; `report` says what the last answer cost."""

    def __init__(self, directory: Path | None = None, *, gather_limit: int = 1 << 20) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tracereplay-", dir=directory))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)
        self.gather_limit = gather_limit
        self._spill = Spill(self.directory)
        self._bins = Counts()  # level-0 keys: group << BIN_BITS | order key >> 45
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
        self.put(Chunk.of(values, groups, also=also))

    def put(self, chunk: Chunk) -> None:
        """A chunk `Chunk.of` made (perhaps on another thread) counted and spilled."""
        self._open()
        if chunk.cells is None:
            return
        self._bins.add(chunk.cells, chunk.counts)
        if chunk.also is not None:
            self._bins.add(chunk.also_cells, chunk.also_counts)
        self._spill.add(chunk.keys, chunk.groups, -1 if chunk.also is None else chunk.also)

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
        starts = run_starts(group_of_cell)
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
        found = values_of(
            ranked_keys(self._spill, bins, starts[row], rank, self.gather_limit, self.report)
        )
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
