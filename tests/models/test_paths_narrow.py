"""The behaviors' paths with their endpoint codes as narrow as their pair codes allow
(mem22): int16 for a trace's few endpoints, the same transitions at the bounds of each
type as counted in int64."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tracereplay.models.behavior_paths import Pairs, SessionPaths


def _sessions(endpoints: int, seed: int) -> pd.DataFrame:
    """120 sessions of 1-30 requests over `endpoints` names, every name used."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 31, 120)
    n = int(sizes.sum())
    codes = rng.integers(0, endpoints, n)
    codes[:endpoints] = np.arange(endpoints)  # every endpoint used: the labels' count
    names = [f"GET /e{k:03d}" for k in range(endpoints)]
    return pd.DataFrame(
        {
            "session_id": np.repeat(np.arange(len(sizes)), sizes),
            "endpoint": pd.Categorical.from_codes(codes, categories=pd.Index(names)),
            "think_s": rng.uniform(0.1, 5.0, n),
        }
    )


@pytest.mark.parametrize(
    ("endpoints", "kind"),
    # labels = endpoints + START and END: 181² = 32,761 fits int16, 182² does not
    [(3, np.int16), (179, np.int16), (180, np.int32), (500, np.int32)],
)
def test_the_steps_are_as_narrow_as_their_pairs_fit(endpoints: int, kind: type) -> None:
    paths = SessionPaths.of(_sessions(endpoints, endpoints))
    assert len(paths.labels) == endpoints + 2
    assert paths.step.dtype == kind
    pairs = Pairs.of(paths)
    # The pairs as int64 codes of each (request before or START, request), and each last.
    width = len(paths.labels)
    step = paths.step.astype(np.int64)
    before = np.r_[0, step[:-1]]
    before[paths.first] = paths.code("START")
    wide = before * width + step
    last = paths.first + paths.length - 1
    ends = step[last] * width + paths.code("END")
    want = np.unique(np.r_[wide, ends])
    assert np.array_equal(pairs.codes, want)
    assert np.array_equal(pairs.codes[pairs.column], wide)
    assert np.array_equal(pairs.codes[pairs.end_column], ends)
