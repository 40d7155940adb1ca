"""Only --host, by construction: a trace path or a model template that could address another
host, in any case or encoding, is refused when the source is loaded (exit 2 naming it), so a
listener on another loopback port sees nothing, for trace and model sources alike. And a
full run with --credentials against a target that redirects to that port: the listener sees
0 connections and no file of the run holds a password."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from faker import Faker

from tests.bad_input import assert_exit_2
from tests.factories import T0, make_record, write_trace
from tests.replay.stub_server import Listener, connection_recorder, stub_server
from tracereplay.cli import main
from tracereplay.models.model import build_model, write_model

# {other} is the listener's host:port.
FORMS = [
    "http://{other}/api/items",
    "HTTP://{other}/api/items",
    "hTtPs://{other}/api/items",
    "@{other}/api/items",
    "//{other}/api/items",
    "/%2F{other}/api/items",
    "/\\{other}/api/items",
    "/api/items\r\nHost: {other}",
]


def _records(bad_path: str | None, sessions: int = 6) -> list:  # type: ignore[type-arg]
    rows = []
    for i in range(sessions):
        t = T0 + timedelta(seconds=i)
        path = bad_path if bad_path is not None and i == sessions // 2 else "/api/items"
        login = json.dumps({"email": f"user{i}@anon.invalid", "password": "[removed]"})
        # A token the next request sends back, so the login is learned as one (and filled
        # from --credentials; an unfilled "[removed]" password is never sent).
        token = f"tok-{i}-" + "a" * 24
        rows.append(make_record(ts=t, session=f"s{i}", method="POST", path="/api/v1/auth/login",
                                req_body=login.encode(),
                                resp_body=json.dumps({"access_token": token}).encode(),
                                req_headers=(("content-type", "application/json"),)))  # fmt: skip
        rows.append(make_record(ts=t + timedelta(seconds=0.5), session=f"s{i}", path=path,
                                req_headers=(("authorization", f"Bearer {token}"),)))  # fmt: skip
    return rows


@pytest.fixture
def listener() -> Iterator[Listener]:
    with connection_recorder() as recorder:
        yield recorder


@pytest.mark.parametrize("form", FORMS)
def test_a_trace_path_that_could_leave_the_host_is_refused_at_load(
    form: str, tmp_path: Path, listener: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = form.format(other=listener.address)
    trace = write_trace(tmp_path / "trace", _records(bad))
    out = tmp_path / "run"
    with stub_server() as target:
        message = assert_exit_2(
            ["replay", str(trace), "--host", target.url, "--out", str(out)], capsys, out=out
        )
        assert target.received == []
    assert repr(bad)[:60].rstrip("'") in message and str(trace) in message
    assert listener.connections == []


@pytest.mark.parametrize("form", FORMS)
def test_a_model_template_that_could_leave_the_host_is_refused_at_load(
    form: str, tmp_path: Path, listener: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "trace", _records(None, sessions=12))
    model = build_model(trace)
    bad = form.format(other=listener.address)
    model["endpoints"]["GET /api/items"]["template"] = bad
    path = write_model(model, tmp_path / "m.model.json")
    out = tmp_path / "run"
    with stub_server() as target:
        message = assert_exit_2(
            ["replay", str(path), "--host", target.url, "--out", str(out)], capsys, out=out
        )
        assert target.received == []
    assert "endpoint 'GET /api/items': template" in message
    assert listener.connections == []


@pytest.mark.slow
@pytest.mark.parametrize("source", ["trace", "model"])
def test_a_run_with_credentials_sends_nothing_elsewhere_and_writes_no_password(
    source: str, tmp_path: Path, listener: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = Faker()
    fake.seed_instance(16)
    accounts = [(fake.email(), fake.password(length=16)) for _ in range(3)]
    creds = tmp_path / "accounts.csv"
    creds.write_text("email,password\n" + "".join(f"{e},{p}\n" for e, p in accounts))
    trace = write_trace(tmp_path / "trace", _records(None, sessions=12))
    replayed = trace if source == "trace" else write_model(build_model(trace), tmp_path / "m.json")
    out = tmp_path / "run"
    # Every answer is a redirect to the listener: following one would reach it.
    with stub_server(redirect_to=f"http://{listener.address}") as target:
        code = main(["replay", str(replayed), "--host", target.url, "--out", str(out),
                     "--credentials", str(creds), "--grace", "5s"])  # fmt: skip
        logins = [p for _, m, p in target.received if p == "/api/v1/auth/login"]
    assert code == 0, capsys.readouterr().err
    assert len(logins) >= 6
    assert listener.connections == []
    files = [p for p in out.rglob("*") if p.is_file()]
    written = {p.name for p in files}
    assert {"summary.json", "timing.parquet", "locust.log", "locust.html"} <= written
    for path in files:
        data = path.read_bytes()
        for email, password in accounts:
            assert password.encode() not in data, (path, "password")
            assert email.encode() not in data, (path, "email")
