"""Sessions' paths as flat arrays (endpoint codes and pauses, session by session), and
the per-request reductions behaviors are fitted from: transition counts and session tempo.

Everything here is numpy over codes, with no Python loop over requests or sessions (a
loop runs per distinct session size or transition at most). The results are bit for bit
those of the per-session Python the behaviors were first fitted with (numpy's medians and
sums included): tests/models/test_behaviors_vectorized.py holds that code as reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .order_stats import chunked_bincount, group_medians

if TYPE_CHECKING:  # loaded where a model is built, not by synthesize
    import pandas as pd
    from scipy import sparse

END = "END"
# Shrinkage of a session's tempo toward 1: tempo = exp(sum of log ratios / (pauses + k)),
# so a session with one or two pauses does not get an extreme tempo from them alone.
TEMPO_SHRINK = 2.0
SESSION_CHUNK = 1 << 13
"""Sessions worked at a time where a whole-length temporary would be fresh memory (the
kernel zeroes each new page: ~0.1 s per 70 MB array at real10M on this VM, when busy)."""


@dataclass(frozen=True)
class SessionPaths:
    """Every session's endpoints and pauses as flat arrays, sessions in id order and each
    session's requests in order: what the chain, tempo and clustering read."""

    labels: list[str]
    """Sorted endpoint names with START and END (codes follow this order)."""
    step: np.ndarray
    """Per request, its endpoint's code into `labels`."""
    think_s: np.ndarray
    """Per request, the pause before it (NaN for a session's first request)."""
    length: np.ndarray
    """Per session, its requests."""

    @cached_property
    def bounds(self) -> np.ndarray:
        """Where each session's requests start, then their count: session i's requests are
        `step[bounds[i] : bounds[i + 1]]`."""
        return run_bounds(self.length)

    @cached_property
    def first(self) -> np.ndarray:
        """Per session, the index of its first request."""
        return self.bounds[:-1]

    @cached_property
    def ends(self) -> np.ndarray:
        """Per session, then their count: how many sessions with requests come before it
        (where its own end is in `Pairs.end_column`, if it has one)."""
        return run_bounds(self.length > 0)

    @cached_property
    def session(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.length), dtype=np.int32), self.length)

    def code(self, name: str) -> int:
        return self.labels.index(name)

    def previous(self) -> np.ndarray:
        """Per request, the code of the one before it in its session (START for a first)."""
        prev = np.empty_like(self.step)
        prev[1:] = self.step[:-1]
        prev[self.first] = self.code("START")
        return prev

    @classmethod
    def of(cls, sessions: pd.DataFrame) -> SessionPaths:
        """The paths of a sessionized frame with an `endpoint` column, sessions by id."""
        import pandas as pd

        ids = sessions["session_id"].to_numpy()
        ordered = len(ids) < 2 or bool((ids[1:] >= ids[:-1]).all())
        order = slice(None) if ordered else np.argsort(ids, kind="stable")
        endpoint = sessions["endpoint"]
        if isinstance(endpoint.dtype, pd.CategoricalDtype):
            codes = endpoint.cat.codes.to_numpy()
            names = [str(c) for c in endpoint.cat.categories]
        else:
            codes, uniques = pd.factorize(endpoint.to_numpy(object))
            names = [str(c) for c in uniques]
        codes = np.asarray(codes)[order]
        used = np.flatnonzero(chunked_bincount(codes, len(names)))
        labels = sorted({names[u] for u in used.tolist()} | {"START", END})
        remap = np.zeros(len(names), dtype=_code_type(len(labels)))
        remap[used] = [labels.index(names[u]) for u in used.tolist()]
        ids = ids[order]
        cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        bounds = np.concatenate([[0], cuts, [len(ids)]]) if len(ids) else np.zeros(1, np.int64)
        return cls(
            labels=labels,
            step=remap[codes],
            think_s=sessions["think_s"].to_numpy(float)[order],
            length=np.diff(bounds),
        )

    @classmethod
    def of_lists(cls, paths: list[list[str]]) -> SessionPaths:
        """Paths given as lists of endpoint names (no pauses: NaN)."""
        labels = sorted({e for path in paths for e in path} | {"START", END})
        code = {name: i for i, name in enumerate(labels)}
        length = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
        steps = np.fromiter(
            (code[e] for p in paths for e in p), _code_type(len(labels)), int(length.sum())
        )
        return cls(labels, steps, np.full(len(steps), np.nan), length)


def _code_type(labels: int) -> type[np.signedinteger[Any]]:
    """The narrowest of int16, int32, int64 every (from, to) pair code fits (`Pairs.of`
    makes them in the steps' type): a trace's few endpoints, int16 (2 B a request less
    held by the behaviors' child from its paths on, and 2 more in the pairs' making)."""
    for kind in (np.int16, np.int32):
        if labels * labels <= np.iinfo(kind).max:
            return kind
    return np.int64


def column_type(columns: int) -> type[np.integer[Any]]:
    """The narrowest type for column numbers (a one-pass radix sort for uint8)."""
    for kind in (np.uint8, np.uint16, np.int32):
        if columns <= np.iinfo(kind).max + 1:
            return kind
    return np.int64


@dataclass(frozen=True)
class Pairs:
    """Every transition of the sessions (START→first, a→b, last→END) as a column number:
    the column of a (from, to) pair is its rank among the distinct pairs seen, whose codes
    (from × width + to) follow the sorted labels. Computed once for the counts, the tempo
    and the chains (each used to repeat this pass over the requests)."""

    codes: np.ndarray
    """Per column, its pair's code, ascending."""
    column: np.ndarray
    """Per request, the column of (the request before it in its session or START, it)."""
    end_column: np.ndarray
    """Per session with requests, the column of (its last request, END)."""

    @classmethod
    def of(cls, paths: SessionPaths) -> Pairs:
        width = len(paths.labels)
        square = width * width
        pair = paths.previous()  # the step's type: from × width + to fits it
        pair *= width
        pair += paths.step
        used = paths.length > 0
        last = (paths.first + paths.length - 1)[used]
        ends = paths.step[last] * width + paths.code(END)
        if square <= 1 << 22:
            seen = chunked_bincount(pair, square) > 0
            seen[ends] = True
            codes = np.flatnonzero(seen)
            lookup = np.zeros(square, dtype=column_type(len(codes)))
            lookup[codes] = np.arange(len(codes))
            return cls(codes, lookup[pair], lookup[ends])
        codes = np.unique(np.concatenate([pair, ends]))
        kind = column_type(len(codes))
        column = np.searchsorted(codes, pair).astype(kind)
        return cls(codes, column, np.searchsorted(codes, ends).astype(kind))

    def totals(self) -> np.ndarray:
        """Per column, its transitions over every session (an END per session with
        requests): the trace's totals, what the benches check against the model's."""
        moved = np.bincount(self.column, minlength=len(self.codes))
        moved += np.bincount(self.end_column, minlength=len(self.codes))
        return moved

    def vocabulary(self, labels: list[str]) -> list[tuple[str, str]]:
        width = len(labels)
        return [(labels[c // width], labels[c % width]) for c in self.codes.tolist()]

    def counts(self, paths: SessionPaths, extra: np.ndarray | None = None) -> sparse.csr_matrix:
        """Per session, its count of each transition: a canonical CSR matrix (each row's
        columns sorted, none repeated), counts exact in float. With `extra` (a value per
        session), one more column holds it, left out where it is 0. Each session's row is
        its requests' columns, its end's and its extra, summed by scipy row by row (no
        sort of every request's code, nor a COO matrix's pass over the rows)."""
        return self.rows(paths, 0, len(paths.length), extra)

    def rows(
        self, paths: SessionPaths, lo: int, hi: int, extra: np.ndarray | None = None
    ) -> sparse.csr_matrix:
        """`counts(paths, extra)[lo:hi]`, bit for bit, from those sessions' requests only
        (each row is summed on its own: no row depends on another)."""
        bounds, ends = paths.bounds, paths.ends
        return _count_rows(
            paths.length[lo:hi],
            self.column[bounds[lo] : bounds[hi]],
            self.end_column[ends[lo] : ends[hi]],
            None if extra is None else extra[lo:hi],
            len(self.codes),
        )

    def take(
        self, paths: SessionPaths, sessions: np.ndarray, extra: np.ndarray | None = None
    ) -> sparse.csr_matrix:
        """`counts(paths, extra)[sessions]`, bit for bit, from those sessions' requests
        only."""
        length = paths.length[sessions]
        firsts = paths.bounds[sessions]
        # Each chosen session's requests, one after the other: its first, then +1, +2, ...
        at = np.repeat(firsts - run_bounds(length)[:-1], length)
        at += np.arange(len(at))
        used = length > 0
        return _count_rows(
            length,
            self.column[at],
            self.end_column[paths.ends[sessions[used]]],
            None if extra is None else extra[sessions],
            len(self.codes),
        )


def _count_rows(
    length: np.ndarray,
    requests: np.ndarray,
    ends: np.ndarray,
    extra: np.ndarray | None,
    columns: int,
) -> sparse.csr_matrix:
    """`Pairs.counts`' matrix of sessions of `length` requests whose columns are
    `requests` (theirs one after the other) and `ends` (one per session with requests),
    and `extra` per session (None: no extra column)."""
    from scipy import sparse

    used = length > 0
    extra_at = np.zeros(len(used), dtype=bool) if extra is None else extra != 0
    per_row = length + used + extra_at
    indptr = np.zeros(len(per_row) + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    index = np.int32 if indptr[-1] < 1 << 31 else np.int64
    indptr = indptr.astype(index)
    # Each row: its requests' columns, then its end's, then its extra's (if any).
    kind = np.zeros(int(indptr[-1]), dtype=np.int8)
    kind[indptr[1:][extra_at] - 1] = 2
    kind[(indptr[1:] - 1 - extra_at)[used]] = 1
    indices = np.empty(len(kind), dtype=index)
    indices[kind == 0] = requests
    indices[kind == 1] = ends
    data = np.ones(len(kind))
    if extra is not None:
        indices[kind == 2] = columns
        data[kind == 2] = extra[extra_at]
        columns += 1
    del kind
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(per_row), columns))
    matrix.sum_duplicates()
    return matrix


def transition_counts(paths: SessionPaths) -> tuple[sparse.csr_matrix, list[tuple[str, str]]]:
    """Per session, its counts of each transition (START→first, a→b, last→END), as a
    sparse matrix over the sorted vocabulary of transitions."""
    pairs = Pairs.of(paths)
    return pairs.counts(paths), pairs.vocabulary(paths.labels)


def counted(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `codes` (0 <= code < size), sorted, and how often each occurs: by
    `np.bincount` while `size` bins are few, else by a sort."""
    if size > 1 << 22:
        distinct, counts = np.unique(codes, return_counts=True)
        return distinct, counts
    every = np.bincount(codes, minlength=size)
    distinct = np.flatnonzero(every)
    return distinct, every[distinct]


def grouped(codes: np.ndarray, size: int) -> np.ndarray:
    """The stable order of `codes` (0 <= code < size): a radix sort when they fit 16 bits."""
    small = codes.astype(np.uint16) if size <= 1 << 16 else codes
    return np.argsort(small, kind="stable")


@dataclass(frozen=True)
class Pauses:
    """The pauses inside sessions (finite, after a request of the same session), session
    by session, and each session's tempo from them. Which requests they are, not a copy
    of them: `pause` and `column` are made when asked (real10M's child: 8 B a pause and
    its column's 1-4 not held while the sessions are clustered)."""

    think: np.ndarray
    """Every request's `think_s` (`SessionPaths`'s, not a copy)."""
    within: np.ndarray
    """Per request, whether its think is a pause."""
    columns: np.ndarray
    """Per request, its transition's column (`Pairs.column`)."""
    per_session: np.ndarray
    """Per session, its pauses."""
    tempo: np.ndarray
    """Per session, its tempo (NaN without a positive pause)."""

    @property
    def pause(self) -> np.ndarray:
        """The pauses (s), session by session, each session's in order (a new array)."""
        return np.asarray(self.think[self.within])

    @property
    def column(self) -> np.ndarray:
        """Per pause, its transition's column (`Pairs`; a new array)."""
        return np.asarray(self.columns[self.within])

    @classmethod
    def of(cls, paths: SessionPaths, pairs: Pairs) -> Pauses:
        """A session's tempo is the shrunk geometric mean of its positive pauses' ratios to
        the median positive pause of their transition over the trace."""
        think = paths.think_s
        within = np.isfinite(think)
        within[paths.first] = False
        pauses = int(np.count_nonzero(within))
        # Every request but the first of each (nonempty) session: the pauses' layout is the
        # requests' with one value per session less (no index array of them).
        n = len(paths.length)
        every = n > 0 and pauses == len(think) - n and bool((paths.length > 0).all())
        per_session = paths.length - 1 if every else count_per_session(within, paths)
        column, pause = pairs.column[within], think[within]
        with np.errstate(invalid="ignore"):
            positive = pause > 0
        if every and positive.all():  # (as in most traces)
            median = _medians(pause, column, len(pairs.codes))
            del column, pause, positive
            sums, n_logs = _log_ratio_sums(paths, pairs, median), per_session
        else:
            kept, kept_column = pause[positive], column[positive]
            del column, pause, positive
            ratio = _medians(kept, kept_column, len(pairs.codes))[kept_column]
            np.divide(kept, ratio, out=ratio)
            del kept, kept_column
            n_logs = count_per_session(within & (think > 0), paths)
            sums = group_sums(np.log(ratio, out=ratio), n_logs)
        tempo = np.full(len(paths.length), np.nan)
        has = n_logs > 0
        tempo[has] = np.exp(sums[has] / (n_logs[has] + TEMPO_SHRINK))
        return cls(think, within, pairs.column, per_session, tempo)

    def sums(self, paths: SessionPaths) -> np.ndarray:
        """Per session, the sum of its pauses, NaN as 0: `np.bincount`'s (a running sum
        from 0.0, in order) of `np.nan_to_num(think_s)` by session."""
        think, n = paths.think_s, len(paths.length)
        if int(self.per_session.sum()) == len(think) - n and np.isnan(think[paths.first]).all():
            # Every value but the pauses is NaN: its 0 added to a running sum from 0.0
            # (never -0.0) changes nothing, so the pauses' own sums are those sums.
            return _running_sums(self.pause, self.per_session)
        return np.bincount(paths.session, weights=np.nan_to_num(think, nan=0.0), minlength=n)

    def scaled(self) -> np.ndarray:
        """Per pause, divided by its session's tempo (1 for a session without one): the
        pauses made (`pause`) and divided in place SESSION_CHUNK sessions at a time (no
        second float64 array of every pause, nor a per-pause tempo)."""
        pause = self.pause
        tempo = np.where(np.isnan(self.tempo), 1.0, self.tempo)
        n, bounds = len(tempo), run_bounds(self.per_session)
        for lo in range(0, n, SESSION_CHUNK):
            hi = min(lo + SESSION_CHUNK, n)
            part = pause[bounds[lo] : bounds[hi]]
            np.divide(part, np.repeat(tempo[lo:hi], self.per_session[lo:hi]), out=part)
        return pause


def _log_ratio_sums(paths: SessionPaths, pairs: Pairs, median: np.ndarray) -> np.ndarray:
    """Per session, `group_sums` of the logs of its pauses' ratios to their transition's
    `median`, when every request but a session's first is a positive pause: the array
    `group_sums` pads (a 0 before each session's values) is then the requests' own layout,
    so the ratios are computed there (SESSION_CHUNK sessions at a time: `np.add.reduceat`
    sums each session's part alone), the sessions' first requests made the 0s."""
    n, bounds = len(paths.length), paths.bounds
    sums = np.empty(n)
    for lo in range(0, n, SESSION_CHUNK):
        hi = min(lo + SESSION_CHUNK, n)
        a, b = bounds[lo], bounds[hi]
        ratio = median[pairs.column[a:b]]
        with np.errstate(invalid="ignore", divide="ignore"):  # the first requests': replaced
            np.divide(paths.think_s[a:b], ratio, out=ratio)
            np.log(ratio, out=ratio)
        heads = paths.first[lo:hi] - a
        ratio[heads] = 0.0
        sums[lo:hi] = np.add.reduceat(ratio, heads)
    return sums


def _medians(pause: np.ndarray, column: np.ndarray, columns: int) -> np.ndarray:
    """Per column, np.median of its (positive) pauses; 0 without one."""
    median = group_medians(pause, column, columns)
    if median is None:
        raise ValueError("pauses with a sign bit have no median here")
    return median


def count_per_session(mask: np.ndarray, paths: SessionPaths) -> np.ndarray:
    """How many requests of each session `mask` holds (runs of requests: no session
    number per request)."""
    if not (paths.length > 0).all():
        return np.bincount(paths.session[mask], minlength=len(paths.length))
    return np.add.reduceat(mask, paths.first, dtype=np.int64)


def session_tempo(paths: SessionPaths) -> tuple[np.ndarray, np.ndarray]:
    """Each session's tempo (NaN without pauses) and every pause divided by its session's
    tempo. A pause counts when it is positive and follows a request of the same session;
    its ratio is to the median pause of its transition over the trace."""
    tempo = Pauses.of(paths, Pairs.of(paths)).tempo
    return tempo, scaled_pauses(paths, tempo)


def _running_sums(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """`np.bincount` by group of consecutive groups of `values` (group g holds sizes[g]):
    its running sum of each group from 0.0, in order, SESSION_CHUNK groups at a time (no
    group number per value)."""
    n, bounds = len(sizes), run_bounds(sizes)
    out = np.empty(n)
    for lo in range(0, n, SESSION_CHUNK):
        hi = min(lo + SESSION_CHUNK, n)
        group = np.repeat(np.arange(hi - lo), sizes[lo:hi])
        out[lo:hi] = np.bincount(group, values[bounds[lo] : bounds[hi]], minlength=hi - lo)
    return out


def run_bounds(sizes: np.ndarray) -> np.ndarray:
    """Where each run of consecutive values starts (run g holds sizes[g]), then their
    count: len(sizes) + 1 int64 values from 0."""
    bounds = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    return bounds


def scaled_pauses(paths: SessionPaths, tempo: np.ndarray) -> np.ndarray:
    """Every pause divided by its session's tempo (1 for a session without one)."""
    tempo = np.where(np.isnan(tempo), 1.0, tempo)
    return np.asarray(paths.think_s / np.repeat(tempo, paths.length), dtype=float)


def group_sums(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """`np.sum` of each consecutive group of `values` (group g holds sizes[g] of them),
    bit for bit. `np.sum` adds its values to 0 by pairwise blocks; `np.add.reduceat` adds a
    group's first value to the pairwise sum of the rest; so each group is given a 0 first,
    and one `reduceat` over the whole gives every group's `np.sum`."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if not len(sizes):
        return np.zeros(0)
    heads = np.cumsum(sizes) - sizes + np.arange(len(sizes))
    padded = np.zeros(len(values) + len(sizes))
    rest = np.ones(len(padded), dtype=bool)
    rest[heads] = False
    padded[rest] = values
    return np.asarray(np.add.reduceat(padded, heads), dtype=float)
