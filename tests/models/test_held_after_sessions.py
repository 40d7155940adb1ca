"""What the model holds a request from its sessions on (mem20): the light columns' times and
method codes let go once the sessions are made (the sessions keep their own times, the
templates their own methods), the request curve counted over the sessions' times a chunk
at a time (the same counts as the light columns' times counted whole), and the columns
only the sessions read dropped before the endpoints are put in, and `seq` put in after
the sessions' stage (the same frame)."""

from __future__ import annotations

import gc
import weakref
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.factories import T0, make_record, write_trace
from tests.models.test_sessions_beside import light_requests
from tracereplay.models import sessions as sessions_module
from tracereplay.models.frame import (
    RequestColumns,
    read_light_columns,
    run_positions,
    sessionize_requests,
    with_endpoints,
)
from tracereplay.models.model import build_model
from tracereplay.models.sessionized import (
    _after_the_sessions,
    _completed,
    _keep_what_later_stages_read,
    _sessionized,
    _templates,
    _templating,
)
from tracereplay.models.sessions import request_curve
from tracereplay.models.source import ParquetSource


def _whole_curve(t_s: np.ndarray, bucket_s: float, span_s: float) -> dict[str, object]:
    """`request_curve` as it was: every request's bucket at once."""
    buckets = max(1, int(np.ceil(span_s / bucket_s - 1e-9))) if bucket_s > 0 else 1
    index = np.minimum((np.asarray(t_s, dtype=float) // bucket_s).astype(np.int64), buckets - 1)
    counts = np.bincount(np.maximum(index, 0), minlength=buckets)
    return {"bucket_s": float(bucket_s), "counts": [int(c) for c in counts]}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 16])
def test_the_request_curve_by_chunks_is_the_whole_arrays_way(
    seed: int, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_module, "CURVE_CHUNK_ROWS", chunk)
    rng = np.random.default_rng(seed)
    span_s = float(rng.uniform(10, 500))
    bucket_s = float(rng.choice([0.7, 1.0, 5.0, 60.0, span_s]))
    t = rng.uniform(0, span_s, 500)
    # Edges exactly, the span's end (the last bucket), times past it and before 0 (clamped).
    t[:20] = np.arange(20) * bucket_s
    t[20:26] = [span_s, span_s * 1.5, 0.0, -0.0, span_s + bucket_s * 3, -2 * bucket_s]
    want = _whole_curve(t, bucket_s, span_s)
    assert request_curve(t, bucket_s, span_s) == want
    # Counted in any order (the sessions' times come key by key, not in time order).
    assert request_curve(rng.permutation(t), bucket_s, span_s) == want
    assert request_curve(t[:0], bucket_s, span_s) == _whole_curve(t[:0], bucket_s, span_s)


def _requests(seed: int) -> RequestColumns:
    """Two methods, 50 paths, 60 keys over 2,000 requests (`light_requests`)."""
    return light_requests(seed, 2000, 60, methods=("GET", "POST"), paths=50, chunk=307)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_times_and_methods_are_let_go_once_the_sessions_are_made(seed: int) -> None:
    requests = _requests(seed)
    want_curve = request_curve(requests.t_s, 37.0, float(requests.t_s[-1]))
    want_templates = _templates(requests)
    times, methods = weakref.ref(requests.t_s), weakref.ref(requests.method)
    work = _templating(requests)  # (as the model's thread holds it)
    # (no trace read: no key failed auth, so no `conn` is asked for)
    _, later = _sessionized(None, requests, None, [], 1800.0, {"30m": 1800.0})  # type: ignore[arg-type]
    rest = _after_the_sessions(requests)
    assert len(rest) == len(requests) and rest.first_ts == requests.first_ts
    assert rest.row is requests.row and rest.key is requests.key
    del requests
    gc.collect()
    assert times() is None, "the light columns' times are still held"
    assert methods() is not None  # the templates' work reads them until it is let go
    _, endpoint, names = work()
    assert names == want_templates[2] and np.array_equal(endpoint, want_templates[1])
    del work
    gc.collect()
    assert methods() is None, "the light columns' methods are still held"
    assert later.times is not None
    assert request_curve(later.times, 37.0, float(later.times.max())) == want_curve
    later()
    assert later.times is None  # asked: let go with the sort


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_columns_dropped_before_the_endpoints_come_give_the_same_frame(seed: int) -> None:
    r = _requests(seed)
    endpoint = np.random.default_rng(seed).integers(0, 3, len(r)).astype(np.int16)
    names = ["GET /z", "GET /a", "POST /a"]
    for timeout in (300.0, 1800.0):
        want = sessionize_requests(r, None, [], timeout, narrow=True)
        with_endpoints(want, endpoint, names)  # (the endpoints first, as before mem20)
        _keep_what_later_stages_read(want)
        got = sessionize_requests(r, None, [], timeout, narrow=True)
        _keep_what_later_stages_read(got)  # (as build_model: before the templates are done)
        with_endpoints(got, endpoint, names)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        # Made without `seq` (as the model's), then given it and its endpoints.
        late = sessionize_requests(r, None, [], timeout, narrow=True, seq=False)
        assert "seq" not in late.columns
        del late["session_key"]
        _keep_what_later_stages_read(late)
        sizes = np.bincount(late["session_id"].to_numpy())
        _completed(late, endpoint, names, sizes)
        pd.testing.assert_frame_equal(late, want, check_exact=True)
        assert np.array_equal(late["seq"], run_positions(late["session_id"].to_numpy()))


@pytest.mark.parametrize("processes", [1, 2])
def test_the_models_request_curve_is_the_light_columns_times_counted(
    tmp_path: Path, processes: int
) -> None:
    records = [
        make_record(
            ts=T0 + timedelta(seconds=s * 7 + k), session=f"s{k}", path=f"/api/v1/clients/{s}"
        )
        for s in range(40)
        for k in range(3)
    ]
    trace = write_trace(tmp_path / "t", records)
    model = build_model(trace, processes=processes)
    requests = read_light_columns(ParquetSource.open(trace))
    curve = model["sessions"]["requests"]
    assert curve["bucket_s"] == model["arrivals"]["bucket_s"]
    assert curve == _whole_curve(requests.t_s, curve["bucket_s"], float(requests.t_s[-1]))
    assert sum(curve["counts"]) == len(records)


def test_the_statistics_and_the_templates_give_their_freed_memory_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracereplay.models import sessionized

    trims: list[str] = []
    monkeypatch.setattr(sessionized, "give_back_freed", lambda: trims.append("trim"))
    requests = _requests(3)
    _, later = _sessionized(None, requests, None, [], 1800.0, {"30m": 1800.0})  # type: ignore[arg-type]
    assert not trims
    later()
    assert trims == ["trim"]  # once the sort is let go: before the payloads' growth
    _templating(requests)()
    assert trims == ["trim", "trim"]  # on the templates' thread, when their work is done


@pytest.mark.parametrize("processes", [1, 2])
def test_the_payloads_freed_memory_is_given_back_before_the_correlations(
    tmp_path: Path, processes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mem21: glibc's free heap given back once the payloads are done, before the
    correlations grow (where parent and child together peak); the model the same."""
    from tracereplay.models import model as model_module

    records = [
        make_record(ts=T0 + timedelta(seconds=s * 7 + k), session=f"s{k}", path=f"/a/{s}")
        for s in range(30)
        for k in range(3)
    ]
    trace = write_trace(tmp_path / "t", records)
    want = build_model(trace, processes=processes)
    events: list[str] = []
    monkeypatch.setattr(model_module, "give_back_freed", lambda: events.append("trim"))

    def progress(report: object) -> None:
        stage, seconds = report.stage, report.seconds  # type: ignore[attr-defined]
        events.append(f"{stage} {'done' if seconds is not None else 'starts'}")

    assert build_model(trace, processes=processes, progress=progress) == want
    at = events.index("payloads done")
    assert events[at + 1 : at + 3] == ["trim", "correlations starts"]


@pytest.mark.parametrize(
    "paths",
    [
        ["/a/1", "/a/2", "/b", None],  # as RequestColumns: sorted, one null last
        ["/", "/a/1", "None", "/x/y", None],  # the two texts among the paths already
        [None],
        ["/a/1", None, "/b"],  # a null elsewhere: the copy, as before
        ["/a/1", "/b/2"],
        [],
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 1 << 16])
def test_the_paths_skeletons_in_place_are_one_pass_over_a_copy(
    paths: list[str | None], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracereplay.models import shapes, templating

    monkeypatch.setattr(shapes, "SKELETON_CHUNK_PATHS", chunk)
    monkeypatch.setattr(templating, "skeleton_codes", lambda p: shapes.skeleton_codes(p, chunk))
    array = pa.array(paths, pa.string())
    texts = pa.concat_arrays([pc.fill_null(array, "None"), pa.array(["/"], pa.string())])
    want_codes, want_skeletons = shapes.skeleton_codes(texts, chunk=len(texts) or 1)
    codes, skeletons = templating._path_skeletons(array)
    assert skeletons == want_skeletons
    assert np.array_equal(codes, want_codes)
