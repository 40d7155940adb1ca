"""A Parquet part as `write_part` stores it against the settings it replaced: same values.

`write_part` writes min/max statistics only for `STATISTICS_COLUMNS`; before, it wrote
them for every column (`reference_part` below). Only the footer's and the page headers'
statistics may differ: every value reads back the same.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.factories import TEST_META, make_record, make_table, realistic_records
from tracereplay.trace import TraceRecord, store


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
