"""`tracereplay import` on malformed files: HAR dates out of range, lone surrogates, JSON
nested 5,000 deep, numbers too long to convert, a method with a line break, and a mitmdump
with a Latin-1 header; each is one line and exit 2 (or imported cleanly), nothing left in
--out, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.test import tflow

from tests.bad_input import assert_exit_2, run_cli
from tests.capture.har_factory import chrome_entry, seeded_faker, write_dump, write_har
from tracereplay.trace import read_trace

URL = "https://api.example.test/api/v1/clients/"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRACEREPLAY_KEY", "tests-only-import-key")
    yield


def har_text(entries: list[dict[str, Any]]) -> str:
    return json.dumps({"log": {"version": "1.2", "entries": entries}})


def two_entries(**second: Any) -> list[dict[str, Any]]:
    fake = seeded_faker(11)
    entries = [chrome_entry(fake, started="2026-03-02T09:00:00Z", url=URL) for _ in range(2)]
    entries[1].update(second)
    return entries


@pytest.mark.parametrize(
    ("started", "says"),
    [("0001-01-01T00:00:00+14:00", "is not an ISO 8601 date in range"),
     ("9999-12-31T23:59:59-14:00", "is not an ISO 8601 date in range"),
     ("10000-01-01T00:00:00Z", "is not an ISO 8601 date in range"),
     ("1969-12-31T23:59:59Z", "is not an ISO 8601 date in range"),
     ("2200-01-01T00:00:00Z", "is not an ISO 8601 date in range")],
)  # fmt: skip
def test_har_dates_out_of_range(
    started: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    har = write_har(tmp_path / "in.har", two_entries(startedDateTime=started))
    out = tmp_path / "out"
    message = assert_exit_2(["import", str(har), "--out", str(out)], capsys, says=says, out=out)
    assert "entry 1" in message


def test_lone_surrogates_are_replaced_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = two_entries()
    text = har_text(entries)
    # JSON escapes of unpaired surrogates, which UTF-8 cannot encode, in a header name and
    # value, the URL and the error text.
    text = text.replace('"accept"', '"acc\\ud800ept"', 1).replace(
        "/api/v1/clients/", "/api/v1/cli\\udfffents/", 1
    )
    entries_with = json.loads(text)
    entries_with["log"]["entries"][1]["response"]["_error"] = "net::\ud83d"
    har = tmp_path / "in.har"
    har.write_text(json.dumps(entries_with), encoding="utf-8")
    out = tmp_path / "out"
    code, err = run_cli(["import", str(har), "--out", str(out)], capsys)
    assert code == 0, err
    paths = read_trace(out)["path"].to_pylist()
    assert any("\ufffd" in p for p in paths) and all("\ud800" not in p for p in paths)


@pytest.mark.parametrize(
    ("text", "says"),
    [('{"log": {"entries": ' + "[" * 5000 + "]" * 5000 + "}}", "JSON nested too deeply"),
     ('{"log": {"entries": [], "n": ' + "7" * 5000 + "}}", "not a HAR file (Exceeds the limit"),
     ('{"log": {"entries": [{"startedDateTime": "2026-03-02T09:00:00Z", "request": '
      '{"method": "GET / HTTP/1.1\\r\\nHost: evil", "url": "http://h/"}}]}}',
      "request.method 'GET / HTTP/1.1\\r\\nHost: evil' is not an HTTP method")],
)  # fmt: skip
def test_malformed_json(
    text: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    har = tmp_path / "in.har"
    har.write_text(text)
    out = tmp_path / "out"
    assert_exit_2(["import", str(har), "--out", str(out)], capsys, says=says, out=out)


def test_a_bad_second_file_leaves_out_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_har(tmp_path / "good.har", two_entries())
    bad = write_har(tmp_path / "bad.har", two_entries(startedDateTime="0001-01-01T00:00:00+14:00"))
    out = tmp_path / "out"
    out.mkdir()
    assert_exit_2(["import", str(good), str(bad), "--out", str(out)], capsys, out=out)
    assert list(out.iterdir()) == [] and [p.name for p in tmp_path.iterdir() if
                                          p.name.startswith(".out")] == []  # fmt: skip


def test_a_mitmdump_with_a_latin1_header_imports_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tflow.tflow(resp=True)
    flow.request.headers[b"x-name"] = b"Jos\xe9"
    flow.response.headers[b"content-disposition"] = b'attachment; filename="r\xe9sum\xe9.pdf"'
    dump = write_dump(tmp_path / "latin1.mitm", [flow])
    out = tmp_path / "out"
    code, err = run_cli(["import", str(dump), "--out", str(out)], capsys)
    assert code in (0, 2) and "Traceback" not in err
