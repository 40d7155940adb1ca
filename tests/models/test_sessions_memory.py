"""What the model's sessions hold at the parent's peak (issue 15, ss24): `key_runs` gives
`key_time_split`'s arrays without a key code a request and lets the times go once it has
its own; `sessionize_requests` makes the same frame from it; `_model_sessions` holds no
light column for the statistics it computes later."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tracereplay.models.frame import (
    RequestColumns,
    sessionize_requests,
    with_endpoints,
    with_positions,
)
from tracereplay.models.key_split import (
    key_runs,
    key_time_split,
    session_stats_by_timeout,
)
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessionized import (
    _completed,
    _model_sessions,
    _sessionized,
)
from tracereplay.models.sessions import session_stats, session_table

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
TIMEOUTS = {"short": 20.0, "mid": 60.0, "long": 3600.0}


def _columns(seed: int) -> RequestColumns:
    """Requests of a few or many keys, with ties, durations unknown or not, in time
    order (or not, seed % 4 == 3: the lexsort's way), the gaps of some keys past the
    timeouts below (sessions cut: not numbered in the split's order)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    keys = [2, 30, 5000][seed % 3]
    t = np.sort(rng.integers(0, 900, n) * [1.0, 0.5, 7.25][seed % 3])
    if seed % 4 == 3:
        t = rng.permutation(t)
    return RequestColumns(
        row=np.arange(n, dtype=np.int32),
        first_ts=T0,
        t_s=t,
        duration_ms=rng.choice([0.0, 1.5, 400.0, 90_000.0, np.nan], n),
        status=np.full(n, 200.0, np.float32),
        key=rng.integers(0, keys, n).astype(np.int32),
        key_values=pa.array([f"k{i:05d}" for i in range(keys)]),
        method=np.zeros(n, np.int8),
        methods=["GET", "NONE"],
        path=np.zeros(n, np.int32),
        paths=pa.array(["/", None]),
    )


def _without_times(r: RequestColumns) -> RequestColumns:
    return replace(r, t_s=np.zeros(0), method=np.zeros(0, np.int8))


@pytest.mark.parametrize("seed", range(12))
def test_key_runs_are_the_split_without_a_key_a_request(seed: int) -> None:
    r = _columns(seed)
    split = key_time_split(r)
    times = [r.t_s.copy()]
    runs = key_runs(r.key, times, r.duration_ms)
    assert times == []  # taken: the caller's list holds the times no more
    assert np.array_equal(runs.order, split.order)
    assert runs.order.dtype == split.order.dtype
    assert np.array_equal(runs.key_starts, split.key_starts)
    assert np.array_equal(runs.run_key, split.key[split.key_starts])
    assert runs.run_key.dtype == split.key.dtype
    assert np.array_equal(runs.think, split.think, equal_nan=True)
    assert np.array_equal(runs.t_s, split.t_s)
    # The statistics at other timeouts: the same from either.
    assert session_stats_by_timeout(None, TIMEOUTS, runs) == session_stats_by_timeout(r, TIMEOUTS)


def test_key_runs_let_the_times_go_once_gathered() -> None:
    r = _columns(1)
    t_s = r.t_s.copy()
    gone = weakref.ref(t_s)
    seen: list[bool] = []
    times = [t_s]
    del t_s
    # The durations are gathered after the times: by then the times must be let go.
    watched = _Watched(r.duration_ms, lambda: seen.append(gone() is None))
    key_runs(r.key, times, watched)  # type: ignore[arg-type]
    assert seen and all(seen)


class _Watched(np.ndarray):
    """An array that calls `then` when it is read through an index (a gather)."""

    def __new__(cls, values: np.ndarray, then: object) -> _Watched:
        out = np.asarray(values).view(cls)
        out.then = then  # type: ignore[attr-defined]
        return out

    def __getitem__(self, index: object) -> object:
        gc.collect()
        self.then()  # type: ignore[attr-defined]
        return np.asarray(self)[index]

    def take(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        gc.collect()
        self.then()  # type: ignore[attr-defined]
        return np.asarray(self).take(*args, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("timeout_s", [20.0, 60.0, 1800.0])
def test_frame_from_key_runs_is_the_frame(seed: int, timeout_s: float) -> None:
    r = _columns(seed)
    want = sessionize_requests(r, None, [], timeout_s, narrow=True, seq=False, durations=False)
    runs = key_runs(r.key, [r.t_s], r.duration_ms)
    # From the runs' own times: the requests' may have been let go.
    got = sessionize_requests(
        _without_times(r), None, [], timeout_s, runs, narrow=True, seq=False,
        durations=False, session_key=False,
    )  # fmt: skip
    pd.testing.assert_frame_equal(got, want.drop(columns=["session_key"]))
    # Asked for, the keys a row come back from the runs, and the durations too.
    full = sessionize_requests(r, None, [], timeout_s)
    for split in (runs, key_time_split(r)):
        got = sessionize_requests(r, None, [], timeout_s, split)
        pd.testing.assert_frame_equal(got, full)


@pytest.mark.parametrize("seed", range(8))
def test_model_sessions_are_sessionized_holding_no_light_column(seed: int) -> None:
    r = _columns(seed)
    want, want_later = _sessionized(None, r, None, [], 60.0, TIMEOUTS)  # type: ignore[arg-type]
    held = [replace(r)]
    duration = weakref.ref(held[0].duration_ms)
    times = weakref.ref(held[0].t_s)
    r = replace(r, t_s=r.t_s.copy(), duration_ms=r.duration_ms.copy())
    sessions, starts, later, rest = _model_sessions(None, held, 60.0, TIMEOUTS)  # type: ignore[arg-type]
    assert held == []
    # No id a row: where each session starts instead, which its table and censoring read.
    assert starts is not None and "session_id" not in sessions.columns
    pd.testing.assert_frame_equal(sessions, want.drop(columns=["session_key", "session_id"]))
    table = session_table(sessions, starts)
    pd.testing.assert_frame_equal(table, session_table(want))
    assert session_stats(sessions, table) == session_stats(want)
    censored = censoring(sessions, 60.0, r.duration_ms, starts)
    want_censored = censoring(want, 60.0, r.duration_ms)
    assert censored.threshold_s == want_censored.threshold_s
    assert np.array_equal(censored.start, want_censored.start)
    assert np.array_equal(censored.end, want_censored.end)
    _completed(sessions, np.zeros(len(r), np.int16), ["GET /"], table["length"].to_numpy())
    made = want.drop(columns=["session_key"])
    with_endpoints(made, np.zeros(len(r), np.int16), ["GET /"])
    with_positions(made, table["length"].to_numpy())
    pd.testing.assert_frame_equal(sessions, made)
    assert len(rest.t_s) == 0 and len(rest.method) == 0
    gc.collect()
    assert times() is None  # the light columns' times: let go once sorted
    # What the statistics need is kept by them, not the light columns: once the stages
    # let the durations go, they are gone while the statistics wait.
    del rest
    gc.collect()
    assert duration() is None
    assert later.times is not None and np.array_equal(np.sort(later.times), np.sort(r.t_s))
    assert later() == want_later()


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
def test_taken_param_kinds_are_param_kinds_of_the_taken_paths(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.compute as pc

    from tracereplay.models import endpoints

    monkeypatch.setattr(endpoints, "PARAM_CHUNK_PATHS", chunk)
    rng = np.random.default_rng(5)
    ids = [f"{i}" for i in rng.integers(0, 10**6, 40)]
    hexes = [f"{i:08x}ab" for i in rng.integers(0, 10**6, 40)]
    words = [f"w{i}" for i in range(40)]
    paths = pa.array(
        [f"/u/{a}/o/{b}?x=1" for a, b in zip(ids, hexes, strict=True)]
        + [f"/u/{a}/o/{b}#f" for a, b in zip(words, ids, strict=True)]
        + [None]
    )
    template = "/u/{id}/o/{order}"
    for taken in (
        np.arange(40),  # ints and hex
        np.arange(40, 80),  # words and ints
        rng.integers(0, 80, 57),  # mixed, repeated, out of order
        np.array([3]),
        np.zeros(0, dtype=np.int64),
    ):
        want = endpoints.param_kinds(template, pc.fill_null(paths.take(taken), "/"))
        assert endpoints.taken_param_kinds(template, paths, taken) == want
    assert endpoints.taken_param_kinds("/u/all", paths, np.arange(3)) == {}
