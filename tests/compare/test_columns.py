"""compare reads both traces as light columns (compare/columns.py): the frames equal, to
the bit, what `load_requests` + `sessionized_pair` give, and compare.json with them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.compare.test_bindings import shop_records
from tests.factories import T0, TEST_META, make_record, realistic_records
from tracereplay.compare.columns import (
    _CHUNK,
    _first_use_codes,
    _Trace,
    fit_templater,
    path_skeleton_codes,
    read_pair,
    read_sessionized,
)
from tracereplay.compare.compare import COMPARE_COLUMNS, sessionized_pair
from tracereplay.models.frame import load_requests
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.models.shapes import skeleton_codes
from tracereplay.models.templating import Templater, add_endpoints
from tracereplay.trace import TraceMetadata, TraceRecord, open_writer


def _write(directory: Path, records: list[TraceRecord], meta: TraceMetadata) -> Path:
    with open_writer(directory, meta) as writer:
        for record in records:
            writer.write(record)
    return directory


def _odd_records() -> list[TraceRecord]:
    """Shop sessions, realistic traffic with µs times, and the awkward rows: no response
    with a transport error, no session (the client is the key), an empty session, a
    lower-case method, equal times, failed credentials on a connection."""
    odd = [
        make_record(ts=T0 + timedelta(seconds=7, microseconds=3), status=None,
                    duration_ms=None, error="connect timeout", session="shop-1"),
        make_record(ts=T0 + timedelta(seconds=7, microseconds=3), session=None, client="c-9"),
        make_record(ts=T0 + timedelta(seconds=8), session="", client="c-9", status=503),
        make_record(ts=T0 + timedelta(seconds=9), method="patch", session="x", error=""),
        make_record(ts=T0 + timedelta(hours=2), session="shop-1", path="/v2/orders"),
        # A wrong password corrected on the same connection joins the right key's session
        # (it starts earlier than the other "x" rows: their numbering moves); a stranger's
        # failures keep their own.
        make_record(ts=T0 + timedelta(seconds=8.5), session="wrong", conn="k1", status=401),
        make_record(ts=T0 + timedelta(seconds=9.5), session="x", conn="k1"),
        make_record(ts=T0 + timedelta(seconds=9.7), session="stranger", conn="k2", status=401),
    ]  # fmt: skip
    return [*shop_records(20), *realistic_records(300, seed=3), *odd]


def _same(old: pd.DataFrame, new: pd.DataFrame) -> None:
    assert len(old) == len(new)
    for column in new.columns:
        a, b = old[column], new[column]
        if column in ("session_key", "error", "endpoint", "status_label"):
            same = (
                a.astype(object).where(a.notna(), None).tolist()
                == b.astype(object).where(b.notna(), None).tolist()
            )
        else:
            same = np.array_equal(a.to_numpy(float), b.to_numpy(float), equal_nan=True)
        assert same, column


@pytest.mark.parametrize("source", ["test", "synthesize"])
def test_the_light_frames_equal_the_pandas_ones(tmp_path: Path, source: str) -> None:
    # A synthesized trace's times count from its capture_start (before its first row).
    meta = TraceMetadata(
        source=source, capture_start=T0 - timedelta(seconds=3.25), policy_hash="test-policy"
    )
    real = _write(tmp_path / "real", _odd_records(), TEST_META)
    other = _write(tmp_path / "other", _odd_records()[::-1][:400], meta)
    old = sessionized_pair(
        load_requests(real, COMPARE_COLUMNS), load_requests(other, COMPARE_COLUMNS)
    )
    new = read_pair(real, other)
    for before, after in zip(old, new, strict=True):
        _same(before, after)
    assert (new[1]["t_s"].min() > 3.25) == (source == "synthesize")
    assert new[1]["error"].astype(object).eq("connect timeout").sum() == 1


def _templating_records() -> list[TraceRecord]:
    """Paths whose templates hang on request counts and methods: twelve rare slugs and a
    popular one under /articles (the popular stays literal only by its count), ids under
    three methods (one lower-case), query strings, fragments, percent-encoded e-mails, an
    empty path and a trailing slash; times out of scan order."""
    paths = [f"/articles/post-{i}" for i in range(12)] + ["/articles/popular"] * 40
    paths += [f"/users/{i}" for i in range(30)] + ["/users/", "/search?q=a", "/search#top"]
    paths += ["/files/a%40b.c", "/files/c%40d.e", ""]
    methods = ["GET", "delete", "POST"]
    return [
        make_record(
            ts=T0 + timedelta(seconds=(7 * i) % len(paths)),
            path=path,
            method="GET" if path.startswith("/articles") else methods[i % 3],
            session=f"s-{i % 5}",
        )
        for i, path in enumerate(paths)
    ]


def test_endpoints_are_templated_as_the_model_templates_them(tmp_path: Path) -> None:
    # compare/columns.py fits and applies the templater on (method, path skeleton) pairs
    # with their request counts: the same templater as `Templater.fit` on every request,
    # the same endpoint per request, categories in order of first use (in time order).
    records = _templating_records()
    trace = _write(tmp_path / "real", records, TEST_META)
    fitted = fit_templater(_Trace(trace))
    requests = load_requests(trace, COMPARE_COLUMNS)
    expected = Templater.fit(
        zip(requests["method"].str.upper(), requests["path"].fillna("/"), strict=True)
    )
    assert fitted.to_json() == expected.to_json()
    assert "GET /articles/popular" in {str(e) for e in fitted.endpoints}
    frame = read_sessionized(trace, None, DEFAULT_SESSION_TIMEOUT_S)[0]
    names = add_endpoints(requests, expected, params=False)["endpoint"]
    assert list(frame["endpoint"].cat.categories) == list(pd.unique(names))
    old = sessionized_pair(requests, requests)[0]
    assert frame["endpoint"].astype(str).tolist() == old["endpoint"].astype(str).tolist()


def test_paths_folded_before_the_shape_rules_keep_their_skeletons() -> None:
    # compare folds integer and UUID segments into "0" before `skeleton_codes`: every
    # path's skeleton stays the one `skeleton_codes` gives it, whatever it holds around
    # and inside its ids (query, fragment, case, percent-encoding, near-ids).
    uuid = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"
    near = ["123abc", "12-34", uuid[:-1], uuid + "0", uuid.replace("-", ""), "0x12", "1.5"]
    pieces = ["", "api", "v1", "users", "42", "007", uuid, uuid.upper(), "2026-11-26"]
    pieces += ["a%40b.c", "%31%32", "é", "deadbeef12", "anon_x", "stats", "", *near]
    rng = np.random.default_rng(5)
    paths = ["", "/", "//", f"/users/{uuid}?id=7", f"/users/7#{uuid}", "/a?x=/1/2", "?/9"]
    for _ in range(400):
        picked = rng.choice(pieces, size=rng.integers(1, 6)).tolist()
        tail = ["", "/", "?q=1", f"?u={uuid}", "#f"][int(rng.integers(0, 5))]
        paths.append("/" + "/".join(picked) + tail)
    array = pa.array(paths, pa.string())
    codes, skeletons = skeleton_codes(array)
    folded_codes, folded = path_skeleton_codes(array)
    assert [folded[c] for c in folded_codes.tolist()] == [skeletons[c] for c in codes.tolist()]
    assert len(folded) == len(skeletons)
    assert len(set(paths)) > 300  # the folding had distinct paths to fold


def test_pairs_are_numbered_in_order_of_first_use_across_chunks() -> None:
    # `_first_use_codes` numbers (method, skeleton) pairs as `pd.factorize` of them does,
    # over more rows than one chunk, with pairs first used in later chunks and a skeleton
    # no request uses.
    rng = np.random.default_rng(2)
    rows = 2 * _CHUNK + 12_345
    method = rng.integers(0, 3, rows).astype(np.int32)
    path = rng.integers(0, 50, rows).astype(np.int32)
    path[_CHUNK + 7 :: 997] = 50  # a path first seen in the second chunk
    method[-3:] = 3  # a method seen in the last rows only
    path_skeleton = (np.arange(51) % 9).astype(np.int64)  # skeleton 9 (width 10) unused
    codes, used = _first_use_codes(method, path, path_skeleton, 10)
    expected_codes, expected = pd.factorize(method.astype(np.int64) * 10 + path_skeleton[path])
    assert np.array_equal(codes, expected_codes)
    assert used.tolist() == expected.tolist()
