"""Runtime correlation and --credentials: pure tests with hand-written rules and rules
learned from factory traces, then a capture of the sandbox replayed with live values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.capture.proxies import capture_proxy, captured, stop
from tests.models.test_correlations import ApiClient, api_session, ex, trace
from tests.servers import SandboxTarget
from tracereplay.demo.accounts import accounts_csv, sandbox_accounts
from tracereplay.errors import UsageError
from tracereplay.models.correlations import (
    NO_AUTH,
    AuthInfo,
    CorrelationRule,
    Location,
    find_auth,
    find_correlations,
)
from tracereplay.models.frame import requests_frame
from tracereplay.models.sessions import sessionize
from tracereplay.models.templating import Templater, add_endpoints
from tracereplay.replay.correlate import PreparedRequest, SessionCorrelator
from tracereplay.replay.credentials import (
    WRONG_PASSWORD,
    Credential,
    assign_account,
    credential_for,
    load_credentials,
)
from tracereplay.replay.plan import PlannedRequest

LOGIN, ME, REFRESH, LOGOUT = (
    "POST /auth/login",
    "GET /me",
    "POST /auth/refresh",
    "POST /auth/logout",
)
CREATE, GET_ITEM, PUT_ITEM = "POST /items/", "GET /items/{id}", "PUT /items/{id}"
BEARER = Location("header", "authorization")
TOKEN = Location("json", "/data/token")
ITEM_ID = Location("json", "/data/id")
AUTH = AuthInfo(LOGIN, TOKEN, (BEARER,), REFRESH, LOGOUT)
ALICE = Credential("alice@example.test", "s3cret-pw", "admin")
JSON = ("Content-Type", "application/json")


def rule(
    source_endpoint: str,
    source: Location,
    target_endpoint: str,
    target: Location,
    confidence: float = 1.0,
) -> CorrelationRule:
    return CorrelationRule(source_endpoint, source, target_endpoint, target, 3, confidence)


RULES = [
    *(rule(LOGIN, TOKEN, endpoint, BEARER) for endpoint in (ME, CREATE, GET_ITEM, PUT_ITEM)),
    rule(REFRESH, TOKEN, GET_ITEM, BEARER),
    rule(LOGIN, Location("json", "/data/refresh"), REFRESH, Location("json", "/refresh_token")),
    rule(CREATE, ITEM_ID, GET_ITEM, Location("path", "id")),
    rule(CREATE, ITEM_ID, PUT_ITEM, Location("path", "id")),
    rule(CREATE, ITEM_ID, PUT_ITEM, Location("json", "/parent")),
]


def req(
    endpoint: str,
    path: str | None = None,
    *,
    body: object = None,
    headers: Sequence[tuple[str, str]] = (),
    query: str | None = None,
    params: dict[str, str] | None = None,
) -> PlannedRequest:
    method, _, template = endpoint.partition(" ")
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    return PlannedRequest(
        endpoint, method, path or template, query, tuple(headers), raw, 0.0, params or {}
    )


def data(value: object) -> bytes:
    return json.dumps({"status": "success", "data": value}).encode()


def header(prepared: PreparedRequest, name: str) -> str | None:
    return next((v for k, v in prepared.headers if k.lower() == name), None)


def body_of(prepared: PreparedRequest) -> Any:
    return json.loads(prepared.body or b"null")


def logged_in(
    rules: Sequence[CorrelationRule] = RULES, auth: AuthInfo = AUTH, token: str = "live-tok-1"
) -> SessionCorrelator:
    session = SessionCorrelator(rules, auth, ALICE)
    login = req(LOGIN, body={"email": "x@anon.invalid", "password": "[removed]"}, headers=[JSON])
    session.observe(login, 200, [JSON], data({"token": token, "refresh": "live-ref-1"}))
    return session


def test_login_fills_the_account_and_its_token_becomes_the_bearer() -> None:
    session = SessionCorrelator(RULES, AUTH, ALICE)
    login = req(LOGIN, body={"email": "x@anon.invalid", "password": "[removed]", "remember": True})
    sent = session.prepare(login)
    assert body_of(sent) == {"email": ALICE.email, "password": ALICE.password, "remember": True}
    assert not session.logged_in
    session.observe(login, 200, [JSON], data({"token": "live-tok-1"}))
    assert session.logged_in and not session.login_failed
    me = session.prepare(req(ME, headers=[("Accept", "application/json")]))
    assert header(me, "authorization") == "Bearer live-tok-1"
    assert me.headers[0] == ("Accept", "application/json")
    # The scheme word of a planned header is kept; only its credential changes.
    tokened = session.prepare(req(ME, headers=[("authorization", "Token anon_1234")]))
    assert tokened.headers == [("authorization", "Token live-tok-1")]


def test_a_created_id_goes_into_later_paths_and_json_bodies_with_its_type() -> None:
    session = logged_in()
    create = req(CREATE, body={"name": "Acme"}, headers=[JSON])
    session.observe(create, 201, [JSON], data({"id": 424242, "name": "Acme"}))
    planned = req(
        PUT_ITEM, "/items/1111", body={"parent": 1111, "name": "x"},
        headers=[JSON, ("Content-Length", "27")], params={"id": "1111"},
    )  # fmt: skip
    sent = session.prepare(planned)
    assert sent.path == "/items/424242"
    assert body_of(sent) == {"parent": 424242, "name": "x"}  # a JSON number stays one
    assert header(sent, "content-length") is None  # the body changed: the client recounts
    got = session.prepare(req(GET_ITEM, "/items/1111", params={"id": "1111"}))
    assert (got.path, got.method, got.body) == ("/items/424242", "GET", None)
    # A JSON string target gets the id as text; a missing field is not created.
    as_text = session.prepare(req(PUT_ITEM, "/items/1", body={"parent": "1", "x": [1]}))
    assert body_of(as_text) == {"parent": "424242", "x": [1]}
    no_field = req(PUT_ITEM, "/items/1", body={"name": "y"})
    assert session.prepare(no_field).body == no_field.body


def test_refresh_replaces_the_token_everywhere_the_login_fed_it() -> None:
    session = logged_in()
    refresh = req(REFRESH, body={"refresh_token": "anon_ref"}, headers=[JSON])
    assert body_of(session.prepare(refresh)) == {"refresh_token": "live-ref-1"}
    session.observe(refresh, 200, [JSON], data({"token": "live-tok-2", "refresh": "live-ref-2"}))
    item = session.prepare(req(GET_ITEM, "/items/1", params={"id": "1"}))
    assert header(item, "authorization") == "Bearer live-tok-2"
    # No rule goes from the refresh to GET /me or to the next refresh: the login's did.
    assert header(session.prepare(req(ME)), "authorization") == "Bearer live-tok-2"
    assert body_of(session.prepare(refresh)) == {"refresh_token": "live-ref-2"}
    # A failed refresh hands out nothing.
    session.observe(refresh, 401, [JSON], data({"token": "never-used"}))
    assert header(session.prepare(req(ME)), "authorization") == "Bearer live-tok-2"


def test_the_planned_value_stays_until_a_response_yields_one() -> None:
    session = SessionCorrelator(RULES, AUTH, None)
    planned = req(GET_ITEM, "/items/1111", params={"id": "1111"}, headers=[("X-A", "1")])
    assert session.prepare(planned) == PreparedRequest(
        "GET", "/items/1111", None, [("X-A", "1")], None
    )
    create = req(CREATE, body={"name": "Acme"})
    session.observe(create, 500, [JSON], data({"id": 999999}))  # an error yields nothing
    session.observe(create, 201, [JSON], b"not json")
    assert session.prepare(planned).path == "/items/1111"
    # Without a credential the login is sent as planned.
    login = req(LOGIN, body={"email": "x@anon.invalid", "password": "[removed]"})
    assert session.prepare(login).body == login.body


def test_rules_under_min_confidence_are_ignored() -> None:
    weak = [rule(ME, Location("json", "/data/client_id"), GET_ITEM, Location("path", "id"), 0.1)]
    me = req(ME)
    planned = req(GET_ITEM, "/items/1111", params={"id": "1111"})
    for min_confidence, expected in ((0.2, "/items/1111"), (0.05, "/items/7777")):
        session = SessionCorrelator(weak, NO_AUTH, None, min_confidence=min_confidence)
        session.observe(me, 200, [], data({"client_id": "7777"}))
        assert session.prepare(planned).path == expected


def test_the_most_recent_source_wins_and_star_takes_the_first_element_with_a_value() -> None:
    listing, target = "GET /items/", Location("query", "item")
    rules = [
        rule(CREATE, ITEM_ID, "GET /stats", target),
        rule(listing, Location("json", "/data/items/*/id"), "GET /stats", target),
    ]
    session = SessionCorrelator(rules, NO_AUTH, None)
    stats = req("GET /stats", query="item=old&item=older&page=2")
    session.observe(req(listing), 200, [], data({"items": [{"name": "a"}, {"id": "first"}]}))
    assert session.prepare(stats).query == "item=first&page=2"
    session.observe(req(CREATE), 201, [], data({"id": "created"}))
    assert session.prepare(stats).query == "item=created&page=2"
    assert session.prepare(req("GET /stats")).query == "item=created"


def test_login_failure_and_no_answer_end_the_session() -> None:
    for status in (401, None):
        session = SessionCorrelator(RULES, AUTH, ALICE)
        session.observe(req(LOGIN), status, [], data({"token": "nope"}) if status else None)
        assert session.login_failed and not session.logged_in
        assert header(session.prepare(req(ME)), "authorization") is None
    assert not SessionCorrelator(RULES, AUTH, ALICE).login_failed
    # A refused login after a successful one keeps the session's live credential (a
    # client's mistyped attempt beside the token it holds); the old code dropped it.
    session = logged_in()
    session.observe(req(LOGIN), 401, [], None)
    assert session.login_failed and session.logged_in
    assert header(session.prepare(req(ME)), "authorization") == "Bearer live-tok-1"


def test_the_credential_reaches_endpoints_no_rule_covers_until_logout() -> None:
    session = logged_in()
    rare = session.prepare(req("GET /rare"))
    assert header(rare, "authorization") == "Bearer live-tok-1"
    # Cookie credentials are only put into a planned Cookie header (the jar does the rest).
    cookie_auth = AuthInfo(LOGIN, TOKEN, (BEARER, Location("cookie", "at")), None, None)
    both = logged_in(rules=[], auth=cookie_auth)
    assert header(both.prepare(req("GET /rare")), "cookie") is None
    browser = both.prepare(req("GET /rare", headers=[("Cookie", "at=anon_1; theme=dark")]))
    # A request that carried the credential cookie and no Authorization is a browser's.
    assert browser.headers == [("Cookie", "at=live-tok-1; theme=dark")]
    session.observe(req(LOGOUT), 200, [], None)
    assert not session.logged_in
    assert header(session.prepare(req("GET /rare")), "authorization") is None


def test_cookies_from_set_cookie_are_left_to_the_jar_unless_a_cookie_header_is_planned() -> None:
    sid, csrf = Location("cookie", "sid"), Location("cookie", "csrf")
    rules = [
        rule(LOGIN, sid, "GET /dash", sid),
        rule(LOGIN, Location("json", "/csrf"), "GET /dash", csrf),
    ]
    session = SessionCorrelator(rules, NO_AUTH, None)
    login = req(LOGIN)
    set_cookie = [("Set-Cookie", "sid=live-sid; Path=/; HttpOnly"), ("set-cookie", "lang=en")]
    session.observe(login, 200, set_cookie, b'{"other": 1}')
    assert session.prepare(req("GET /dash")).headers == []  # the client's jar sends sid
    planned = req("GET /dash", headers=[("cookie", "sid=anon_x; theme=dark")])
    assert header(session.prepare(planned), "cookie") == "sid=live-sid; theme=dark; lang=en"
    session.observe(login, 200, set_cookie, b'{"csrf": "live-csrf-1"}')
    # A JSON value needs a header, which then carries the jar's cookies too.
    built = session.prepare(req("GET /dash"))
    assert header(built, "cookie") == "sid=live-sid; lang=en; csrf=live-csrf-1"
    session.observe(req(LOGOUT), 200, [("set-cookie", 'lang=""; Max-Age=0; Path=/')], None)
    assert (
        header(session.prepare(planned), "cookie") == "sid=live-sid; theme=dark; csrf=live-csrf-1"
    )


def test_headers_forms_and_path_segments_by_index() -> None:
    code, csrf = ("GET /start", Location("json", "/code")), Location("header", "x-csrf-token")
    rules = [
        rule(*code, "POST /confirm", Location("form", "code")),
        rule(*code, "GET /codes/*", Location("path", "2")),
        rule("GET /start", csrf, "POST /confirm", csrf),
    ]
    session = SessionCorrelator(rules, NO_AUTH, None)
    session.observe(req("GET /start"), 200, [("X-CSRF-Token", "live-csrf")], b'{"code": "c0de-1"}')
    form = ("content-type", "application/x-www-form-urlencoded")
    confirm = session.prepare(req("POST /confirm", body=b"code=anon&ok=1", headers=[form]))
    assert (confirm.body, header(confirm, "x-csrf-token")) == (b"code=c0de-1&ok=1", "live-csrf")
    assert session.prepare(req("GET /codes/*", "/codes/anon_1/view")).path == "/codes/c0de-1/view"


def test_login_bodies_of_other_shapes() -> None:
    def login_body(body: bytes | None, headers: Sequence[tuple[str, str]] = ()) -> bytes | None:
        return (
            SessionCorrelator([], AUTH, ALICE).prepare(req(LOGIN, body=body, headers=headers)).body
        )

    form = [("Content-Type", "application/x-www-form-urlencoded")]
    assert login_body(b"username=u&passwd=x&next=%2F", form) == (
        b"username=alice%40example.test&passwd=s3cret-pw&next=%2F"
    )
    nested = json.dumps({"user": {"login": "u", "pwd": "x"}}).encode()
    assert json.loads(login_body(nested) or b"") == {
        "user": {"login": ALICE.email, "pwd": ALICE.password}
    }
    assert json.loads(login_body(None) or b"") == {"email": ALICE.email, "password": ALICE.password}
    created = SessionCorrelator([], AUTH, ALICE).prepare(req(LOGIN))
    assert created.headers == [("Content-Type", "application/json")]
    assert login_body(b'{"grant": "client_credentials"}') == b'{"grant": "client_credentials"}'


def test_rules_learned_from_a_trace_drive_a_replayed_session() -> None:
    df = trace([api_session(s, refresh=True) for s in range(3)])
    rules = find_correlations(df)
    session = SessionCorrelator(rules, find_auth(df, rules), ALICE)
    first = df[df["session_id"] == df["session_id"].min()]
    sent: list[PreparedRequest] = []
    for n, row in enumerate(first.to_dict("records")):
        item = {"id": row["path"].rsplit("/", 1)[1]} if "{id}" in row["endpoint"] else {}
        planned = req(row["endpoint"], row["path"], body=row["req_body"], params=item)
        sent.append(session.prepare(planned))
        answer = {
            "token": f"T{n}" + "t" * 20,
            "refresh": f"R{n}" + "r" * 20,
            "id": f"I{n}" + "i" * 20,
        }
        session.observe(planned, 200, [JSON], data(answer))
    endpoints = list(first["endpoint"])
    auth = [header(p, "authorization") for p in sent]
    assert auth[endpoints.index("GET /me")] == "Bearer T0" + "t" * 20
    refresh = endpoints.index("POST /auth/refresh")
    assert body_of(sent[refresh]) == {"refresh_token": "R0" + "r" * 20}
    assert all(a == f"Bearer T{refresh}" + "t" * 20 for a in auth[refresh + 1 :])
    assert sent[endpoints.index("GET /items/{id}")].path == "/items/I2" + "i" * 20


def token_pair(access: str, refresh: str) -> dict[str, Any]:
    """A login's or a refresh's answer, as the sandbox gives it."""
    tokens = {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}
    return {"status": "success", "data": tokens}


def sandbox_like_session(s: int, *, refreshes: int = 0) -> list[dict[str, Any]]:
    """An API session shaped like the sandbox's: the login answers access_token,
    refresh_token and token_type; a refresh sends {"refresh_token": …} and rotates both."""
    access, refresh = f"acc-{s}-0-" + "a" * 24, f"ref-{s}-0-" + "r" * 24
    login = {"email": f"user{s}@anon.invalid", "password": "[removed]"}
    steps = [
        ex("POST", "/auth/login", body=login, resp=token_pair(access, refresh)),
        ex("GET", "/me", token=access, resp={"status": "success", "data": {"id": s}}),
    ]
    for n in range(1, refreshes + 1):
        new_access, new_refresh = f"acc-{s}-{n}-" + "a" * 24, f"ref-{s}-{n}-" + "r" * 24
        steps += [
            ex("POST", "/auth/refresh", token=access, body={"refresh_token": refresh},
               resp=token_pair(new_access, new_refresh)),
            ex("GET", "/me", token=new_access, resp={"status": "success", "data": {"id": s}}),
        ]  # fmt: skip
        access, refresh = new_access, new_refresh
    return [*steps, ex("POST", "/auth/logout", token=access, resp={"status": "success"})]


def test_a_refresh_too_rare_for_a_rule_still_sends_the_live_refresh_token() -> None:
    # One session of the trace refreshes: the login → refresh body flow is seen in one
    # session, under min_support, so no rule covers it. The captured body holds the
    # pseudonym of a refresh token the target never issued: sent as is, a 401.
    df = trace(
        [sandbox_like_session(0, refreshes=2), sandbox_like_session(1), sandbox_like_session(2)]
    )
    rules = find_correlations(df)
    auth = find_auth(df, rules)
    assert auth.login_endpoint == "POST /auth/login"
    assert not [r for r in rules if r.target_endpoint == "POST /auth/refresh"]
    session = SessionCorrelator(rules, auth, ALICE)
    first = df[df["session_id"] == df["session_id"].min()]
    sent: dict[str, list[PreparedRequest]] = {}
    rotation = 0
    for row in first.to_dict("records"):
        planned = req(row["endpoint"], row["path"], body=row["req_body"], headers=[JSON])
        sent.setdefault(planned.endpoint, []).append(session.prepare(planned))
        answer = {"status": "success", "data": {"id": 7}}
        if planned.endpoint in ("POST /auth/login", "POST /auth/refresh"):
            answer = token_pair(f"live-acc-{rotation}", f"live-ref-{rotation}")
            rotation += 1
        session.observe(planned, 200, [JSON], json.dumps(answer).encode())
    refreshes = [body_of(p) for p in sent["POST /auth/refresh"]]
    # Each refresh spends the latest refresh token (single use): the login's, then the
    # first refresh's; never the captured pseudonym.
    assert refreshes == [{"refresh_token": "live-ref-0"}, {"refresh_token": "live-ref-1"}]
    assert header(sent["GET /me"][0], "authorization") == "Bearer live-acc-0"


def test_handed_out_tokens_fill_form_and_nested_bodies_until_logout() -> None:
    session = SessionCorrelator([], AUTH, ALICE)
    answer = {"data": {"accessToken": "live-acc", "refreshToken": "live-ref", "tokenType": "x"}}
    session.observe(req(LOGIN), 200, [JSON], json.dumps(answer).encode())
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    planned = req(REFRESH, body=b"grant_type=refresh_token&refresh_token=anon_r", headers=form)
    assert session.prepare(planned).body == b"grant_type=refresh_token&refresh_token=live-ref"
    nested = req("POST /revoke", body={"token": {"refresh-token": "anon_r"}, "note": "anon_n"})
    assert body_of(session.prepare(nested)) == {
        "token": {"refresh-token": "live-ref"},
        "note": "anon_n",
    }
    # A body without such a field is sent as planned (the same bytes).
    plain = req("POST /items/", body={"name": "x", "token_type": "bearer"}, headers=[JSON])
    assert session.prepare(plain).body is plain.body
    session.observe(req(LOGOUT), 200, [], None)
    assert session.prepare(planned).body == planned.body


def test_credentials_csv_as_the_sandbox_prints_it(tmp_path: Path) -> None:
    accounts = sandbox_accounts(7)
    path = tmp_path / "accounts.csv"
    path.write_text(accounts_csv(accounts))
    loaded = load_credentials(path)
    assert loaded == [Credential(a.email, a.password, a.role) for a in accounts]
    # Any column order and case, a BOM, extra columns and blank lines; role optional.
    path.write_text("\ufeffNote,Password,EMAIL\nhi,pw 1 ,a@x.test\n\n,pw2,b@x.test\n")
    assert load_credentials(path) == [
        Credential("a@x.test", "pw 1 "),
        Credential("b@x.test", "pw2"),
    ]
    path.write_text("email,password,role\na@x.test,pw,\n")
    assert load_credentials(path) == [Credential("a@x.test", "pw", None)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty file"),
        ("email,pass\na@x.test,pw\n", "line 1: the header needs columns named email and"),
        ("a@x.test,Secret-pw-1\n", "line 1: the header needs columns named email and"),
        ("email,password\na@x.test,p\x00w\n", "line 2: a control character"),
        ("email,password\n\n", "line 2: no accounts"),
        ("email,password,role\na@x.test,pw,admin\nb@x.test,,admin\n", "line 3: empty email"),
        ("email,password,role\na@x.test\n", "line 2: expected 3 columns"),
    ],
)
def test_bad_credentials_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "creds.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=f"^--credentials {path}: {message}") as raised:
        load_credentials(path)
    # The message says where, never what: a file without its header has a password first.
    assert "pw" not in str(raised.value).replace(str(path), "")
    with pytest.raises(UsageError, match="cannot read"):
        load_credentials(tmp_path / "missing.csv")
    path.write_bytes(b"email,password\na@x.test,caf\xe9\n")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        load_credentials(path)


def test_credential_for_is_round_robin_within_the_role() -> None:
    admins = [Credential(f"a{i}@x.test", "pw", "admin") for i in range(2)]
    users = [Credential(f"u{i}@x.test", "pw", "client") for i in range(3)]
    every = admins + users
    assert [credential_for(every, i) for i in range(6)] == [*every, every[0]]
    assert [credential_for(every, i, "client") for i in range(4)] == [*users, users[0]]
    assert credential_for(every, 3, "auditor") == every[3]  # no match: all accounts
    assert credential_for([], 0) is None
    assert credential_for([], 5, "admin") is None


# ---- a real capture of the sandbox, replayed with live values ------------------------------


def planned_session(df: pd.DataFrame) -> list[PlannedRequest]:
    """One captured session as the trace source plans it: no captured Authorization."""
    planned = []
    for row in df.to_dict("records"):
        kept = ("content-type", "accept")
        headers = tuple((k, v) for k, v in row["req_headers"] if k.lower() in kept)
        query = row["query"] if isinstance(row["query"], str) else None  # NaN when absent
        body = row["req_body"] if isinstance(row["req_body"], bytes) else None
        planned.append(
            PlannedRequest(
                row["endpoint"], row["method"], row["path"], query, headers, body, 0.0,
                dict(row["path_params"]),
            )
        )  # fmt: skip
    return planned


@pytest.mark.slow
def test_a_captured_session_replays_with_live_tokens_and_ids(
    sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    out = tmp_path / "trace"
    admin = sandbox_target.account("admin")
    with capture_proxy(sandbox_target.url, out) as proxy:
        for n in range(3):
            with httpx.Client(base_url=proxy.url + "/api/v1", timeout=10) as http:
                send = ApiClient(http)
                tokens = send(
                    "POST", "/auth/login", json={"email": admin.email, "password": admin.password}
                )
                send("GET", "/auth/me", tokens["access_token"])
                body = {"name": f"Replay Corp {n}", "email": f"ops{n}@example.test"}
                client = send("POST", "/clients/", tokens["access_token"], json=body)
                send("GET", f"/clients/{client['id']}", tokens["access_token"])
                renewed = send(
                    "POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
                )
                send("GET", f"/clients/{client['id']}", renewed["access_token"])
        assert stop(proxy) == 0
    df = requests_frame(captured(out))
    templater = Templater.fit(zip(df["method"], df["path"], strict=True))
    sessions = sessionize(add_endpoints(df, templater))
    rules = find_correlations(sessions)
    auth = find_auth(sessions, rules)
    assert auth.login_endpoint == "POST /api/v1/auth/login"
    plan = planned_session(sessions[sessions["session_id"] == 0])
    plan += plan[-2:]  # a second refresh: the rotated refresh token must be the one sent

    replayer = sandbox_target.account("admin", 1)
    session = SessionCorrelator(rules, auth, Credential(replayer.email, replayer.password))
    answers: list[tuple[str, int, str]] = []
    with httpx.Client(base_url=sandbox_target.url, timeout=10) as http:
        assert http.request(plan[1].method, plan[1].path).status_code == 401  # as planned
        for planned in plan:
            sent = session.prepare(planned)
            answer = http.request(
                sent.method, sent.path, params=httpx.QueryParams(sent.query or ""),
                headers=sent.headers, content=sent.body,
            )  # fmt: skip
            http.cookies.clear()  # an API client: the bearer header must do it alone
            session.observe(
                planned, answer.status_code, list(answer.headers.multi_items()), answer.content
            )
            answers.append((planned.endpoint, answer.status_code, answer.text))
    assert session.logged_in and not session.login_failed
    assert all(status < 400 for _, status, _ in answers), answers
    me = json.loads(answers[1][2])["data"]
    assert me["email"] == replayer.email  # signed in with --credentials, not the pseudonym
    created = json.loads(answers[2][2])["data"]["id"]
    fetched = [json.loads(text)["data"]["id"] for ep, _, text in answers if "{" in ep]
    assert fetched == [created] * 3


def test_accounts_are_matched_to_the_role_the_session_showed() -> None:
    admin, root = Credential("a@x.test", "pw", "Admin"), Credential("r@x.test", "pw", "superuser")
    client = Credential("c@x.test", "pw", "client")
    every = [client, admin, root]
    assert [assign_account(every, i, "privileged").credential for i in range(3)] == [
        admin, root, admin
    ]  # fmt: skip
    assert assign_account(every, 7, "unprivileged").credential == client
    assert assign_account(every, 0, "admin").credential == admin  # a named role: that role
    unmatched = assign_account(every, 1, "auditor")
    assert unmatched.credential == admin and not unmatched.matched  # counted and said
    failing = assign_account(every, 0, "client", login_fails=True).credential
    assert failing is not None and failing.email == client.email
    assert failing.password == WRONG_PASSWORD != client.password
