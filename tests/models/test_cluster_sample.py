"""The session sample of a trace of many files is a cluster sample (issue 15): it fills from
the sessions that start in few files, so reading its requests' bodies decodes few files,
and it finds what the uniform sample and the whole trace find."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.factories import T0, TEST_META, make_record
from tests.models.test_correlations import api_session
from tracereplay.models import model as model_module
from tracereplay.models import sample_reads, session_sample
from tracereplay.models.model import build_model, model_json
from tracereplay.models.session_sample import part_ranks, sample_sessions
from tracereplay.models.source import ParquetSource, part_of
from tracereplay.trace import Trace, open_writer

FILES, PER_FILE = 12, 10
"""The trace below: 12 files of 10 sessions each, sessions in time order."""


def _sessions_by_file() -> list[list[int]]:
    return [list(range(f * PER_FILE, (f + 1) * PER_FILE)) for f in range(FILES)]


def write_files(path: Path, *, spill: bool = True) -> Path:
    """A trace of FILES files (each written by its own appending writer): file f holds
    the sessions f*10..f*10+9, ten minutes apart; with `spill` the last session of each
    file logs out in the next file's first rows (a session that continues into it)."""
    exchanges = {s: api_session(s, refresh=s % 3 == 0) for s in range(FILES * PER_FILE)}
    late: list[Any] = []
    for f, ids in enumerate(_sessions_by_file()):
        records, late = late, []
        for s in ids:
            steps = exchanges[s]
            for i, exchange in enumerate(steps):
                record = make_record(
                    ts=T0 + timedelta(minutes=10 * s, seconds=i), session=f"s-{s}", **exchange
                )
                keep_late = spill and s == ids[-1] and i == len(steps) - 1 and f < FILES - 1
                (late if keep_late else records).append(record)
        with open_writer(path, TEST_META, append=f > 0) as writer:
            for record in records:
                writer.write(record)
    return path


def _files_read(monkeypatch: pytest.MonkeyPatch, column: str = "resp_body") -> list[str]:
    """The trace files whose `column` (response bodies) `ParquetSource.rows_of` decodes."""
    read: list[str] = []
    lean = Trace.lean_batches

    def spy(self: Trace, columns: list[str], batch_size: int) -> Any:
        if column in columns:
            read.extend(Path(f).name for f in self.dataset.files)
        return lean(self, columns, batch_size)

    monkeypatch.setattr(Trace, "lean_batches", spy)
    return read


def _sampled(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every sample `build_model` and `sessions_auth` draw, as drawn."""
    drawn: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        drawn.append(sample_sessions(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(sample_reads, "sample_sessions", spy)
    return drawn


def test_the_sample_reads_the_files_it_needs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = write_files(tmp_path / "t")
    files = sorted(p.name for p in trace.glob("part-*.parquet"))
    assert len(files) == FILES
    read, drawn = _files_read(monkeypatch), _sampled(monkeypatch)
    built = build_model(trace, correlation_sample=25, correlation_per_endpoint=2)
    (sample,) = drawn
    # The first three files in the seeded order hold 30 sessions: the 25 of the uniform
    # part and every endpoint's first two come from them, and the sessions of theirs that
    # go on into the next file (its first rows: the last session's logout) need that one.
    rank = part_ranks(FILES, 0)
    top = np.argsort(rank)[:3]
    starts = {s: f for f, ids in enumerate(_sessions_by_file()) for s in ids}
    chosen = set(np.flatnonzero(sample.chosen).tolist())
    assert {starts[s] for s in chosen} == set(top.tolist())
    needed = {int(f) for f in top} | {
        starts[s] + 1 for s in chosen if s % PER_FILE == PER_FILE - 1 and starts[s] < FILES - 1
    }
    assert sorted(set(read)) == sorted(files[f] for f in needed)
    assert len(read) == len(set(read))  # each file decoded once
    note = built["provenance"]["sampling"]["correlations"]
    assert note["files"] == FILES and note["files_sampled"] == len(needed)
    assert note["sessions_read"] == len(chosen) >= 25
    # A uniform sample of as many sessions (by key, as before) lies in most files.
    session_id = np.repeat(np.arange(FILES * PER_FILE), 2)
    uniform = sample_sessions(session_id, np.zeros(len(session_id), int), per_sample=25)
    spread = {starts[s] for s in np.flatnonzero(uniform.chosen).tolist()}
    assert len(spread) > len(needed)


def test_the_cluster_sample_is_seeded_and_fixed(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 5, 400)
    session_id = np.repeat(np.arange(400), lengths)
    endpoint = rng.integers(0, 5, len(session_id))
    part = (np.arange(len(session_id)) * 8 // len(session_id)).astype(np.int16)
    kw: dict[str, Any] = {"per_sample": 60, "per_endpoint": 3, "part": part}
    first = sample_sessions(session_id, endpoint, seed=1, **kw)
    assert np.array_equal(first.chosen, sample_sessions(session_id, endpoint, seed=1, **kw).chosen)
    other = sample_sessions(session_id, endpoint, seed=2, **kw)
    assert not np.array_equal(first.chosen, other.chosen)
    assert first.parts == 8 and first.parts_read < 8
    # The order of the rows given does not matter: a session's part is the first holding it.
    shuffled = rng.permutation(len(session_id))
    again = sample_sessions(session_id[shuffled], endpoint[shuffled], seed=1,
                            per_sample=60, per_endpoint=3, part=part[shuffled])  # fmt: skip
    assert np.array_equal(again.chosen, first.chosen)
    # One part, or none given: the sample by key alone, as before parts.
    alone = sample_sessions(session_id, endpoint, seed=1, per_sample=60, per_endpoint=3)
    one = sample_sessions(session_id, endpoint, seed=1, per_sample=60, per_endpoint=3,
                          part=np.zeros(len(session_id), np.int16))  # fmt: skip
    assert np.array_equal(alone.chosen, one.chosen)
    assert not np.array_equal(alone.chosen, first.chosen)


def test_few_sessions_are_every_session_however_many_files(tmp_path: Path) -> None:
    trace = write_files(tmp_path / "t")
    source = ParquetSource.open(trace)
    assert source.part_rows() is not None and len(source.part_rows() or []) == FILES
    sessions = FILES * PER_FILE
    session_id = np.arange(sessions)
    sample = sample_sessions(
        session_id, np.zeros(sessions, int), per_sample=sessions,
        part=part_of(source, np.arange(sessions)),
    )  # fmt: skip
    assert sample.whole
    whole = build_model(trace, correlation_sample=sessions)
    note = whole["provenance"]["sampling"]["correlations"]
    assert note["sessions_read"] == sessions and "files" not in note


def test_the_part_of_a_scan_position_is_its_file(tmp_path: Path) -> None:
    trace = write_files(tmp_path / "t")
    source = ParquetSource.open(trace)
    counts = [pq.ParquetFile(f).metadata.num_rows for f in source.trace.dataset.files]
    assert source.part_rows() == counts
    ends = np.cumsum(counts)
    part = part_of(source, np.array([0, ends[0] - 1, ends[0], ends[-1] - 1]))
    assert part is not None and part.tolist() == [0, 0, 1, FILES - 1]


def test_the_model_on_the_cluster_sample_finds_what_all_sessions_give(tmp_path: Path) -> None:
    trace = write_files(tmp_path / "t")
    whole = build_model(trace)
    kw: dict[str, Any] = {"correlation_sample": 25, "correlation_per_endpoint": 2}
    sampled = build_model(trace, **kw)
    assert model_json(sampled) == model_json(build_model(trace, **kw))
    rules = [[(r["source"], r["target"]) for r in m["correlations"]] for m in (whole, sampled)]
    assert rules[0] == rules[1] and sampled["auth"] == whole["auth"]
    assert sampled["auth"]["login"] == "POST /auth/login" and sampled["auth"]["refresh"]
    assert sampled["endpoints"].keys() == whole["endpoints"].keys()
    assert sampled["outcomes"]["addresses"] == whole["outcomes"]["addresses"]


def test_an_endpoint_seen_only_late_pulls_its_file_in(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sessions = 200
    session_id = np.repeat(np.arange(sessions), 3)
    endpoint = rng.integers(0, 3, len(session_id))
    part = (session_id // 20).astype(np.int16)  # 10 parts of 20 sessions
    rank = part_ranks(10, 0)
    last = int(np.argmax(rank))
    rare = int(np.flatnonzero(part == last)[4])
    endpoint[rare] = 7  # one request of a session starting in the last-ranked part
    sample = sample_sessions(session_id, endpoint, per_sample=30, per_endpoint=2, part=part)
    assert sample.chosen[session_id[rare]]
    read = set(part[sample.chosen[session_id]].tolist())
    assert last in read and len(read) == 3  # two for the uniform part, one for the rare


def test_compare_binds_on_the_models_cluster_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracereplay.models.correlations import auth_to_json

    trace = write_files(tmp_path / "t")
    sample = {"correlation_sample": 25, "correlation_per_endpoint": 2}
    read = _files_read(monkeypatch)
    auth = model_module.learned_auth(trace, **sample)
    assert 0 < len(read) < FILES
    assert auth_to_json(auth) == build_model(trace, **sample)["auth"]
    assert session_sample.CORRELATION_SAMPLE_SESSIONS == 2000  # the default, documented


def test_a_file_is_read_up_to_its_last_wanted_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracereplay.models import source as source_module

    trace = write_files(tmp_path / "t")
    counts = ParquetSource.open(trace).part_rows() or []
    monkeypatch.setattr(source_module, "LEAN_BATCH_ROWS", 4)
    batches: list[int] = []
    lean = Trace.lean_batches

    def counting(self: Trace, columns: list[str], batch_size: int) -> Any:
        for batch in lean(self, columns, batch_size):
            batches.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(Trace, "lean_batches", counting)
    start = counts[0] + counts[1]  # the third file's rows 1 and 6: two batches of it
    source = ParquetSource.open(trace)
    table = source.rows(np.array([start + 6, start + 1]), ["path", "resp_body"])
    assert table["path"].to_pylist() == (
        ParquetSource.open(trace).trace.to_table(["path"], sort=False)["path"]
        .take([start + 6, start + 1]).to_pylist()
    )  # fmt: skip
    assert batches == [4, 4]
