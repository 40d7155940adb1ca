"""The correlation sample's rows are read in scan order and put in session order as Python
objects: the frame correlation finding walks is the one an Arrow take into session order
made (values, dtypes, order), and rows asked in scan order are not taken again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.factories import T0, make_record, write_trace
from tests.models.test_correlations import api_session
from tests.models.test_every_address import write_files
from tests.models.test_whole_trace import prepared
from tracereplay.models import sample_reads as sr
from tracereplay.models import source as source_module
from tracereplay.models.session_sample import SessionSample


def _interleaved(path: Path, n: int = 30) -> Path:
    """Sessions whose requests alternate in time: the scan order is not session order."""
    records = [
        make_record(ts=T0 + timedelta(seconds=10 * i + s), session=f"s-{s}", **exchange)
        for s in range(n)
        for i, exchange in enumerate(api_session(s, refresh=s % 3 == 0))
    ]
    return write_trace(path, sorted(records, key=lambda r: r.ts))


def _sample_of(s: dict[str, Any], every: int) -> SessionSample:
    parts = sr._request_parts(s["trace"], s["requests"])
    sample = sr._correlation_sample(parts, s["sessions"], 2, 0, seed=3)
    chosen = np.zeros_like(sample.chosen)
    chosen[::every] = True
    return replace(sample, chosen=chosen)


@pytest.mark.parametrize("every", [1, 3])  # every session (a whole read), a third
def test_the_walked_frame_is_the_one_a_take_into_session_order_made(
    tmp_path: Path, every: int
) -> None:
    s = prepared(_interleaved(tmp_path / "t"))
    trace, requests, sessions = s["trace"], s["requests"], s["sessions"]
    sample = _sample_of(s, every)
    read = sr._SampleReads.of(trace, requests, sessions, np.arange(0), sample, True)
    at = read.correlations.at
    assert len(at) == len(read.sessions) > 0
    assert not np.array_equal(at, np.arange(len(at)))  # session order is not scan order
    got = sr._correlation_frame(requests, read.sessions, read.correlations)
    # The old way: the rows asked in session order, taken by Arrow, then made pandas.
    asked = sr._scan_positions(requests, read.sessions["request"].to_numpy())
    (rows,) = source_module.rows_of(trace, [(asked, sr.CORRELATION_COLUMNS)])
    expected = rows.to_pandas()
    for name in sr.CORRELATION_COLUMNS:
        pd.testing.assert_series_equal(got[name], expected[name], check_exact=True)
    assert list(got["seq"]) == list(read.sessions["seq"])


def test_rows_asked_in_scan_order_are_not_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = prepared(write_files(tmp_path / "t", files=4, per_file=12))
    trace = s["trace"]
    rows = trace.trace.num_rows
    asked = np.arange(1, rows, 3)  # a third of the rows: the per-file (lean) read
    whole = trace.trace.to_table(["path", "status"], sort=False)
    gathered: list[int] = []
    array = pa.array

    def counted(values: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(values, np.ndarray) and len(values) == len(asked):
            gathered.append(len(values))
        return array(values, *args, **kw)

    monkeypatch.setattr(source_module.pa, "array", counted)
    in_order = trace.rows(asked, ["path", "status"])
    assert in_order.equals(whole.take(array(asked)))
    assert gathered == []  # no take of the rows into the asked order
    shuffled = np.random.default_rng(1).permutation(asked)
    assert trace.rows(shuffled, ["path", "status"]).equals(whole.take(array(shuffled)))
    assert gathered == [len(asked)]  # asked out of order: put in order by one take
    every = np.arange(rows)  # every row (the whole read): the table as read
    assert source_module._taken(whole, every) is whole
