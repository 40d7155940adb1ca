"""`tracereplay import` and `tracereplay scan` end to end: canaries in, none out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mitmproxy.test import tflow

from tests.capture.canaries import Canaries, make_canaries
from tests.capture.har_factory import chrome_entry, seeded_faker, write_dump, write_har
from tests.factories import write_trace
from tracereplay.cli import main
from tracereplay.trace import TraceRecord, read_trace

HOST = "https://api.example.test"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEREPLAY_KEY", "tests-only-import-key")


def canary_har(path: Path, c: Canaries) -> Path:
    fake = seeded_faker(3)
    login = {"email": c.email, "password": c.password}
    entries = [
        chrome_entry(
            fake, started="2026-03-02T09:00:00.000Z", url=f"{HOST}/api/v1/auth/login",
            method="POST", req_headers=[("x-forwarded-for", c.ip)],
            post_data={"mimeType": "application/json", "text": json.dumps(login)},
            resp_headers=[("content-type", "application/json"),
                          ("set-cookie", f"access_token={c.jwt}; Path=/; HttpOnly")],
            content={"size": 10, "mimeType": "application/json",
                     "text": json.dumps({"data": {"access_token": c.jwt}})},
        ),
        chrome_entry(
            fake, started="2026-03-02T09:00:01.000Z",
            url=f"{HOST}/api/v1/clients/?email={c.email}",
            req_headers=[("authorization", f"Bearer {c.jwt}"), ("cookie", f"sid={c.cookie}")],
            content={"size": 10, "mimeType": "application/json",
                     "text": json.dumps({"data": [{"phone": c.phone, "notes": c.card}]})},
        ),
        chrome_entry(
            fake, started="2026-03-02T09:00:02.000Z", url=f"{HOST}/api/v1/clients/1/configure",
            method="POST", req_headers=[("x-n8n-api-key", c.api_key)],
            post_data={"mimeType": "application/json",
                       "text": json.dumps({"n8n_api_key": c.api_key})},
        ),
    ]  # fmt: skip
    cached = chrome_entry(fake, started="2026-03-02T09:00:03.000Z", url=f"{HOST}/health")
    cached["_fromCache"] = "memory"
    return write_har(path, [*entries, cached])


def canary_dump(path: Path, c: Canaries) -> Path:
    flow = tflow.tflow(resp=True)
    flow.request.headers["Authorization"] = f"Bearer {c.jwt}"
    flow.request.headers["Content-Type"] = "application/json"
    flow.request.content = json.dumps({"email": c.email, "password": c.password}).encode()
    flow.response.headers["Content-Type"] = "application/json"
    flow.response.content = json.dumps({"phone": c.phone, "ip": c.ip}).encode()
    flow.response.encode("gzip")
    return write_dump(path, [flow, tflow.tflow(err=True)])


def assert_no_canary(out: Path, c: Canaries) -> None:
    for path in out.rglob("*"):
        data = path.read_bytes() if path.is_file() else b""
        assert not any(v.encode() in data for v in c.values())
    rows = json.dumps([{k: str(v) for k, v in r.items()} for r in read_trace(out).to_pylist()])
    assert not any(v in rows for v in c.values())


def test_import_har_and_dump_then_scan_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = make_canaries(seed=21)
    har, dump = canary_har(tmp_path / "a.har", c), canary_dump(tmp_path / "b.flows", c)
    out = tmp_path / "trace"
    assert main(["import", str(har), str(dump), "--out", str(out)]) == 0
    table = read_trace(out)
    assert table.num_rows == 5  # 3 HAR entries (the cached one skipped) + 2 flows
    assert_no_canary(out, c)
    har_rows = [r for r in table.to_pylist() if r["host"] == "api.example.test"]
    assert har_rows[0]["path"] == "/api/v1/auth/login"
    assert har_rows[0]["session"] == har_rows[1]["session"]  # the login's token, reused
    assert main(["scan", str(out)]) == 0
    assert "imported 5 rows from 2 file(s)" in capsys.readouterr().err


def test_scan_fires_on_a_raw_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = make_canaries(seed=22)
    out = tmp_path / "raw"
    record = TraceRecord(
        ts=T0, method="GET", path=f"/users/{c.email}", query=f"ip={c.ip}",
        req_headers=(("Authorization", f"Bearer {c.jwt}"),),
    )  # fmt: skip
    write_trace(out, [record])
    assert main(["scan", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "email" in printed and "jwt" in printed and "ipv4" in printed
    assert c.email not in printed and c.jwt not in printed  # examples are masked


def test_import_bad_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = canary_har(tmp_path / "good.har", make_canaries(seed=23))
    bad = tmp_path / "bad.har"
    bad.write_text("{not json")
    out = tmp_path / "trace"
    assert main(["import", str(good), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracereplay: error: ") and "bad.har" in err[0]
    assert set(tmp_path.iterdir()) == {good, bad}  # no --out, no temporary directory
