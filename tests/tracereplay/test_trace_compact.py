"""Compaction from the batches the writer holds: the same parts as reading the journal back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.factories import TEST_META, make_record, realistic_records
from tracereplay.trace import ParquetDirSink, read_trace, records_to_batch, store, trace_schema

SCHEMA = trace_schema(TEST_META)


def write_parts(directory: Path, *, bound: int) -> dict[str, str]:
    """25,000 realistic rows in the writer's 4,096-row batches, parts of 10,000 rows (the
    sink decides; the writer's flush timing would change the batches): name -> SHA-256."""
    rows = list(realistic_records(25_000))
    sink = ParquetDirSink(directory, SCHEMA, rows_per_part=10_000, compact_from_memory_bytes=bound)
    for start in range(0, len(rows), 4096):
        sink.write_batch(records_to_batch(rows[start : start + 4096], SCHEMA))
    sink.close()
    assert not list(directory.glob("_journal-*")), "every journal was compacted and removed"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("part-*")}


def spy_compactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for name in ("compact_journal", "compact_batches"):
        real = getattr(store, name)

        def spy(*args: object, _real=real, _name=name) -> int:  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(store, name, spy)
    return calls


def test_parts_from_memory_are_byte_identical_to_parts_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_compactions(monkeypatch)
    from_memory = write_parts(tmp_path / "memory", bound=1 << 30)
    assert calls == ["compact_batches"] * 3
    calls.clear()
    read_back = write_parts(tmp_path / "journal", bound=0)
    assert calls == ["compact_journal"] * 3
    assert len(from_memory) == 3
    assert from_memory == read_back


def test_a_journal_past_the_bound_is_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_compactions(monkeypatch)
    batch = records_to_batch(list(realistic_records(200)), SCHEMA)
    sink = ParquetDirSink(tmp_path / "t", SCHEMA, compact_from_memory_bytes=batch.nbytes * 3 // 2)
    sink.write_batch(batch)
    sink.write_batch(batch)  # past the bound: the held batches are let go
    sink.close()
    assert calls == ["compact_journal"]
    assert read_trace(tmp_path / "t").num_rows == 400


def test_a_batch_of_another_schema_is_left_to_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The journal skips a frame whose schema differs from the first; so must the part.
    calls = spy_compactions(monkeypatch)
    sink = ParquetDirSink(tmp_path / "t", SCHEMA)
    sink.write_batch(records_to_batch([make_record()], SCHEMA))
    sink.write_batch(records_to_batch([make_record()], SCHEMA.remove_metadata()))
    sink.close()
    assert calls == ["compact_journal"]
    assert read_trace(tmp_path / "t").num_rows == 1
