"""The sessions made one key partition at a time and merged (models/partition_sessions.py)
are the model's whole-trace sessions to the bit: the table in its session-id order, the
statistics, the censoring, the statistics at other timeouts and each request's session."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tracereplay.models.frame import RequestColumns, read_light_columns, sessionize_requests
from tracereplay.models.model import SENSITIVITY_TIMEOUTS_S
from tracereplay.models.partition_sessions import (
    CrossPartitionJoin,
    HeldPauses,
    KeyPartition,
    MergedSessions,
    merged_sessions,
    partition_sessions,
)
from tracereplay.models.session_shape import Censoring, censoring
from tracereplay.models.sessionized import _model_sessions
from tracereplay.models.sessions import SessionStats, failed_keys, session_stats, session_table

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
TIMEOUTS = {"short": 20.0, "mid": 60.0, "long": 3600.0}
KEY_NAMES = ["z9", "a", "é-user", "ä", "k10", "k2", "K", "日本", "a-b", "zz"]


def _columns(seed: int) -> RequestColumns:
    """Requests of a few or many keys (many with one request), in time order with ties
    (integer seconds, scaled), durations unknown, zero, long or infinite, statuses with
    some 401s but no key failing throughout, gaps past the timeouts below; two keys
    starting at the same instant with different lengths (a tie of the global order)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    keys = [2, 30, 5000][seed % 3]
    t = np.sort(rng.integers(0, 900, n) * [0.1, 0.5, 7.3][seed % 3])  # (sums that round)
    key = rng.integers(0, keys, n).astype(np.int32)
    key[:2] = [0, keys - 1]  # the first two rows: two keys at the same start
    t[1] = t[0]
    if n > 3:  # (one of them longer: the tie's order shows in the table)
        key[2] = 0
    duration = rng.choice([0.0, 1.5, 400.0, 90_000.0, np.nan], n)
    if seed % 4 == 1:
        duration[rng.integers(0, 5, n) == 0] = np.inf
    status = rng.choice([200.0, 401.0, np.nan], n).astype(np.float32)
    _, first = np.unique(key, return_index=True)
    status[first] = 200.0  # (no key failing auth throughout: `test_failed_keys_...`)
    names = sorted({*KEY_NAMES[: min(keys, len(KEY_NAMES))], *(f"k{i:05x}" for i in range(keys))})
    return RequestColumns(
        row=np.arange(n, dtype=np.int32),
        first_ts=T0,
        t_s=t,
        duration_ms=duration,
        status=status,
        key=key,
        key_values=pa.array(names[:keys]),
        method=np.zeros(n, np.int8),
        methods=["GET", "NONE"],
        path=np.zeros(n, np.int32),
        paths=pa.array(["/", None]),
    )


def _partitions(
    r: RequestColumns, parts: int, seed: int, shuffled: bool = False
) -> list[tuple[np.ndarray, KeyPartition]]:
    """Each partition's rows (positions in `r`, in time order with ties in `r`'s order) and
    their `KeyPartition`, keys assigned to partitions at random, each with its own
    dictionary of the keys it holds (sorted, or in a shuffled order)."""
    rng = np.random.default_rng(1000 + seed)
    of_key = rng.integers(0, parts, len(r.key_values))
    out = []
    for p in range(parts):
        rows = np.flatnonzero(of_key[r.key] == p)
        used, local = np.unique(r.key[rows], return_inverse=True)
        if shuffled:
            permuted = rng.permutation(len(used))
            used, local = used[permuted], np.argsort(permuted)[local]
        values = r.key_values.take(pa.array(used, pa.int64()))
        out.append(
            (rows, KeyPartition(r.t_s[rows], r.duration_ms[rows], r.status[rows],
                                local.astype(np.int32), values))
        )  # fmt: skip
    return out


@dataclasses.dataclass
class _Whole:
    table: pd.DataFrame
    stats: SessionStats
    censored: Censoring
    by_timeout: dict[str, SessionStats]


def _whole(
    r: RequestColumns, timeout_s: float, timeouts_s: dict[str, float], censor_edges: bool = True
) -> _Whole:
    """The sessions block of `build_model`, on the whole trace."""
    sessions, starts, later, rest = _model_sessions(None, [replace(r)], timeout_s, timeouts_s)  # type: ignore[arg-type]
    assert starts is not None
    table = session_table(sessions, starts)
    stats = session_stats(sessions, table)
    censored = censoring(
        sessions, timeout_s if censor_edges else 0.0, rest.duration_ms, starts
    )  # fmt: skip
    return _Whole(table, stats, censored, later())


def _merged(
    split: list[tuple[np.ndarray, KeyPartition]],
    timeout_s: float,
    timeouts_s: dict[str, float],
    censor_edges: bool = True,
) -> MergedSessions:
    held = HeldPauses()
    parts = [partition_sessions(rows, timeout_s, timeouts_s, held) for _, rows in split]
    # (an infinite duration's end less the trace's: NaN, for the model as here)
    with np.errstate(invalid="ignore"):
        return merged_sessions(parts, held.statistics(), censor_edges=censor_edges)


def _bits(stats: SessionStats) -> tuple[object, ...]:
    return tuple(v.hex() if isinstance(v, float) else v for v in dataclasses.astuple(stats))


def _assert_same(got: MergedSessions, want: _Whole) -> None:
    pd.testing.assert_frame_equal(got.table, want.table, check_exact=True)
    for column in want.table.columns:
        a, b = got.table[column].to_numpy(), want.table[column].to_numpy()
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), column
    assert _bits(got.stats) == _bits(want.stats)
    assert got.stats.to_json() == want.stats.to_json()
    assert got.censored.threshold_s.hex() == want.censored.threshold_s.hex()
    assert np.array_equal(got.censored.start, want.censored.start)
    assert np.array_equal(got.censored.end, want.censored.end)
    assert got.censored.to_json() == want.censored.to_json()
    assert list(got.by_timeout) == list(want.by_timeout)
    for name, stats in want.by_timeout.items():
        assert _bits(got.by_timeout[name]) == _bits(stats), name


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("parts", [1, 2, 7])
def test_partitions_merged_are_the_whole_traces_sessions(seed: int, parts: int) -> None:
    r = _columns(seed)
    timeout = [20.0, 60.0, 1800.0][seed % 3]
    split = _partitions(r, parts, seed, shuffled=seed % 2 == 1)
    invalid = "ignore" if np.isinf(r.duration_ms).any() else "warn"
    for censor_edges in (True, False):
        with np.errstate(invalid=invalid):
            got = _merged(split, timeout, TIMEOUTS, censor_edges)
            want = _whole(r, timeout, TIMEOUTS, censor_edges)
        _assert_same(got, want)
    # The model's own timeouts, on a trace some of whose gaps pass them.
    stretched = replace(r, t_s=r.t_s * 9.0)
    split = _partitions(stretched, parts, seed)
    with np.errstate(invalid=invalid):
        got = _merged(split, 1800.0, SENSITIVITY_TIMEOUTS_S)
        want = _whole(stretched, 1800.0, SENSITIVITY_TIMEOUTS_S)
    _assert_same(got, want)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("parts", [1, 2, 7])
def test_each_requests_session_is_the_models(seed: int, parts: int) -> None:
    """A partition's own sessionized frame (local ids) mapped by `MergedSessions.ids`
    gives each request the id the whole trace's frame gives it."""
    r = _columns(seed)
    split = _partitions(r, parts, seed, shuffled=seed % 2 == 0)
    got = _merged(split, 60.0, TIMEOUTS)
    whole = sessionize_requests(r, None, [], 60.0)
    want = np.empty(len(r), dtype=np.int64)
    want[whole["request"].to_numpy()] = whole["session_id"].to_numpy()
    for (rows, part), ids in zip(split, got.ids, strict=True):
        local = sessionize_requests(_requests(part), None, [], 60.0)
        request = rows[local["request"].to_numpy()]
        assert np.array_equal(ids[local["session_id"].to_numpy()], want[request])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("parts", [1, 2, 7])
def test_each_request_handed_out_is_the_frames_row(seed: int, parts: int) -> None:
    """What `partition_sessions` hands out of each request (local session mapped by the
    merge's ids, place, pause) is the whole trace's sessionized frame's session_id, seq
    and think_s for that request, to the bit; and handing out changes no session."""
    r = _columns(seed)
    timeout = [20.0, 60.0, 1800.0][seed % 3]
    split = _partitions(r, parts, seed, shuffled=seed % 2 == 0)
    held, handed = HeldPauses(), []
    made = []
    for _, rows in split:
        made.append(partition_sessions(rows, timeout, TIMEOUTS, held, lambda *a: handed.append(a)))
    with np.errstate(invalid="ignore"):  # (an infinite duration's end: see `_merged`)
        got = merged_sessions(made, held.statistics())
        _assert_same(got, _whole(r, timeout, TIMEOUTS))
    whole = sessionize_requests(r, None, [], timeout)
    request = whole["request"].to_numpy()
    want = {c: np.empty(len(r), whole[c].dtype) for c in ("session_id", "seq", "think_s")}
    for c, values in want.items():
        values[request] = whole[c].to_numpy()
    assert len(handed) == parts
    for (rows, _), ids, (at, local, seq, think) in zip(split, got.ids, handed, strict=True):
        assert np.array_equal(np.sort(at), np.arange(len(rows)))  # (each row once)
        assert (np.diff(local) >= 0).all()  # (session by session)
        if seed % 2:  # (keys sorted in each partition, as the scan's: in global id order too)
            assert (np.diff(ids[local]) >= 0).all()
        row = rows[at]
        assert np.array_equal(ids[local], want["session_id"][row])
        assert np.array_equal(seq, want["seq"][row])
        assert think.tobytes() == want["think_s"][row].astype(float).tobytes()


def _requests(part: KeyPartition) -> RequestColumns:
    n = len(part)
    return RequestColumns(
        row=np.arange(n, dtype=np.int32), first_ts=T0, t_s=part.t_s,
        duration_ms=part.duration_ms, status=part.status, key=part.key,
        key_values=part.key_values, method=np.zeros(n, np.int8), methods=["GET", "NONE"],
        path=np.zeros(n, np.int32), paths=pa.array(["/", None]),
    )  # fmt: skip


def test_a_partition_without_rows_and_one_request_keys() -> None:
    r = _columns(2)  # 5000 keys: most with one request
    assert (np.bincount(r.key) == 1).any()
    split = _partitions(r, 7, 0)
    empty = KeyPartition(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int32),
                         pa.array([], pa.string()))  # fmt: skip
    got = _merged([*split[:3], (np.zeros(0, np.intp), empty), *split[3:]], 60.0, TIMEOUTS)
    _assert_same(got, _whole(r, 60.0, TIMEOUTS))
    assert len(got.ids[3]) == 0


def test_failed_keys_are_refused_where_the_model_would_join_them() -> None:
    """The model joins a key whose every request failed auth to its connection's next key
    (`connections_to_join`: the pandas path), whatever partition that key is in: the
    partition holding it refuses, the others do not; a key with some 401s is sessionized."""
    r = _columns(1)
    status = r.status.copy()
    failing = int(r.key[5])
    status[r.key == failing] = 401.0
    r = replace(r, status=status)
    assert failed_keys(r.key, r.status, len(r.key_values)).any()  # the model's test
    split = _partitions(r, 7, 1)
    refused = 0
    for rows, part in split:
        if failing in r.key[rows]:
            with pytest.raises(CrossPartitionJoin, match="failed auth"):
                partition_sessions(part, 60.0, TIMEOUTS)
            refused += 1
        else:
            partition_sessions(part, 60.0, TIMEOUTS)
    assert refused == 1


def test_a_key_in_two_partitions_is_refused() -> None:
    r = _columns(4)
    split = _partitions(r, 2, 4)
    held = HeldPauses()
    parts = [partition_sessions(rows, 60.0, TIMEOUTS, held) for _, rows in split]
    with pytest.raises(ValueError, match="two partitions"):
        merged_sessions([parts[0], parts[0]], held.statistics())


@pytest.mark.skipif(
    "TRACEREPLAY_REAL_TRACE" not in os.environ,
    reason="set TRACEREPLAY_REAL_TRACE to a trace directory (e.g. /work/data/real1M)",
)
def test_a_real_trace_split_by_key_hash() -> None:
    """A real trace's light columns split into 16 partitions by a hash of the key: the
    model's sessions block; and the model file's numbers, when TRACEREPLAY_REAL_MODEL
    names it."""
    from tracereplay.models.source import ParquetSource

    r = read_light_columns(ParquetSource.open(Path(os.environ["TRACEREPLAY_REAL_TRACE"])))
    strings = r.key_values.to_numpy(zero_copy_only=False)
    of_key = pd.util.hash_array(strings, categorize=False) % np.uint64(16)
    of_row = of_key[r.key]
    split = []
    for p in range(16):
        rows = np.flatnonzero(of_row == p)
        used, local = np.unique(r.key[rows], return_inverse=True)
        split.append(
            (rows, KeyPartition(r.t_s[rows], r.duration_ms[rows], r.status[rows],
                                local.astype(np.int32), r.key_values.take(pa.array(used))))
        )  # fmt: skip
    got = _merged(split, 1800.0, SENSITIVITY_TIMEOUTS_S)
    _assert_same(got, _whole(r, 1800.0, SENSITIVITY_TIMEOUTS_S))
    if "TRACEREPLAY_REAL_MODEL" in os.environ:
        import json

        model = json.loads(Path(os.environ["TRACEREPLAY_REAL_MODEL"]).read_text())["sessions"]
        assert got.stats.to_json() == model["stats"]
        assert got.censored.to_json() == model["censored"]
        sensitivity = {name: s.to_json() for name, s in got.by_timeout.items()}
        assert sensitivity == model["timeout_sensitivity"]
