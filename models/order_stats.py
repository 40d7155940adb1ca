"""Order statistics of many groups of values at once, and numpy's quantiles and medians
from them, bit for bit, without sorting or partitioning each group's values.

A non-negative float's bits, read as an integer, grow with it. So one `np.bincount` of
(group, leading bits) counts each group's values by narrow ranges of value; the range
holding a wanted rank is found from the counts, and only the values in the wanted ranges
(a small part) are sorted; where many values share the wanted ranges (ties: a script's
fixed delay, requests sent at once), each range's values are partitioned at its wanted
ranks instead (`np.partition`: linear however many are alike). The value at a rank is the
one a sort would put there, so the quantiles, interpolated as `np.quantile`
interpolates (method "linear"), are its own to the bit (tests/models/test_order_stats.py).
Values with a sign bit (negative numbers, -0.0) are refused: the caller partitions them.
One quantile of one array with NaNs in it (the sessions' think times): nan_quantiles.py.
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 16
"""Values a key or count is computed for at a time (each temporary 512 KiB: in cache)."""
BUCKETS = 1 << 12
"""Ranges of value per group (fewer when the groups are many: the counts stay small)."""
_MAX_BINS = 1 << 23
SORT_LIMIT = 1 << 16
"""Values of the wanted ranges sorted at once at most; more are partitioned range by range
(stretch1M_x8's think times, 7 of 8 the same 1 ms: a 7.5 M-value sort, 2.6 s)."""


def order_statistics(
    values: np.ndarray, group: np.ndarray, groups: int, wanted: np.ndarray, ranks: np.ndarray
) -> np.ndarray | None:
    """For each i, the value of rank `ranks[i]` (0: the smallest) among the `values` of
    group `wanted[i]` (`group`: each value's, 0 <= group < groups; the ranks must exist).
    None when a value has its sign bit set (the bits would not order them)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    if not len(ranks):
        return np.zeros(0)
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    low, high = int(bits.min()), int(bits.max())
    if low < 0:
        return None
    buckets = max(1, min(BUCKETS, _MAX_BINS // max(groups, 1)))
    shift = max(0, (high - low).bit_length() - (buckets - 1).bit_length())
    width = ((high - low) >> shift) + 1
    key = _bin_keys(bits, low, shift, group, width, groups * width)
    # Counted by `np.add.at`: `np.bincount` would first copy 32-bit keys to 64 bits.
    counts = np.zeros(groups * width, dtype=np.int64)
    np.add.at(counts, key, 1)
    del bits
    ends = np.cumsum(counts)  # values in the bins up to each bin
    before = ends - counts  # values in the bins before each bin
    group_start = before[np.arange(groups) * width]
    target = group_start[np.asarray(wanted, dtype=np.int64)] + ranks
    # The bin of each wanted rank: the last bin starting at or before it.
    bins = np.searchsorted(ends, target, side="right")
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[bins] = True
    picked = np.flatnonzero(chosen[key])
    kept = np.unique(bins)
    # Each picked value's chosen bin, numbered 0.. in the bins' order (a lookup, not a
    # search per value).
    number = np.zeros(len(counts), dtype=np.int32 if len(kept) < 1 << 31 else np.int64)
    number[kept] = np.arange(len(kept))
    sub_bin = number[key[picked]]
    del key, chosen, number
    sub = np.ascontiguousarray(values, dtype=np.float64)[picked]
    found = _ranked(sub, sub_bin, counts[kept], np.searchsorted(kept, bins), target - before[bins])
    return np.asarray(found, dtype=np.float64)


def _ranked(
    values: np.ndarray, bin_of: np.ndarray, sizes: np.ndarray, wanted: np.ndarray, ranks: np.ndarray
) -> np.ndarray:
    """For each i, the value of rank `ranks[i]` among the `values` of bin `wanted[i]`
    (`bin_of`: each value's, numbered 0.. as `sizes` counts them). Sorted by (bin, value)
    when few (`SORT_LIMIT`) or the bins many; else grouped by bin (a stable sort of 16-bit
    bin numbers: numpy's radix sort) and each bin's values partitioned at its ranks."""
    starts = np.cumsum(sizes) - sizes
    if len(values) <= SORT_LIMIT or len(sizes) > 1 << 16:
        ordered = values[np.lexsort((values, bin_of))]
        return np.asarray(ordered[starts[wanted] + ranks])
    grouped = values[np.argsort(bin_of.astype(np.uint16), kind="stable")]
    found = np.empty(len(wanted), dtype=np.float64)
    by_bin = np.argsort(wanted, kind="stable")
    edges = np.flatnonzero(np.diff(wanted[by_bin])) + 1
    for asked in np.split(by_bin, edges):
        b = int(wanted[asked[0]])
        kth = ranks[asked]
        part = np.partition(grouped[starts[b] : starts[b] + sizes[b]], np.unique(kth))
        found[asked] = part[kth]
    return found


def _bin_keys(
    bits: np.ndarray, low: int, shift: int, group: np.ndarray, width: int, bins: int
) -> np.ndarray:
    """Per value, group × width + (bits - low) >> shift (< `bins`): one new array, 32-bit
    where `bins` fit (real10M's 9 M pauses: 36 MB less on the behaviors' peak), computed
    CHUNK values at a time in 64 bits (the whole-length temporaries were fresh memory the
    kernel zeroes: ~0.1 s each at 9 M values on this VM)."""
    key = np.empty(len(bits), dtype=np.int32 if bins <= 1 << 31 else np.int64)
    part = np.empty(min(CHUNK, len(bits)), dtype=np.int64)
    for start in range(0, len(bits), CHUNK):
        stop = min(start + CHUNK, len(bits))
        at = part[: stop - start]
        np.subtract(bits[start:stop], low, out=at)
        at >>= shift
        at += group[start:stop].astype(np.int64) * width
        key[start:stop] = at
    return key


def chunked_bincount(codes: np.ndarray, size: int) -> np.ndarray:
    """`np.bincount(codes, minlength=size)` (int64 counts) CHUNK codes at a time: bincount
    casts codes of a narrower type to int64 first, a whole-length copy, here a small one
    (codes: 0 <= code < size; a `size` over CHUNK is counted whole)."""
    if codes.dtype == np.intp or len(codes) <= CHUNK or size > CHUNK:
        return np.bincount(codes, minlength=size)
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(codes), CHUNK):
        counts += np.bincount(codes[start : start + CHUNK], minlength=size)
    return counts


def quantile_points(sizes: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For groups of `sizes` values (each > 0) and quantiles `q`: the ranks `np.quantile`
    reads (below, above) and its interpolation weight, each of shape (groups, len(q))."""
    sizes = np.asarray(sizes, dtype=np.int64)
    virtual = (sizes - 1)[:, None] * np.asarray(q, dtype=np.float64)[None, :]
    below = np.floor(virtual)
    above = below + 1
    past = virtual >= (sizes - 1)[:, None]
    below[past] = -1
    above[past] = -1
    gamma = virtual - below
    last = np.broadcast_to((sizes - 1)[:, None], virtual.shape)
    lo = np.where(below < 0, last, below).astype(np.int64)
    hi = np.where(above < 0, last, above).astype(np.int64)
    return lo, hi, gamma


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`np.quantile`'s interpolation between the values below and above (its `_lerp`)."""
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return np.asarray(out, dtype=float)


def group_quantiles(
    values: np.ndarray,
    group: np.ndarray,
    groups: int,
    wanted: np.ndarray,
    q: np.ndarray,
    sizes: np.ndarray | None = None,
) -> np.ndarray | None:
    """`np.quantile(values[group == g], q)` for each g in `wanted` (each with values), as
    rows; None when `order_statistics` refuses the values. `sizes`: each group's count of
    values, when known."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if sizes is None:
        sizes = chunked_bincount(group, groups)
    sizes = sizes[wanted]
    lo, hi, gamma = quantile_points(sizes, q)
    rows = np.repeat(wanted, lo.shape[1])
    found = order_statistics(
        values,
        group,
        groups,
        np.concatenate([rows, rows]),
        np.concatenate([lo.ravel(), hi.ravel()]),
    )
    if found is None:
        return None
    below, above = found[: lo.size].reshape(lo.shape), found[lo.size :].reshape(lo.shape)
    return lerp(below, above, gamma)


def group_medians(values: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray | None:
    """`np.median(values[group == g])` for every group (0 for a group without values);
    None when `order_statistics` refuses the values."""
    sizes = chunked_bincount(group, groups)
    wanted = np.flatnonzero(sizes)
    n = sizes[wanted]
    found = order_statistics(
        values, group, groups, np.concatenate([wanted, wanted]),
        np.concatenate([(n - 1) // 2, n // 2]),
    )  # fmt: skip
    if found is None:
        return None
    median = np.zeros(groups)
    median[wanted] = (found[: len(wanted)] + found[len(wanted) :]) / 2
    return median
