"""A trace directory on disk: a checksummed journal per part, compacted into Parquet.

Layout of traces/NAME/:

    part-000001.parquet      complete parts, the trace proper (one dataset)
    _journal-000002.arrows   the part being written: one checksummed frame per flush
    .part-000002.parquet.tmp a part being compacted, renamed when complete
    .writer.lock             held (flock) by the one writer of the directory

Why a journal: Parquet files are only readable once their footer is written, so rows
cannot be appended to one safely. Each flush appends a frame to the journal instead: a
header (magic, length, CRC-32 of the payload, CRC-32 of the header) and a payload that is
a complete Arrow IPC stream of one record batch. `read_journal` keeps every frame whose
checksums hold and skips, with a warning, a torn tail (a process killed mid-write, a full
disk) or a corrupted frame, so a damaged journal is never read as data. When a journal
holds `rows_per_part` rows, or the writer closes, it is compacted into a Parquet part
under a temporary name, fsynced and renamed, and only then deleted; if that fails (a full
disk) the journal stays and is read, and compacted by the next `--append`. A journal
whose part already exists is a leftover of an interrupted compaction and is ignored.
Names starting with `_` or `.` are skipped by pyarrow's dataset discovery, so plain
`pyarrow.dataset`/pandas readers never trip over journals or temporary files either.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from tracereplay.errors import TraceError, TraceExistsError, TraceLockedError

logger = logging.getLogger(__name__)

PART_RE = re.compile(r"^part-(\d{6,})\.parquet$")
JOURNAL_RE = re.compile(r"^_journal-(\d{6,})\.arrows$")
LOCK_NAME = ".writer.lock"
DEFAULT_ROWS_PER_PART = 100_000
PARQUET_COMPRESSION = "zstd"
# Dictionary-encode only columns with few distinct values; on bodies and paths Parquet
# would build a dictionary only to give it up (measured ~15 % slower compaction).
DICTIONARY_COLUMNS = ["method", "scheme", "host", "session", "client", "status", "error"]
# Min/max statistics only where a reader could filter on them (no reader here filters:
# `open_trace` reads whole columns). Left out: the free text, binary and nested columns,
# whose min/max nothing reads and which cost the Parquet write ~5 % (bench/README.md).
STATISTICS_COLUMNS = [
    "ts",
    "duration_ms",
    "session",
    "client",
    "method",
    "scheme",
    "host",
    "status",
    "req_body_size",
    "resp_body_size",
    "error",
    "conn",
    "addr",
]

# Frame header: magic, payload length, CRC-32 of the payload, 4 bytes of padding, CRC-32
# of the 20 bytes before. 24 bytes, and IPC streams are multiples of 8, so every payload
# starts 8-byte aligned in a memory map (Arrow's compute engine warns on unaligned data).
# All zeros while its frame is being written.
FRAME_MAGIC = b"TRJ1"
_HEADER = struct.Struct("<4sQI4x")
_HEADER_SIZE = _HEADER.size + 4
_IPC_CONTINUATION = b"\xff\xff\xff\xff"  # how a plain Arrow IPC stream starts


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


# -- journal frames ----------------------------------------------------------------------


def frame_header(size: int, crc: int) -> bytes:
    head = _HEADER.pack(FRAME_MAGIC, size, crc)
    return head + struct.pack("<I", zlib.crc32(head))


def append_frame(fd: int, batch: pa.RecordBatch, start: int | None = None) -> tuple[int, int]:
    """Append the frame holding `batch`; on failure cut the file back to where it began.

    The payload is built in memory (Arrow writes it, and zlib checksums it, without the
    GIL: a proxy sharing the process keeps running) and written after a zeroed header;
    the header goes in last, so a frame cut short reads as a torn tail. `start`: where
    the file ends, when the caller keeps count (one system call, and one wait for the
    GIL on a busy process, fewer a frame); else it is asked. Returns where the payload
    starts in the file and its size.
    """
    out = pa.BufferOutputStream()
    with ipc.new_stream(out, batch.schema) as stream:
        stream.write_batch(batch)
    payload = out.getvalue()
    crc = zlib.crc32(payload)  # releases the GIL past a few KB
    if start is None:
        start = os.lseek(fd, 0, os.SEEK_END)
    try:
        _write_all(fd, start, bytes(_HEADER_SIZE), payload)  # zeros until it is complete
        os.pwrite(fd, frame_header(payload.size, crc), start)
    except OSError:
        with contextlib.suppress(OSError):  # a torn frame is skipped anyway; tidier without
            os.ftruncate(fd, start)
        raise
    return start + _HEADER_SIZE, payload.size


def _write_all(fd: int, offset: int, *parts: bytes | pa.Buffer) -> None:
    """Write `parts` in order at `offset`, in as few system calls as the kernel allows."""
    views = [memoryview(part) for part in parts if len(part)]
    while views:  # short writes: a signal, or the disk filling up
        written = os.pwritev(fd, views, offset)
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


@dataclass(frozen=True)
class JournalContents:
    """What `scan_journal` found: the good frames' rows and what it had to skip."""

    table: pa.Table | None
    """Rows of every intact frame; None when no frame (not even a schema) was intact."""
    frames: int
    skipped: tuple[str, ...]
    """One reason per skipped frame or tail, e.g. "frame 3: checksum mismatch"."""


def scan_journal(path: Path) -> JournalContents:
    """Every intact frame of a journal, and why the rest was skipped."""
    try:
        data = pa.memory_map(str(path)).read_buffer() if path.stat().st_size else None
    except (OSError, pa.ArrowException) as exc:
        return JournalContents(None, 0, (f"cannot read ({exc})",))
    if data is None:
        return JournalContents(None, 0, ())
    if data[:4].to_pybytes() == _IPC_CONTINUATION:
        return _scan_plain_stream(path)
    tables: list[pa.Table] = []
    skipped: list[str] = []
    offset, frame = 0, 0
    while offset < data.size:
        frame += 1
        head = data[offset : offset + _HEADER_SIZE].to_pybytes()
        if len(head) < _HEADER_SIZE or head == bytes(_HEADER_SIZE):
            skipped.append(f"torn tail (frame {frame} incomplete)")  # zeros: being written
            break
        magic, size, crc = _HEADER.unpack_from(head)
        if magic != FRAME_MAGIC or zlib.crc32(head[:-4]) != int.from_bytes(head[-4:], "little"):
            skipped.append(f"frame {frame}: damaged header")
            resync = data.to_pybytes().find(FRAME_MAGIC, offset + 1)  # rare: copy is fine
            if resync < 0:
                break
            offset = resync
            continue
        start, offset = offset + _HEADER_SIZE, offset + _HEADER_SIZE + size
        if offset > data.size:
            skipped.append(f"torn tail (frame {frame} cut short)")
            break
        table, reason = _frame_table(data.slice(start, size), crc, tables)
        if reason:
            skipped.append(f"frame {frame}: {reason}")
        elif table is not None:
            tables.append(table)
    if not tables:
        return JournalContents(None, frame, tuple(skipped))
    batches = [b for t in tables for b in t.to_batches()]
    return JournalContents(
        pa.Table.from_batches(batches, schema=tables[0].schema), frame, tuple(skipped)
    )


def _frame_table(
    payload: pa.Buffer, crc: int, before: list[pa.Table]
) -> tuple[pa.Table | None, str]:
    """A frame's rows, or why they cannot be used."""
    if zlib.crc32(payload) != crc:
        return None, "checksum mismatch"
    try:
        table = ipc.open_stream(payload).read_all()
    except (pa.ArrowInvalid, OSError):
        return None, "not an Arrow stream"
    if before and not table.schema.equals(before[0].schema, check_metadata=True):
        return None, "another schema"
    return table, ""


def _scan_plain_stream(path: Path) -> JournalContents:
    """A plain Arrow IPC stream (journals before checksums; replay's timing stream)."""
    try:
        reader = ipc.open_stream(pa.memory_map(str(path)))
    except (pa.ArrowInvalid, OSError):
        return JournalContents(None, 0, ())
    batches: list[pa.RecordBatch] = []
    skipped: tuple[str, ...] = ()
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError):  # torn tail of a killed writer
            skipped = ("torn tail",)
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return JournalContents(table, len(batches), skipped)


def read_journal(path: Path) -> pa.Table | None:
    """Every intact batch in a journal; None when not even its schema was written.

    A torn tail (a kill or a full disk mid-write) or a corrupted frame is skipped with a
    warning naming the file: never read as data.
    """
    contents = scan_journal(path)
    if contents.skipped:
        kept = contents.table.num_rows if contents.table is not None else 0
        logger.warning(
            "%s: skipped %s; %d intact rows kept", path, "; ".join(contents.skipped), kept
        )
    return contents.table


# -- parts -------------------------------------------------------------------------------


def write_part(
    table: pa.Table,
    target: Path,
    *,
    dictionary: list[str] = DICTIONARY_COLUMNS,
    in_place: bool = False,
) -> None:
    """Write `table` as Parquet at `target`, visible only once complete and on disk: under
    a temporary name, then renamed; `in_place`: at `target` itself, a name no reader lists
    until its writer renames it (a synthesized staged part). `dictionary`: the columns
    dictionary-encoded. Nothing is left behind on failure."""
    written = target if in_place else target.with_name(f".{target.name}.tmp")
    try:
        pq.write_table(
            table,
            written,
            compression=PARQUET_COMPRESSION,
            use_dictionary=dictionary,
            write_statistics=STATISTICS_COLUMNS,
            # The reader verifies page CRCs: flipped bits that still decompress are caught.
            write_page_checksum=True,
        )
        with written.open("rb+") as handle:
            os.fsync(handle.fileno())
        if not in_place:
            written.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            written.unlink()
        raise


def read_own_frames(path: Path, frames: list[tuple[int, int]]) -> pa.Table | None:
    """The rows of `frames` (payload offset, size), which this process appended to the
    journal at `path` itself and saw complete; None when they do not hold one schema.

    Their checksums are not checked again: `append_frame` wrote these very bytes moments
    ago (a failed frame is cut back and ends the journal), and they are read from the
    page cache. Checking cost the compaction thread ~15 % of its CPU (bench/README.md).
    A journal read by anyone else (recovery, a reader) is still checked frame by frame.
    """
    data = pa.memory_map(str(path)).read_buffer()
    tables = [ipc.open_stream(data.slice(start, size)).read_all() for start, size in frames]
    schema = tables[0].schema
    if any(not t.schema.equals(schema, check_metadata=True) for t in tables):
        return None  # what read_journal skips, with its warning
    return pa.Table.from_batches([b for t in tables for b in t.to_batches()], schema=schema)


def compact_journal(directory: Path, seq: int, frames: list[tuple[int, int]] | None = None) -> int:
    """Turn journal `seq` into part `seq`; returns the rows it held. `frames`: where the
    payloads are, when this process wrote them all (`read_own_frames`).

    On failure (a full disk) the journal stays as it is: its rows are still read.
    """
    journal = journal_path(directory, seq)
    table = read_own_frames(journal, frames) if frames else None
    if table is None:
        table = read_journal(journal)
    rows = 0 if table is None else table.num_rows
    if table is not None and rows:
        write_part(table.combine_chunks(), part_path(directory, seq))
    journal.unlink()
    return rows


# -- the writer's side -------------------------------------------------------------------


def lock_directory(directory: Path) -> int:
    """Create `directory` if needed and take its writer lock; the lock file's descriptor.

    A `TraceError` (one line) when the directory cannot be made or written, a
    `TraceLockedError` when another writer holds it.
    """
    what = f"--out {directory}"
    if directory.exists() and not directory.is_dir():
        raise TraceError(f"{what}: exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise TraceError(f"{what}: cannot write there ({_reason(exc)})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise TraceLockedError(
                f"{what}: another capture or writer is writing this trace{by}"
            ) from None
        raise TraceError(f"{what}: cannot lock ({_reason(exc)})") from None
    with contextlib.suppress(OSError):  # only a hint for the message above
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def claim_new_directory(directory: Path) -> int:
    """`lock_directory` for a new trace: a `TraceExistsError` (the lock dropped) when
    `directory` already holds parts or journals."""
    fd = lock_directory(directory)
    parts, journals = scan_directory(directory)
    if parts or journals:
        os.close(fd)
        raise TraceExistsError(f"{directory} already holds a trace; choose a new --out directory")
    return fd


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class ParquetDirSink:
    """`TraceSink` writing a trace directory (layout in the module docstring).

    Holds the directory's writer lock until closed. Refuses a directory that already
    holds trace files unless `append=True`; appending first compacts any journal a killed
    writer left behind. After a failed write (a full disk) it accepts nothing more: the
    frames written before stay readable.
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
        claim = lock_directory if append else claim_new_directory
        self._lock_fd: int | None = claim(self.directory)
        try:
            self._seq = self._recover()
        except BaseException:
            self._unlock()
            raise
        self._fd: int | None = None
        self._journal_rows = 0
        self._frames: list[tuple[int, int]] = []  # of the open journal, all complete
        self._failed: OSError | None = None
        self._compactor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-compact")
        self._pending: list[Future[int]] = []

    def _recover(self) -> int:
        """Compact what a killed writer left (only an appending sink finds any); the next
        part's number."""
        parts, journals = scan_directory(self.directory)
        for seq, path in sorted(journals.items()):
            if seq in parts:
                path.unlink()  # its compaction finished; only the delete was missed
                continue
            try:
                compact_journal(self.directory, seq)
            except OSError as exc:
                raise TraceError(
                    f"{self.directory}: cannot compact {path.name} left by an earlier "
                    f"writer ({_reason(exc)})"
                ) from None
        return max([*parts, *journals], default=0) + 1

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            if self._fd is None:
                path = journal_path(self.directory, self._seq)
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC)
            # The journal ends where its last frame does (each is cut back on failure).
            end = sum(self._frames[-1]) if self._frames else 0
            start, size = append_frame(self._fd, batch, end)
        except OSError as exc:
            self._failed = exc
            raise
        self._frames.append((start, size))
        self._journal_rows += batch.num_rows
        if self._journal_rows >= self.rows_per_part:
            self._rotate()

    def close(self) -> None:
        try:
            self._rotate()
            self._compactor.shutdown(wait=True)
            for future in self._pending:
                if (exc := future.exception()) is not None:
                    # The journal is still there, and read: nothing is lost.
                    logger.warning(
                        "%s: a journal could not be compacted into Parquet (%s); it is "
                        "kept and read as is, and the next --append compacts it",
                        self.directory,
                        _reason(exc) if isinstance(exc, OSError) else type(exc).__name__,
                    )
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _rotate(self) -> None:
        if self._fd is None:
            return
        os.close(self._fd)
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        # After a failed frame the journal is read back with its checksums, as by anyone.
        frames = None if self._failed is not None else self._frames
        self._pending.append(
            self._compactor.submit(compact_journal, self.directory, self._seq, frames)
        )
        self._fd = None
        self._frames = []
        self._journal_rows = 0
        self._seq += 1
