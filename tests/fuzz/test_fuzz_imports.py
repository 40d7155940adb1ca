"""Fuzz: HAR files (valid ones with random JSON put anywhere, and their text cut and
changed) and mitmdump files (bytes flipped, cut, inserted), through `import`: exit 0 or 2,
never a traceback, --out complete or absent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy.test import tflow

from tests.capture.har_factory import chrome_entry, seeded_faker, write_dump
from tests.fuzz.harness import FUZZ, assert_clean, fuzz_damaged, scratch

JSON_LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
    | st.sampled_from(["", "0", "-1", "http://x/", "https://h:99999/", "\ud800",
                       "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "base64",
                       "GET / HTTP/1.1\r\nHost: evil", "gzip", "\x00"])
)  # fmt: skip
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Text that HAR exporters get wrong: unpaired surrogates (JSON's \\udXXX), NUL, line breaks.
# (A fuzzing dictionary, as AFL's: values known to break parsers are drawn as often as the
# rest, or a few hundred examples would hardly ever meet them.)
# (hypothesis' st.text never yields unpaired surrogates: characters are joined by hand.)
TEXT = st.lists(
    st.sampled_from(["\ud800", "\udfff", "\x00", "\r", "\n", "@", "%", "é"]) | st.characters(),
    max_size=12,
).map("".join)


def _iso(moment: datetime, minutes: int | None) -> str:
    """An ISO 8601 date with an offset of `minutes` (None: Z), as any exporter writes."""
    if minutes is None:
        return moment.isoformat() + "Z"
    sign = "+" if minutes >= 0 else "-"
    return f"{moment.isoformat()}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


EDGE_DATES = [datetime.min, datetime.max, datetime(1970, 1, 1), datetime(2038, 1, 19, 3, 14, 8)]
DATES = (
    st.builds(_iso, st.sampled_from(EDGE_DATES) | st.datetimes(),
              st.none() | st.sampled_from([-14 * 60, 14 * 60]) | st.integers(-14 * 60, 14 * 60))
    | TEXT
)  # fmt: skip
NUMBERS = st.integers(-(2**70), 2**70) | st.floats() | st.none() | TEXT
HEADERS = st.lists(st.fixed_dictionaries({"name": TEXT | st.sampled_from([":path", "cookie"]),
                                          "value": TEXT | NUMBERS}), max_size=3)  # fmt: skip
URLS = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https", "HTTP", "ws", "data", ""]),
    st.sampled_from(["h", "h:99999", "[::1", "u:p@h", ""]) | TEXT,
    TEXT,
)
# One field of an otherwise valid entry at a time, so each bad value reaches the code that
# reads it (a wholly random entry fails at its first field).
FIELD_CHANGES: dict[tuple[str, ...], st.SearchStrategy[Any]] = {
    ("startedDateTime",): DATES,
    ("time",): NUMBERS,
    ("request", "method"): st.sampled_from(["GET", "POST", "M-SEARCH"]) | TEXT,
    ("request", "url"): URLS,
    ("request", "headers"): HEADERS,
    ("request", "httpVersion"): TEXT | st.none(),
    ("request", "postData"): st.fixed_dictionaries(
        {"mimeType": TEXT, "text": TEXT},
        optional={"encoding": st.sampled_from(["base64", "x"]),
                  "params": st.lists(st.fixed_dictionaries({"name": TEXT, "value": TEXT}),
                                     max_size=2)},
    ),
    ("response", "status"): NUMBERS,
    ("response", "headers"): HEADERS,
    ("response", "content"): st.fixed_dictionaries(
        {"text": TEXT}, optional={"encoding": st.just("base64")}
    ),
    ("response", "_error"): TEXT,
    ("_fromCache",): st.sampled_from(["memory", ""]),
}  # fmt: skip
CHANGES = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(sorted(FIELD_CHANGES)).flatmap(
            lambda path: st.tuples(st.just(path), FIELD_CHANGES[path])
        ),
    ),
    min_size=1, max_size=2,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRACEREPLAY_KEY", "tests-only-fuzz-key")
    yield


def har_document() -> dict[str, Any]:
    fake = seeded_faker(5)
    entries = [
        chrome_entry(fake, started=f"2026-03-02T09:00:0{i}Z",
                     url=f"https://api.example.test/api/v1/clients/{i}?page={i}",
                     method="POST" if i % 2 else "GET",
                     post_data={"mimeType": "application/json", "text": '{"a": 1}'} if i % 2
                     else None)
        for i in range(3)
    ]  # fmt: skip
    return {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": entries}}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _import_ok(source: Path, work: Path) -> None:
    out = work / "out"
    if assert_clean(["import", str(source), "--out", str(out)]) == 0:
        assert any(out.glob("*.parquet")), "exit 0 but no trace written"
    leftovers = [p for p in work.iterdir() if p.name.startswith(".out")]
    assert leftovers == [], leftovers


def test_har_with_random_json_anywhere(tmp_path: Path) -> None:
    base = har_document()
    paths = _paths(base)
    ran: list[int] = []

    @FUZZ
    @given(st.lists(st.tuples(st.integers(0, len(paths) - 1), JSON_VALUES), min_size=1,
                    max_size=3))  # fmt: skip
    def check(changes: list[tuple[int, Any]]) -> None:
        ran.append(1)
        doc = json.loads(json.dumps(base))
        for index, value in changes:
            try:
                doc = _put(doc, paths[index], value)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed this place
        with scratch(tmp_path) as work:
            source = work / "in.har"
            source.write_text(json.dumps(doc), encoding="utf-8")
            _import_ok(source, work)

    check()
    assert len(ran) >= 60


def test_har_entries_with_bad_fields(tmp_path: Path) -> None:
    ran: list[int] = []

    @settings(FUZZ, max_examples=200)
    @given(CHANGES)
    def check(changes: list[tuple[int, tuple[tuple[str, ...], Any]]]) -> None:
        ran.append(1)
        doc = har_document()
        for entry, (path, value) in changes:
            _put(doc["log"]["entries"][entry], path, value)
        with scratch(tmp_path) as work:
            source = work / "in.har"
            source.write_text(json.dumps(doc), encoding="utf-8")
            _import_ok(source, work)

    check()
    assert len(ran) >= 200


def test_har_text_damaged(tmp_path: Path) -> None:
    fuzz_damaged(json.dumps(har_document()).encode(), "in.har", tmp_path, _import_ok)


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Three flows, byte for byte the same every run (so the derandomized edits are)."""
    flows = []
    for i in range(3):
        flow = tflow.tflow(resp=True)
        flow.id = str(uuid.UUID(int=3 * i + 1))
        flow.client_conn.id = str(uuid.UUID(int=3 * i + 2))
        flow.server_conn.id = str(uuid.UUID(int=3 * i + 3))
        flow.request.path = f"/api/v1/clients/{i}"
        flow.request.headers["content-type"] = "application/json"
        flow.request.content = b'{"name": "x"}'
        flows.append(flow)
    path = write_dump(tmp_path_factory.mktemp("dump") / "flows.mitm", flows)
    return path.read_bytes()


def test_mitm_dump_damaged(dump: bytes, tmp_path: Path) -> None:
    fuzz_damaged(dump, "flows.mitm", tmp_path, _import_ok)
