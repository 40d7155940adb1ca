"""The `TraceCapture` addon under mitmproxy's own test context (no sockets, no proxy)."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import os
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow

from tests.capture.canaries import make_canaries
from tests.factories import make_record
from tracereplay.capture.addon import TraceCapture
from tracereplay.capture.exchange import Exchange, exchange_from_flow
from tracereplay.capture.recorder import Recorder, RecorderStats
from tracereplay.capture.workers import Anonymized
from tracereplay.trace import TRACE_SCHEMA, MemorySink, TraceWriter, read_trace


def context(addon: TraceCapture) -> taddons.context:
    """mitmproxy's addon test context on the running loop (see `in_loop`)."""
    return taddons.context(addon)


def in_loop(test: Callable[..., None]) -> Callable[..., None]:
    """Run a test inside an event loop, as mitmproxy runs addons (and close it after)."""

    @functools.wraps(test)
    def run(*args: object, **kwargs: object) -> None:
        async def main() -> None:
            test(*args, **kwargs)

        asyncio.run(main())

    return run


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEREPLAY_KEY", "tests-only-addon-key")


@in_loop
def test_records_responses_errors_and_websockets(tmp_path: Path) -> None:
    out = tmp_path / "trace"
    c = make_canaries(seed=3)
    addon = TraceCapture()
    with context(addon) as tctx:
        tctx.configure(addon, tracereplay_out=str(out), tracereplay_flush_ms=100)
        ok = tflow.tflow(resp=True)
        ok.request.headers["Authorization"] = f"Bearer {c.jwt}"
        ok.request.content = json.dumps({"email": c.email}).encode()
        ok.request.headers["Content-Type"] = "application/json"
        addon.response(ok)
        failed = tflow.tflow(err=True)
        addon.error(failed)
        h2 = tflow.tflow(resp=True)
        h2.request.http_version = h2.response.http_version = "HTTP/2.0"
        addon.response(h2)
        ws = tflow.twebsocketflow()
        addon.response(ws)  # the handshake is a row; websocket messages are not recorded
        addon.error(ok)  # an error after a recorded response adds no row
        stats = addon.close()
    assert stats is not None and stats.flows == 4 and stats.rows == 4 and stats.dropped == 0
    assert stats.transport_errors == 1
    table = read_trace(out)
    rows = table.to_pylist()
    assert len(rows) == 4
    errors = [r for r in rows if r["error"]]
    assert len(errors) == 1 and errors[0]["status"] is None
    stored = json.dumps([str(r) for r in rows])
    assert c.jwt not in stored and c.email not in stored


@in_loop
def test_option_errors_are_options_errors(tmp_path: Path) -> None:
    addon = TraceCapture()
    with context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="tracereplay_flush_ms must be > 0"):
            tctx.configure(addon, tracereplay_flush_ms=0)
        with pytest.raises(exceptions.OptionsError, match="tracereplay_filter"):
            tctx.configure(addon, tracereplay_flush_ms=1000, tracereplay_filter="~nonsense(")
        with pytest.raises(exceptions.OptionsError, match="tracereplay_max_backlog: not a size"):
            tctx.configure(addon, tracereplay_filter=None, tracereplay_max_backlog="lots")
        with pytest.raises(exceptions.OptionsError, match="tracereplay_workers must be >= 0"):
            tctx.configure(addon, tracereplay_max_backlog="1MiB", tracereplay_workers=-1)
        bad = tmp_path / "policy.toml"
        bad.write_text("version = 7\n")
        with pytest.raises(exceptions.OptionsError, match="version 7 not supported"):
            tctx.configure(
                addon,
                tracereplay_workers=0,
                tracereplay_out=str(tmp_path / "t"),
                tracereplay_policy=str(bad),
            )
    assert addon.recorder is None


@in_loop
def test_filter_selects_flows(tmp_path: Path) -> None:
    addon = TraceCapture()
    with context(addon) as tctx:
        tctx.configure(
            addon, tracereplay_out=str(tmp_path / "t"), tracereplay_filter="~d keep.test"
        )
        kept, other = tflow.tflow(resp=True), tflow.tflow(resp=True)
        kept.request.host = "keep.test"
        addon.response(kept)
        addon.response(other)
        stats = addon.close()
    assert stats is not None and stats.rows == 1


@in_loop
def test_no_flow_is_referenced_after_its_hook(tmp_path: Path) -> None:
    addon = TraceCapture()
    with context(addon) as tctx:
        tctx.configure(addon, tracereplay_out=str(tmp_path / "t"))
        refs = []
        for _ in range(50):
            flow = tflow.tflow(resp=True)
            addon.response(flow)
            refs.append(weakref.ref(flow))
        del flow
        addon.close()
    gc.collect()
    assert all(r() is None for r in refs)


class FailingSpec:
    """A worker spec whose anonymizer always fails (with raw data in its message)."""

    def build(self) -> Callable[[int, Exchange], Anonymized]:
        def anonymize(seq: int, ex: Exchange) -> Anonymized:
            raise ValueError(f"raw secret in the message {ex.path}")

        return anonymize


def test_recorder_drops_what_it_cannot_anonymize(caplog: pytest.LogCaptureFixture) -> None:
    sink = MemorySink(TRACE_SCHEMA)
    writer = TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=0.05)
    recorder = Recorder(FailingSpec(), writer, workers=1)
    recorder.submit(exchange_from_flow(tflow.tflow(resp=True)))
    stats = recorder.close()
    assert stats.dropped == 1 and stats.rows == 0 and sink.table().num_rows == 0
    assert [r.getMessage() for r in caplog.records] == [
        "could not anonymize an exchange (ValueError); left out"
    ]


class DyingSpec:
    """Anonymizes to a plain row, but its process dies on the exchange for /die."""

    def build(self) -> Callable[[int, Exchange], Anonymized]:
        def anonymize(seq: int, ex: Exchange) -> Anonymized:
            if ex.path == "/die":
                os._exit(3)
            return Anonymized(seq, make_record(path=ex.path))

        return anonymize


def test_a_dead_worker_is_replaced_and_what_it_held_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = MemorySink(TRACE_SCHEMA)
    writer = TraceWriter(sink, TRACE_SCHEMA, flush_interval_s=0.05)
    recorder = Recorder(DyingSpec(), writer, workers=1)

    def send(path: str, until: Callable[[RecorderStats], bool]) -> None:
        flow = tflow.tflow(resp=True)
        flow.request.path = path
        recorder.submit(exchange_from_flow(flow))
        deadline = time.monotonic() + 60
        while not until(recorder.stats()) and time.monotonic() < deadline:
            time.sleep(0.05)

    send("/a", lambda s: s.rows == 1)  # the worker is up
    send("/die", lambda s: s.dropped == 1)  # it died, and it was noticed
    send("/b", lambda s: True)  # to the replacement
    send("/c", lambda s: True)
    stats = recorder.close()
    assert sink.table()["path"].to_pylist() == ["/a", "/b", "/c"]  # in order
    assert stats.dropped == 1 and stats.rows == 3 and stats.backlog == 0
    assert "an anonymizer process ended (exit code 3); 1 exchanges it held are lost" in [
        r.getMessage() for r in caplog.records
    ]
