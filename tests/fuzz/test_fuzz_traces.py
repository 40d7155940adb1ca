"""Fuzz: trace files with flipped bits, cuts, insertions and deletions, read by `info` and
`model`: exit 0 or 2, never a traceback, no model file left after a failure."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import T0, make_record, write_trace
from tests.fuzz.harness import assert_clean, fuzz_damaged


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
    def read(file: Path, work: Path) -> None:
        trace = work / "trace"
        trace.mkdir()
        file.rename(trace / file.name)
        assert_clean(["info", str(trace)])
        out = work / "m.json"
        if assert_clean(["model", str(trace), "--out", str(out)]) != 0:
            assert not out.exists()

    fuzz_damaged(part, "part-000001.parquet", tmp_path, read)
