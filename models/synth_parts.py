"""Where `synthesize` writes: a trace directory claimed as `open_writer` claims one (its
writer lock; refused when it already holds rows), filled with one Parquet part per chunk.

A drawn chunk is complete, so it needs no journal (tracereplay/trace/store.py): whoever
drew it, the parent or a worker process, writes it (fsynced) as a staged part
`_synth-NNNNNN.parquet`, which no reader lists (names starting with `_` are skipped).
The parent renames staged parts to `part-NNNNNN.parquet` in chunk order, so the rows read
back in the same order whatever the number of workers, and a run killed outright leaves a
prefix of its chunks, each part whole (and perhaps a staged part cut short, never read).
A run that fails (a worker's error, a full disk, Ctrl-C) removes every file it wrote: what
is left reads as no trace at all, never as a short one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from tracereplay.errors import TraceError
from tracereplay.trace import TraceMetadata, trace_schema
from tracereplay.trace.store import (
    DICTIONARY_COLUMNS,
    claim_new_directory,
    part_path,
    write_part,
)

_STAGED = "_synth-{:06d}.parquet"
SYNTH_DICTIONARY_COLUMNS = [*DICTIONARY_COLUMNS, "path", "query", "req_body"]
"""Dictionary-encoded in a synthesized part, beyond a capture's: its query strings and
bodies come from pools of at most POOL_SIZE per endpoint, and its paths repeat their
templates' parts. The same rows read back; ~20 % less CPU to write and half the bytes
(bench/README.md)."""


def staged_path(directory: Path, seq: int) -> Path:
    return directory / _STAGED.format(seq)


def write_staged(directory: Path, seq: int, batch: pa.RecordBatch, metadata: TraceMetadata) -> int:
    """Chunk `seq`'s rows as staged part `seq`, carrying the trace's metadata; its rows.
    An OSError (a full disk) leaves no file behind."""
    schema = trace_schema(metadata)
    table = pa.Table.from_batches([batch.cast(schema)], schema=schema)
    # Straight to its staged name, which readers skip already: no temporary name first.
    write_part(
        table, staged_path(directory, seq), dictionary=SYNTH_DICTIONARY_COLUMNS, in_place=True
    )
    return int(table.num_rows)


class PartsOut:
    """A trace directory written part by part (layout in the module docstring); holds the
    directory's writer lock until closed."""

    def __init__(self, directory: Path, metadata: TraceMetadata) -> None:
        self.directory = Path(directory)
        self.metadata = metadata
        self._lock_fd: int | None = claim_new_directory(self.directory)
        self.staged: list[int] = []
        """Chunks whose staged part may exist (written, or being written by a worker)."""

    def expect(self, seq: int) -> None:
        """Chunk `seq` is being drawn: its staged part is this run's, to remove on failure."""
        self.staged.append(seq)

    def land(self, seq: int) -> None:
        """Staged part `seq` (complete) becomes part `seq` of the trace."""
        staged_path(self.directory, seq).replace(part_path(self.directory, seq))

    def discard(self) -> None:
        """Remove every part and staged part of this run."""
        for seq in self.staged:
            for path in (staged_path(self.directory, seq), part_path(self.directory, seq)):
                with contextlib.suppress(OSError):
                    path.unlink()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None


@contextlib.contextmanager
def parts_out(directory: Path, metadata: TraceMetadata) -> Iterator[PartsOut]:
    """`PartsOut` for a block: on any failure (Ctrl-C included) what it wrote is removed;
    the lock is dropped in any case."""
    parts = PartsOut(directory, metadata)
    try:
        yield parts
    except BaseException:
        parts.discard()
        raise
    finally:
        parts.close()


def failed(exc: OSError, directory: Path) -> TraceError:
    """The one line a write that failed (a full disk) is reported as."""
    # pyarrow's strerror holds the whole message, path included; errno says it shorter.
    reason = os.strerror(exc.errno) if exc.errno else exc.strerror or type(exc).__name__
    return TraceError(f"{directory}: writing the trace failed ({reason}); nothing was kept")
