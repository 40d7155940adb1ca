"""The partitioned behaviors' first pass (models/partition_behaviors.py, issue 15): what
it reads of each partition (`PartitionRequests`), what it holds across the partitions
(sessions-sized: `TraceSessions`, `SessionArrays`, the transitions' `Columns`) and pass
(a) itself (`pass_a`): the sessions' ids, the endpoints used (the fit's labels), the
transitions seen, coded by the names until the labels are known, and the positive pauses
spilled by transition (their medians: the tempo's reference); each session's length, sum
of pauses, first step and END column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .behavior_paths import END, _code_type, column_type
from .in_order import in_order
from .spilled_quantiles import Ask, Chunk, SpilledValues

__all__ = [
    "Columns", "Marks", "PartitionRequests", "SessionArrays", "SessionShape",
    "TraceSessions", "pass_a", "session_bounds",
]  # fmt: skip


@dataclass(frozen=True)
class PartitionRequests:
    """One partition's requests (every request of each of its sessions), in any order but
    each session's in its own order: the sessionized frame's three columns the fit reads."""

    session: np.ndarray
    """Per request, its session's global id (the fit's sessions are the ids, ascending)."""
    endpoint: np.ndarray
    """Per request, its endpoint's code into the names given with the partitions."""
    think_s: np.ndarray
    """Per request, the pause before it (NaN for a session's first request)."""


@dataclass(frozen=True)
class SessionShape:
    """What pass (a) found of one partition's sessions that the later passes keep."""

    ordered: bool
    """Whether its rows come session by session, ids ascending (read without a sort)."""
    where: np.ndarray | None
    """Per local session (ids ascending), its global position; None where the ids are
    the positions (the model's: 0..n-1), so nothing is held (sessions-sized, 8 B each)."""


@dataclass(frozen=True)
class TraceSessions:
    """Pass (a)'s answer: the sessions' ids (ascending: their global order), the labels
    (the fit's: the endpoints used, sorted, with START and END), each name's code in them,
    and each partition's `SessionShape`."""

    ids: np.ndarray
    labels: list[str]
    remap: np.ndarray
    shapes: list[SessionShape]


class Marks:
    """The distinct values of non-negative integer arrays added, ascending: each marked in
    a boolean array (ids-sized: the model's session ids are 0..n-1; at most 4 B a value
    added so far, or 1 MB), not sorted; arrays with a value beyond it kept for `np.unique`,
    marked at the end if the array has grown to hold them (the first partitions' session
    ids, when each partition holds fewer than a quarter of the sessions' requests)."""

    def __init__(self) -> None:
        self.marked = np.zeros(0, dtype=bool)
        self.other: list[np.ndarray] = []
        self.added = 0

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        self.added += len(values)
        low, top = int(values.min()), int(values.max())
        if low < 0 or top > max(4 * self.added, len(self.marked), 1 << 20):
            self.other.append(np.unique(values))
            return
        if top >= len(self.marked):
            self.marked = np.concatenate([self.marked, np.zeros(top + 1 - len(self.marked), bool)])
        self.marked[values] = True

    def found(self) -> np.ndarray:
        other = []
        for values in self.other:  # (each ascending)
            if values[0] >= 0 and values[-1] < len(self.marked):
                self.marked[values] = True
            else:
                other.append(values)
        self.other = other
        marked = np.flatnonzero(self.marked)
        if not other:
            return marked
        return np.unique(np.concatenate([marked, *other]))


@dataclass(frozen=True)
class Columns:
    """The trace's transitions (`Pairs.codes`: every pair seen, ascending) and each pair
    code's column, by a lookup table where the codes' square is small (as `Pairs.of`)."""

    codes: np.ndarray
    lookup: np.ndarray | None

    @classmethod
    def of(cls, codes: np.ndarray, square: int) -> Columns:
        if square > 1 << 22:
            return cls(codes, None)
        lookup = np.zeros(square, dtype=column_type(len(codes)))
        lookup[codes] = np.arange(len(codes))
        return cls(codes, lookup)

    def __call__(self, pair: np.ndarray) -> np.ndarray:
        if self.lookup is not None:
            return np.asarray(self.lookup[pair])
        return np.searchsorted(self.codes, pair).astype(column_type(len(self.codes)))


@dataclass
class SessionArrays:
    """Pass (b)'s per-session arrays (global order) and the sample's feature rows."""

    length: np.ndarray
    tempo: np.ndarray
    pause_sums: np.ndarray
    first_step: np.ndarray
    end_column: np.ndarray
    points: np.ndarray


def session_bounds(session: np.ndarray) -> np.ndarray:
    """Where each session's rows start, then their count (rows session by session)."""
    if not len(session):
        return np.zeros(1, np.int64)
    cuts = np.flatnonzero(session[1:] != session[:-1]) + 1
    return np.concatenate([[0], cuts, [len(session)]])


AHEAD = 2
"""Partitions the behaviors' passes make on threads beside the one they hold (`in_order`:
numpy over a partition lets go of the GIL; the passes give on in partition order)."""


@dataclass(frozen=True)
class _Found:
    """Pass (a)'s per-session arrays of one partition (its sessions, ids ascending), held
    until the sessions' global order is known."""

    ordered: bool
    ids: np.ndarray
    """Per session, its id."""
    length: np.ndarray
    first: np.ndarray
    """Per session, its first request's endpoint (the names' code)."""
    last: np.ndarray
    """Per session, its last request's endpoint."""
    pause_sums: np.ndarray

    @classmethod
    def of(cls, part: PartitionRequests, width: int) -> tuple[_Found, np.ndarray, Chunk]:
        """Its sessions, and its pairs (each request's and each session's END) coded by
        the names: (previous or START) × `width` + step, START and END the last two codes;
        its positive pauses by pair, a chunk to spill."""
        session = np.asarray(part.session)
        ordered = len(session) < 2 or bool((session[1:] >= session[:-1]).all())
        order = slice(None) if ordered else np.argsort(session, kind="stable")
        session = session[order]
        bounds = session_bounds(session)
        length, first = np.diff(bounds), bounds[:-1]
        step = np.asarray(part.endpoint)[order]
        think = np.asarray(part.think_s, dtype=float)[order]
        pair = np.empty(len(step), dtype=np.int64)
        pair[1:] = step[:-1]
        pair[first] = width - 2
        pair *= width
        pair += step
        last = step[bounds[1:] - 1]
        within = np.isfinite(think)
        within[first] = False
        pause = think[within]
        positive = pause > 0
        chunk = Chunk.of(pause[positive], pair[within][positive])
        local = np.repeat(np.arange(len(length), dtype=np.int32), length)
        sums = np.bincount(local, weights=np.nan_to_num(think, nan=0.0), minlength=len(length))
        ends = last.astype(np.int64) * width + width - 1
        ids, kind = session[first], np.int32 if len(session) < 1 << 31 else np.int64
        if len(ids) and ids[0] >= 0 and ids[-1] < 1 << 31:
            ids = ids.astype(np.int32)  # (held until pass (a) ends: 4 B a session, not 8)
        found = cls(ordered, ids, length.astype(kind), step[first], last, sums)
        return found, np.concatenate([pair, ends]), chunk


def pass_a(
    parts: Sequence[PartitionRequests], names: Sequence[str], spilled: SpilledValues
) -> tuple[TraceSessions, Columns, np.ndarray, SessionArrays]:
    """Pass (a): the sessions' ids, the endpoints used (the labels), every pair seen (the
    columns, ascending) and per column the median of its positive pauses (0 without one),
    as `Pauses.of` reads them; each session's length, sum of pauses (`Pauses.sums`'),
    first step and END column. The pairs are coded by the names (`_Found.of`) while the
    labels are not yet known, the codes turned into the labels' after."""
    width, start, end = len(names) + 2, len(names), len(names) + 1
    ids, seen, found = Marks(), Marks(), []

    def read(p: int) -> tuple[_Found, np.ndarray, Chunk, np.ndarray]:
        part = parts[p]
        return (*_Found.of(part, width), np.asarray(part.session))

    # (each partition read and found on threads ahead; spilled and marked in order)
    for one, pairs, chunk, session in in_order(read, range(len(parts)), AHEAD, "behaviors"):
        spilled.put(chunk)
        seen.add(pairs)
        ids.add(session)  # (every request's: `Marks`' reach is theirs)
        found.append(one)
        del one, pairs, chunk, session
    every, pairs = ids.found(), seen.found()
    steps = np.unique(pairs % width)  # (every request is its pair's step: the names used)
    used_codes = steps[steps < start].tolist()
    labels = sorted({str(names[u]) for u in used_codes} | {"START", END})
    remap = np.zeros(len(names), dtype=_code_type(len(labels)))
    remap[used_codes] = [labels.index(str(names[u])) for u in used_codes]
    label_of = np.zeros(width, dtype=np.int64)  # (a name-coded pair's ends: their labels)
    label_of[:start] = remap
    label_of[start], label_of[end] = labels.index("START"), labels.index(END)
    size = len(labels)

    def relabelled(pairs: np.ndarray) -> np.ndarray:
        return np.asarray(label_of[pairs // width] * size + label_of[pairs % width])

    codes = np.sort(relabelled(pairs))
    columns = Columns.of(codes, size * size)
    n = len(every)
    contiguous = not n or (int(every[0]) == 0 and int(every[-1]) == n - 1)
    made = SessionArrays(
        np.zeros(n, dtype=np.int64), np.zeros(0), np.zeros(n),
        np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int32), np.zeros((0, len(codes) + 1)),
    )  # fmt: skip
    shapes = []
    found.reverse()
    while found:  # (each partition's let go once placed: made's pages filled as it goes)
        one = found.pop()
        # (ids 0..n-1, the model's: each its own position)
        where = one.ids if contiguous else np.searchsorted(every, one.ids)
        shapes.append(SessionShape(one.ordered, None if contiguous else where))
        made.length[where] = one.length
        made.pause_sums[where] = one.pause_sums
        made.first_step[where] = remap[one.first]
        made.end_column[where] = columns(remap[one.last].astype(np.int64) * size + label_of[end])
        del one
    median = np.zeros(len(codes))
    if n:
        (medians,) = spilled.answer(Ask.median())
        median[np.searchsorted(codes, relabelled(medians.groups))] = medians.values
    return TraceSessions(every, labels, remap, shapes), columns, median, made
