"""Parquet parts against the code they replaced: same values, same bytes where they can be.

`write_part` writes min/max statistics only for `STATISTICS_COLUMNS`; before, it wrote
them for every column (`reference_part` below). Only the footer's and the page headers'
statistics may differ: every value reads back the same. The sink compacts a journal from
the frames it wrote itself without checking their checksums again: the part is the one
compacted from the journal read back with them (`read_journal`), byte for byte.
"""

from __future__ import annotations

import dataclasses
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.factories import TEST_META, make_record, make_table, realistic_records
from tracereplay.trace import TraceRecord, records_to_batch, store, trace_schema

SCHEMA = trace_schema(TEST_META)


def reference_part(table: pa.Table, target: Path) -> None:
    """`write_part` before statistics were limited (no fsync, no rename: same bytes)."""
    pq.write_table(
        table,
        target,
        compression=store.PARQUET_COMPRESSION,
        use_dictionary=store.DICTIONARY_COLUMNS,
        write_page_checksum=True,
    )


def odd_rows() -> list[TraceRecord]:
    """Rows with what realistic ones lack: nulls, errors, escapes, pseudonyms, empties."""
    return [
        make_record(
            ts=datetime(2026, 1, 6, tzinfo=UTC),
            status=None,
            error="connection reset",
            escaped=("path",),
            conn="conn-1",
            addr="addr-1",
            req_headers=(("set-cookie", "a"), ("set-cookie", "b")),
            req_body=b"",
        ),
        dataclasses.replace(make_record(path="/\\xff"), query="", resp_headers=()),
    ]


def test_a_part_reads_back_the_values_of_the_old_settings(tmp_path: Path) -> None:
    table = make_table([*realistic_records(5000), *odd_rows()], TEST_META)
    store.write_part(table, tmp_path / "new.parquet")
    reference_part(table, tmp_path / "old.parquet")
    new, old = pq.read_table(tmp_path / "new.parquet"), pq.read_table(tmp_path / "old.parquet")
    assert new.schema.equals(old.schema, check_metadata=True)
    assert new.equals(old)  # dictionary columns too: same dictionary pages
    assert new.equals(table)


def test_statistics_are_written_only_for_the_filter_columns(tmp_path: Path) -> None:
    table = make_table(list(realistic_records(300)), TEST_META)
    store.write_part(table, tmp_path / "new.parquet")
    reference_part(table, tmp_path / "old.parquet")
    new = pq.ParquetFile(tmp_path / "new.parquet").metadata.row_group(0)
    old = pq.ParquetFile(tmp_path / "old.parquet").metadata.row_group(0)
    with_statistics = set()
    for i in range(new.num_columns):
        column, before = new.column(i), old.column(i)
        assert column.path_in_schema == before.path_in_schema
        assert before.is_stats_set  # the old settings wrote them everywhere
        if column.is_stats_set:
            with_statistics.add(column.path_in_schema)
            assert column.statistics == before.statistics  # the same min/max as before
    assert with_statistics == set(store.STATISTICS_COLUMNS)


def compacted_both_ways(tmp_path: Path, batches: list[pa.RecordBatch]) -> tuple[bytes, bytes]:
    """The part compacted from the frames' known places, and from the journal as read by
    anyone (checksums checked): the same journal, copied before either compaction."""
    parts, counts = [], []
    for name in ("own", "read"):
        directory = tmp_path / name
        directory.mkdir(parents=True)
        fd = os.open(store.journal_path(directory, 1), os.O_WRONLY | os.O_CREAT)
        frames = [store.append_frame(fd, batch) for batch in batches]
        os.close(fd)
        counts.append(store.compact_journal(directory, 1, frames if name == "own" else None))
        assert not store.journal_path(directory, 1).exists()
        parts.append(store.part_path(directory, 1).read_bytes())
    assert counts[0] == counts[1] == pq.read_metadata(io.BytesIO(parts[0])).num_rows
    return parts[0], parts[1]


def test_a_part_from_the_frames_it_wrote_is_the_part_read_back_checked(tmp_path: Path) -> None:
    rows = [*realistic_records(9000), *odd_rows()]
    batches = [records_to_batch(rows[i : i + 4096], SCHEMA) for i in range(0, len(rows), 4096)]
    own, read = compacted_both_ways(tmp_path, batches)
    assert own == read
    # The comparison can fail: a part of other rows is other bytes.
    other, _ = compacted_both_ways(tmp_path / "other", batches[1:])
    assert other != read


def test_a_frame_of_another_schema_is_left_out_as_when_read_back(tmp_path: Path) -> None:
    rows = list(realistic_records(3000))
    batches = [records_to_batch(rows[i : i + 1000], SCHEMA) for i in range(0, 3000, 1000)]
    batches[1] = batches[1].replace_schema_metadata({"other": "schema"})
    own, read = compacted_both_ways(tmp_path, batches)
    assert own == read
    assert pq.read_metadata(io.BytesIO(own)).num_rows == 2000


def test_the_sink_compacts_what_it_wrote_itself(tmp_path: Path) -> None:
    """Through `ParquetDirSink`: a part every `rows_per_part`, each the part read back."""
    rows = list(realistic_records(5000))
    batches = [records_to_batch(rows[i : i + 1000], SCHEMA) for i in range(0, 5000, 1000)]
    sink = store.ParquetDirSink(tmp_path / "trace", SCHEMA, rows_per_part=2000)
    for batch in batches:
        sink.write_batch(batch)
    sink.close()
    parts = sorted((tmp_path / "trace").glob("part-*.parquet"))
    assert [pq.read_metadata(p).num_rows for p in parts] == [2000, 2000, 1000]
    expected = [batches[0:2], batches[2:4], batches[4:]]
    for index, (part, frames) in enumerate(zip(parts, expected, strict=True)):
        _, read = compacted_both_ways(tmp_path / f"ref{index}", frames)
        assert part.read_bytes() == read
