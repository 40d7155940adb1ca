"""`synthesize` writes one Parquet part per chunk (models/synth_parts.py, synth_run.py): the
same rows in the same order at any --processes, the trace's metadata in every part, the
directory claimed as open_writer claims it, and a run that fails keeps nothing readable."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.bad_input import assert_exit_2, run_cli
from tests.factories import realistic_records, write_trace
from tracereplay import outdir
from tracereplay.errors import TraceEmptyError, TraceError, TraceExistsError, TraceLockedError
from tracereplay.models import synth_run
from tracereplay.models import synthesize as synthesize_module
from tracereplay.models.model import build_model, write_model
from tracereplay.models.synth_parts import PartsOut, staged_path, write_staged
from tracereplay.trace import TraceMetadata, open_trace, open_writer, trace_schema
from tracereplay.trace.store import part_path

CHUNK = 40
"""Sessions per chunk here: the runs below have several chunks for the workers to share."""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    trace = write_trace(tmp_path_factory.mktemp("parts") / "t", list(realistic_records(800)))
    return build_model(trace, correlations=False)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthesize_module, "CHUNK_SESSIONS", CHUNK)  # cut in the parent


@pytest.fixture
def workers_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process draws no chunk: its workers draw them all (else, on runs this small,
    this process may draw them all before a worker has started)."""
    monkeypatch.setattr(synth_run, "PARENT_DRAWS", False)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != ".writer.lock")


@pytest.mark.usefixtures("small_chunks", "workers_first")
def test_one_two_and_three_processes_write_the_same_parts(
    model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 2 the pools are rendered first and read by the worker from a file (as in a large
    run); at 3 each worker renders the blocks it needs."""
    results = {}
    for p, eager in ((1, 0), (2, 0), (3, synthesize_module.EAGER_POOL_ROWS)):
        monkeypatch.setattr(synthesize_module, "EAGER_POOL_ROWS", eager)
        out = tmp_path / f"p{p}"
        results[p] = synthesize_module.synthesize(model, out, scale=3, seed=2, processes=p)
    one = open_trace(tmp_path / "p1")
    chunks = -(-results[1].sessions // CHUNK)
    assert chunks >= 4 and results[1].requests == one.num_rows > 100
    # One part per chunk, numbered in chunk order; no staged or temporary file left.
    assert _files(tmp_path / "p1") == [part_path(Path(), s).name for s in range(1, chunks + 1)]
    table = one.to_table(sort=False)
    assert table.column("req_body").null_count < table.num_rows  # pools were used
    for p in (2, 3):
        other = open_trace(tmp_path / f"p{p}")
        assert _files(tmp_path / f"p{p}") == _files(tmp_path / "p1")
        assert other.to_table(sort=False).equals(table)
        assert other.to_table().equals(one.to_table())
        assert (results[p].sessions, results[p].requests) == (results[1].sessions, one.num_rows)
    # Every part carries the trace's metadata, as the writer's parts do.
    expected = TraceMetadata(
        source="synthesize",
        capture_start=synthesize_module.Synthesizer(model).start,
        policy_hash=str(model["provenance"].get("policy_hash", "")),
    )
    for part in (tmp_path / "p2").glob("part-*.parquet"):
        assert TraceMetadata.from_arrow(pq.read_schema(part).metadata) == expected


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("split", ["worker renders every block", "workers draw every chunk"])
def test_the_command_forks_workers_that_write_the_same_parts(
    model: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    split: str,
) -> None:
    """The command starts its workers before the model is checked (fork): the pools'
    blocks and the chunks go to whoever takes them first, so the rows must not depend on
    who did. Here either the worker renders every block (this process none: it takes them
    from the worker's message) or the workers draw every chunk (with the pools from this
    process's file); both against one process."""
    monkeypatch.setattr(synthesize_module, "EAGER_POOL_ROWS", 0)  # blocks first, shared
    path = write_model(model, tmp_path / "m.json")
    parent = os.getpid()
    if split == "worker renders every block":
        real = synth_run.Job.render_blocks
        monkeypatch.setattr(
            synth_run.Job,
            "render_blocks",
            lambda job, counter: {} if os.getpid() == parent else real(job, counter),
        )
    else:
        monkeypatch.setattr(synth_run, "PARENT_DRAWS", False)
    for p in (1, 2, 3):
        argv = ["synthesize", str(path), "--out", str(tmp_path / f"p{p}"), "--scale", "3",
                "--seed", "2", "--processes", str(p)]  # fmt: skip
        assert run_cli(argv, capsys)[0] == 0
    one = open_trace(tmp_path / "p1").to_table(sort=False)
    assert len(_files(tmp_path / "p1")) >= 4 and one.column("req_body").null_count < len(one)
    for p in (2, 3):
        assert _files(tmp_path / f"p{p}") == _files(tmp_path / "p1")
        assert open_trace(tmp_path / f"p{p}").to_table(sort=False).equals(one)


@pytest.mark.usefixtures("small_chunks")
def test_a_model_refused_stops_the_forked_workers(
    model: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The workers start before the model is checked: a refused model (or options) is one
    line, no directory, and no worker left running."""
    broken = dict(model, behaviors=[dict(model["behaviors"][0], share=0.5)])
    path = write_model(broken, tmp_path / "m.json")
    argv = ["synthesize", str(path), "--out", str(tmp_path / "out"), "--processes", "3"]
    assert_exit_2(argv, capsys, says="shares sum to 0.5")
    good = write_model(model, tmp_path / "good.json")
    argv = ["synthesize", str(good), "--out", str(tmp_path / "out"), "--scale", "1e12",
            "--processes", "2"]  # fmt: skip
    assert_exit_2(argv, capsys, says="lower --scale or --duration")
    assert not (tmp_path / "out").exists()
    assert multiprocessing.active_children() == []


@pytest.mark.usefixtures("small_chunks")
def test_a_write_failing_half_way_keeps_nothing_readable(
    model: dict[str, Any], tmp_path: Path
) -> None:
    """Chunk 2's part cannot be written (its staged name is taken by a directory), after
    chunk 1's was: one line naming the failure; no part or staged part of the run is
    left, and the directory reads as no trace."""
    out = tmp_path / "out"
    blocker = staged_path(out, 2)
    (blocker / "x").mkdir(parents=True)
    with pytest.raises(TraceError) as failed:
        synthesize_module.synthesize(model, out, scale=3, seed=2)
    message = str(failed.value)
    assert "\n" not in message and "writing the trace failed (Is a directory)" in message
    assert _files(out) == [blocker.name]
    with pytest.raises(TraceEmptyError):
        open_trace(out)


@pytest.mark.usefixtures("small_chunks", "workers_first")
@pytest.mark.parametrize("failure", ["its write fails", "it dies"])
def test_the_cli_says_a_worker_failed_in_one_line_and_removes_what_it_wrote(
    model: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: str,
) -> None:
    """As above, in the worker process that draws chunk 1 (`workers_first`); or the forked
    worker ends without a word in its first chunk (as if killed)."""
    path = write_model(model, tmp_path / "m.json")
    out = tmp_path / "out"
    if failure == "its write fails":
        (staged_path(out, 1) / "x").mkdir(parents=True)  # a worker's chunk
        monkeypatch.setattr(outdir, "check_out_dir", lambda out, **_: out)  # let it start there
        says, left = "writing the trace failed (Is a directory)", [staged_path(out, 1).name]
    else:
        parent, real = os.getpid(), synth_run.Job.write

        def dying(job: synth_run.Job, *args: Any) -> int:
            if os.getpid() != parent:
                os._exit(9)
            return real(job, *args)

        monkeypatch.setattr(synth_run.Job, "write", dying)
        says, left = "a synthesis worker process died", None
    argv = ["synthesize", str(path), "--out", str(out), "--scale", "3", "--processes", "2"]
    assert_exit_2(argv, capsys, says=says)
    assert (_files(out) if out.exists() else None) == left  # as it was


def test_a_part_keeps_its_pooled_columns_as_dictionaries_and_reads_back_as_written(
    model: dict[str, Any], tmp_path: Path
) -> None:
    """Synthesized parts dictionary-encode the path, query and body too (a capture's do
    not): the reader gives back the trace schema and the very rows that were drawn."""
    synth = synthesize_module.Synthesizer(model, 2)
    starts = synth.session_starts(3, None)
    batch = synth.chunk(np.arange(len(starts)), starts)
    meta = TraceMetadata(source="synthesize")
    (tmp_path / "t").mkdir()
    write_staged(tmp_path / "t", 1, batch, meta)
    staged_path(tmp_path / "t", 1).rename(part_path(tmp_path / "t", 1))
    row_group = pq.ParquetFile(part_path(tmp_path / "t", 1)).metadata.row_group(0)
    encodings = {
        row_group.column(i).path_in_schema: row_group.column(i).encodings
        for i in range(row_group.num_columns)
    }
    for name in ("path", "query", "req_body", "session"):
        assert "RLE_DICTIONARY" in encodings[name], name
    assert "RLE_DICTIONARY" not in encodings["ts"]
    read = open_trace(tmp_path / "t").to_table(sort=False)
    assert read.schema.equals(trace_schema(meta)) and read.num_rows == batch.num_rows > 100
    assert read.equals(pa.Table.from_batches([batch.cast(trace_schema(meta))]))


def test_the_directory_is_claimed_as_the_writer_claims_it(tmp_path: Path) -> None:
    meta = TraceMetadata(source="synthesize")
    with open_writer(tmp_path / "held", meta), pytest.raises(TraceLockedError):
        PartsOut(tmp_path / "held", meta)
    write_trace(tmp_path / "full", list(realistic_records(3)))
    with pytest.raises(TraceExistsError):
        PartsOut(tmp_path / "full", meta)
    with open_writer(tmp_path / "full", meta, append=True):  # the refusal let go of the lock
        pass


def test_a_staged_part_is_not_read_as_part_of_the_trace(tmp_path: Path) -> None:
    """What a run killed outright may leave besides its landed parts is skipped by readers."""
    write_trace(tmp_path / "t", list(realistic_records(5)))
    (tmp_path / "t" / "part-000001.parquet").rename(staged_path(tmp_path / "t", 1))
    with pytest.raises(TraceEmptyError):
        open_trace(tmp_path / "t")
