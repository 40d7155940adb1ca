"""Every session's first `addr` (and, where it is empty, its headers) read through the
source's scan of every request (`sample_reads._scanned`) instead of its sampled reads: the same
rows, the same model."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.factories import T0, TEST_META, make_record
from tests.models.test_correlations import api_session
from tracereplay.models import sample_reads
from tracereplay.models.model import build_model, model_json
from tracereplay.models.source import ParquetSource
from tracereplay.trace import open_writer


def write_files(path: Path, files: int = 4, per_file: int = 15) -> Path:
    """A trace of `files` files of `per_file` sessions each; a session's requests carry
    its `addr` (every third session none), an X-Forwarded-For header (every second one)."""
    for f in range(files):
        with open_writer(path, TEST_META, append=f > 0) as writer:
            for s in range(f * per_file, (f + 1) * per_file):
                for i, exchange in enumerate(api_session(s)):
                    headers = dict(exchange.pop("req_headers", ()) or ())
                    if s % 2:
                        headers["X-Forwarded-For"] = f"10.0.{s % 7}.{i % 2}, 10.9.9.9"
                    writer.write(
                        make_record(
                            ts=T0 + timedelta(minutes=10 * s, seconds=i),
                            session=f"s-{s}",
                            addr=None if s % 3 == 0 else f"192.0.2.{s % 11}",
                            req_headers=tuple(headers.items()),
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
