"""Importers: HAR files and mitmproxy dumps become Exchanges, and whole imports become a
new trace or nothing at all, with one-line errors for bad input."""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from mitmproxy.test import tflow
from mitmproxy.test.tutils import treq

from tests.capture.har_factory import (
    PNG_HEAD,
    TFLOW_START,
    chrome_entry,
    chrome_har,
    firefox_entry,
    gzipped_flow,
    mixed_flows,
    plain_record,
    seeded_faker,
    write_dump,
    write_har,
    write_har_without_url,
    write_invalid_json,
    write_truncated_dump,
)
from tests.factories import make_record, write_trace
from tracereplay.capture.exchange import Exchange
from tracereplay.capture.importers import (
    ImportResult,
    detect_format,
    import_files,
    iter_har,
    iter_mitm,
)
from tracereplay.errors import TraceEmptyError, TraceExistsError, UsageError
from tracereplay.trace import TraceRecord, open_trace, read_trace


@pytest.fixture
def fake() -> Faker:
    return seeded_faker()


def run_import(paths: list[Path], out: Path, **kwargs: Any) -> ImportResult:
    return import_files(paths, out, to_record=plain_record, policy_hash="test-policy", **kwargs)


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".importing-" in p.name]


def test_chrome_har(tmp_path: Path, fake: Faker) -> None:
    path, data = chrome_har(tmp_path / "chrome.har", fake)
    skipped: list[str] = []
    ok, created, refused, silent, form = iter_har(path, on_skip=skipped.append)
    assert skipped == ["non-HTTP URL"]

    assert ok.ts == datetime(2026, 1, 5, 9, 0, 0, 123000, tzinfo=UTC)
    assert (ok.method, ok.scheme, ok.host, ok.port) == ("GET", "https", data["host"], 443)
    assert (ok.path, ok.query) == ("/api/v1/clients/caf%C3%A9", "page=2&q=a%20b")
    assert ok.req_headers is not None
    assert [n for n, _ in ok.req_headers] == ["user-agent", "authorization"]  # no ':' names
    assert ("authorization", f"Bearer {data['token']}") in ok.req_headers
    assert (ok.status, ok.duration_ms, ok.error) == (200, 123.4, None)
    assert ok.resp_body == data["list"].encode()
    assert ("content-encoding", "br") in (ok.resp_headers or [])
    assert (ok.resp_body_encoding, ok.req_body_encoding) == (None, None)  # HAR is decoded
    assert (ok.req_body, ok.client_addr, ok.http_version) == (None, None, "HTTP/2.0")

    assert created.req_body == data["created"].encode()
    assert (created.status, created.resp_body) == (201, data["png"])

    assert (refused.status, refused.error) == (None, "net::ERR_CONNECTION_REFUSED")
    assert (refused.duration_ms, refused.resp_headers, refused.resp_body) == (None, None, None)
    assert (silent.status, silent.error) == (None, "no response")

    assert form.port == 8443
    assert form.req_body == f"user={data['user']}&q=a%26b".encode()
    assert ("content-type", "application/x-www-form-urlencoded") in (form.req_headers or [])


def test_firefox_har_with_offsets_and_unknown_time(tmp_path: Path, fake: Faker) -> None:
    body = json.dumps({"email": fake.email()})
    entries = [
        firefox_entry(
            fake,
            started="2026-01-05T10:00:00.250+01:00",
            url="http://[::1]:8000/api/v1/clients/?x=1",
            time_ms=-1,
            text=body,
        ),
        firefox_entry(fake, started="2026-01-05T09:00:01", url="https://Example.test/", status=304),
    ]
    path = write_har(tmp_path / "firefox.har", entries, creator="Firefox")
    first, second = iter_har(path)
    assert first.ts == datetime(2026, 1, 5, 9, 0, 0, 250000, tzinfo=UTC)
    assert (first.host, first.port) == ("::1", 8000)
    assert (first.path, first.query) == ("/api/v1/clients/", "x=1")
    assert (first.duration_ms, first.http_version) == (None, "HTTP/2.0")
    assert first.resp_body == body.encode()
    assert second.ts == datetime(2026, 1, 5, 9, 0, 1, tzinfo=UTC)  # no offset: taken as UTC
    assert (second.host, second.port, second.status) == ("example.test", 443, 304)
    assert (second.resp_body, second.duration_ms) == (None, 12.0)


def test_har_as_mitmproxy_writes_it(tmp_path: Path, fake: Faker) -> None:
    # mitmproxy.addons imports ldap3, which trips a pyasn1 DeprecationWarning on import.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy.addons.savehar import SaveHar

    body = json.dumps({"name": fake.company(), "city": fake.city()}).encode()
    gzipped = gzipped_flow(body)
    posted = tflow.tflow(
        req=treq(method=b"POST", content=body, headers=((b"content-type", b"application/json"),)),
        resp=True,
    )
    flows = [tflow.tflow(resp=True), tflow.tflow(err=True), gzipped, posted]
    har = SaveHar().make_har(flows)
    path = tmp_path / "mitm.har"
    path.write_text(json.dumps(har))
    ok, failed, unzipped, post = iter_har(path)
    assert (ok.ts, ok.method, ok.host, ok.port) == (TFLOW_START, "GET", "address", 22)
    assert ok.path == "/path"
    assert (ok.status, ok.resp_body, ok.http_version) == (200, b"message", "HTTP/1.1")
    assert ok.duration_ms == har["log"]["entries"][0]["time"]
    assert (failed.status, failed.error, failed.duration_ms) == (None, "error", None)
    assert (unzipped.resp_body, unzipped.resp_body_encoding) == (body, None)
    assert ("content-encoding", "gzip") in (unzipped.resp_headers or [])
    assert (post.method, post.req_body) == ("POST", body)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"log": {"entries": [', "not valid JSON (line 1 column 22: Expecting value)"),
        ('{"log": {"version": "1.2"}}', "not a HAR file (no log.entries)"),
        ('{"log": {"entries": {}}}', "not a HAR file (no log.entries)"),
        ('{"log": {"entries": [7]}}', "entry 0: not a JSON object"),
    ],
)
def test_bad_har_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.har"
    path.write_text(content)
    with pytest.raises(UsageError) as err:
        list(iter_har(path))
    assert str(err.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["request"].pop("url"), "entry 1: request.url missing"),
        (lambda e: e["request"].update(method=""), "entry 1: request.method missing"),
        (lambda e: e.pop("request"), "entry 1: request missing"),
        (
            lambda e: e.update(startedDateTime="yesterday"),
            "entry 1: startedDateTime 'yesterday' is not an ISO 8601 date in range",
        ),
        (
            lambda e: e["request"].update(url="https://h:99999/"),
            "entry 1: request.url is not a valid URL",
        ),
        (
            lambda e: e["response"].update(status=70000),
            "entry 1: response.status 70000 is not an HTTP status",
        ),
        (
            lambda e: e["request"].update(headers={"a": "b"}),
            "entry 1: request.headers is not a list",
        ),
        (
            lambda e: e["response"]["content"].update(text="no base64!", encoding="base64"),
            "entry 1: response.content.text is not valid base64",
        ),
    ],
)
def test_bad_har_entries(
    tmp_path: Path, fake: Faker, change: Callable[[Any], Any], message: str
) -> None:
    entries = [
        chrome_entry(fake, started="2026-01-05T09:00:00Z", url=f"https://{fake.domain_name()}/")
        for _ in range(2)
    ]
    change(entries[1])
    path = write_har(tmp_path / "traffic.har", entries)
    with pytest.raises(UsageError) as err:
        list(iter_har(path))
    assert str(err.value) == f"{path}: {message}"


def test_mitm_dump(tmp_path: Path, fake: Faker) -> None:
    flows = mixed_flows(fake)
    path = write_dump(tmp_path / "flows.mitm", flows)
    skipped: list[str] = []
    ok, gzipped, failed, websocket, pending = iter_mitm(path, on_skip=skipped.append)
    assert skipped == ["tcp flow", "udp flow", "dns flow"]

    assert (ok.ts, ok.method, ok.scheme) == (TFLOW_START, "GET", "http")
    assert (ok.host, ok.port) == ("address", 22)
    assert (ok.path, ok.query) == ("/api/v1/clients/caf%C3%A9", "page=2")
    token = flows[0].request.headers["authorization"]
    assert (ok.client_addr, (ok.req_headers or [])[-1]) == ("127.0.0.1", ("authorization", token))
    assert (ok.status, ok.resp_body, ok.duration_ms, ok.error) == (200, b"message", 3000.0, None)

    assert gzipped.resp_body_encoding == "gzip"
    assert gzipped.resp_body is not None
    assert gzip.decompress(gzipped.resp_body) == flows[1].response.content
    assert (failed.status, failed.error, failed.duration_ms) == (None, "error", None)
    assert (websocket.status, websocket.path) == (101, "/ws")  # the handshake, not messages
    assert (pending.status, pending.error) == (None, "no response")


def test_empty_dump_has_no_flows(tmp_path: Path) -> None:
    path = tmp_path / "empty.mitm"
    path.write_bytes(b"")
    assert list(iter_mitm(path)) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PNG_HEAD, "not a mitmproxy flow dump"),
        (b'{"log": {"entries": []}}', "not a mitmproxy flow dump"),
        (b"12:30:00,GET,/clients\n", "not a mitmproxy flow dump (Invalid data format.)"),
        (b"4:1:a,]", "not a mitmproxy flow dump (not a flow's state)"),
    ],
)
def test_foreign_files_are_not_dumps(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "foreign.mitm"
    path.write_bytes(content)
    with pytest.raises(UsageError) as err:
        list(iter_mitm(path))
    assert str(err.value) == f"{path}: {message}"


def test_truncated_dump_names_the_flow(tmp_path: Path) -> None:
    path = write_dump(tmp_path / "cut.mitm", [tflow.tflow(resp=True) for _ in range(3)])
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(UsageError) as err:
        list(iter_mitm(path))
    assert str(err.value) == f"{path}: flow 2: truncated or corrupt (Invalid data format.)"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"log": {"version": "1.2", "entries": []}}', "har"),
        (b'\xef\xbb\xbf\n  {\n  "log": {}}', "har"),
        (b"123:4:type;4:http,", "mitm"),
        (PNG_HEAD, None),
        (b"ts,method,path\n2026-01-05,GET,/\n", None),
        (b"[1, 2]", None),
        (b'{"rows": []}', None),
        (b"", None),
    ],
)
def test_detect_format(tmp_path: Path, content: bytes, expected: str | None) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    if expected is not None:
        assert detect_format(path) == expected
        return
    with pytest.raises(UsageError) as err:
        detect_format(path)
    empty = "empty file, " if not content else ""
    assert str(err.value) == f"{path}: {empty}not a HAR file or a mitmproxy flow dump"


# import_files: a whole import, all or nothing


def test_import_har_end_to_end(tmp_path: Path, fake: Faker) -> None:
    path, data = chrome_har(tmp_path / "chrome.har", fake)
    out = tmp_path / "traces" / "chrome"
    with pytest.raises(UsageError, match="does not exist; create it first"):
        run_import([path], out)  # a missing parent is a typo more often than a wish
    out.parent.mkdir()
    result = run_import([path], out)
    assert result == ImportResult(out=out, files=1, rows=5, skipped=1)
    table = read_trace(out)
    assert table.num_rows == 5
    assert table["status"].to_pylist() == [200, 201, None, None, 200]
    assert table["error"].to_pylist()[2:4] == ["net::ERR_CONNECTION_REFUSED", "no response"]
    assert table["path"][0].as_py() == "/api/v1/clients/caf%C3%A9"
    assert table["resp_body"][1].as_py() == data["png"]
    trace = open_trace(out)
    assert (trace.metadata.source, trace.metadata.policy_hash) == ("import-har", "test-policy")
    assert trace.metadata.capture_start == datetime(2026, 1, 5, 9, 0, 0, 123000, tzinfo=UTC)
    assert leftovers(out.parent) == []


def test_import_mixed_files_into_an_empty_directory(tmp_path: Path, fake: Faker) -> None:
    har, _ = chrome_har(tmp_path / "a.har", fake)
    dump = write_dump(tmp_path / "b.mitm", mixed_flows(fake))
    out = tmp_path / "mixed"
    out.mkdir()
    result = run_import([har, dump], out)
    assert (result.files, result.rows, result.skipped) == (2, 10, 4)
    assert read_trace(out).num_rows == 10
    assert open_trace(out).metadata.source == "import"
    assert run_import([dump], tmp_path / "m").rows == 5
    assert open_trace(tmp_path / "m").metadata.source == "import-mitm"


def test_progress_every_thousand_rows(tmp_path: Path, fake: Faker) -> None:
    url = f"https://{fake.domain_name()}/api/v1/health"
    entries = [chrome_entry(fake, started="2026-01-05T09:00:00Z", url=url)] * 2500
    seen: list[int] = []
    run_import([write_har(tmp_path / "big.har", entries)], tmp_path / "big", progress=seen.append)
    assert seen == [1000, 2000, 2500]


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (write_invalid_json, "not valid JSON (line 1 column 22: Expecting value)"),
        (write_har_without_url, "entry 0: request.url missing"),
        (write_truncated_dump, "flow 1: truncated or corrupt (Invalid data format.)"),
        (lambda p: p.write_bytes(PNG_HEAD), "not a HAR file or a mitmproxy flow dump"),
        (lambda p: p.write_text("ts,path\n1,/\n"), "not a HAR file or a mitmproxy flow dump"),
    ],
)
def test_a_bad_file_after_a_good_one_leaves_nothing(
    tmp_path: Path, fake: Faker, make_bad: Callable[[Path], object], message: str
) -> None:
    good, _ = chrome_har(tmp_path / "good.har", fake)
    bad = tmp_path / "bad.input"
    make_bad(bad)
    out = tmp_path / "out"
    with pytest.raises(UsageError) as err:
        run_import([good, bad], out)
    assert str(err.value) == f"{bad}: {message}"
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_interrupt_removes_the_partial_trace(tmp_path: Path, fake: Faker) -> None:
    path, _ = chrome_har(tmp_path / "chrome.har", fake)

    def interrupted(exchange: Exchange) -> TraceRecord:
        if exchange.status is None:
            raise KeyboardInterrupt
        return plain_record(exchange)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        import_files([path], out, to_record=interrupted, policy_hash="")
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_a_leftover_of_a_killed_import_is_replaced(tmp_path: Path, fake: Faker) -> None:
    path, _ = chrome_har(tmp_path / "chrome.har", fake)
    write_trace(tmp_path / f".out.importing-{os.getpid()}", [make_record()])
    assert run_import([path], tmp_path / "out").rows == 5
    assert leftovers(tmp_path) == []


def test_refuses_to_write_over_a_trace(tmp_path: Path, fake: Faker) -> None:
    path, _ = chrome_har(tmp_path / "chrome.har", fake)
    out = write_trace(tmp_path / "old", [make_record()])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(TraceExistsError) as err:
        run_import([path], out)
    assert str(err.value) == f"{out} already holds a trace; choose a new --out directory"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    with pytest.raises(TraceExistsError, match="notes is not empty; choose a new --out"):
        run_import([path], tmp_path / "notes")
    with pytest.raises(TraceExistsError, match=r"chrome\.har already exists; choose a new --out"):
        run_import([path], path)


def test_bad_arguments(tmp_path: Path, fake: Faker) -> None:
    path, _ = chrome_har(tmp_path / "chrome.har", fake)
    cases: list[tuple[list[Path], dict[str, Any], str]] = [
        ([path], {"fmt": "csv"}, "unknown format 'csv'; choose one of auto, har, mitm"),
        ([], {}, "no files to import"),
        ([tmp_path / "nope.har"], {}, f"{tmp_path / 'nope.har'}: no such file"),
        ([tmp_path], {}, f"{tmp_path}: not a file"),
        ([path], {"fmt": "mitm"}, f"{path}: not a mitmproxy flow dump"),
    ]
    for paths, kwargs, message in cases:
        with pytest.raises(UsageError) as err:
            run_import(paths, tmp_path / "out", **kwargs)
        assert str(err.value) == message
    assert not (tmp_path / "out").exists()


def test_nothing_to_import(tmp_path: Path) -> None:
    empty = write_har(tmp_path / "empty.har", [])
    with pytest.raises(TraceEmptyError) as err:
        run_import([empty], tmp_path / "out")
    assert str(err.value) == f"{empty}: nothing to import (no HTTP exchanges)"
    tcp = write_dump(tmp_path / "tcp.mitm", [tflow.ttcpflow()])
    with pytest.raises(TraceEmptyError) as err:
        run_import([empty, tcp], tmp_path / "out")
    assert str(err.value) == "2 files: nothing to import (no HTTP exchanges, 1 skipped as not HTTP)"
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []
