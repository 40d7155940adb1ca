"""Sessions: requests grouped by session key and split at an inactivity timeout.

Adds `session_id` (0.. in order of session start), `seq` (0.. within the session) and
`think_s` (pause before this request: from the end of the previous response, or from the
previous request's start when durations are unknown; NaN for a session's first request).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .nan_quantiles import nan_median

DEFAULT_SESSION_TIMEOUT_S = 30 * 60.0
AUTH_FAILED = 401


def failed_keys(key_index: np.ndarray, status: np.ndarray, keys: int) -> np.ndarray:
    """Per key code (0..keys-1), whether every request of it failed auth. The keys'
    requests are counted only when some failed (most traces: one pass over the statuses,
    not two weighted counts of every key)."""
    failed = status == AUTH_FAILED
    if not failed.any():
        return np.zeros(keys, dtype=bool)
    failed_rows = np.bincount(key_index[failed], minlength=keys)
    return np.asarray(failed_rows == np.bincount(key_index, minlength=keys)) & (failed_rows > 0)


def join_failed_credentials(
    keys: np.ndarray, t_s: np.ndarray, status: np.ndarray, conn: np.ndarray
) -> np.ndarray:
    """Session keys with each key whose requests all failed auth (401: a wrong password
    the client then corrects) replaced by the key the same connection carries next that
    did not: one client, one session. A failed key with no such key after it on its
    connection (a stranger, not a typo) keeps its own; rows without a connection
    (null `conn`) never join."""
    keys = np.asarray(keys)
    codes, key_index = np.unique(keys, return_inverse=True)
    key_index = key_index.ravel()
    failed = failed_keys(key_index, status, len(codes))
    if not failed.any():
        return keys
    frame = pd.DataFrame({"key": key_index, "t": t_s, "conn": conn})
    frame = frame[frame["conn"].notna()].sort_values(["conn", "t"], kind="stable")
    good = frame["key"].where(~failed[frame["key"].to_numpy()])
    # The next good key on the same connection, from each row on.
    following = good.groupby(frame["conn"], sort=False).bfill()
    last = frame[failed[frame["key"].to_numpy()]].groupby("key", sort=False).tail(1)
    target = following.loc[last.index].dropna().astype(np.int64)
    mapping = np.arange(len(codes))
    mapping[last.loc[target.index, "key"].to_numpy()] = target.to_numpy()
    return codes[mapping[key_index]]


def joined_key_codes(
    key: np.ndarray, t_s: np.ndarray, status: np.ndarray, conn: np.ndarray, keys: int
) -> np.ndarray:
    """`join_failed_credentials` of key codes (in 0..keys-1) with numpy: `key` with each
    code whose requests all failed auth replaced by the code its connection carries next
    that did not (`key` itself when no key failed throughout). `conn`: each request's
    connection as an integer ranked as pandas sorts the connections' values (the same
    order; -1: none, a row that never joins; the rows of connections no failed key's
    request is on may be given -1 too: they take no part). The same answer to the bit: the rows with
    a connection in (conn, t, position) order (pandas' stable sort of `key`'s order by
    conn and t), each failed key's last such row, and the first row after it on its
    connection whose key did not fail."""
    failed = failed_keys(key, status, keys)
    if not failed.any():
        return key
    rows = np.flatnonzero(conn >= 0)
    rows = rows[np.lexsort((t_s[rows], conn[rows]))]  # (stable: ties by position)
    in_order, on = key[rows], conn[rows]
    bad = failed[in_order]
    del rows
    n = len(in_order)
    at = np.arange(n)
    # The first row at or after each whose key did not fail (n: none), on any connection.
    good_at = np.where(bad, n, at)
    following = np.minimum.accumulate(good_at[::-1])[::-1]
    # Each failed key's last row (-1: none with a connection).
    last = np.full(keys, -1, dtype=np.int64)
    np.maximum.at(last, in_order[bad], at[bad])
    joins = np.flatnonzero(last >= 0)
    from_row = last[joins]
    to_row = following[from_row]
    found = to_row < n
    joins, from_row, to_row = joins[found], from_row[found], to_row[found]
    same = on[to_row] == on[from_row]  # (else the next good row is another connection's)
    mapping = np.arange(keys, dtype=key.dtype)
    mapping[joins[same]] = in_order[to_row[same]]
    joined: np.ndarray = mapping[key]
    return joined


def sessionize(df: pd.DataFrame, timeout_s: float = DEFAULT_SESSION_TIMEOUT_S) -> pd.DataFrame:
    """`df` (from `requests_frame`) with session_id, seq and think_s; sorted by
    (session_id, seq). A gap longer than `timeout_s` between two requests of one key
    starts a new session. With `status` and `conn` columns, a key whose requests all
    failed auth joins its connection's next key (`join_failed_credentials`)."""
    if timeout_s <= 0:
        raise ValueError("session timeout must be > 0")
    if "status" in df.columns and "conn" in df.columns:
        df = df.assign(
            session_key=join_failed_credentials(
                df["session_key"].to_numpy(),
                df["t_s"].to_numpy(float),
                df["status"].to_numpy(float),
                df["conn"].to_numpy(object),
            )
        )
    out = df.sort_values(["session_key", "t_s"], kind="stable").copy()
    duration_s = (
        out["duration_ms"].fillna(0.0).to_numpy(float) / 1000.0
        if ("duration_ms" in out.columns)
        else np.zeros(len(out))
    )
    t = out["t_s"].to_numpy(float)
    keys = out["session_key"].to_numpy(object)
    same_key = np.zeros(len(out), dtype=bool)
    same_key[1:] = keys[1:] == keys[:-1]
    prev_end = np.empty(len(out))
    prev_end[0] = np.nan
    prev_end[1:] = t[:-1] + duration_s[:-1]
    gap_start = np.full(len(out), np.nan)
    gap_start[1:] = t[1:] - t[:-1]
    new_session = ~same_key | (gap_start > timeout_s)
    think = np.where(new_session, np.nan, np.maximum(t - prev_end, 0.0))
    local_id = np.cumsum(new_session) - 1
    out["think_s"] = think
    out["_local"] = local_id
    starts = out.groupby("_local", sort=False)["t_s"].transform("min")
    out["_start"] = starts
    # Number sessions by start time (ties by key), so ids do not depend on key spelling.
    order = (
        out[["_local", "_start", "session_key"]]
        .drop_duplicates("_local")
        .sort_values(["_start", "session_key"], kind="stable")
    )
    renumber = dict(zip(order["_local"], range(len(order)), strict=True))
    out["session_id"] = out["_local"].map(renumber).astype(np.int64)
    out = out.drop(columns=["_local", "_start"])
    out = out.sort_values(["session_id", "t_s"], kind="stable").reset_index(drop=True)
    out["seq"] = out.groupby("session_id").cumcount().astype(np.int64)
    return out


@dataclass(frozen=True)
class SessionStats:
    sessions: int
    mean_length: float
    median_length: float
    mean_duration_s: float
    median_think_s: float

    def to_json(self) -> dict[str, float | int]:
        return {
            "sessions": self.sessions,
            "mean_length": round(self.mean_length, 4),
            "median_length": round(self.median_length, 4),
            "mean_duration_s": round(self.mean_duration_s, 4),
            "median_think_s": round(self.median_think_s, 4),
        }


def session_table(sessions: pd.DataFrame, starts: np.ndarray | None = None) -> pd.DataFrame:
    """One row per session: start_s, length (requests), duration_s (first start to last
    start). `starts`: where each session's rows start, for a frame of rows session by
    session in id order without its `session_id` column (the model's:
    `frame.sessions_and_sizes(session_id=False)`; its `t_s` float64 without NaN), its ids
    0.. as that frame's column would have them (int32 below 2**31 rows)."""
    if starts is not None:
        t = sessions["t_s"].to_numpy()
        kind = np.int32 if len(t) < np.iinfo(np.int32).max else np.int64
        return runs_table(t, starts, np.arange(len(starts), dtype=kind))
    runs = session_runs(sessions)
    if runs is not None:  # rows by session already (sessionize's order): no groupby
        ids, starts = runs
        return runs_table(sessions["t_s"].to_numpy(), starts, ids[starts])
    grouped = sessions.groupby("session_id", sort=True)["t_s"]
    table = pd.DataFrame(
        {"start_s": grouped.min(), "length": grouped.size(), "end_s": grouped.max()}
    )
    table["duration_s"] = table["end_s"] - table["start_s"]
    return table.drop(columns=["end_s"])


def runs_table(t: np.ndarray, starts: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """`session_table` of rows session by session, sessions starting at rows `starts` with
    ids `ids` (`t`: the rows' `t_s`, float64 without NaN: as `session_runs` finds them)."""
    start_s, end_s = run_extremes(t, starts)
    return pd.DataFrame(
        {
            "start_s": start_s,
            "length": np.diff(np.append(starts, len(t))),
            "duration_s": end_s - start_s,
        },
        index=pd.Index(ids, name="session_id"),
    )


def session_runs(sessions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The session ids and where each session's rows start, when the rows come session by
    session in ascending id order and `t_s` (float64) has no NaN (what a groupby would
    skip); else None."""
    ids = sessions["session_id"].to_numpy()
    t = sessions["t_s"].to_numpy()
    if not len(ids) or ids.dtype.kind not in "iu" or t.dtype != np.float64:
        return None
    change = np.ones(len(ids), dtype=bool)
    np.not_equal(ids[1:], ids[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    del change
    # In ascending order where the id changes, so everywhere (elsewhere it does not).
    if (ids[starts[1:]] < ids[starts[1:] - 1]).any() or np.isnan(t).any():
        return None
    return ids, starts


def run_extremes(t: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.minimum.reduceat(t, starts)` and `np.maximum.reduceat(t, starts)` (`t` without
    NaN): each run's first and last value when `t` rises within every run and has no sign
    bit set (where the min of 0.0 and -0.0 might be either), two gathers and one pass."""
    rising = np.ones(len(t), dtype=bool)
    np.greater_equal(t[1:], t[:-1], out=rising[1:])
    rising[starts] = True  # (a run may start below the last one's end)
    if not rising.all() or np.signbit(t).any():
        return np.minimum.reduceat(t, starts), np.maximum.reduceat(t, starts)
    return t[starts], t[np.append(starts[1:], len(t)) - 1]


def session_stats(sessions: pd.DataFrame, table: pd.DataFrame | None = None) -> SessionStats:
    """The sessions' statistics; `table`: their `session_table` when the caller has it."""
    table = session_table(sessions) if table is None else table
    think = nan_median(sessions["think_s"].to_numpy(float))  # (no copy of the thinks)
    return table_stats(table, think)


def table_stats(table: pd.DataFrame, median_think_s: float) -> SessionStats:
    """`session_stats` from the sessions' table, their pauses' median given (NaN: none;
    models/partition_sessions.py has it from spilled pauses)."""
    return SessionStats(
        sessions=len(table),
        mean_length=float(table["length"].mean()),
        median_length=float(table["length"].median()),
        mean_duration_s=float(table["duration_s"].mean()),
        median_think_s=0.0 if math.isnan(median_think_s) else median_think_s,
    )


def request_curve(t_s: np.ndarray, bucket_s: float, span_s: float) -> dict[str, object]:
    """Requests per `bucket_s` bucket over [0, span_s] (the arrival curve's buckets): the
    real request rate a replay's `achieved_scale` is measured against."""
    buckets = max(1, int(np.ceil(span_s / bucket_s - 1e-9))) if bucket_s > 0 else 1
    t_s = np.asarray(t_s, dtype=float)
    counts = np.zeros(buckets, dtype=np.int64)
    # A chunk of requests at a time: no 8-byte arrays of every request's bucket (at 10 M
    # requests the whole-array way made four, ~0.3 GB, at the end of `build_model`).
    for start in range(0, len(t_s), CURVE_CHUNK_ROWS):
        index = np.floor_divide(t_s[start : start + CURVE_CHUNK_ROWS], bucket_s)
        bucket = index.astype(np.int64)
        np.minimum(bucket, buckets - 1, out=bucket)
        np.maximum(bucket, 0, out=bucket)
        counts += np.bincount(bucket, minlength=buckets)
    return {"bucket_s": float(bucket_s), "counts": [int(c) for c in counts]}


CURVE_CHUNK_ROWS = 1 << 16
"""Requests `request_curve` buckets at a time."""
