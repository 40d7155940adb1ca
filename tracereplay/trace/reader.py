"""Opening a trace directory as one dataset, with every file checked first.

Complete Parquet parts are read through pyarrow.dataset; rows still in a journal (a writer
running, or one that was killed) are read from it and added, so a crashed capture is
readable as is.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tracereplay.errors import (
    TraceCorruptError,
    TraceEmptyError,
    TraceNotFoundError,
    TraceSchemaError,
)
from tracereplay.trace.schema import (
    SCHEMA_ID,
    TRACE_SCHEMA,
    TraceMetadata,
    has_trace_columns,
    schema_id_of,
    with_additive_columns,
)
from tracereplay.trace.store import live_journals, read_journal

# Pages written with a CRC (pq.write_table(..., write_page_checksum=True)) are checked on
# read, so flipped bits that still decompress are caught too; pages without one are not.
# Every read: the dataset's (`_PARQUET`) and the file-by-file one (`Trace.lean_batches`).
_VERIFY_PAGE_CRCS = True
_PARQUET = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(
        page_checksum_verification=_VERIFY_PAGE_CRCS
    )
)


_TS_LOW_US = 0  # 1970-01-01, microseconds since the epoch (the ts column's unit)
_TS_HIGH_US = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000


_TAKE_WHOLE_BYTES = 1 << 30
"""Below this a table is reordered with one `take`: Arrow concatenates each column's chunks
for it, and a string/binary column past 2 GiB of data overflows its 32-bit offsets."""
_TAKE_SLICE_ROWS = 65_536


def sorted_by_time(table: pa.Table, *, whole_bytes: int = _TAKE_WHOLE_BYTES) -> pa.Table:
    """`table` in order of `ts` (stable). Past `whole_bytes` the rows are gathered slice by
    slice of the output, each slice taken chunk by chunk of the input, so no column is ever
    concatenated whole (1 M captured rows with bodies are past 2 GiB)."""
    order = pc.sort_indices(table, sort_keys=[("ts", "ascending")])
    if table.nbytes < whole_bytes:
        return table.take(order)
    batches = table.to_batches()
    starts = np.cumsum([0] + [batch.num_rows for batch in batches])
    wanted = order.to_numpy().astype(np.int64)
    out: list[pa.RecordBatch] = []
    for begin in range(0, wanted.size, _TAKE_SLICE_ROWS):
        rows = wanted[begin : begin + _TAKE_SLICE_ROWS]
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        by_chunk = np.argsort(chunk_of, kind="stable")
        pieces = [
            batches[c].take(pa.array(rows[chunk_of == c] - starts[c])) for c in np.unique(chunk_of)
        ]
        # The pieces hold the slice's rows grouped by chunk; put them back in `ts` order.
        place = np.empty_like(by_chunk)
        place[by_chunk] = np.arange(by_chunk.size)
        gathered = pa.Table.from_batches(pieces, schema=table.schema).combine_chunks()
        out.extend(gathered.take(pa.array(place)).to_batches())
    return pa.Table.from_batches(out, schema=table.schema)


@dataclass(frozen=True)
class Trace:
    """A checked trace directory."""

    path: Path
    dataset: ds.Dataset
    metadata: TraceMetadata
    """Metadata of the first file (all files of one capture carry the same)."""
    files: tuple[Path, ...]

    @cached_property
    def num_rows(self) -> int:
        """The rows the files' footers (and the journals read at open) say, counted once:
        each count reads every file's footer again (real10M's 136 files: ~21 ms a count,
        and the model asked 4-5 times before its read)."""
        with self.reading():
            return int(self.dataset.count_rows())

    def to_table(self, columns: list[str] | None = None, *, sort: bool = True) -> pa.Table:
        """The rows (optionally only `columns`), in order of `ts` unless `sort=False`. A
        page that cannot be decoded (flipped bits, a cut file) is a `TraceCorruptError`."""
        wanted = columns if columns is None or not sort or "ts" in columns else [*columns, "ts"]
        with self.reading():
            table = self.dataset.to_table(columns=wanted)
            # A damaged page may decode to text that is not UTF-8 or to dictionary indices
            # out of range; pyarrow checks neither on read, everything after would trip.
            table.validate(full=True)
        if "ts" in table.column_names and table.num_rows:
            self._check_times(table["ts"])
        if sort:
            table = sorted_by_time(table)
            if columns is not None and "ts" not in columns:
                table = table.drop_columns(["ts"])
        return table

    def to_batches(
        self, columns: list[str] | None = None, **options: Any
    ) -> Iterator[pa.RecordBatch]:
        """The rows as record batches, in file order (`options` go to `Dataset.to_batches`);
        an undecodable page is a `TraceCorruptError`, as in `to_table`."""
        yield from self._scan(self.dataset, columns, options)

    def dictionary_batches(
        self, columns: list[str], dictionary: Sequence[str], **options: Any
    ) -> Iterator[pa.RecordBatch]:
        """`to_batches`, with the string columns `dictionary` read as dictionary arrays
        straight from the files' own dictionaries: no string decoded per row (a trace with
        journals comes as plain strings)."""
        dataset = self.dataset
        if isinstance(dataset, ds.FileSystemDataset):
            with self.reading():
                dataset = _with_dictionaries(dataset, dictionary)
        yield from self._scan(dataset, columns, options)

    def dictionary_files(
        self, columns: list[str], dictionary: Sequence[str], **options: Any
    ) -> list[TraceFile] | None:
        """`dictionary_batches` file by file, in the same order, so that several can be
        read at once (a file's scan runs on the thread that asks for its batches and lets
        go of the GIL while it decodes); None when the trace has journals."""
        if not isinstance(self.dataset, ds.FileSystemDataset):
            return None
        with self.reading():
            dataset = _with_dictionaries(self.dataset, dictionary)
            fragments = list(dataset.get_fragments())
            rows = [fragment.metadata.num_rows for fragment in fragments]
        scan = {"schema": dataset.schema, "use_threads": False, **options}
        return [TraceFile(self, f, n, columns, scan) for f, n in zip(fragments, rows, strict=True)]

    def _scan(
        self,
        dataset: ds.Dataset | ds.Fragment,
        columns: list[str] | None,
        options: dict[str, Any],
    ) -> Iterator[pa.RecordBatch]:
        with self.reading():
            for batch in dataset.to_batches(columns=columns, **options):
                batch.validate(full=True)  # as in `to_table`
                yield batch

    def lean_batches(self, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        """The rows of `to_batches(columns)`, in the same order, read file by file through
        a buffered stream, one thread: memory of a batch, where the dataset scanner holds
        a row group's decoded columns (2.2 GB for the bodies of a 1 M-request trace's
        200 k-row groups; 0.44 GB this way). The scanner when the trace has journals or a
        file lacks a column. Only the cheap check: the caller `check`s the rows it keeps
        (the full check of every body was half the scan's CPU). The pages' CRCs are
        verified, as the dataset's reads verify them: a flipped bit in a body that still
        decodes is refused, not learned (0-7 % more of the read's CPU, best of 7 over 12
        files: a capture's sample columns 4.4 -> 4.6 ms a file, its bodies and response
        headers 17.6-18.2 -> 18.1-18.4, real1M's 6.2-6.4 -> 6.1-6.7)."""
        files = self.dataset.files if isinstance(self.dataset, ds.FileSystemDataset) else None
        with self.reading():
            readers = [
                pq.ParquetFile(
                    f,
                    pre_buffer=False,
                    buffer_size=1 << 20,
                    page_checksum_verification=_VERIFY_PAGE_CRCS,
                )
                for f in files or ()
            ]
            if files is None or any(set(columns) - set(r.schema_arrow.names) for r in readers):
                scans = [self.dataset.to_batches(columns=columns, batch_size=batch_size)]
            else:
                scans = [r.iter_batches(batch_size, columns=columns, use_threads=False)
                         for r in readers]  # fmt: skip
            for batch in itertools.chain.from_iterable(scans):
                batch.validate()
                yield batch

    def check(self, data: pa.Table | pa.RecordBatch) -> None:
        """The full check `to_table` makes, on rows read with `lean_batches`."""
        with self.reading():
            data.validate(full=True)

    def _check_times(self, ts: pa.ChunkedArray) -> None:
        """Times a capture can have: a damaged page can decode to any number at all."""
        low, high = (v.value for v in pc.min_max(ts).values())
        if low is None or high is None or not _TS_LOW_US <= low <= high <= _TS_HIGH_US:
            raise TraceCorruptError(
                f"{self.path}: a trace file is damaged or not a capture (a request time "
                "outside 1970..2200)"
            )

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around a read of this trace's files: a damaged page (pyarrow's OSError or
        ArrowException) is a one-line TraceCorruptError naming the trace."""
        try:
            yield
        except (pa.ArrowException, OSError) as exc:
            # pyarrow raises OSError ("ZSTD decompression failed", "Couldn't deserialize
            # thrift") or ArrowInvalid for a damaged page; the message names no file.
            raise TraceCorruptError(
                f"{self.path}: a trace file is damaged and cannot be read ({_first_line(exc)})"
            ) from None


@dataclass(frozen=True)
class TraceFile:
    """One Parquet file of a trace (`Trace.dictionary_files`): its rows, from its footer,
    and its batches."""

    trace: Trace
    fragment: ds.Fragment
    rows: int
    columns: list[str]
    options: dict[str, Any]

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The file's rows as checked record batches (as `Trace.to_batches`)."""
        yield from self.trace._scan(self.fragment, self.columns, self.options)


def _with_dictionaries(dataset: ds.FileSystemDataset, names: Sequence[str]) -> ds.Dataset:
    """The dataset's files with the string columns `names` read as dictionary arrays."""
    as_dictionary = pa.dictionary(pa.int32(), pa.string())
    schema = pa.schema(
        [
            f.with_type(as_dictionary) if f.name in names and pa.types.is_string(f.type) else f
            for f in dataset.schema
        ],
        metadata=dataset.schema.metadata,
    )
    parquet = ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(dictionary_columns=list(names)),
        default_fragment_scan_options=_PARQUET.default_fragment_scan_options,
    )
    return ds.dataset(dataset.files, format=parquet, schema=schema)


def open_trace(path: str | Path) -> Trace:
    """Open and check a trace directory; raises a `TraceError` saying what is wrong."""
    directory = Path(path)
    if not directory.exists():
        raise TraceNotFoundError(f"{directory}: no such trace directory")
    if not directory.is_dir():
        raise TraceNotFoundError(f"{directory}: not a directory (a trace is a directory)")
    parquet_files = sorted(
        p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_"))
    )
    metadata = [_check_parquet(p) for p in parquet_files]
    journal_tables = []
    for journal in live_journals(directory):
        table = read_journal(journal)
        if table is not None:
            metadata.append(_check_meta(journal, table.schema))
            journal_tables.append(table)
    files = tuple(parquet_files) + tuple(live_journals(directory))
    if not metadata:
        raise TraceEmptyError(f"{directory}: no trace files (part-*.parquet) in this directory")
    parts = [ds.dataset([str(p) for p in parquet_files], format=_PARQUET, schema=TRACE_SCHEMA)]
    parts += [
        ds.dataset(with_additive_columns(t).cast(TRACE_SCHEMA))
        for t in journal_tables
        if t.num_rows
    ]
    dataset = ds.dataset(parts) if len(parts) > 1 else parts[0]
    trace = Trace(directory, dataset, metadata[0], files)
    if trace.num_rows == 0:
        raise TraceEmptyError(f"{directory}: the trace holds no rows")
    return trace


def read_trace(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All rows of a trace directory, in order of `ts`."""
    return open_trace(path).to_table(columns)


def _check_parquet(path: Path) -> TraceMetadata:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise TraceCorruptError(
            f"{path}: not a readable Parquet file ({_first_line(exc)})"
        ) from None
    return _check_meta(path, schema)


def _check_meta(path: Path, schema: pa.Schema) -> TraceMetadata:
    found = schema_id_of(schema.metadata)
    if found != SCHEMA_ID:
        said = f"schema {found!r}" if found else "no tracereplay schema id"
        raise TraceSchemaError(f"{path}: not a {SCHEMA_ID} file ({said})")
    if not has_trace_columns(schema):
        raise TraceSchemaError(f"{path}: columns differ from {SCHEMA_ID}")
    try:
        return TraceMetadata.from_arrow(schema.metadata)
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. a capture_start that is not a date
        raise TraceSchemaError(
            f"{path}: unreadable tracereplay metadata ({_first_line(exc)[:120]})"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
