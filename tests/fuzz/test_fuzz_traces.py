"""Fuzz: trace files with flipped bits, cuts, insertions and deletions, read by `info` and
`model`: exit 0 or 2, never a traceback, no model file left after a failure."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import T0, make_record, write_trace
from tests.fuzz.harness import FUZZ, assert_clean, mutate, scratch

EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2**31), st.integers(0, 255)),
    min_size=1, max_size=6,
)  # fmt: skip


@pytest.fixture(scope="module")
def part(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    rows = [
        make_record(ts=T0 + timedelta(seconds=i * 0.7), session=f"s{i % 5}",
                    path=f"/api/items/{i % 4}", query=f"page={i % 2}", status=200 + (i % 3))
        for i in range(40)
    ]  # fmt: skip
    trace = write_trace(tmp_path_factory.mktemp("fuzz-trace") / "t", rows)
    return sorted(trace.glob("*.parquet"))[0].read_bytes()


def test_damaged_trace_files(part: bytes, tmp_path: Path) -> None:
    ran: list[int] = []

    @FUZZ
    @given(EDITS)
    def check(edits: list[tuple[int, int, int]]) -> None:
        ran.append(1)
        with scratch(tmp_path) as work:
            trace = work / "trace"
            trace.mkdir()
            (trace / "part-000001.parquet").write_bytes(mutate(part, edits))
            assert_clean(["info", str(trace)])
            out = work / "m.json"
            if assert_clean(["model", str(trace), "--out", str(out)]) != 0:
                assert not out.exists()

    check()
    assert len(ran) >= 60
