"""A trace directory on disk: an Arrow IPC journal per part, compacted into Parquet.

Layout of traces/NAME/:

    part-000001.parquet      complete parts, the trace proper (one dataset)
    _journal-000002.arrows   the part being written: an Arrow IPC stream, one record
                             batch per flush, appended with unbuffered writes
    .part-000002.parquet.tmp a part being compacted, renamed when complete

Why a journal: Parquet files are only readable once their footer is written, so rows
cannot be appended to one safely. Each flush appends a batch to the journal instead; a
process killed with SIGKILL leaves a journal whose complete batches are all readable
(`read_journal` stops at a torn tail). When a journal holds `rows_per_part` rows, or the
writer closes, it is compacted into a Parquet part under a temporary name, fsynced and
renamed, and only then deleted. A journal whose part already exists is a leftover of an
interrupted compaction and is ignored. Names starting with `_` or `.` are skipped by
pyarrow's dataset discovery, so plain `pyarrow.dataset`/pandas readers never trip over
journals or temporary files either.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from tracereplay.errors import TraceExistsError

PART_RE = re.compile(r"^part-(\d{6,})\.parquet$")
JOURNAL_RE = re.compile(r"^_journal-(\d{6,})\.arrows$")
DEFAULT_ROWS_PER_PART = 100_000
PARQUET_COMPRESSION = "zstd"
# Dictionary-encode only columns with few distinct values; on bodies and paths Parquet
# would build a dictionary only to give it up (measured ~15 % slower compaction).
DICTIONARY_COLUMNS = ["method", "scheme", "host", "session", "client", "status", "error"]


def part_path(directory: Path, seq: int) -> Path:
    return directory / f"part-{seq:06d}.parquet"


def journal_path(directory: Path, seq: int) -> Path:
    return directory / f"_journal-{seq:06d}.arrows"


def scan_directory(directory: Path) -> tuple[dict[int, Path], dict[int, Path]]:
    """(parts, journals) in `directory`, each keyed by sequence number."""
    parts: dict[int, Path] = {}
    journals: dict[int, Path] = {}
    for entry in directory.iterdir():
        if match := PART_RE.match(entry.name):
            parts[int(match.group(1))] = entry
        elif match := JOURNAL_RE.match(entry.name):
            journals[int(match.group(1))] = entry
    return parts, journals


def live_journals(directory: Path) -> list[Path]:
    """Journals holding rows not yet in a part (a writer running, or one that was killed)."""
    parts, journals = scan_directory(directory)
    return [path for seq, path in sorted(journals.items()) if seq not in parts]


def read_journal(path: Path) -> pa.Table | None:
    """Every complete batch in a journal; None when not even its schema was written.

    A journal cut short by a kill ends in a partial message: reading stops there.
    """
    try:
        source = pa.memory_map(str(path))
        reader = ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError):
        return None
    batches: list[pa.RecordBatch] = []
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError):  # torn tail of a killed writer
            break
    return pa.Table.from_batches(batches, schema=reader.schema)


def write_part(table: pa.Table, target: Path) -> None:
    """Write `table` as Parquet at `target`, visible only once complete and on disk."""
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(table, tmp, compression=PARQUET_COMPRESSION, use_dictionary=DICTIONARY_COLUMNS)
    with tmp.open("rb+") as handle:
        os.fsync(handle.fileno())
    tmp.replace(target)


def compact_journal(directory: Path, seq: int) -> int:
    """Turn journal `seq` into part `seq`; returns the rows it held."""
    journal = journal_path(directory, seq)
    table = read_journal(journal)
    rows = 0 if table is None else table.num_rows
    if table is not None and rows:
        write_part(table.combine_chunks(), part_path(directory, seq))
    journal.unlink()
    return rows


class ParquetDirSink:
    """`TraceSink` writing a trace directory (layout in the module docstring).

    Refuses a directory that already holds trace files unless `append=True`; appending
    first compacts any journal a killed writer left behind.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        *,
        append: bool = False,
        rows_per_part: int = DEFAULT_ROWS_PER_PART,
    ) -> None:
        self.directory = Path(directory)
        self.schema = schema
        self.rows_per_part = rows_per_part
        self.directory.mkdir(parents=True, exist_ok=True)
        parts, journals = scan_directory(self.directory)
        if (parts or journals) and not append:
            raise TraceExistsError(
                f"{self.directory} already holds a trace; choose a new --out directory"
            )
        for seq, path in sorted(journals.items()):
            if seq in parts:
                path.unlink()  # its compaction finished; only the delete was missed
            else:
                compact_journal(self.directory, seq)
        self._seq = max([*parts, *journals], default=0) + 1
        self._file: pa.NativeFile | None = None
        self._stream: ipc.RecordBatchStreamWriter | None = None
        self._journal_rows = 0
        self._compactor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-compact")
        self._pending: list[Future[int]] = []

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self._stream is None:
            self._file = pa.OSFile(str(journal_path(self.directory, self._seq)), "wb")
            self._stream = ipc.new_stream(self._file, self.schema)
        self._stream.write_batch(batch)
        self._journal_rows += batch.num_rows
        if self._journal_rows >= self.rows_per_part:
            self._rotate()

    def close(self) -> None:
        self._rotate()
        self._compactor.shutdown(wait=True)
        for future in self._pending:
            future.result()  # raise a compaction failure; its journal stays on disk

    def _rotate(self) -> None:
        if self._stream is None or self._file is None:
            return
        self._stream.close()
        self._file.close()
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        self._pending.append(self._compactor.submit(compact_journal, self.directory, self._seq))
        self._stream = self._file = None
        self._journal_rows = 0
        self._seq += 1
