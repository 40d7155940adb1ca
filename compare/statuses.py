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


def code_statuses(status: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """`np.unique(status, return_inverse=True)` as (codes, labels): each status's code
    into the sorted distinct values (NaN, no response, last, as "none"). Whole numbers in
    a span under 2^16 (a trace's int16 status) are counted into a table, O(n); anything
    else goes to `np.unique`."""
    status = np.asarray(status, dtype=float).reshape(-1)
    missing = np.isnan(status)
    known = status[~missing]
    whole = known.astype(np.int64) if known.size and np.isfinite(known).all() else None
    if whole is None or not np.array_equal(whole, known) or np.ptp(whole) >= _SPAN:
        distinct, inverse = np.unique(status, return_inverse=True)
        labels = ["none" if math.isnan(s) else str(int(s)) for s in distinct]
        return np.asarray(inverse, np.int64).reshape(-1), labels
    low = int(whole.min())
    present = np.flatnonzero(np.bincount(whole - low))
    rank = np.zeros(int(present[-1]) + 1, np.int64)
    rank[present] = np.arange(present.size)
    codes = np.full(status.size, present.size, np.int64)  # "none", after every status
    codes[~missing] = rank[whole - low]
    labels = [str(low + int(p)) for p in present] + (["none"] if missing.any() else [])
    return codes, labels


def status_column(status: np.ndarray) -> pd.Categorical[str]:
    """`STATUS_LABEL` of requests with these statuses (float, NaN: no response)."""
    codes, labels = code_statuses(status)
    return pd.Categorical.from_codes(codes, categories=pd.Index(labels))


def status_codes(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each request's code into its distinct status labels (ascending status order,
    "none" last, every label used): the frame's `STATUS_LABEL` column when it has one,
    else computed from `status`."""
    column = df.get(STATUS_LABEL)
    if column is not None and isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy(np.int64)
        labels = [str(c) for c in column.cat.categories]
        if (codes >= 0).all():
            used = np.bincount(codes, minlength=len(labels)) > 0
            if used.all():
                return codes, labels
            # A part of a trace: drop the labels it does not use (codes keep their order).
            kept = [label for label, use in zip(labels, used.tolist(), strict=True) if use]
            return (np.cumsum(used) - 1)[codes], kept
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
