"""The model's templates learned on a thread beside the sessions (sess17): the frame made
without endpoints and given them after equals the one made with them; session ids,
positions and request numbers held as int32 from the start; skeletons coded a chunk of
paths at a time; keys that failed auth counted only when some request failed; an error of
either raised by `build_model`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.factories import T0, make_record, write_trace
from tracereplay.models import model as model_module
from tracereplay.models.frame import (
    RequestColumns,
    read_request_columns,
    sessionize_requests,
    with_endpoints,
)
from tracereplay.models.key_split import grouped
from tracereplay.models.model import build_model
from tracereplay.models.sessionized import _keep_what_later_stages_read
from tracereplay.models.sessions import AUTH_FAILED, failed_keys
from tracereplay.models.shapes import skeleton_codes


def light_requests(
    seed: int,
    n: int = 3000,
    keys: int = 40,
    *,
    methods: tuple[str, ...] = ("GET",),
    paths: int = 1,
    chunk: int = 211,
) -> RequestColumns:
    """Keys with long pauses (several sessions each) and ties in time, unknown durations;
    one method and path (`/a`), or each request's drawn from `methods` and `/a/0`.. of
    `paths`; read in batches of `chunk` rows."""
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "ts": pa.array(
                [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 20_000, n)],
                pa.timestamp("us", "UTC"),
            ),
            "duration_ms": pa.array(rng.choice([1.5, 900.0, np.nan], n), pa.float64()),
            "session": pa.array([f"s{k}" for k in rng.integers(0, keys, n)], pa.string()),
            "client": pa.array(["c"] * n, pa.string()),
            "method": pa.array(
                rng.choice(methods, n).tolist() if len(methods) > 1 else [methods[0]] * n,
                pa.string(),
            ),
            "path": pa.array(
                [f"/a/{k}" for k in rng.integers(0, paths, n)] if paths > 1 else ["/a"] * n,
                pa.string(),
            ),
            "status": pa.array([200] * n, pa.int16()),
        }
    )
    return read_request_columns(table.to_batches(max_chunksize=chunk), source="t")


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("keys", [40, 3000])  # sessions cut by pauses; one session a key
def test_the_frame_given_its_endpoints_later_is_the_frame_made_with_them(
    seed: int, keys: int
) -> None:
    r = light_requests(seed, keys=keys)
    endpoint = np.random.default_rng(seed).integers(0, 3, len(r)).astype(np.int16)
    names = ["GET /z", "GET /a", "POST /a"]
    for timeout in (300.0, 1800.0):
        made_with = sessionize_requests(r, endpoint, names, timeout)
        assert made_with["session_id"].dtype == np.int64  # sessionize's own, unnarrowed
        assert made_with["request"].dtype == np.int64
        given_later = sessionize_requests(r, None, [], timeout, narrow=True)
        assert "endpoint" not in given_later.columns
        for column in ("session_id", "seq", "request"):
            assert given_later[column].dtype == np.int32, column
            assert np.array_equal(given_later[column], made_with[column])
        _keep_what_later_stages_read(made_with)
        _keep_what_later_stages_read(given_later)
        with_endpoints(given_later, endpoint, names)
        pd.testing.assert_frame_equal(given_later, made_with, check_exact=True)
        assert list(given_later.columns) == ["request", "endpoint", "think_s", "session_id", "seq"]


def test_grouped_gives_int32_positions_below_two_to_the_31() -> None:
    codes = np.random.default_rng(0).integers(0, 50, 4000)
    got = grouped(codes, 50)
    assert got.dtype == np.int32
    assert np.array_equal(got, np.argsort(codes, kind="stable"))


@pytest.mark.parametrize("chunk", [1, 2, 5, 64, 10_000])
def test_skeletons_a_chunk_of_paths_at_a_time_are_skeleton_codes(chunk: int) -> None:
    rng = np.random.default_rng(chunk)
    shapes = [
        "/api/v1/clients/{}",
        "/api/v1/clients/{}/sync",
        "/articles/post-{}",
        "/api/v1/clients/",
        "/health?x={}",
        "",
        "/a/{}/b/{}",
        "/api/v1/clients/stats",
        "/x/anon_{}",
        "/%7E{}/é",
    ]
    paths = [
        shapes[int(k)].format(int(v), int(v) * 7)
        for k, v in zip(rng.integers(0, len(shapes), 700), rng.integers(0, 500, 700), strict=True)
    ]
    array = pa.array(paths, pa.string())
    want_codes, want_skeletons = skeleton_codes(array, chunk=len(array))  # one pass
    codes, skeletons = skeleton_codes(array, chunk)
    assert len(want_skeletons) > 5  # skeletons to number in order of first use
    assert skeletons == want_skeletons
    assert codes.dtype == want_codes.dtype
    assert np.array_equal(codes, want_codes)


@pytest.mark.parametrize("seed", range(6))
def test_failed_keys_are_the_weighted_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = int(rng.integers(1, 30))
    n = int(rng.integers(0, 400))
    key = rng.integers(0, keys, n).astype(np.int32)
    status = rng.choice([200.0, float(AUTH_FAILED), np.nan], n, p=[0.6, 0.3, 0.1])
    if seed % 3 == 0:  # no request failed
        status[status == AUTH_FAILED] = 200.0
    if seed % 3 == 1 and n:  # a key whose every request failed
        status[key == key[0]] = AUTH_FAILED
    failed_rows = np.bincount(key, weights=(status == AUTH_FAILED), minlength=keys)
    want = (failed_rows == np.bincount(key, minlength=keys)) & (failed_rows > 0)
    got = failed_keys(key, status, keys)
    assert got.dtype == np.bool_
    assert np.array_equal(got, want)
    if seed % 3 == 0:
        assert not got.any()
    if seed % 3 == 1 and n:
        assert got[key[0]]


@pytest.mark.parametrize("processes", [1, 2])  # templates before the sessions; beside
@pytest.mark.parametrize("broken", ["session_table", "_templating_and_stats"])
def test_an_error_of_the_templates_or_sessions_is_build_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int, broken: str
) -> None:
    records = [
        make_record(session=f"s{k % 3}", ts=T0 + timedelta(seconds=k), path=f"/items/{k}")
        for k in range(12)
    ]
    trace = write_trace(tmp_path / "t", records)

    def fails(*_args: object) -> None:
        raise RuntimeError(f"no {broken}")

    # (`_templating_and_stats` gives the templates' work, run on the thread: it fails)
    monkeypatch.setattr(
        model_module,
        broken,
        (lambda _requests: fails) if broken == "_templating_and_stats" else fails,
    )
    with pytest.raises(RuntimeError, match=f"no {broken}"):
        build_model(trace, processes=processes, correlations=False)
