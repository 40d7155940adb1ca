"""The `Exchange` holds only valid text: bytes that were not UTF-8 become `\\xNN`, flagged."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from mitmproxy.io import FlowWriter
from mitmproxy.test import tflow

from tests.factories import make_record
from tracereplay.capture.exchange import (
    Exchange,
    anonymizing,
    exchange_from_flow,
    unescape,
    valid_text,
)
from tracereplay.trace import TraceRecord, read_trace

T0 = datetime(2026, 1, 5, tzinfo=UTC)


@given(st.binary(max_size=64))
def test_escaping_gives_the_bytes_back(raw: bytes) -> None:
    text = raw.decode("utf-8", "surrogateescape")  # as mitmproxy decodes headers and paths
    fixed = valid_text(text)
    stored = text if fixed is None else fixed
    stored.encode("utf-8")  # always valid text
    if b"\\x" not in raw:  # a literal backslash-x already there reads back as a byte
        assert unescape(stored) == raw


def test_anonymizing_checks_every_exchange_first() -> None:
    raw = 'attachment; filename="Müller.pdf"'.encode("latin-1")
    latin1 = raw.decode("utf-8", "surrogateescape")
    ex = Exchange(ts=T0, method="GET", path="/a/\udcff", query="q=\udcfe")
    ex.resp_headers = [("Content-Disposition", latin1), ("X-Ok", "ü")]  # set later (HAR does)
    ex.error = "lone \ud800 surrogate"  # as a HAR file's JSON can hold
    seen: list[Exchange] = []

    def to_record(exchange: Exchange) -> TraceRecord:
        seen.append(exchange)
        return make_record(path=exchange.path)

    row = anonymizing(to_record)(ex)
    assert (ex.path, ex.query) == ("/a/\\xff", "q=\\xfe")
    assert ex.resp_headers == [("Content-Disposition", 'attachment; filename="M\\xfcller.pdf"'),
                               ("X-Ok", "ü")]  # fmt: skip
    assert ex.error == "lone \\ud800 surrogate"
    assert seen == [ex] and row.escaped == ("path", "query", "error", "resp_headers")
    ex.check()  # idempotent
    assert ex.escaped == ("path", "query", "error", "resp_headers")
    clean = Exchange(ts=T0, method="GET", path="/ü", req_headers=[("a", "b")])
    assert anonymizing(to_record)(clean).escaped is None and clean.path == "/ü"


def test_a_mitmdump_file_with_a_latin1_header_imports(tmp_path: Path) -> None:
    flow = tflow.tflow(resp=True)
    flow.response.headers.fields = (
        (b"Content-Disposition", b'attachment; filename="M\xfcller.pdf"'),
    )
    flow.request.data.path = b"/files/\xff"
    dump = tmp_path / "flows.mitm"
    with dump.open("wb") as handle:
        FlowWriter(handle).add(flow)
    copied = exchange_from_flow(flow)
    copied.check()
    assert copied.escaped == ("path", "resp_headers")
    out = tmp_path / "trace"
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "import", str(dump), "--out", str(out)],
        capture_output=True, text=True, check=False, timeout=60,
        env={"TRACEREPLAY_KEY": "tests-only-key", "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = read_trace(out).to_pylist()[0]
    assert row["escaped"] == ["path", "resp_headers"]
