r"""The trace row `tracereplay.trace/1`: its record type and its Arrow schema, side by side.

One row per HTTP exchange. Producers build `TraceRecord`s; `records_to_batch` turns a list
of them into an Arrow record batch of exactly `TRACE_SCHEMA`.

Additive columns (`ADDITIVE_COLUMNS`) came after the first traces were written: a file
without them is still a `tracereplay.trace/1` file, read with the column all null.

`escaped` (additive, list<string>): the names of the columns of this row in which bytes
that were not valid UTF-8 (a Latin-1 header, a raw 0xff in a path) are written as the
four characters `\xNN` (lowercase hex, as Python's `backslashreplace` writes them; a
lone surrogate from a JSON file as `\uDXXX`); null when the row had none.
`tracereplay.capture.exchange.unescape` gives the original bytes back; a literal `\x41`
that was already in such a value reads back as the byte it spells (hence "lossless
enough").

`conn` (additive, string): a keyed pseudonym of the client connection the request came
on (mitmproxy's client connection, a HAR entry's `connection` within its file); null when
the source does not say. Requests on one connection come from one client.
`addr` (additive, string): a keyed pseudonym of the originating client address: the first
`X-Forwarded-For` hop (else `X-Real-IP`, else `Forwarded: for=`) when the request carries
one, else the peer address (then equal to `client`); null when unknown. The session key
(`session`) is derived from the credential, the connection and the login that handed the
credential out (capture/README.md, "Session key"); `conn` and `addr` let a reader check it.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import pyarrow as pa

from tracereplay import __version__

SCHEMA_ID = "tracereplay.trace/1"

# File-level metadata keys (Parquet key-value metadata and Arrow IPC schema metadata).
META_SCHEMA = "tracereplay.schema"
META_VERSION = "tracereplay.version"
META_CAPTURE_START = "tracereplay.capture_start"
META_POLICY_HASH = "tracereplay.policy_hash"
META_SOURCE = "tracereplay.source"
META_KEY_FINGERPRINT = "tracereplay.key_fingerprint"

Headers = Sequence[tuple[str, str]]
"""Header (name, value) pairs in order; a name may repeat (Set-Cookie)."""

_DICT_STRING = pa.dictionary(pa.int32(), pa.string())
_HEADER_MAP = pa.map_(pa.string(), pa.string())

TRACE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("duration_ms", pa.float64()),
    pa.field("session", pa.string()),
    pa.field("client", pa.string()),
    pa.field("method", _DICT_STRING, nullable=False),
    pa.field("scheme", _DICT_STRING),
    pa.field("host", _DICT_STRING),
    pa.field("path", pa.string(), nullable=False),
    pa.field("query", pa.string()),
    pa.field("req_headers", _HEADER_MAP),
    pa.field("req_body", pa.binary()),
    pa.field("req_body_size", pa.int64()),
    pa.field("status", pa.int16()),
    pa.field("resp_headers", _HEADER_MAP),
    pa.field("resp_body", pa.binary()),
    pa.field("resp_body_size", pa.int64()),
    pa.field("error", pa.string()),
    pa.field("escaped", pa.list_(pa.string())),
    pa.field("conn", pa.string()),
    pa.field("addr", pa.string()),
)
ADDITIVE_COLUMNS: tuple[str, ...] = ("escaped", "conn", "addr")
"""Columns a trace file may lack (written before they existed): read as nulls."""
TRACE_COLUMNS: tuple[str, ...] = tuple(f.name for f in TRACE_FIELDS)


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One HTTP exchange as stored; field names and meaning are the trace columns."""

    ts: datetime
    method: str
    path: str
    duration_ms: float | None = None
    session: str | None = None
    client: str | None = None
    scheme: str | None = None
    host: str | None = None
    query: str | None = None
    req_headers: Headers = ()
    req_body: bytes | None = None
    req_body_size: int = 0
    status: int | None = None
    resp_headers: Headers = ()
    resp_body: bytes | None = None
    resp_body_size: int = 0
    error: str | None = None
    escaped: tuple[str, ...] | None = None
    """Columns holding `\\xNN` escapes of bytes that were not UTF-8 (see the module doc)."""
    conn: str | None = None
    """Pseudonym of the client connection (see the module doc)."""
    addr: str | None = None
    """Pseudonym of the originating client address (see the module doc)."""


@dataclass(frozen=True)
class TraceMetadata:
    """What every file of a trace says about where its rows came from."""

    source: str
    """How the rows were made: capture, import-har, import-mitm, synthesize, replay, test, ..."""
    capture_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    policy_hash: str = ""
    """Hash of the anonymization policy applied (empty when none was)."""
    version: str = __version__
    key_fingerprint: str = ""
    """A keyed fingerprint of the pseudonym key (never the key; empty when unknown)."""

    def to_arrow(self) -> dict[bytes, bytes]:
        return {
            META_SCHEMA.encode(): SCHEMA_ID.encode(),
            META_VERSION.encode(): self.version.encode(),
            META_CAPTURE_START.encode(): self.capture_start.isoformat().encode(),
            META_POLICY_HASH.encode(): self.policy_hash.encode(),
            META_SOURCE.encode(): self.source.encode(),
            META_KEY_FINGERPRINT.encode(): self.key_fingerprint.encode(),
        }

    @classmethod
    def from_arrow(cls, meta: dict[bytes, bytes] | None) -> TraceMetadata:
        """Read back what `to_arrow` wrote; the caller has checked the schema id."""
        meta = meta or {}

        def get(key: str) -> str:
            return meta.get(key.encode(), b"").decode()

        start = get(META_CAPTURE_START)
        epoch = datetime.fromtimestamp(0, UTC)
        return cls(
            source=get(META_SOURCE),
            capture_start=datetime.fromisoformat(start) if start else epoch,
            policy_hash=get(META_POLICY_HASH),
            version=get(META_VERSION),
            key_fingerprint=get(META_KEY_FINGERPRINT),
        )


def schema_id_of(meta: dict[bytes, bytes] | None) -> str | None:
    """The trace schema id a file declares, or None when it declares none."""
    if not meta or META_SCHEMA.encode() not in meta:
        return None
    return meta[META_SCHEMA.encode()].decode(errors="replace")


def trace_schema(metadata: TraceMetadata | None = None) -> pa.Schema:
    """`TRACE_SCHEMA`, carrying `metadata` when given."""
    schema = pa.schema(TRACE_FIELDS)
    return schema.with_metadata(metadata.to_arrow()) if metadata else schema


TRACE_SCHEMA = trace_schema()


def records_to_batch(
    records: Sequence[TraceRecord], schema: pa.Schema = TRACE_SCHEMA
) -> pa.RecordBatch:
    """Columnar form of `records`, typed exactly as `schema` (a `trace_schema()`)."""
    # The writer's hot loop (see bench/bench_writer.py): each column's values are read by
    # one comprehension (`_column_values`) and converted by Arrow on their own. Same batch
    # as one struct array of per-row tuples (tests/tracereplay/test_trace_convert.py), less
    # CPU (bench/README.md), and the GIL is held one column at a time, not for the whole
    # conversion.
    columns = [
        convert(values, type_)
        for values, convert, type_ in zip(
            _column_values(records), _CONVERTERS, _COLUMN_TYPES, strict=True
        )
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _column_values(records: Sequence[TraceRecord]) -> list[list[Any]]:
    """Each trace column's values, in `TRACE_COLUMNS` order (pinned by a test).

    One comprehension per column, the attribute named in the code: the interpreter
    specializes each read to a slot load, ~20 ns a value against ~35 through an
    `attrgetter` mapped over the records (bench/README.md).
    """
    return [
        [r.ts for r in records],
        [r.duration_ms for r in records],
        [r.session for r in records],
        [r.client for r in records],
        [r.method for r in records],
        [r.scheme for r in records],
        [r.host for r in records],
        [r.path for r in records],
        [r.query for r in records],
        [r.req_headers for r in records],
        [r.req_body for r in records],
        [r.req_body_size for r in records],
        [r.status for r in records],
        [r.resp_headers for r in records],
        [r.resp_body for r in records],
        [r.resp_body_size for r in records],
        [r.error for r in records],
        [r.escaped for r in records],
        [r.conn for r in records],
        [r.addr for r in records],
    ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECONDS = pa.duration("us")


def _timestamps(values: list[Any], type_: pa.DataType) -> pa.Array:
    """Aware datetimes as `type_` (timestamp[us, UTC]), through their distance from the epoch.

    Arrow calls each value's `utcoffset()` by name (~0.3 µs a row); the subtraction does the
    same in C and Arrow reads a timedelta's fields directly: a third of the cost, the same
    array. Anything but aware datetimes (naive, None, a subclass) goes to Arrow's own
    conversion, for the same result or error as before.
    """
    if set(map(type, values)) == {datetime}:
        try:
            deltas = list(map(operator.sub, values, repeat(_EPOCH)))
        except TypeError:  # a naive datetime
            pass
        else:
            return pa.array(deltas, type=_MICROSECONDS).view(type_)
    return pa.array(values, type=type_)


_COLUMN_TYPES = tuple(f.type for f in TRACE_FIELDS)
_CONVERTERS: tuple[Callable[[list[Any], pa.DataType], pa.Array], ...] = tuple(
    _timestamps if name == "ts" else pa.array for name in TRACE_COLUMNS
)


def has_trace_columns(schema: pa.Schema) -> bool:
    """Whether `schema` holds the trace columns, in order (additive ones may be missing)."""
    present = {f.name for f in schema}
    expected = [f for f in TRACE_FIELDS if f.name in present or f.name not in ADDITIVE_COLUMNS]
    return bool(schema.remove_metadata().equals(pa.schema(expected)))


def with_additive_columns(table: pa.Table) -> pa.Table:
    """`table` (checked by `has_trace_columns`) with missing additive columns as nulls."""
    for index, f in enumerate(TRACE_FIELDS):
        if f.name not in table.column_names:
            table = table.add_column(index, f, pa.nulls(table.num_rows, f.type))
    return table


def row_to_record(row: dict[str, Any]) -> TraceRecord:
    """A `TraceRecord` from one row of `Table.to_pylist()`."""
    values: dict[str, Any] = {f.name: row.get(f.name) for f in dataclasses.fields(TraceRecord)}
    for name in ("req_headers", "resp_headers"):
        values[name] = tuple(values[name] or ())
    for name in ("req_body_size", "resp_body_size"):
        values[name] = values[name] or 0
    if values["escaped"] is not None:
        values["escaped"] = tuple(values["escaped"])
    return TraceRecord(**values)
