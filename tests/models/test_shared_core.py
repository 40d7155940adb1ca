"""The shared core of `model` and `compare` at scale (issue 15): endpoints coded through a
table of (method, path) cells, session tables and censoring by runs of rows instead of a
groupby and `ufunc.at`, each equal to the computation it replaces."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.factories import T0
from tracereplay.models import templating
from tracereplay.models.frame import RequestColumns, read_request_columns, sessionize_requests
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import session_stats, session_table
from tracereplay.models.templating import Templater, request_endpoints


def _reference_templates(r: RequestColumns) -> tuple[Templater, np.ndarray, list[str]]:
    """Per request: the templater fitted on every (method, path) (a null path read as
    "None"), each request's `str(templater.endpoint(...))` (a null path as "/"), names
    numbered in order of first use over the sorted distinct (method code, path code)."""
    paths = r.paths.to_pylist()
    methods = [r.methods[m] for m in r.method.tolist()]
    templater = Templater.fit(
        (m, "None" if paths[p] is None else paths[p])
        for m, p in zip(methods, r.path.tolist(), strict=True)
    )
    numbered: dict[str, int] = {}
    for m, p in sorted(set(zip(r.method.tolist(), r.path.tolist(), strict=True))):
        path = "/" if paths[p] is None else paths[p]
        numbered.setdefault(str(templater.endpoint(r.methods[m], path)), len(numbered))
    codes = [
        numbered[str(templater.endpoint(m, "/" if paths[p] is None else paths[p]))]
        for m, p in zip(methods, r.path.tolist(), strict=True)
    ]
    return templater, np.asarray(codes, dtype=np.int16), list(numbered)


def _requests(n: int, seed: int) -> RequestColumns:
    rng = np.random.default_rng(seed)
    ids = [str(uuid.UUID(int=int(rng.integers(1 << 62)))) for _ in range(400)]
    slugs = [f"post-{i}" for i in range(25)]
    shapes = [
        lambda: "/api/v1/clients/" + rng.choice(ids),
        lambda: "/api/v1/clients/" + rng.choice(ids) + "/sync",
        lambda: "/articles/" + rng.choice(slugs),
        lambda: "/api/v1/clients/",
        lambda: "/health?x=1",
        lambda: "",
        lambda: None,
        lambda: "/api/v1/clients/stats",
    ]
    paths = [shapes[int(k)]() for k in rng.integers(0, len(shapes), n)]
    methods = rng.choice(["GET", "post", "PUT", "DELETE"], n).tolist()
    methods = [None if k == 0 else m for k, m in zip(rng.integers(0, 40, n), methods, strict=True)]
    table = pa.table(
        {
            "ts": pa.array(
                [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 3600, n)],
                pa.timestamp("us", "UTC"),
            ),
            "duration_ms": pa.array(rng.choice([1.5, 250.0, np.nan], n), pa.float64()),
            "session": pa.array([f"s{k}" for k in rng.integers(0, 30, n)], pa.string()),
            "client": pa.array(["c"] * n, pa.string()),
            "method": pa.array(methods, pa.string()),
            "path": pa.array(paths, pa.string()),
            "status": pa.array([200] * n, pa.int16()),
        }
    )
    return read_request_columns(table.to_batches(max_chunksize=97), source="t")


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("dense", [True, False])
def test_request_endpoints_are_the_sorted_pairs_way(
    seed: int, dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _requests(3000 if dense else 1500, seed)
    if not dense:  # more cells than requests: the pairs sorted
        monkeypatch.setattr(templating, "DENSE_PAIR_CELLS", 0)
        assert len(r.methods) * len(r.paths) > len(r.method)
    templater, codes, names = request_endpoints(r.methods, r.method, r.paths, r.path)
    want_templater, want_codes, want_names = _reference_templates(r)
    assert templater.to_json() == want_templater.to_json()
    assert names == want_names
    assert codes.dtype == want_codes.dtype
    assert np.array_equal(codes, want_codes)
    assert len(set(names)) > 5  # the check has endpoints to tell apart


def _sessions(seed: int) -> pd.DataFrame:
    r = _requests(2000, seed)
    endpoint = np.zeros(len(r), np.int16)
    return sessionize_requests(r, endpoint, ["GET /"], timeout_s=300.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_session_table_by_runs_is_the_groupby(seed: int) -> None:
    sessions = _sessions(seed)
    shuffled = sessions.sample(frac=1.0, random_state=seed)  # not by session: the groupby
    by_runs, grouped = session_table(sessions), session_table(shuffled)
    pd.testing.assert_frame_equal(by_runs, grouped, check_exact=True)
    assert session_stats(sessions) == session_stats(shuffled)
    int32 = sessions.assign(session_id=sessions["session_id"].astype(np.int32))
    pd.testing.assert_frame_equal(
        session_table(int32), session_table(int32.sample(frac=1.0, random_state=seed))
    )
    assert by_runs["length"].min() >= 1 and (by_runs["duration_s"] > 0).any()
    # By session but not in time order within one (reduceat's way), and with a -0.0.
    rng = np.random.default_rng(seed)
    within = sessions.sort_values(
        ["session_id"], kind="stable", key=lambda c: c + rng.random(len(c)) / 2
    )
    within = within.sort_values("session_id", kind="stable").reset_index(drop=True)
    assert not (within["t_s"].diff().fillna(0) >= 0).all()
    pd.testing.assert_frame_equal(session_table(within), grouped, check_exact=True)
    signed = sessions.assign(t_s=sessions["t_s"].where(sessions["t_s"] > 0, -0.0))
    pd.testing.assert_frame_equal(
        session_table(signed),
        session_table(signed.sample(frac=1.0, random_state=seed)),
        check_exact=True,
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_censoring_by_runs_is_the_ufunc_at_way(seed: int) -> None:
    sessions = _sessions(seed)
    shuffled = sessions.sample(frac=1.0, random_state=seed)
    got, want = censoring(sessions, 60.0), censoring(shuffled, 60.0)
    assert got.threshold_s == want.threshold_s
    assert np.array_equal(got.start, want.start) and np.array_equal(got.end, want.end)
    assert got.start.any() and got.end.any() and not got.any.all()
