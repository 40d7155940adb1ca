"""Anonymized credentials never reach the target, and HTTP Basic comes from --credentials
(replay/placeholders.py): the harm seen on a Basic-auth backend (accounts created with the
password `[removed]`, every authenticated request sent with the pseudonym) cannot recur."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from faker import Faker

from tests.factories import T0, make_record, write_trace
from tests.replay.stub_server import serving
from tracereplay.capture.anonymize.detectors import PSEUDO_JWT_HEADER
from tracereplay.cli import main
from tracereplay.errors import UsageError
from tracereplay.models.correlations import AuthInfo, Location
from tracereplay.models.model import build_model, write_model
from tracereplay.processes import free_port
from tracereplay.replay.correlate import SessionCorrelator
from tracereplay.replay.credentials import WRONG_PASSWORD, Credential, load_credentials
from tracereplay.replay.ownership import PLACEHOLDER_CREDENTIAL, Cleared, Protection, Skipped, clear
from tracereplay.replay.placeholders import (
    basic_value,
    credential_placeholder,
    fill_basic,
    is_placeholder,
    recorded_query,
)
from tracereplay.replay.plan import PlannedRequest
from tracereplay.replay.rewrite import PreparedRequest

JSON = [("Content-Type", "application/json")]


def req(
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    query: str | None = None,
) -> PreparedRequest:
    return PreparedRequest("PUT", "/accounts/alice", query, headers or JSON, body)


@pytest.mark.parametrize(
    "request_, where",
    [
        (req([("Authorization", "Basic anon_Zx81kQ0pLm2")]), "header Authorization"),
        (req([("Authorization", f"Bearer {PSEUDO_JWT_HEADER}.abc.def")]), "header Authorization"),
        (req([("X-Api-Key", "anon_k3y")]), "header X-Api-Key"),
        (req(body=b'{"data": {"password": "[removed]"}}'), "json password"),
        (req(body=b'{"refresh_token": "anon_r3fr3sh"}'), "json refresh_token"),
        (req([("Content-Type", "application/x-www-form-urlencoded")], b"user=a&pwd=%5Bremoved%5D"),
         "form pwd"),
        (req(query="api_key=anon_q"), "query api_key"),
    ],
)  # fmt: skip
def test_a_request_carrying_a_placeholder_credential_is_never_cleared(
    request_: PreparedRequest, where: str
) -> None:
    assert credential_placeholder(request_) == where
    for protection in (Protection(), Protection(allow_foreign_writes=True)):
        decision = clear(request_, "PUT /accounts/{id}", {"alice": "x"}, protection)
        assert decision == Skipped("PUT /accounts/{id}", PLACEHOLDER_CREDENTIAL)


def test_live_credentials_and_ordinary_values_are_cleared() -> None:
    live = basic_value(Credential("alice", "s3cret"))
    fine = [
        req([("Authorization", live)]),
        req([("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")]),
        req(body=b'{"data": {"password": "s3cret", "note": "[removed]"}}'),  # not a secret field
        req(body=b'{"name": "anon_like_name"}'),
    ]
    for request_ in fine:
        assert credential_placeholder(request_) is None
        assert isinstance(clear(request_, "PUT /accounts/{id}", {"alice"}, Protection()), Cleared)
    assert not is_placeholder("Basic " + base64.b64encode(b"anon:pw").decode())


def test_basic_is_filled_from_the_account_and_only_over_a_placeholder() -> None:
    account = Credential("alice", "pä:ss")
    expected = "Basic " + base64.b64encode("alice:pä:ss".encode()).decode()
    assert basic_value(account) == expected
    assert fill_basic([("Authorization", "Basic anon_x")], account) == [("Authorization", expected)]
    assert fill_basic([("Authorization", "Basic [removed]")], None) == [
        ("Authorization", "Basic [removed]")
    ]  # no account: it stays a placeholder, and clear() skips the request
    bearer = [("Authorization", "Bearer live")]
    assert fill_basic(bearer, account) == bearer


def test_credentials_csv_takes_a_username_column(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("username,password,role\nalice,pw1,admin\n")
    assert load_credentials(path) == [Credential("alice", "pw1", "admin")]
    path.write_text("login,password\nalice,pw1\n")
    with pytest.raises(UsageError, match="email and password \\(or username and password\\)"):
        load_credentials(path)


# ---- end to end: a tiny Basic-auth backend on 127.0.0.1 ----------------------------------


@dataclass
class BasicBackend:
    url: str
    accounts: dict[str, str]
    seen: list[tuple[str, str, str | None, bytes]] = field(default_factory=list)
    """(method, path, Authorization, body) of every request."""


@contextmanager
def basic_backend(accounts: dict[str, str]) -> Iterator[BasicBackend]:
    """Kinto-like: anyone may POST /accounts (creating the body's id with its password);
    /buckets/... needs Basic with a known account (else 401)."""
    port = free_port()
    backend = BasicBackend(f"http://127.0.0.1:{port}", dict(accounts))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization")
            with lock:
                backend.seen.append((self.command, self.path, auth, body))
            status = 200
            if self.path.startswith("/accounts"):
                data = json.loads(body or b"{}").get("data", {})
                with lock:
                    backend.accounts[str(data.get("id"))] = str(data.get("password"))
                status = 201
            elif not self._authorized(auth):
                status = 401
            payload = b'{"data":[]}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _authorized(self, auth: str | None) -> bool:
            scheme, _, value = (auth or "").partition(" ")
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return scheme == "Basic" and backend.accounts.get(user) == password

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler, port):
        yield backend


FAILED_SESSION = 5


def basic_trace(directory: Path, sessions: int = 6) -> Path:
    """Each session signs up (POST /accounts, its password removed by the capture), then
    lists, adds and lists records with `Authorization: Basic <pseudonym>`; every records
    request of FAILED_SESSION got 401 (a wrong password)."""
    rows = []
    for i in range(sessions):
        t = T0 + timedelta(seconds=i)
        auth = (("authorization", f"Basic anon_{i:04d}Qm9iOnB3"),)
        signup = json.dumps({"data": {"id": f"u{i}", "password": "[removed]"}}).encode()
        rows.append(make_record(ts=t, session=f"s{i}", method="POST", path="/accounts",
                                req_body=signup, status=201,
                                req_headers=(("content-type", "application/json"),)))  # fmt: skip
        headers = (("content-type", "application/json"), *auth)
        for j, (method, body) in enumerate(
            [("GET", None), ("POST", b'{"data":{"title":"x"}}'), ("GET", None)], start=1
        ):
            rows.append(make_record(ts=t + timedelta(seconds=0.2 * j), session=f"s{i}",
                                    method=method, path="/buckets/b/records", req_body=body,
                                    req_headers=headers,
                                    status=401 if i == FAILED_SESSION else 200))  # fmt: skip
    return write_trace(directory, rows)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["trace", "model"])
def test_basic_auth_backend_gets_live_basic_and_never_a_placeholder(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = Faker()
    fake.seed_instance(10)
    accounts = {fake.user_name(): fake.password(length=14) for _ in range(2)}
    creds = tmp_path / "accounts.csv"
    creds.write_text("username,password\n" + "".join(f"{u},{p}\n" for u, p in accounts.items()))
    trace = basic_trace(tmp_path / "trace")
    replayed = trace if source == "trace" else write_model(build_model(trace), tmp_path / "m.json")
    for with_credentials in (True, False):
        out = tmp_path / f"run-{with_credentials}"
        extra = ["--credentials", str(creds)] if with_credentials else []
        with basic_backend(accounts) as backend:
            code = main(["replay", str(replayed), "--host", backend.url, "--out", str(out),
                         "--grace", "5s", *extra])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        seen = backend.seen
        assert all(b"[removed]" not in body and b"anon_" not in body for *_, body in seen)
        assert all(auth is None or not is_placeholder(auth) for _, _, auth, _ in seen)
        assert "[removed]" not in backend.accounts.values()  # no account made with it
        skipped = json.loads((out / "summary.json").read_text())["skipped"]["by_endpoint"]
        assert skipped["POST /accounts"] == {PLACEHOLDER_CREDENTIAL: 6}, skipped
        assert not [s for s in seen if s[1] == "/accounts"]  # never sent
        records = [s for s in seen if s[1].startswith("/buckets/")]
        if with_credentials:  # every records request went, as a known account
            live = {basic_value(Credential(u, p)) for u, p in accounts.items()}
            wrong = {basic_value(Credential(u, WRONG_PASSWORD)) for u in accounts}
            sent = [auth for _, _, auth, _ in records]
            assert records and set(sent) <= live | wrong
            timing = pq.read_table(out / "timing.parquet").to_pandas()
            refused = timing[timing["status"] == 401]
            if source == "trace":  # the session refused in the capture is refused again
                assert sum(a in wrong for a in sent) == 3
                assert set(refused["session"]) == {FAILED_SESSION} and len(refused) == 3
            else:
                assert set(sent) <= live and refused.empty
        else:  # no account: the records requests are skipped, not sent with the pseudonym
            assert records == []
            assert sum(n for e, r in skipped.items() for n in r.values() if "/buckets/" in e) > 0


# ---- a pagination cursor the target handed out is a correlation, not a credential ----------

RECORDS = "GET /buckets/{bid}/records"


def _cursor_session() -> SessionCorrelator:
    auth = AuthInfo(None, None, (Location("header", "authorization"),), None, None)
    return SessionCorrelator([], auth, None)


def _page(query: str) -> PlannedRequest:
    return PlannedRequest(RECORDS, "GET", "/buckets/b/records", query, (), None, 0.0, {})


@pytest.mark.parametrize(
    ("headers", "body", "live"),
    [
        ([("Next-Page", "http://127.0.0.1:1/v1/buckets/b/records?_limit=2&_token=live-c1")],
         b'{"data": []}', "live-c1"),
        ([], b'{"data": [], "links": {"next": "/buckets/b/records?_token=live-c2"}}', "live-c2"),
        ([], b'{"data": [], "meta": {"_token": "live-c3"}}', "live-c3"),
        ([("Link", '<https://h.test/r?_token=live-c4>; rel="next"')], b"", "live-c4"),
    ],
)  # fmt: skip
def test_a_cursor_the_target_handed_out_is_sent_back_live(
    headers: list[tuple[str, str]], body: bytes, live: str
) -> None:
    session = _cursor_session()
    planned = _page("_limit=2&_token=anon_Zk91QmxpcGFnZTE")
    # Before any answer it is what it looks like, a withheld credential: skipped.
    first = clear(session.prepare(planned), RECORDS, {}, Protection())
    assert isinstance(first, Skipped) and first.reason == PLACEHOLDER_CREDENTIAL
    session.observe(_page("_limit=2"), 200, headers, body)
    decision = clear(session.prepare(planned), RECORDS, {}, Protection())
    assert isinstance(decision, Cleared)
    assert decision.request.query == f"_limit=2&_token={live}"


def test_a_query_credential_never_handed_out_stays_withheld() -> None:
    session = _cursor_session()
    session.observe(_page("_limit=2"), 200, [("Next-Page", "/r?_token=live-c1")], b"")
    planned = _page("api_key=anon_k3yk3yk3y&_token=anon_Zk91QmxpcGFnZTE")
    decision = clear(session.prepare(planned), RECORDS, {}, Protection())
    assert isinstance(decision, Skipped) and decision.reason == PLACEHOLDER_CREDENTIAL
    # An error answer hands nothing out.
    other = _cursor_session()
    other.observe(_page("_limit=2"), 401, [("Next-Page", "/r?_token=live-c9")], b"")
    refused = clear(other.prepare(_page("_token=anon_Zk91QmxpcGFnZTE")), RECORDS, {}, Protection())
    assert isinstance(refused, Skipped)


def test_the_run_folder_records_no_live_cursor_or_key() -> None:
    assert recorded_query("_limit=2&_token=live-c1&api_key=k-live") == (
        "_limit=2&_token=%5Bremoved%5D&api_key=%5Bremoved%5D"
    )
    assert recorded_query("_limit=2&offset=10") == "_limit=2&offset=10"
    assert recorded_query("token_type=&status=ok") == "token_type=&status=ok"
    assert recorded_query(None) is None
