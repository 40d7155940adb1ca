"""Crash safety: a writer killed with SIGKILL keeps every row older than its flush interval."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from tests.factories import TEST_META, make_record
from tracereplay.trace import open_trace, open_writer
from tracereplay.trace.store import scan_directory

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
