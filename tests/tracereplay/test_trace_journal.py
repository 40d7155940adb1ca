"""Journal integrity: checksummed frames; a torn or corrupted frame is skipped, never read."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest
from pyarrow import ipc

from tests.factories import TEST_META, make_record, make_table
from tracereplay.trace import open_trace, open_writer, read_trace
from tracereplay.trace.store import (
    FRAME_MAGIC,
    journal_path,
    live_journals,
    read_journal,
    scan_directory,
    scan_journal,
)


def journal_of_three_batches(directory: Path) -> tuple[Path, list[int]]:
    """A killed writer's journal (no compaction): three flushes of 40 rows each."""
    writer = open_writer(directory, TEST_META)
    sizes = []
    for batch in range(3):
        for i in range(40):
            size = 1000 * batch + i
            writer.write(make_record(path=f"/b{batch}/{i}", resp_body_size=size))
            sizes.append(size)
        writer.flush()
    (journal,) = live_journals(directory)
    kept = journal.read_bytes()
    writer.close()  # compacts and deletes the journal: put the killed writer's back
    for part in scan_directory(directory)[0].values():
        part.unlink()
    journal.write_bytes(kept)
    return journal, sizes


def frame_offsets(data: bytes) -> list[int]:
    offsets, at = [], data.find(FRAME_MAGIC)
    while at >= 0:
        offsets.append(at)
        at = data.find(FRAME_MAGIC, at + 1)
    return offsets


def test_overwritten_bytes_mid_journal_are_skipped_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal, sizes = journal_of_three_batches(tmp_path / "t")
    data = bytearray(journal.read_bytes())
    third = frame_offsets(bytes(data))[2]
    # 64 bytes in the column data of the second frame (its last buffers, before the end
    # of stream marker): unchecked, such bytes were read back as changed values
    data[third - 200 : third - 136] = bytes(range(64))
    journal.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        table = read_trace(tmp_path / "t", ["path", "resp_body_size"])
    assert table["resp_body_size"].to_pylist() == sizes[:40] + sizes[80:]
    assert [r.getMessage() for r in caplog.records] == [
        f"{journal}: skipped frame 2: checksum mismatch; 80 intact rows kept"
    ]


def test_a_torn_tail_keeps_every_complete_frame(tmp_path: Path) -> None:
    journal, sizes = journal_of_three_batches(tmp_path / "t")
    data = journal.read_bytes()
    third = frame_offsets(data)[2]
    for cut in (third + 5, third + 30, len(data) - 1):  # in the header, in the payload
        journal.write_bytes(data[:cut])
        contents = scan_journal(journal)
        assert contents.table is not None
        assert contents.table["resp_body_size"].to_pylist() == sizes[:80]
        assert len(contents.skipped) == 1 and "torn tail" in contents.skipped[0]


def test_a_damaged_header_resyncs_on_the_next_frame(tmp_path: Path) -> None:
    journal, sizes = journal_of_three_batches(tmp_path / "t")
    data = bytearray(journal.read_bytes())
    first = frame_offsets(bytes(data))[0]
    data[first + 4 : first + 12] = b"\xff" * 8  # the first frame's length field
    journal.write_bytes(bytes(data))
    contents = scan_journal(journal)
    assert contents.skipped == ("frame 1: damaged header",)
    assert contents.table is not None
    assert contents.table["resp_body_size"].to_pylist() == sizes[40:]


def test_append_compacts_only_the_intact_frames(tmp_path: Path) -> None:
    journal, sizes = journal_of_three_batches(tmp_path / "t")
    data = bytearray(journal.read_bytes())
    data[frame_offsets(bytes(data))[2] + 300] ^= 0xFF
    journal.write_bytes(bytes(data))
    with open_writer(tmp_path / "t", TEST_META, append=True) as writer:
        writer.write(make_record(path="/appended", resp_body_size=7))
    parts, journals = scan_directory(tmp_path / "t")
    assert not journals and len(parts) == 2
    got = read_trace(tmp_path / "t", ["resp_body_size"])["resp_body_size"].to_pylist()
    assert sorted(got) == sorted([*sizes[:80], 7])


def test_a_plain_arrow_stream_is_still_read(tmp_path: Path) -> None:
    # Journals written before checksums (and replay's timing stream) are plain streams.
    directory = tmp_path / "t"
    directory.mkdir()
    table = make_table([make_record(path="/old")])
    with (
        pa.OSFile(str(journal_path(directory, 1)), "wb") as sink,
        ipc.new_stream(sink, table.schema) as stream,
    ):
        stream.write_table(table)
    assert open_trace(directory).to_table(["path"])["path"].to_pylist() == ["/old"]
    assert read_journal(journal_path(directory, 1)) is not None
