"""What the model holds a request after its sessions (mem22): the endpoints' statistics made
on the templates' thread (the same as the payloads stage made them), the durations,
statuses and paths let go once they are, and the model's frame made without its
`duration_ms` column, the censoring reading the requests' own durations a chunk of
sessions at a time (the same censoring as the frame's column read whole)."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.models.test_every_address import write_files
from tests.models.test_held_after_sessions import _requests
from tests.models.test_whole_trace import digest, prepared
from tracereplay.models import model as m
from tracereplay.models import session_shape
from tracereplay.models.endpoint_codes import EndpointCodes, endpoint_stats
from tracereplay.models.frame import RequestColumns, sessionize_requests
from tracereplay.models.nan_quantiles import nan_quantile
from tracereplay.models.session_shape import CENSOR_QUANTILE, Censoring, censoring
from tracereplay.models.sessionized import (
    _after_the_sessions,
    _after_the_stats,
    _templates,
    _templating_and_stats,
)


def _whole_censoring(sessions: pd.DataFrame, timeout_s: float) -> Censoring:
    """`censoring` as it was before mem22: every request's end in one array."""
    t = sessions["t_s"].to_numpy(float)
    ends = np.divide(sessions["duration_ms"].to_numpy(float), 1000.0)
    np.nan_to_num(ends, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
    ends += t
    pauses = sessions["think_s"].to_numpy(float)
    pauses = np.where(np.isinf(pauses), np.nan, pauses)
    longest = nan_quantile(pauses, CENSOR_QUANTILE)
    threshold = min(0.0 if np.isnan(longest) else longest, float(timeout_s))
    ids = sessions["session_id"].to_numpy()
    first = np.full(int(ids.max()) + 1, np.inf)
    last_end = np.full(len(first), -np.inf)
    np.minimum.at(first, ids, t)
    np.maximum.at(last_end, ids, ends)
    return Censoring(
        threshold,
        start=first - float(t.min()) < threshold,
        end=float(ends.max()) - last_end < threshold,
    )


def _same(got: Censoring, want: Censoring) -> None:
    assert got.threshold_s == want.threshold_s
    assert np.array_equal(got.start, want.start) and np.array_equal(got.end, want.end)


def _with_long_durations(requests: RequestColumns, seed: int) -> RequestColumns:
    """Some durations longer than the pauses after them: a session's last end is then
    not its last request's."""
    rng = np.random.default_rng(seed)
    duration = requests.duration_ms.copy()
    duration[rng.integers(0, len(duration), 40)] = rng.uniform(1e5, 5e6, 40)
    return replace(requests, duration_ms=duration)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 16])
@pytest.mark.parametrize("timeout_s", [300.0, 1800.0])
def test_censoring_of_the_requests_durations_is_the_frames_read_whole(
    seed: int, chunk: int, timeout_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_shape, "ENDS_CHUNK_ROWS", chunk)
    r = _with_long_durations(_requests(seed), seed)
    with_column = sessionize_requests(r, None, [], timeout_s, narrow=True)
    want = _whole_censoring(with_column, timeout_s)
    assert want.start.any() and want.end.any()  # (both edges censor some sessions)
    _same(censoring(with_column, timeout_s), want)  # (the frame's own column, by chunks)
    model_frame = sessionize_requests(r, None, [], timeout_s, narrow=True, durations=False)
    assert "duration_ms" not in model_frame.columns
    _same(censoring(model_frame, timeout_s, r.duration_ms), want)
    # Rows not session by session: the requests' ends gathered whole, as before.
    shuffled = model_frame.sample(frac=1.0, random_state=seed)
    _same(censoring(shuffled, timeout_s, r.duration_ms), want)
    # No durations at all: each request ends where it starts.
    no_durations = with_column.assign(duration_ms=np.nan)
    _same(censoring(model_frame, timeout_s), _whole_censoring(no_durations, timeout_s))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("narrow", [False, True])
def test_the_frame_without_durations_is_the_frame_without_that_column(
    seed: int, narrow: bool
) -> None:
    r = _requests(seed)
    endpoint = None if narrow else np.zeros(len(r), np.int16)
    names = [] if narrow else ["GET /a"]
    for timeout in (300.0, 1800.0):
        want = sessionize_requests(r, endpoint, names, timeout, narrow=narrow)
        got = sessionize_requests(r, endpoint, names, timeout, narrow=narrow, durations=False)
        pd.testing.assert_frame_equal(got, want.drop(columns=["duration_ms"]), check_exact=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_statistics_beside_the_sessions_let_their_columns_go(seed: int) -> None:
    requests = _requests(seed)
    _, want_endpoint, want_names = _templates(requests)
    want = endpoint_stats(requests, EndpointCodes.of(want_endpoint, want_names))
    names = ("t_s", "method", "duration_ms", "status", "path")
    held = {name: weakref.ref(getattr(requests, name)) for name in names}
    work = _templating_and_stats(requests)  # (as the model's thread holds it)
    requests = _after_the_sessions(requests)  # (before the work runs, as in the model)
    gc.collect()
    assert held["t_s"]() is None, "the light columns' times are held by the work"
    _, endpoint, got_names, stats = work()
    assert got_names == want_names and np.array_equal(endpoint, want_endpoint)
    assert stats == want
    rest = _after_the_stats(requests)
    assert len(rest) == len(requests) and rest.row is requests.row
    assert rest.key is requests.key and rest.key_values is requests.key_values
    assert len(rest.duration_ms) == len(rest.status) == 0
    # The paths stay: the correlation sample's are taken from them, not scanned again.
    assert rest.path is requests.path and rest.paths is requests.paths
    requests = rest
    gc.collect()
    assert held["duration_ms"]() is None and held["status"]() is None
    assert held["method"]() is not None  # the templates' work reads them until it is let go
    del work
    gc.collect()
    assert held["method"]() is None and held["path"]() is not None


def test_the_payloads_stages_with_the_statistics_given_are_the_stages_making_them(
    tmp_path: Path,
) -> None:
    s = prepared(write_files(tmp_path / "t"))
    asked = m._Asked(3, 4, 1, 0)
    args = (m._Clock(None), s["trace"], s["requests"], s["sessions"], s["endpoint"], s["names"])
    want = m._learned_from_samples(*args, asked, True)  # (made on the stages' thread)
    stats = endpoint_stats(s["requests"], EndpointCodes.of(s["endpoint"], s["names"]))
    given = m._learned_from_samples(*args, asked, True, stats)
    assert digest(*given[:3]) == digest(*want[:3])
    # The columns the statistics read are not read by the stages when given.
    rest = _after_the_stats(s["requests"])
    assert digest(*m._learned_from_samples(*args[:2], rest, *args[3:], asked, True, stats)[:3]) == (
        digest(*want[:3])
    )
