"""Each request's status as a code into the trace's distinct status labels ("404",
"none" without a response), computed once per trace (issue 15): the frames compare reads
carry it as a categorical column, `STATUS_LABEL`, which the status mix, the per-endpoint
status tables and the noise floor's halves all read, instead of each sorting the status
of every request again (`np.unique`: 6.7 s of CPU at 10 M requests).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

STATUS_LABEL = "status_label"
"""The frame column: a categorical of the labels, ascending status order, "none" last."""
_SPAN = 1 << 16
"""Whole-number statuses within this range are counted into a table, not sorted."""


_CHUNK = 1 << 20
"""Statuses looked at a chunk at a time: no 8-byte temporaries of every request."""


def code_statuses(status: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """`np.unique(status, return_inverse=True)` as (codes, labels): each status's code
    into the sorted distinct values (NaN, no response, last, as "none"). Whole numbers in
    a span under 2^16 (a trace's int16 status) are counted into a table, O(n), a chunk at
    a time (codes in the smallest integer type); anything else goes to `np.unique`."""
    status = np.asarray(status).reshape(-1)
    if status.dtype not in (np.float32, np.float64):  # float32 as it is: no 8-byte copy
        status = status.astype(float)
    table = _whole_number_table(status)
    if table is None:
        distinct, inverse = np.unique(status, return_inverse=True)
        labels = ["none" if math.isnan(s) else str(int(s)) for s in distinct]
        return np.asarray(inverse, np.int64).reshape(-1), labels
    low, counts, missing = table
    present = np.flatnonzero(counts)
    rank = np.zeros(len(counts), np.int64)
    rank[present] = np.arange(present.size)
    codes = np.empty(status.size, np.min_scalar_type(present.size))
    rank = rank.astype(codes.dtype)
    for start in range(0, status.size, _CHUNK):
        part = status[start : start + _CHUNK]
        known = ~np.isnan(part)
        out = codes[start : start + _CHUNK]
        out[:] = present.size  # "none", after every status
        out[known] = rank[part[known].astype(np.int64) - low]
    labels = [str(low + int(p)) for p in present] + (["none"] if missing else [])
    return codes, labels


def _whole_number_table(status: np.ndarray) -> tuple[int, np.ndarray, bool] | None:
    """(lowest status, count of each status from it on, whether any is NaN) when every
    status but NaN is a whole number and they span under 2^16; else None."""
    low, high, missing = math.inf, -math.inf, False
    for start in range(0, status.size, _CHUNK):  # the span first
        part = status[start : start + _CHUNK]
        known = part[~np.isnan(part)]
        missing |= known.size < part.size
        if known.size:
            if not np.isfinite(known).all():
                return None
            low, high = min(low, float(known.min())), max(high, float(known.max()))
    if high < low:  # no status at all
        return 0, np.zeros(0, np.int64), missing
    if high - low >= _SPAN:
        return None
    base = int(low)
    counts = np.zeros(int(high - low) + 1, np.int64)
    for start in range(0, status.size, _CHUNK):
        part = status[start : start + _CHUNK]
        known = part[~np.isnan(part)]
        whole = known.astype(np.int64)
        if not np.array_equal(whole, known):
            return None
        counts += np.bincount(whole - base, minlength=len(counts))
    return base, counts, missing


def status_column(status: np.ndarray) -> pd.Categorical[str]:
    """`STATUS_LABEL` of requests with these statuses (float, NaN: no response)."""
    codes, labels = code_statuses(status)
    return pd.Categorical.from_codes(codes, categories=pd.Index(labels))


def status_codes(df: pd.DataFrame, small: bool = False) -> tuple[np.ndarray, list[str]]:
    """Each request's code into its distinct status labels (ascending status order,
    "none" last, every label used): the frame's `STATUS_LABEL` column when it has one,
    else computed from `status`. `small`: the codes in the smallest integer type that
    holds them (the categorical's own when every label is used: no 8-byte copy)."""
    column = df.get(STATUS_LABEL)
    if column is not None and isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        labels = [str(c) for c in column.cat.categories]
        if (codes >= 0).all():
            used = np.bincount(codes, minlength=len(labels)) > 0
            if used.all():
                return (codes if small else codes.astype(np.int64)), labels
            # A part of a trace: drop the labels it does not use (codes keep their order).
            kept = [label for label, use in zip(labels, used.tolist(), strict=True) if use]
            rank = np.cumsum(used) - 1
            return (rank.astype(codes.dtype) if small else rank)[codes], kept
    return code_statuses(status_values(df))


def status_values(df: pd.DataFrame) -> np.ndarray:
    """The `status` column as float (NaN: no response; all NaN without the column)."""
    if "status" not in df.columns:
        return np.full(len(df), np.nan)
    return np.asarray(pd.to_numeric(df["status"], errors="coerce"), dtype=float)


def status_labels(df: pd.DataFrame) -> pd.Series:
    """Each request's status code as text, "none" without a response: a categorical of
    the distinct codes the trace has (every category used), not a string per request."""
    codes, labels = status_codes(df)
    categories = pd.Index(labels)
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories), index=df.index)


def transport_errors(df: pd.DataFrame) -> np.ndarray:
    """Per request, whether a transport error was recorded (`error` not null nor empty);
    a categorical `error` is judged per category, not per request."""
    if "error" not in df.columns:
        return np.zeros(len(df), bool)
    error = df["error"]
    if isinstance(error.dtype, pd.CategoricalDtype):
        named = [str(c) != "" for c in error.cat.categories.astype(object)]
        # Code -1 (null) reads the False appended last.
        found: np.ndarray = np.asarray([*named, False], bool)[error.cat.codes.to_numpy()]
        return found
    return (error.notna() & (error.astype(object) != "")).to_numpy(bool)
