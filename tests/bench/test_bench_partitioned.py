"""bench_partitioned's claim, on a small trace: sessions made per partition of session keys
(spilled, exact quantiles in passes) give the whole-trace computation's numbers at any
partition count and gather limit, and `check` says so only when every number is equal."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest

from bench.bench_partitioned import check, reference, run
from tests.models.test_session_sample import _write_api_trace


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("partitioned") / "t"
    _write_api_trace(where, 60)
    return where


def _written(path: Path, result: dict[str, object]) -> str:
    path.write_text(json.dumps(result))
    return str(path)


@pytest.mark.parametrize(("partitions", "gather_limit"), [(1, 1 << 20), (4, 1 << 20), (7, 8)])
def test_partitions_give_the_whole_traces_numbers(
    trace: Path, tmp_path: Path, partitions: int, gather_limit: int
) -> None:
    whole = reference(Namespace(trace=trace, timeout_s=1800.0))
    found = run(
        Namespace(
            trace=trace, timeout_s=1800.0, partitions=partitions, tmp=str(tmp_path),
            endpoints="skeletons", gather_limit=gather_limit,
        )
    )  # fmt: skip
    assert whole["sessions"] >= 60 and whole["pauses"] > 0  # what is compared is there
    ref = _written(tmp_path / "ref.json", whole)
    assert check(Namespace(reference=ref, results=[_written(tmp_path / "p.json", found)],
                           model=None)) == 0  # fmt: skip
    found["think_trace"][10] = float(found["think_trace"][10]) * (1 + 1e-15) + 1e-300
    assert check(Namespace(reference=ref, results=[_written(tmp_path / "q.json", found)],
                           model=None)) == 1  # fmt: skip
