"""Every session's first `addr` (and, where it is empty, its headers) read through the
source's scan of every request (`sample_reads._scanned`) instead of its sampled reads: the same
rows, the same model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

from tests.factories import T0, TEST_META, make_record
from tests.models.test_correlations import api_session
from tests.models.test_model_scale import HEADER_ROWS
from tracereplay.errors import TraceCorruptError
from tracereplay.models import model as m
from tracereplay.models import sample_reads
from tracereplay.models.addresses import first_addresses, header_addresses, may_forward
from tracereplay.models.frame import RequestColumns, read_light_columns
from tracereplay.models.model import build_model, model_json
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.models.source import KEYS, ParquetSource, RequestSource, map_keys
from tracereplay.trace import TraceMetadata, open_writer


def write_files(
    path: Path, files: int = 4, per_file: int = 15, forwarded: bool = True, nulls: bool = False
) -> Path:
    """A trace of `files` files of `per_file` sessions each; a session's requests carry
    its `addr` (every third session none), an X-Forwarded-For header (every second one,
    when `forwarded`); with `nulls`, every fifth session's requests a null header map and
    every fourth one's an empty one."""
    for f in range(files):
        with open_writer(path, TEST_META, append=f > 0) as writer:
            for s in range(f * per_file, (f + 1) * per_file):
                for i, exchange in enumerate(api_session(s)):
                    headers = dict(exchange.pop("req_headers", ()) or ())
                    if s % 2 and forwarded:
                        headers["X-Forwarded-For"] = f"10.0.{s % 7}.{i % 2}, 10.9.9.9"
                    req_headers: tuple[tuple[str, str], ...] | None = tuple(headers.items())
                    if nulls and s % 4 == 0:
                        req_headers = ()
                    if nulls and s % 5 == 0:
                        req_headers = None
                    writer.write(
                        make_record(
                            ts=T0 + timedelta(minutes=10 * s, seconds=i),
                            session=f"s-{s}",
                            addr=None if s % 3 == 0 else f"192.0.2.{s % 11}",
                            req_headers=req_headers,
                            **exchange,
                        )
                    )
    return path


@pytest.mark.parametrize("column", ["addr", "req_headers", "resp_body"])
def test_scanned_rows_are_the_sampled_reads_rows(tmp_path: Path, column: str) -> None:
    source = ParquetSource.open(write_files(tmp_path / "t"))
    rows = source.trace.num_rows
    positions = np.random.default_rng(3).permutation(rows)[: rows // 3]  # in no order
    scanned = sample_reads._scanned(source, positions, column)
    assert scanned.to_pylist() == source.rows(positions, [column]).column(column).to_pylist()
    assert len({repr(v) for v in scanned.to_pylist()}) > 2  # rows that differ
    few = positions[:3]  # rows of the first batch only: the scan stops there
    assert sample_reads._scanned(source, few, column).to_pylist() == (
        source.rows(few, [column]).column(column).to_pylist()
    )
    empty = sample_reads._scanned(source, positions[:0], column)
    assert len(empty) == 0 and empty.type == scanned.type
    order = np.argsort(positions, kind="stable")  # as met by the scan: `order` applied
    met = sample_reads._scanned(source, positions, column, order, in_place=False)
    assert met.to_pylist() == scanned.take(pa.array(order)).to_pylist()


def test_nothing_is_scanned_for_no_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No position asked for: no batch read, no footer opened (`map_keys` opens them all
    before its first batch), and an empty column of the type the scan would give."""
    source = ParquetSource.open(write_files(tmp_path / "t"))
    positions = np.arange(5)
    typed = {
        scan: sample_reads._scanned(source, positions, "req_headers", scan=scan).type
        for scan in (sample_reads._whole, map_keys)
    }
    assert typed[map_keys] == KEYS and typed[sample_reads._whole] != KEYS
    opened: list[str] = []
    monkeypatch.setattr(ParquetSource, "batches", lambda *a: opened.append("batches") or iter(()))
    monkeypatch.setattr(ParquetSource, "map_keys", lambda *a: opened.append("keys") or iter(()))
    for scan, kind in typed.items():
        empty = sample_reads._scanned(source, positions[:0], "req_headers", scan=scan)
        assert len(empty) == 0 and empty.type == kind
    assert opened == []


def test_the_addresses_are_the_same_read_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = write_files(tmp_path / "t")
    kw = {"correlation_sample": 10, "correlation_per_endpoint": 1}
    models = []
    for share in (1, 10**9):  # the headers by the sampled reads; by the scan
        monkeypatch.setattr(sample_reads, "SCANNED_SHARE", share)
        models.append(build_model(trace, **kw))
    assert model_json(models[0]) == model_json(models[1])
    outcomes = models[0]["outcomes"]
    # 11 addrs; sessions without one: 7 forwarded-for addresses (odd), or their key (even)
    assert outcomes["addresses"] == 11 + 7 + 10 and outcomes["addresses_from"] == "addr"


@dataclass(frozen=True)
class OnlyTheProtocol:
    """A source with only `RequestSource`'s methods (no `map_keys`, `rows_of`, parts)."""

    inner: ParquetSource

    @property
    def metadata(self) -> TraceMetadata:
        return self.inner.metadata

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        return self.inner.batches(columns)

    def rows(self, positions: np.ndarray, columns: list[str]) -> pa.Table:
        return self.inner.rows(positions, columns)


def every_address_before(
    trace: RequestSource, requests: RequestColumns, sessions: pd.DataFrame
) -> tuple[int, str | None]:
    """`_every_address` as it was: the whole headers of every first request without `addr`."""
    request = sample_reads._first_requests(sessions)
    rows = sample_reads._scan_positions(requests, request)
    addr = trace.rows(rows, ["addr"]).column("addr")
    missing = np.array([i for i, a in enumerate(addr.to_pylist()) if not a], np.int64)
    headers = trace.rows(rows[missing], ["req_headers"]).column("req_headers")
    keys = pa.array(np.asarray(requests.keys, object)[requests.key[request[missing]]], pa.string())
    return first_addresses(addr, missing, *header_addresses(headers, keys))


TRACES = {
    "forwarded": {},
    "no header": {"forwarded": False},
    "null and empty maps": {"nulls": True},
    "one file": {"files": 1, "per_file": 30, "nulls": True},
}


@pytest.mark.parametrize("share", [1, 10**9])  # the candidates' values sampled; scanned
@pytest.mark.parametrize("kind", TRACES)
def test_every_address_reads_the_names_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, share: int
) -> None:
    """The header names alone, then the values of the requests whose names may be
    X-Forwarded-For only: the same addresses as every first request's whole headers, from
    the Parquet source and from one with only the protocol's methods."""
    monkeypatch.setattr(sample_reads, "SCANNED_SHARE", share)
    source = ParquetSource.open(write_files(tmp_path / "t", **TRACES[kind]))  # type: ignore[arg-type]
    requests = read_light_columns(source)
    _, endpoint, names = m._templates(requests)
    sessions, _ = m._sessionized(source, requests, endpoint, names, DEFAULT_SESSION_TIMEOUT_S, {})
    expected = every_address_before(source, requests, sessions)
    assert sample_reads._every_address(source, requests, sessions) == expected
    assert sample_reads._every_address(OnlyTheProtocol(source), requests, sessions) == expected
    # 11 addrs; of the sessions without one, the odd ones' X-Forwarded-For addresses (7
    # distinct; 4 of the one file's; none of those with a null map), else their keys
    assert expected == ({"forwarded": 28, "no header": 31, "null and empty maps": 30,
                         "one file": 21}[kind], "addr")  # fmt: skip


def test_map_keys_are_the_header_names(tmp_path: Path) -> None:
    """`map_keys` read alone from the files is the keys of the whole column, a null map
    null and an empty one empty, in scan order; the protocol's fallback gives the same."""
    source = ParquetSource.open(write_files(tmp_path / "t", nulls=True))
    whole = source.trace.to_table(["req_headers"], sort=False).column(0).to_pylist()
    expected = [None if h is None else [k for k, _ in h] for h in whole]
    for keys in (map_keys(source, "req_headers"), map_keys(OnlyTheProtocol(source), "req_headers")):
        batches = list(keys)
        assert all(b.schema.field(0).type == KEYS for b in batches)
        assert [v for b in batches for v in b.column(0).to_pylist()] == expected
    assert (
        None in expected
        and [] in expected
        and any("X-Forwarded-For" in (k or []) for k in expected)
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(HEADER_ROWS)
def test_the_candidates_values_alone_give_the_addresses(
    rows: list[list[tuple[str, str | None]] | None],
) -> None:
    """`header_addresses` of the headers of `may_forward`'s requests only (`at`) is its
    answer on every request's headers."""
    headers = pa.array(rows, pa.map_(pa.string(), pa.string()))
    keys = pa.array([f"k{i}" for i in range(len(rows))], pa.string())
    names = pa.array([None if h is None else [k for k, _ in h] for h in rows], KEYS)
    at = may_forward(names)
    address, source = header_addresses(headers.take(pa.array(at, pa.int64())), keys, at)
    whole, whole_source = header_addresses(headers, keys)
    assert address.to_pylist() == whole.to_pylist()
    assert source.tolist() == whole_source.tolist()


def test_a_damaged_page_of_the_names_is_a_corrupt_trace(tmp_path: Path) -> None:
    """The names read alone (not through the Trace's scan) fail as every read does."""
    path = write_files(tmp_path / "t", files=1)
    file = next(path.glob("*.parquet"))
    meta = pq.ParquetFile(file).metadata
    at = [meta.row_group(0).column(i).path_in_schema for i in range(meta.num_columns)]
    names = meta.row_group(0).column(at.index("req_headers.key_value.key"))
    data = bytearray(file.read_bytes())
    for i in range(
        names.data_page_offset + 8, names.data_page_offset + names.total_compressed_size
    ):
        data[i] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(TraceCorruptError, match="damaged and cannot be read"):
        list(map_keys(ParquetSource.open(path), "req_headers"))
