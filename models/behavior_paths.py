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

if TYPE_CHECKING:  # loaded where a model is built, not by synthesize
    import pandas as pd
    from scipy import sparse

END = "END"
# Shrinkage of a session's tempo toward 1: tempo = exp(sum of log ratios / (pauses + k)),
# so a session with one or two pauses does not get an extreme tempo from them alone.
TEMPO_SHRINK = 2.0


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
    def first(self) -> np.ndarray:
        """Per session, the index of its first request."""
        return np.asarray(np.cumsum(self.length) - self.length)

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
        used = np.flatnonzero(np.bincount(codes, minlength=len(names)))
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
    """int32 while every (from, to) pair code fits it (half the memory of int64)."""
    return np.int32 if labels * labels < 1 << 31 else np.int64


def transition_counts(paths: SessionPaths) -> tuple[sparse.csr_matrix, list[tuple[str, str]]]:
    """Per session, its counts of each transition (START→first, a→b, last→END), as a
    sparse matrix over the sorted vocabulary of transitions."""
    from scipy import sparse

    used = np.flatnonzero(paths.length > 0)
    last = (paths.first + paths.length - 1)[used]
    width, inner = len(paths.labels), len(paths.step)
    square = width * width
    kind = np.int32 if square < 1 << 31 else np.int64
    pair = np.empty(inner + len(used), dtype=kind)  # (from, to) per request, then per end
    pair[:inner] = paths.previous() * width + paths.step
    pair[inner:] = paths.step[last] * width + paths.code(END)
    # Codes follow the sorted labels, so sorted pair codes are the sorted (a, b) pairs.
    pair_codes, _ = counted(pair, square)
    labels = paths.labels
    pairs = [(labels[c // width], labels[c % width]) for c in pair_codes.tolist()]
    if square <= 1 << 22:
        lookup = np.zeros(square, dtype=np.int32)
        lookup[pair_codes] = np.arange(len(pair_codes))
        column = lookup[pair]
    else:
        column = np.searchsorted(pair_codes, pair)
    del pair
    row = np.concatenate([paths.session, used.astype(paths.session.dtype)])
    # scipy sums the repeated (session, pair) entries row by row, each row's columns
    # sorted: no sort of every request's code (10 M requests: 0.9 -> 0.3 s; the same
    # matrix, its counts exact in float).
    matrix = sparse.csr_matrix(
        (np.ones(len(row)), (row, column)), shape=(len(paths.length), len(pairs))
    )
    return matrix, pairs


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


def session_tempo(paths: SessionPaths) -> tuple[np.ndarray, np.ndarray]:
    """Each session's tempo (NaN without pauses) and every pause divided by its session's
    tempo. A pause counts when it is positive and follows a request of the same session;
    its ratio is to the median pause of its transition over the trace."""
    within = np.ones(len(paths.step), dtype=bool)
    within[paths.first] = False
    think = paths.think_s
    with np.errstate(invalid="ignore"):
        counted = np.flatnonzero(within & np.isfinite(think) & (think > 0))
    width = len(paths.labels)
    del within
    n_logs = np.bincount(paths.session[counted], minlength=len(paths.length))
    pair = paths.previous()[counted] * width + paths.step[counted]
    pause = think[counted]
    del counted
    by_pair = grouped(pair, width * width)
    grouped_pairs = pair[by_pair]
    starts = np.ones(len(pair), dtype=bool)
    starts[1:] = grouped_pairs[1:] != grouped_pairs[:-1]
    first = np.flatnonzero(starts)
    pairs, size = grouped_pairs[first], np.diff(np.append(first, len(pair)))
    del grouped_pairs, starts
    # np.median's value: the middle one, or the mean of the two middle ones (order
    # statistics of each pair's pauses: a partition, not a sort of every pause).
    median = np.empty(len(pairs))
    for i, (start, n) in enumerate(zip(first.tolist(), size.tolist(), strict=True)):
        middle = np.partition(pause[by_pair[start : start + n]], [(n - 1) // 2, n // 2])
        median[i] = (middle[(n - 1) // 2] + middle[n // 2]) / 2
    del by_pair
    if width * width <= 1 << 22:  # each pause's median by its pair code, not a search
        of_pair = np.zeros(width * width)
        of_pair[pairs] = median
        logs = np.log(pause / of_pair[pair])
    else:
        logs = np.log(pause / median[np.searchsorted(pairs, pair)])
    del pair, pause
    tempo = np.full(len(paths.length), np.nan)
    has = n_logs > 0
    tempo[has] = np.exp(group_sums(logs, n_logs)[has] / (n_logs[has] + TEMPO_SHRINK))
    del logs
    scaled = think / np.repeat(np.where(has, tempo, 1.0), paths.length)
    return tempo, scaled


def group_sums(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """`np.sum` of each consecutive group of `values` (group g holds sizes[g] of them),
    bit for bit: numpy sums a row by pairwise blocks, which `np.add.reduceat` (first value,
    then the rest) does not repeat. Rows of one size are summed together as a matrix."""
    out = np.zeros(len(sizes))
    starts = np.cumsum(sizes) - sizes
    by_size = np.argsort(sizes, kind="stable")
    ordered = sizes[by_size]
    cuts = np.flatnonzero(np.diff(ordered)) + 1
    for group in np.split(by_size, cuts):
        size = int(sizes[group[0]]) if len(group) else 0
        if size:
            out[group] = values[starts[group][:, None] + np.arange(size)].sum(axis=1)
    return out
