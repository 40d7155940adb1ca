"""The light columns put into `ts` order (issue 15): the stable sort of the times, started
on a pool while the caller ranks the strings, then every column gathered into that order,
each into memory a column before it let go (models/light_columns.py reads them)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Collection
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np

from .string_codes import CHUNK_ROWS

SORT_ROWS = 16_000
"""Rows of a piece of the times sorted on its own (125 KiB of keys: sorted in cache). Its
8-byte temporaries (the radix sort's positions) stay under glibc's 128 KiB mmap threshold,
and their memory is reused: with 64 k-row pieces it came back as fresh pages piece after
piece (real10M's read 65-114 k minor faults, 42-47 k this way; bench/README.md, read17)."""


class TimeSort:
    """The stable order of `ts[:n]`, started on `pool` and its `threads` threads (numpy's
    sort lets go of the GIL): none when the times are in order; else, when the span of
    the times leaves room for the scan positions in 63 bits, `ts` is overwritten in place
    by keys `(ts - first) << shift | position`, sorted piece by piece on the pool, the
    pieces merged by stable sorts (timsort: a trace read in roughly time order is runs
    that barely overlap). At 10 M requests 0.5 CPU s, most of it on both cores, against
    0.8 s on one for `np.argsort`, and the sorted keys give the times without a gather.
    Else (times too far apart) `np.argsort`, stable."""

    def __init__(self, ts: np.ndarray, n: int, pool: Executor, threads: int = 2) -> None:
        times = ts[:n]
        self.keys: np.ndarray | None = None
        self.shift = max(1, (n - 1).bit_length())
        self._sorting: Future[np.ndarray | None] | None = None
        if _ascending(times):
            self.first = int(times[0]) if n else 0
            return
        self.first = int(times.min())
        if (int(times.max()) - self.first) >> (63 - self.shift):
            self._sorting = pool.submit(np.argsort, times, kind="stable")
            return
        self.keys = times
        starts = range(0, n, SORT_ROWS)
        pieces = [
            pool.submit(_keyed, times[at : at + SORT_ROWS], self.first, self.shift, at)
            for at in starts
        ]
        # The pieces merged in `threads` runs at once, then the runs (a stable sort of
        # sorted runs: timsort merges them, one pass where they barely overlap).
        cuts = [len(pieces) * i // threads for i in range(threads + 1)]
        runs = [
            pool.submit(_merged, times[starts[lo] : starts[hi - 1] + SORT_ROWS], pieces[lo:hi])
            for lo, hi in itertools.pairwise(cuts)
            if hi > lo
        ]
        self._sorting = pool.submit(_merged, times, runs)

    def order(self) -> np.ndarray | None:
        """The stable order as positions (int64) when sorted by `np.argsort`; None when
        in order or sorted as keys (`keys`, sorted once this returns)."""
        return None if self._sorting is None else self._sorting.result()


RADIX_DIGITS = 3
"""A piece whose times span at most this many 16-bit digits is sorted by a stable radix
argsort of each digit (numpy's for 16-bit values), least significant first; a wider one
by `ndarray.sort`. On this machine's CPU (AMD EPYC) numpy's AVX-512 quicksort took
37-45 ns a key of 64 k-row pieces, no faster than its heapsort; the two digits of a
synthetic file's 27-bit span 20-30 ns with the keys' making (bench/README.md, read17)."""


def _keyed(times: np.ndarray, first: int, shift: int, at: int) -> None:
    """`times` (of scan positions from `at` on; not empty) as sorted keys, in place."""
    low = int(times.min())
    span = int(times.max()) - low
    # The 16-bit digits of each time's offset in the piece, least significant first: the
    # keys' positions ascend in scan order, so sorting them stably by time orders them.
    # (`SORT_ROWS` keeps each temporary small enough for malloc to reuse its memory.)
    count = -(-span.bit_length() // 16)
    digits = []
    if count <= RADIX_DIGITS:
        local = times - low
        for _ in range(count):
            digits.append(local.astype(np.uint16))
            local >>= 16
        del local
    times -= first
    times <<= shift
    times += at  # the low `shift` bits are 0: adding the positions sets them
    times += _counting(SORT_ROWS)[: len(times)]
    if not digits:
        if span:
            times.sort()  # keys are distinct: any sort is stable
        return
    order = np.argsort(digits[0], kind="stable")
    for digit in digits[1:]:
        order = order[np.argsort(digit[order], kind="stable")]
    times[:] = times[order]


@functools.lru_cache(maxsize=2)
def _counting(rows: int) -> np.ndarray:
    """0, 1, ..., rows - 1, read only: one array for every piece of `rows` or fewer."""
    counting = np.arange(rows, dtype=np.int64)
    counting.flags.writeable = False
    return counting


def _merged(keys: np.ndarray, pieces: list[Future[None]]) -> None:
    """`keys`, sorted runs once `pieces` are done, sorted (their runs merged)."""
    for piece in pieces:
        piece.result()
    keys.sort(kind="stable")


def in_time_order(
    n: int,
    sort: TimeSort,
    numbers: dict[str, np.ndarray],
    codes: dict[str, np.ndarray],
    status_dtype: type[np.floating[Any]] | None = None,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The first time, then seconds since it, durations, statuses (as `status_dtype`,
    default theirs), scan positions and the string columns' codes of the first `n` rows
    in `ts` order (ties in scan order), from `numbers` (ts, duration, status: ts as `sort`
    left it) and `codes`, emptied as read."""
    duration_ms, status, spare = numbers_in_time_order(n, sort, numbers, status_dtype)
    t_s, ordered, row = codes_in_time_order(n, sort, numbers.pop("ts"), codes, spare)
    return sort.first, t_s, duration_ms, status, row, ordered


def numbers_in_time_order(
    n: int,
    sort: TimeSort,
    numbers: dict[str, np.ndarray],
    status_dtype: type[np.floating[Any]] | None = None,
    missing: Collection[str] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """`in_time_order`'s durations and statuses, popped from `numbers` (`ts` is left for
    `codes_in_time_order`), and the statuses' memory, read no more (None when in order
    or not gathered): its codes are gathered into it. `missing`: those of "duration" and
    "status" whose every value is NaN (null), the same in any order: not gathered."""
    duration, status = (numbers.pop(name) for name in ("duration", "status"))
    want = np.dtype(status_dtype or status.dtype)
    # Into `ts` order, a column at a time, each gathered into the array the column before
    # it let go: at 10 M requests a fresh array costs the kernel more than the gather
    # (bench/README.md, compare rounds 10 and 11). A trace read in order is not gathered,
    # nor a column all NaN (a trace of requests only): real10M's read held 127 MB more
    # for their fresh copies at its peak (bench/README.md, rd24).
    positions = _Positions(n, sort, numbers["ts"])
    if positions.none or {"duration", "status"} <= set(missing):
        statuses = _cut(status, n)
        return _cut(duration, n), statuses.astype(want, copy=False), None
    if "duration" in missing:
        duration_ms, into = _cut(duration, n), None
    else:
        duration_ms, into = positions.gather(duration, None), _own(duration, n, want.type)
    del duration
    if "status" in missing:
        return duration_ms, _cut(status, n).astype(want, copy=False), None
    ordered_status = positions.gather(status, into, want)
    return duration_ms, ordered_status, status


def codes_in_time_order(
    n: int,
    sort: TimeSort,
    ts: np.ndarray,
    codes: dict[str, np.ndarray],
    spare: np.ndarray | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """`in_time_order`'s seconds, codes (emptied from `codes`) and scan positions: each
    column's codes gathered into the memory of the one before it (the first into `spare`,
    the statuses' own), the positions into the last one's, then the seconds into the
    times' (`ts`: sorted keys are read until then)."""
    wide = n > np.iinfo(np.int32).max
    positions = _Positions(n, sort, ts)
    ordered = {}
    if positions.none:
        for name in list(codes):
            ordered[name] = _cut(codes.pop(name), n)
        since = _cut(ts, n)
        del ts
        since -= sort.first
        return _seconds(since, since), ordered, np.arange(n, dtype=_row(wide))
    for name in list(codes):
        column = codes.pop(name)
        ordered[name] = positions.gather(column, _own(spare, n, column.dtype.type))
        spare = column
        del column
    row = positions.gather(None, _own(spare, n, _row(wide)), np.dtype(_row(wide)))
    del spare
    if positions.keys is not None:  # the keys read no more: the seconds into them
        t_s = _seconds_of_keys(ts, n, sort.shift)
    else:
        since = positions.gather(ts, None)
        del ts
        since -= sort.first
        t_s = _seconds(since, since)
    return t_s, ordered, row


class _Positions:
    """The scan position of each row in `ts` order, a chunk at a time: the low bits of
    the sorted keys (no array of every position is made), or `np.argsort`'s order."""

    def __init__(self, n: int, sort: TimeSort, ts: np.ndarray) -> None:
        self.n = n
        self.order = sort.order()
        self.keys = ts[:n] if self.order is None and sort.keys is not None else None
        self.none = self.order is None and self.keys is None
        """The times were in order: nothing to gather."""
        self.mask = (1 << sort.shift) - 1

    def gather(
        self, values: np.ndarray | None, out: np.ndarray | None, dtype: np.dtype | None = None
    ) -> np.ndarray:
        """`values[positions]` as `dtype` (default `values`'): into `out` when given (not
        `values`' memory); `values` None: the positions themselves."""
        kind = np.dtype(dtype or (values.dtype if values is not None else np.intp))
        out = np.empty(self.n, kind) if out is None else out
        chunk = np.empty(min(self.n, CHUNK_ROWS), np.intp)
        cast = None
        if values is not None and values.dtype != kind:
            cast = np.empty(len(chunk), values.dtype)
        for start in range(0, self.n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, self.n)
            at = self._at(start, stop, chunk)
            if values is None:
                out[start:stop] = at
            elif cast is None:
                np.take(values, at, out=out[start:stop], mode="clip")
            else:
                out[start:stop] = np.take(values, at, out=cast[: stop - start], mode="clip")
        return out

    def _at(self, start: int, stop: int, chunk: np.ndarray) -> np.ndarray:
        """The positions of rows `start` to `stop` (the keys' into `chunk`)."""
        if self.keys is not None:
            at: np.ndarray = np.bitwise_and(
                self.keys[start:stop], self.mask, out=chunk[: stop - start]
            )
            return at
        assert self.order is not None, "the times were in order: no positions to read"
        return self.order[start:stop]


def _row(wide: bool) -> type[np.signedinteger]:
    return np.int64 if wide else np.int32


def _seconds_of_keys(keys: np.ndarray, n: int, shift: int) -> np.ndarray:
    """Seconds since the first time of the first `n` sorted keys, into their memory."""
    seconds = keys.view(np.float64)
    for start in range(0, n, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n)
        seconds[start:stop] = (keys[start:stop] >> shift) / 1_000_000
    return seconds if len(keys) == n else seconds[:n].copy()


def _ascending(values: np.ndarray) -> bool:
    """Whether `values` never decrease (a chunk at a time: no array of every comparison)."""
    pairs = len(values) - 1  # value i + 1 against value i
    return all(
        not (values[start + 1 : stop + 1] < values[start:stop]).any()
        for start in range(0, max(pairs, 0), CHUNK_ROWS)
        for stop in [min(start + CHUNK_ROWS, pairs)]
    )


def _cut(values: np.ndarray, rows: int) -> np.ndarray:
    """`values[:rows]` as an array of its own: `values` when that is it (a grown array's
    room to spare is not kept alive by a view)."""
    return values if values.base is None and len(values) == rows else values[:rows].copy()


def _own(array: np.ndarray | None, rows: int, dtype: type[np.generic]) -> np.ndarray | None:
    """The memory of `array` (whose values are read no more) as `rows` values of `dtype`,
    when it is an array of its own of `rows` values of that item size; else None."""
    if array is None or array.base is not None or len(array) != rows:
        return None
    return array.view(dtype) if array.itemsize == np.dtype(dtype).itemsize else None


def gather(values: np.ndarray, at: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """`values[at]` for positions known to be in range (an order, rows of one), into `out`
    when given (of `values`' dtype and not `values` itself): `np.take` in clip mode
    writes straight into `out`, where its raise mode copies it first. Positions other
    than intp are taken a chunk at a time (`np.take` makes its indices intp)."""
    if at.dtype == np.intp:
        return np.take(values, at, out=out, mode="clip")
    out = np.empty(len(at), values.dtype) if out is None else out
    for start in range(0, len(at), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        np.take(values, at[start:stop], out=out[start:stop], mode="clip")
    return out


def _seconds(since_us: np.ndarray, into: np.ndarray | None) -> np.ndarray:
    """`since_us / 1e6` as float64, into `into` when given (it may be `since_us`' own
    memory: a chunk is divided before it is written)."""
    seconds = np.empty(len(since_us)) if into is None else into.view(np.float64)
    for start in range(0, len(since_us), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        seconds[start:stop] = since_us[start:stop] / 1_000_000
    return seconds
