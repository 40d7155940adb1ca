"""pay16-model's fast paths of the endpoint statistics give what the plain code gave."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tracereplay.models.endpoint_codes import _codes_used
from tracereplay.models.endpoints import latency_and_status, param_kinds
from tracereplay.models.frame import distinct
from tracereplay.models.shapes import cut_path, cut_paths


@pytest.mark.parametrize(
    "paths",
    [
        ["/a/1", "/a/2", ""],
        ["/a/1?x=1", "/a/2#f", "/a/3"],  # the pattern's case
        ["/a/2#f", "/a/3"],
        ["/é/ü", "/a/7"],
        [],
    ],
)
def test_paths_are_cut_as_the_pattern_cuts_them(paths: list[str]) -> None:
    array = pa.array(paths, pa.string())
    # (the look for "?" and "#" is `cut_paths`' own now: checked against each path's cut)
    assert cut_paths(array).to_pylist() == [cut_path(p) for p in paths]
    assert cut_paths(array.slice(1)).to_pylist() == [cut_path(p) for p in paths[1:]]
    if all(p.startswith("/a/") for p in paths):  # the endpoint's paths take its template
        assert param_kinds("/a/{id}", array) == param_kinds("/a/{id}", cut_paths(array))


@pytest.mark.parametrize(
    "statuses", [[200.0, 404.0, 200.0, np.nan], [np.nan], [], [200.0, 1200.0], [-1.0, 200.0]]
)
def test_status_shares_are_counted_as_unique_counts_them(statuses: list[float]) -> None:
    status = np.asarray(statuses, dtype=float)
    known = status[~np.isnan(status)].astype(int)
    codes, counts = np.unique(known, return_counts=True)
    shares = {str(c): float(f"{n / len(known):.4g}") for c, n in zip(codes, counts, strict=True)}
    assert latency_and_status(np.zeros(len(status)), status)["status"] == shares


def test_used_codes_are_the_distinct_codes() -> None:
    codes = np.random.default_rng(0).integers(0, 50, 1_000).astype(np.int32)
    assert np.array_equal(_codes_used(codes, 60), distinct(codes))
    assert len(_codes_used(codes[:0], 60)) == 0
