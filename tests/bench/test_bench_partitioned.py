"""bench_partitioned's claim, on a small trace: sessions made per partition of session keys
(spilled, exact quantiles in passes) give the whole-trace computation's numbers at any
partition count and gather limit, and `check` says so only when every number is equal;
the `sessions-section` mode (the product path) says "equal" of each field of the model
file's sessions section, and exits 1 when one differs."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest

from bench import bench_partitioned
from bench.bench_partitioned import check, reference, run
from tests.models.test_session_sample import _write_api_trace
from tracereplay.models.model import build_model, write_model


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
            gather_limit=gather_limit,
        )
    )  # fmt: skip
    assert whole["sessions"] >= 60 and whole["pauses"] > 0  # what is compared is there
    ref = _written(tmp_path / "ref.json", whole)
    assert check(Namespace(reference=ref, results=[_written(tmp_path / "p.json", found)],
                           model=None)) == 0  # fmt: skip
    found["think_trace"][10] = float(found["think_trace"][10]) * (1 + 1e-15) + 1e-300
    assert check(Namespace(reference=ref, results=[_written(tmp_path / "q.json", found)],
                           model=None)) == 1  # fmt: skip


def _sessions_section(
    trace: Path, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    argv = ["bench_partitioned.py", "sessions-section", "--trace", str(trace), "--partitions",
            "3", "--out", str(tmp_path / "sec.json"), "--model", str(model),
            "--tmp", str(tmp_path / "spill")]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    return bench_partitioned.main()


def test_the_sessions_section_mode_sees_the_model_files_section(
    trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = build_model(trace, processes=1, correlations=False)
    path = write_model(model, tmp_path / "t.model.json")
    assert _sessions_section(trace, path, tmp_path, monkeypatch) == 0
    said = capsys.readouterr().out
    fields = sorted(model["sessions"])
    assert [line.strip() for line in said.splitlines() if line.startswith("  ")] == [
        f"{name}: equal" for name in fields
    ]
    written = json.loads((tmp_path / "sec.json").read_text())
    assert written["equal"] == dict.fromkeys(fields, True)
    assert not list((tmp_path / "spill").iterdir())  # every spill removed

    model["sessions"]["stats"]["mean_length"] *= 1 + 1e-15  # (its last bit or so)
    assert model["sessions"]["stats"]["mean_length"] != json.loads(path.read_text())[
        "sessions"]["stats"]["mean_length"]  # fmt: skip
    altered = write_model(model, tmp_path / "altered.model.json")
    assert _sessions_section(trace, altered, tmp_path, monkeypatch) == 1
    assert "  stats: DIFFERENT" in capsys.readouterr().out.splitlines()
