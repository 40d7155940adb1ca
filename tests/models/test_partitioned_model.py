"""The model made in key partitions (models/partitioned_model.py, `build_model(partitions=N)`,
`tracereplay model --partitions N`) is the in-memory model's file byte for byte: on traces
with correlations and auth, of several files, with keys that failed auth throughout, with
the samples cut or whole; chosen by the trace's rows when not told; its spills removed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.models.test_partition_failed_auth import _source as _failed_auth_source
from tests.models.test_partition_samples import _write as _write_files
from tests.models.test_session_sample import _write_api_trace
from tracereplay.cli import main
from tracereplay.errors import UsageError
from tracereplay.models import model as model_module
from tracereplay.models import partitioned_model
from tracereplay.models.model import build_model, model_json

SMALL = {"payload_sample": 5, "correlation_sample": 24, "correlation_per_endpoint": 4}
"""Samples that cut these traces: the partitioned samples must choose the model's rows."""


@pytest.fixture
def spill_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temp directory for this test: what the partitions spill is seen, and
    must be gone after."""
    spills = tmp_path / "spills"
    spills.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spills))
    return spills


def _same(trace: Path, counts: list[int], spill_dir: Path, **options: Any) -> dict[str, Any]:
    """The in-memory model, asserted equal byte for byte to the model in each of `counts`
    partitions, none of whose spills is left."""
    want = model_json(build_model(trace, partitions=0, **options))
    for count in counts:
        got = model_json(build_model(trace, partitions=count, **options))
        assert got == want, f"{count} partitions"
        assert not list(spill_dir.iterdir()), f"{count} partitions left spills"
    return json.loads(want)  # type: ignore[no-any-return]


@pytest.mark.parametrize("options", [SMALL, {}], ids=["cut", "whole"])
def test_an_api_trace_with_correlations_and_auth(
    tmp_path: Path, spill_dir: Path, options: dict[str, Any]
) -> None:
    _write_api_trace(tmp_path / "t", 90)
    model = _same(tmp_path / "t", [1, 3, 16], spill_dir, **options)
    assert model["correlations"] and model["auth"]["login"]  # (what is compared is there)
    assert model["behaviors"] and model["outcomes"]


@pytest.mark.parametrize(("seed", "files", "empty"), [(1, 3, 0), (4, 1, 1), (3, 5, 0)])
def test_traces_of_several_files(
    tmp_path: Path, spill_dir: Path, seed: int, files: int, empty: int
) -> None:
    trace = _write_files(tmp_path / "t", seed, files, empty)
    model = _same(trace, [2, 7], spill_dir, **SMALL, session_timeout_s=600.0)
    if files > 1:  # (the payload sample was cut by file: the note says so)
        assert model["provenance"]["sampling"]["payloads"].get("files") == files


def test_keys_that_failed_auth_throughout_are_joined(tmp_path: Path, spill_dir: Path) -> None:
    _failed_auth_source("parquet", 3, tmp_path / "t")
    _same(tmp_path / "t", [1, 4], spill_dir, **SMALL)


def test_the_staging_capture(staging_trace: Path, spill_dir: Path) -> None:
    """The demo's capture (the sandbox's users: logins, CRUD, failures, latencies)."""
    model = _same(staging_trace, [5], spill_dir)
    assert model["auth"]["login"] and model["correlations"] and model["ids"]


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The partitions each `partitioned_model` call of `build_model` was given, in order."""
    calls: list[int] = []
    made = partitioned_model.partitioned_model

    def spy(*args: Any, **kw: Any) -> Any:
        calls.append(kw["partitions"])
        return made(*args, **kw)

    monkeypatch.setattr(partitioned_model, "partitioned_model", spy)
    return calls


def test_the_rows_choose_the_partitions(
    tmp_path: Path, spill_dir: Path, monkeypatch: pytest.MonkeyPatch, asked: list[int]
) -> None:
    """Unless told, a trace of more than `PARTITIONED_ABOVE_ROWS` requests is modelled in
    partitions of ~`ROWS_PER_PARTITION` requests; the same model either way."""
    _write_api_trace(tmp_path / "t", 40)
    want = model_json(build_model(tmp_path / "t", partitions=0))
    assert model_json(build_model(tmp_path / "t")) == want and asked == []
    monkeypatch.setattr(model_module, "PARTITIONED_ABOVE_ROWS", 100)
    monkeypatch.setattr(partitioned_model, "ROWS_PER_PARTITION", 64)
    assert model_json(build_model(tmp_path / "t")) == want
    rows = json.loads(want)["provenance"]["rows"]
    assert rows > 100 and asked == [-(-rows // 64)]


def test_no_spill_is_left_when_a_stage_fails(
    tmp_path: Path, spill_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_api_trace(tmp_path / "t", 20)

    def broken(*args: Any, **kw: Any) -> Any:
        assert any(spill_dir.iterdir())  # (the partitions are spilled by now)
        raise RuntimeError("broken stage")

    monkeypatch.setattr(partitioned_model, "partition_behaviors", broken)
    with pytest.raises(RuntimeError, match="broken stage"):
        build_model(tmp_path / "t", partitions=3)
    assert not list(spill_dir.iterdir())


def test_the_partitions_asked_must_be_at_least_zero(tmp_path: Path) -> None:
    _write_api_trace(tmp_path / "t", 5)
    with pytest.raises(UsageError, match="--partitions"):
        build_model(tmp_path / "t", partitions=-1)


def test_the_command_takes_partitions(
    tmp_path: Path, spill_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_api_trace(tmp_path / "t", 30)
    assert main(["model", str(tmp_path / "t"), "--out", str(tmp_path / "a.json")]) == 0
    assert (
        main(["model", str(tmp_path / "t"), "--out", str(tmp_path / "b.json"), "--partitions", "4"])
        == 0
    )
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    capsys.readouterr()
    assert main(["model", str(tmp_path / "t"), "--partitions", "-2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--partitions" in err[0] and "Traceback" not in err[0]
    assert not list(spill_dir.iterdir())


def test_the_memory_available_chooses_the_partitions(
    tmp_path: Path, spill_dir: Path, monkeypatch: pytest.MonkeyPatch, asked: list[int]
) -> None:
    """Unless told, a trace whose in-memory model would take more than half the memory
    available is modelled in partitions; with room, in memory."""
    _write_api_trace(tmp_path / "t", 40)
    want = model_json(build_model(tmp_path / "t", partitions=0))
    rows = json.loads(want)["provenance"]["rows"]
    monkeypatch.setattr(model_module, "IN_MEMORY_BYTES", (0, (4 << 30) // rows))  # ~4 GiB
    monkeypatch.setattr(model_module, "available_bytes", lambda: 9 << 30)
    assert model_json(build_model(tmp_path / "t")) == want and asked == []
    monkeypatch.setattr(model_module, "available_bytes", lambda: 7 << 30)
    assert model_json(build_model(tmp_path / "t")) == want and asked == [1]


@pytest.mark.parametrize(
    ("files", "want"),
    [
        ({"memory.max": "max\n", "memory.current": "100\n"}, "system"),
        ({"memory.max": "1000000\n", "memory.current": "250000\n"}, 750_000),
        ({"memory.max": "1000\n", "memory.current": "4000\n"}, 0),
        ({"memory.max": "garbled\n"}, "system"),
        ({}, "system"),
    ],
)
def test_the_memory_available_reads_a_containers_limit(
    tmp_path: Path, files: dict[str, str], want: Any
) -> None:
    import psutil

    from tracereplay.allocator import available_bytes

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    found = available_bytes(tmp_path)
    if want == "system":  # (what the system has: it moves, so within a margin)
        assert abs(found - psutil.virtual_memory().available) < 1 << 28
    else:
        assert found == want


def test_a_full_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The partitions' spills on a disk that fills: exit 2, one line saying where and what
    it needs, no model file, no spill left; in memory, the same trace is modelled."""
    from tests.tmpfs import fill, small_tmpfs

    _write_api_trace(tmp_path / "t", 60)
    out = tmp_path / "m.json"
    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        filler = fill(disk, leave_bytes=8192)
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        assert main(["model", str(tmp_path / "t"), "--out", str(out), "--partitions", "3"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        (line,) = [x for x in err.splitlines() if x.startswith("tracereplay: error: ")]
        assert f"no room left under {disk}" in line and "TMPDIR" in line
        rows = sum(pq.read_metadata(f).num_rows for f in (tmp_path / "t").rglob("*.parquet"))
        assert f"~1 MB for {rows:,} requests" in line  # (the trace's: the scan had not ended)
        assert not out.exists()
        assert [p.name for p in disk.iterdir()] == [filler.name]
        assert main(["model", str(tmp_path / "t"), "--out", str(out), "--partitions", "0"]) == 0


@pytest.mark.parametrize("kind", ["table", "journal"])
def test_sources_other_than_parquet_files(tmp_path: Path, spill_dir: Path, kind: str) -> None:
    """A trace still in a capture's journal (no files told), and a source that is not a
    trace directory (an Arrow table): the same model in partitions."""
    from tests.models.test_partition_failed_auth import _WRITERS

    try:
        source = _failed_auth_source(kind, 5, tmp_path / "t")
        want = model_json(build_model(tmp_path / "t", source=source, partitions=0, **SMALL))
        got = model_json(build_model(tmp_path / "t", source=source, partitions=3, **SMALL))
        assert got == want
        assert not list(spill_dir.iterdir())
    finally:
        for writer in _WRITERS:
            writer.close()
        _WRITERS.clear()


def test_one_key_and_more_partitions_than_keys(tmp_path: Path, spill_dir: Path) -> None:
    """Every request of one client (one key: one partition holds all, the others none)."""
    from datetime import timedelta

    from tests.factories import T0, make_record, write_trace

    records = [
        make_record(ts=T0 + timedelta(seconds=7 * i), session=None, client="only-one",
                    path=f"/api/clients/{i % 5}", status=200, duration_ms=3.0)
        for i in range(300)
    ]  # fmt: skip
    write_trace(tmp_path / "t", records)
    model = _same(tmp_path / "t", [1, 8], spill_dir)
    assert model["provenance"]["sessions"] >= 1


def test_an_empty_trace_is_one_line(
    tmp_path: Path, spill_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    from tests.factories import make_table

    (tmp_path / "t").mkdir()
    pq.write_table(make_table([]), tmp_path / "t" / "part-000000.parquet")
    assert main(["model", str(tmp_path / "t"), "--partitions", "4"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "holds no rows" in err
    assert not list(spill_dir.iterdir())


def test_a_damaged_trace_file_is_one_line_and_leaves_nothing(
    tmp_path: Path, spill_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file whose strings are not UTF-8, read by the scan's own thread (`read_ahead`)
    after files that are whole: one line, exit 2, no spill left."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _write_api_trace(tmp_path / "t", 20)
    files = sorted((tmp_path / "t").glob("*.parquet"))
    table = pq.read_table(files[-1])
    sessions = pa.array([b"s\xff"] * table.num_rows).view(pa.string())  # not UTF-8
    column = table.schema.get_field_index("session")
    pq.write_table(table.set_column(column, "session", sessions), files[-1])
    assert main(["model", str(tmp_path / "t"), "--partitions", "3"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("tracereplay: error")]
    assert "Traceback" not in err and len(errors) == 1 and "damaged" in errors[0]
    assert not list(spill_dir.iterdir())
