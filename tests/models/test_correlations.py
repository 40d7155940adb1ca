"""Correlation rules and auth detection: synthetic sessions with known data flows, the
model-file round trip, and a real capture of the sandbox target through the proxy."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from faker import Faker

from tests.capture.proxies import capture_proxy, captured, stop
from tests.factories import T0, make_record, make_table
from tests.servers import SandboxTarget
from tracereplay.errors import ConfigError, UsageError
from tracereplay.models.correlations import (
    NO_AUTH,
    AuthInfo,
    CorrelationRule,
    Location,
    auth_from_json,
    auth_to_json,
    correlations_from_json,
    correlations_to_json,
    find_auth,
    find_correlations,
)
from tracereplay.models.frame import requests_frame
from tracereplay.models.sessions import sessionize

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=/)\d+(?=/|$)")
BEARER = Location("header", "authorization")
PATH_ID = Location("path", "id")


def uid(n: int) -> str:
    return str(uuid.UUID(int=0x5EED_0000_0000 + n * 7919, version=4))


def ex(
    method: str,
    path: str,
    *,
    query: str | None = None,
    token: str | None = None,
    cookie: str | None = None,
    body: object = None,
    form: str | None = None,
    status: int = 200,
    resp: object = None,
    set_cookie: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    resp_headers: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """One exchange as make_record arguments: JSON bodies as objects, auth as a token."""
    req_headers = [("Accept", "application/json"), *headers]
    if token:
        req_headers.append(("Authorization", f"Bearer {token}"))
    if cookie:
        req_headers.append(("Cookie", cookie))
    req_body = None if body is None else json.dumps(body).encode()
    if form is not None:
        req_headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        req_body = form.encode()
    resp_headers = [("content-type", "application/json"), *resp_headers]
    resp_headers += [("set-cookie", f"{c}; Path=/; HttpOnly") for c in set_cookie]
    return {
        "method": method, "path": path, "query": query, "status": status,
        "req_headers": tuple(req_headers), "req_body": req_body,
        "resp_headers": tuple(resp_headers),
        "resp_body": None if resp is None else json.dumps(resp).encode(),
    }  # fmt: skip


def with_endpoints(df: pd.DataFrame) -> pd.DataFrame:
    """A crude templater: UUIDs and integer segments become {id}."""
    df = df.copy()
    df["endpoint"] = df["method"] + " " + df["path"].str.replace(UUID, "{id}", regex=True)
    return df


def trace(sessions: Sequence[Sequence[dict[str, Any]]]) -> pd.DataFrame:
    """A sessionized frame: one session key per list, an hour apart, a second per step."""
    records = [
        make_record(ts=T0 + timedelta(hours=s, seconds=i), session=f"s-{s}", **exchange)
        for s, exchanges in enumerate(sessions)
        for i, exchange in enumerate(exchanges)
    ]
    return with_endpoints(sessionize(requests_frame(make_table(records))))


def login(s: int) -> dict[str, Any]:
    data = {"token": f"tok-{s}-" + "a" * 24, "refresh": f"ref-{s}-" + "b" * 24}
    user = {"id": uid(1000 + s), "role": "admin", "tenant": "tenant-fixed-000"}
    body = {"email": f"user{s}@example.test", "password": "[removed]"}
    return ex(
        "POST", "/auth/login", body=body, resp={"status": "success", "data": {**data, "user": user}}
    )


def api_session(s: int, *, refresh: bool = False, logout: bool = True) -> list[dict[str, Any]]:
    """Login, me, create an item, read and update it, maybe refresh, log out."""
    tok, ref, item = f"tok-{s}-" + "a" * 24, f"ref-{s}-" + "b" * 24, uid(s)
    steps = [
        login(s),
        ex("GET", "/me", token=tok, resp={"status": "success", "data": {"id": uid(1000 + s)}}),
        ex("POST", "/items/", token=tok, body={"name": f"Item {s}"}, status=201,
           resp={"status": "success", "data": {"id": item, "name": f"Item {s}"}}),
        ex("GET", f"/items/{item}", token=tok, resp={"status": "success", "data": {"id": item}}),
        ex("PUT", f"/items/{item}", token=tok, body={"parent": item, "name": "renamed"}),
    ]  # fmt: skip
    if refresh:
        new = f"new-{s}-" + "c" * 24
        steps += [
            ex("POST", "/auth/refresh", token=tok, body={"refresh_token": ref},
               resp={"status": "success", "data": {"token": new, "refresh": f"r2-{s}" + "d" * 20}}),
            ex("GET", f"/items/{item}", token=new),
            ex("GET", "/me", token=new),
        ]  # fmt: skip
        tok = new
    if logout:
        steps.append(ex("POST", "/auth/logout", token=tok, resp={"status": "success"}))
    return steps


def rule_map(
    rules: Sequence[CorrelationRule],
) -> dict[tuple[str, Location, str, Location], CorrelationRule]:
    return {(r.source_endpoint, r.source, r.target_endpoint, r.target): r for r in rules}


def test_login_token_becomes_the_bearer_and_created_ids_flow_into_paths_and_bodies() -> None:
    df = trace([api_session(s) for s in range(3)])
    rules = rule_map(find_correlations(df))
    token = rules[("POST /auth/login", Location("json", "/data/token"), "GET /me", BEARER)]
    assert (token.support, token.confidence) == (3, 1.0)
    created = ("POST /items/", Location("json", "/data/id"))
    assert rules[(*created, "GET /items/{id}", PATH_ID)].support == 3
    # The GET echoes the id it was sent, so the PUT's id still comes from the create.
    assert rules[(*created, "PUT /items/{id}", PATH_ID)].confidence == 1.0
    assert (*created, "PUT /items/{id}", Location("json", "/parent")) in rules
    assert not any(src == "GET /items/{id}" for src, *_ in rules)
    auth = find_auth(df, list(rules.values()))
    assert auth.login_endpoint == "POST /auth/login"
    assert auth.credential == Location("json", "/data/token")
    assert auth.used_as == (BEARER,)
    assert auth.refresh_endpoint is None
    assert auth.logout_endpoint == "POST /auth/logout"


def test_refresh_replaces_the_token_in_later_requests() -> None:
    df = trace([api_session(s, refresh=True) for s in range(3)])
    rules = find_correlations(df)
    by_key = rule_map(rules)
    renewed = ("POST /auth/refresh", Location("json", "/data/token"))
    assert by_key[(*renewed, "GET /me", BEARER)].support == 3
    assert by_key[(*renewed, "GET /items/{id}", BEARER)].support == 3
    refresh_body = Location("json", "/refresh_token")
    assert (
        "POST /auth/login",
        Location("json", "/data/refresh"),
        "POST /auth/refresh",
        refresh_body,
    ) in by_key
    # Most recent source wins: the old token no longer explains the requests after it.
    me = by_key[("POST /auth/login", Location("json", "/data/token"), "GET /me", BEARER)]
    assert me.confidence == 0.5
    auth = find_auth(df, rules)
    assert (auth.login_endpoint, auth.refresh_endpoint) == (
        "POST /auth/login",
        "POST /auth/refresh",
    )
    assert auth.logout_endpoint == "POST /auth/logout"


def test_set_cookie_values_come_back_in_the_cookie_header() -> None:
    sessions = []
    for s in range(3):
        value = f"sid{s}" + "x" * 20
        sessions.append([
            ex("POST", "/login", form=f"user=u{s}&password=x", set_cookie=[f"sid={value}"]),
            ex("GET", "/dashboard", cookie=f"theme=dark; sid={value}",
               resp={"data": {"report": 40_000 + s}}),
            ex("GET", f"/reports/{40_000 + s}", cookie=f"sid={value}"),
        ])  # fmt: skip
    df = trace(sessions)
    rules = rule_map(find_correlations(df))
    sid = Location("cookie", "sid")
    assert rules[("POST /login", sid, "GET /dashboard", sid)].support == 3
    report = ("GET /dashboard", Location("json", "/data/report"), "GET /reports/{id}", PATH_ID)
    assert rules[report].confidence == 1.0  # an integer id of 5 digits
    auth = find_auth(df, list(rules.values()))
    assert (auth.login_endpoint, auth.credential, auth.used_as) == ("POST /login", sid, (sid,))


def test_constant_values_short_values_and_dates_are_not_correlations() -> None:
    sessions = []
    for s in range(4):
        sessions.append([
            login(s),
            ex("GET", "/stats", query=f"tenant=tenant-fixed-000&page=100&since=2026-01-05&k=s{s}",
               token=f"tok-{s}-" + "a" * 24,
               resp={"data": {"day": "2026-01-05", "count": 100, "key": f"s{s}"}}),
            ex("GET", "/stats", query=f"since=2026-01-05&k=s{s}", token=f"tok-{s}-" + "a" * 24),
        ])  # fmt: skip
    rules = find_correlations(trace(sessions))
    assert {r.target for r in rules} == {BEARER}


def test_sessions_that_never_reuse_a_value_give_no_rules() -> None:
    sessions = [
        [ex("GET", "/items/", resp={"data": [{"id": uid(s)}]}), ex("GET", "/health")]
        for s in range(3)
    ]
    df = trace(sessions)
    assert find_correlations(df) == []
    assert find_auth(df, []) == NO_AUTH


def test_min_support_counts_sessions() -> None:
    df = trace([api_session(0), api_session(1), [login(2), ex("GET", "/health")]])
    token = ("POST /auth/login", Location("json", "/data/token"), "GET /me", BEARER)
    assert rule_map(find_correlations(df, min_support=2))[token].support == 2
    assert token not in rule_map(find_correlations(df, min_support=3))
    assert find_correlations(df, min_value_len=200) == []


def test_query_form_headers_and_unparameterized_path_segments() -> None:
    sessions = []
    for s in range(2):
        value, csrf = f"code-{s}-" + "z" * 10, ("X-CSRF-Token", f"csrf-{s}-0123456789")
        sessions.append([
            ex("GET", "/start", resp={"next": {"code": value, "cursor": f"cur{s}-abcdef"}},
               resp_headers=[csrf, ("Date", "Mon, 05 Jan 2026 09:00:00 GMT")]),
            ex("GET", "/page", query=f"cursor=cur{s}-abcdef"),
            ex("POST", "/confirm", form=f"code={value}&ok=1", headers=[csrf]),
            ex("GET", f"/codes/{value}"),
        ])  # fmt: skip
    df = trace(sessions)
    # A templater without parameter names: the segment is known by its index.
    df.loc[df["path"].str.startswith("/codes/"), "endpoint"] = "GET /codes/*"
    rules = rule_map(find_correlations(df))
    code = ("GET /start", Location("json", "/next/code"))
    cursor = ("GET /start", Location("json", "/next/cursor"))
    assert (*cursor, "GET /page", Location("query", "cursor")) in rules
    assert (*code, "POST /confirm", Location("form", "code")) in rules
    assert (*code, "GET /codes/*", Location("path", "2")) in rules
    csrf_header = Location("header", "x-csrf-token")
    assert ("GET /start", csrf_header, "POST /confirm", csrf_header) in rules
    assert {r.target for r in rules.values()} == {
        Location("query", "cursor"), Location("form", "code"), Location("path", "2"), csrf_header
    }  # fmt: skip


def test_rules_are_sorted_and_deterministic() -> None:
    df = trace([api_session(s, refresh=s % 2 == 0) for s in range(4)])
    rules = find_correlations(df)
    assert rules == sorted(rules)
    shuffled = df.sample(frac=1.0, random_state=3)
    assert find_correlations(shuffled) == rules
    dump = json.dumps(correlations_to_json(rules), sort_keys=True)
    assert dump == json.dumps(correlations_to_json(find_correlations(df)), sort_keys=True)


def test_json_round_trip() -> None:
    df = trace([api_session(s, refresh=True) for s in range(3)])
    rules = find_correlations(df)
    auth = find_auth(df, rules)
    data = json.loads(json.dumps({"c": correlations_to_json(rules), "a": auth_to_json(auth)}))
    assert correlations_from_json(data["c"]) == rules
    assert auth_from_json(data["a"]) == auth
    assert auth_from_json(auth_to_json(NO_AUTH)) == NO_AUTH
    first = data["c"][0]
    assert set(first) == {"source", "target", "support", "confidence"}
    assert set(first["source"]) == {"endpoint", "where", "key"}
    with pytest.raises(ConfigError):
        correlations_from_json([{"source": {"endpoint": "GET /"}}])
    with pytest.raises(ConfigError):
        auth_from_json({"credential": {"where": "json"}})


def test_degenerate_input() -> None:
    df = trace([api_session(0)])
    assert find_correlations(df.iloc[:0]) == []
    assert find_auth(df.iloc[:0], []) == NO_AUTH
    assert find_correlations(df.iloc[:1]) == []
    bare = df.assign(req_body=None, resp_body=None, req_headers=None, resp_headers=None)
    assert find_correlations(bare, min_support=1) == []
    assert find_correlations(df, min_support=1)  # one session is enough at support 1
    with pytest.raises(UsageError, match="endpoint"):
        find_correlations(df.drop(columns=["endpoint"]))
    with pytest.raises(UsageError):
        find_correlations(df, min_support=0)


class ApiClient:
    """Sends like an API client (bearer header, cookies dropped); the answer's `data`."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def __call__(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = self.http.request(method, path, headers=headers, **kw)
        self.http.cookies.clear()
        assert answer.is_success, answer.text
        return answer.json()["data"]


@pytest.mark.slow
def test_a_real_capture_of_the_sandbox(sandbox_target: SandboxTarget, tmp_path: Path) -> None:
    out = tmp_path / "trace"
    admin = sandbox_target.account("admin")
    fake = Faker()
    fake.seed_instance(11)
    with capture_proxy(sandbox_target.url, out) as proxy:
        for _ in range(3):
            with httpx.Client(base_url=proxy.url + "/api/v1", timeout=10) as http:
                send = ApiClient(http)
                tokens = send(
                    "POST", "/auth/login", json={"email": admin.email, "password": admin.password}
                )
                send("GET", "/auth/me", tokens["access_token"])
                body = {"name": fake.company(), "email": fake.email(), "notes": fake.sentence()}
                client = send("POST", "/clients/", tokens["access_token"], json=body)
                send("GET", f"/clients/{client['id']}", tokens["access_token"])
                renewed = send(
                    "POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
                )
                send("GET", f"/clients/{client['id']}", renewed["access_token"])
        assert stop(proxy) == 0
    df = with_endpoints(sessionize(requests_frame(captured(out))))
    assert df["session_id"].nunique() == 3
    rules = rule_map(find_correlations(df))
    created = ("POST /api/v1/clients/", Location("json", "/data/id"))
    assert rules[(*created, "GET /api/v1/clients/{id}", PATH_ID)].support == 3
    refresh = "POST /api/v1/auth/refresh"
    assert (
        refresh,
        Location("json", "/data/access_token"),
        "GET /api/v1/clients/{id}",
        BEARER,
    ) in rules
    auth = find_auth(df, list(rules.values()))
    assert auth == AuthInfo(
        login_endpoint="POST /api/v1/auth/login",
        credential=Location("json", "/data/access_token"),
        used_as=(BEARER,),
        refresh_endpoint=refresh,
        logout_endpoint=None,
    )
