"""Crash safety: a writer killed with SIGKILL keeps every row older than its flush interval;
a full disk keeps every row written before it readable."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from tests.factories import TEST_META, make_record, realistic_records
from tests.tmpfs import fill, small_tmpfs
from tracereplay.errors import TraceError
from tracereplay.trace import open_trace, open_writer, read_trace, store
from tracereplay.trace.store import scan_directory, scan_journal

FLUSH_INTERVAL_S = 1.0
# Scheduling slack on a shared 2-core machine: the flusher thread may start late.
SLACK_S = 0.75
REPO = Path(__file__).resolve().parents[2]


def _run_and_kill(directory: Path, run_s: float, rows_per_part: int) -> datetime:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.tracereplay.writer_child", str(directory), "3000",
         str(rows_per_part)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    ) as child:  # fmt: skip
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(run_s)
            killed_at = datetime.now(UTC)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=10)
    return killed_at


def _row_numbers(directory: Path) -> tuple[list[int], datetime]:
    table = open_trace(directory).to_table(["path", "ts"])
    numbers = [int(p.rsplit("/", 1)[1]) for p in table["path"].to_pylist()]
    return numbers, pc.max(table["ts"]).as_py()


@pytest.mark.parametrize(
    ("run_s", "rows_per_part"),
    [(1.3, 1_000), (2.6, 2_500), (3.4, 250_000)],
    ids=["compacting-often", "mid-part", "journal-only"],
)
def test_sigkill_loses_at_most_the_last_flush_interval(
    tmp_path: Path, run_s: float, rows_per_part: int
) -> None:
    directory = tmp_path / "trace"
    killed_at = _run_and_kill(directory, run_s, rows_per_part)

    numbers, newest = _row_numbers(directory)
    # Every row is there once, in a gapless prefix of what was written ...
    assert numbers == list(range(len(numbers)))
    # ... and the newest row kept is younger than one flush interval (plus slack).
    assert newest >= killed_at - timedelta(seconds=FLUSH_INTERVAL_S + SLACK_S)
    assert len(numbers) > 1000


def test_after_a_kill_plain_pyarrow_readers_do_not_trip(tmp_path: Path) -> None:
    directory = tmp_path / "trace"
    _run_and_kill(directory, 2.2, 1_000)
    parts, _ = scan_directory(directory)
    assert parts, "the run was long enough to compact at least one part"
    # Journals and temp files are hidden from pyarrow's own discovery (prefix _ and .).
    table = ds.dataset(directory, format="parquet").to_table()
    assert table.num_rows == sum(ds.dataset(p).count_rows() for p in parts.values())


def test_appending_recovers_a_killed_writers_journal(tmp_path: Path) -> None:
    directory = tmp_path / "trace"
    _run_and_kill(directory, 1.5, 250_000)
    before, _ = _row_numbers(directory)
    with open_writer(directory, TEST_META, append=True) as writer:
        writer.write(make_record(path=f"/row/{len(before)}", ts=datetime.now(UTC)))
    _, journals = scan_directory(directory)
    assert not journals, "recovery compacted the journal into a part"
    after, _ = _row_numbers(directory)
    assert after == list(range(len(before) + 1))


def test_a_full_disk_keeps_every_row_written_before_readable(tmp_path: Path) -> None:
    rows = list(realistic_records(20_000))
    with small_tmpfs(tmp_path / "fs", "2m") as fs:
        spare = fill(fs, leave_bytes=1_200_000)  # room for a few flushes, then ENOSPC
        directory = fs / "trace"
        writer = open_writer(directory, TEST_META)
        offered = 0
        with pytest.raises(TraceError, match="No space left on device"):
            for offered, row in enumerate(rows, 1):  # counted after the loop
                writer.write(row)
                if offered % 500 == 0:
                    writer.flush()
        kept = writer.rows_flushed
        assert 0 < kept < offered
        with pytest.raises(TraceError, match=f"{kept} rows were written and stay readable"):
            writer.close()
        # the journal could not be compacted on the full disk: it is read as it is
        got = read_trace(directory, ["path", "resp_body"])
        assert got["path"].to_pylist() == [r.path for r in rows[:kept]]
        assert got["resp_body"].to_pylist() == [r.resp_body for r in rows[:kept]]
        with pytest.raises(TraceError, match=r"cannot compact _journal-000001\.arrows"):
            open_writer(directory, TEST_META, append=True)
        spare.unlink()  # room again: --append recovers the journal into a part
        with open_writer(directory, TEST_META, append=True) as again:
            again.write(make_record(path="/after", ts=rows[-1].ts))
        parts, journals = scan_directory(directory)
        assert parts and not journals
        assert read_trace(directory, ["path"])["path"].to_pylist() == [
            *(r.path for r in rows[:kept]),
            "/after",
        ]


def test_a_short_write_is_cut_back_and_later_writes_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake filesystem: from the third frame on, a write stores half its bytes, then the
    # disk is full.
    full = {"now": False}
    real_write_all = store._write_all

    def write_all(fd: int, offset: int, *parts: bytes | pa.Buffer) -> None:
        if full["now"]:
            data = b"".join(bytes(part) for part in parts)
            real_write_all(fd, offset, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, offset, *parts)

    monkeypatch.setattr(store, "_write_all", write_all)
    writer = open_writer(tmp_path / "t", TEST_META)
    for i in range(3):
        full["now"] = i == 2
        writer.write(make_record(path=f"/r/{i}"))
        with contextlib.suppress(TraceError):
            writer.flush()
    assert writer.rows_flushed == 2 and writer.failure is not None
    (journal,) = scan_directory(tmp_path / "t")[1].values()
    assert scan_journal(journal).skipped == ()  # the torn frame was cut off
    monkeypatch.undo()
    with pytest.raises(TraceError):
        writer.close()
    assert read_trace(tmp_path / "t", ["path"])["path"].to_pylist() == ["/r/0", "/r/1"]
