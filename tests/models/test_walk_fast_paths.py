"""The correlation walk's fast paths (pay20) give what the plain code gave: a request's
values with its path and query judged once per distinct one, the walk's rows built as
dict displays, the walk skipping rows with nothing to look up or index, and the half
check of a walk that explains no value. Each against a reference written the old way."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tracereplay.cookies import cookie_pairs
from tracereplay.models import correlations as corr
from tracereplay.models.correlations import (
    _CREDENTIAL_HEADER,
    CONSTANT_MIN_SESSIONS,
    CONSTANT_SHARE,
    NO_AUTH,
    find_auth,
    find_correlations,
    is_credential,
    walk_sessions,
)
from tracereplay.models.outcomes import basic_auth_endpoints, carries_basic
from tracereplay.models.payload_fields import field_node, lengths, most_common, object_node, sig
from tracereplay.models.payloads import (
    _DEFAULT_MEDIA,
    BodyModel,
    _classify,
    _media,
    _pairs_to_objects,
    infer_body,
)
from tracereplay.models.session_sample import half_check, sample_sessions
from tracereplay.models.values import (
    _DATE,
    _TRANSPORT_HEADERS,
    MIN_INT_DIGITS,
    JsonMemo,
    Values,
    _decode,
    _eligible,
    _eligible_text,
    _json_values,
    _pairs,
    _path_values,
    _place,
    query_pairs,
    request_values,
)


def request_values_before(row: dict[str, Any], min_len: int, memo: JsonMemo) -> Values:
    """values.request_values as it was before pay20: one list, judged whole."""
    out = _path_values(str(row["path"] or ""), str(row["endpoint"]))
    query = row["query"]
    if isinstance(query, str) and query:
        out += [(_place("query", k), v) for k, v in query_pairs(query)]
    content_type = None
    for name, value in _pairs(row["req_headers"]):
        if name == "cookie":
            out += [(_place("cookie", k), v) for k, v in cookie_pairs(value, unquote=True)]
        elif name not in _TRANSPORT_HEADERS:
            _, _, token = value.partition(" ")
            credential = name in ("authorization", "proxy-authorization") and token
            out.append((_place("header", name), token.strip() if credential else value))
        elif name == "content-type" and content_type is None:
            content_type = value
    if content_type is not None and "x-www-form-urlencoded" in content_type:
        form = query_pairs(_decode(row["req_body"]))
        out += [(_place("form", k), v) for k, v in form]
        return _eligible(out, min_len)
    return _eligible(out, min_len) + _json_values(row["req_body"], min_len, memo)


PATHS = [("/api/v1/items/8f3a9c2e-1111-4222-8333-123456789abc", "GET /api/v1/items/{id}"),
         ("/api/v1/items/12345", "GET /api/v1/items/{id}"),
         ("/api/v1/items/a%20long%20name", "GET /api/v1/items/{id}"),
         ("/api/v1/items/1", "GET /api/v1/items/{id}"),
         ("/api/v1/users/alice-12/orders", "GET /api/v1/users/{user}/orders"),
         ("/api/v1/other/path/extra", "GET /api/v1/items/{id}"),  # not the template's shape
         ("/api/v1/loginname", "POST /api/v1/login"), ("", "GET /"), (None, "GET /")]  # fmt: skip
QUERIES = [None, float("nan"), "", "page=2&q=somethinglong", "a=1&a=22222&b=",
           "token=abc%2Fdef123&x=y+z", "client_id=e5c0b457-36df-4344-90c0-30014ed594f8",
           "&&k=vvvvvvvv"]  # fmt: skip
HEADERS = [None, [], [("Content-Type", "application/json")],
           [("content-type", "application/x-www-form-urlencoded")],
           [("Authorization", "Bearer tokentokentoken"), ("X-Api-Key", "kkkkkkkkkk"),
            ("Cookie", "sid=abcdefgh12; theme=dark"), ("Accept", "*/*")],
           {"X-Request-Id": "req-000000001", "content-type": "text/plain"}]  # fmt: skip
BODIES = [None, b"", b'{"id": 123456, "name": "somebody", "at": "2026-01-02"}',
          b"user=someone1&pass=secret99", b"not json at all", b'[{"a": "xxxxxxxxxx"}]']  # fmt: skip


@pytest.mark.parametrize("min_len", [1, 6, 12])
def test_a_requests_values_are_the_ones_one_list_judged_whole_gave(min_len: int) -> None:
    rng = np.random.default_rng(min_len)
    memo: JsonMemo = {}
    before_memo: JsonMemo = {}
    for _ in range(600):  # every path and query seen several times: judged once each
        path, endpoint = PATHS[rng.integers(len(PATHS))]
        row = {"path": path, "endpoint": endpoint, "query": QUERIES[rng.integers(len(QUERIES))],
               "req_headers": HEADERS[rng.integers(len(HEADERS))],
               "req_body": BODIES[rng.integers(len(BODIES))]}  # fmt: skip
        got = request_values(row, min_len, memo)
        assert got == request_values_before(row, min_len, before_memo)
        got.append((_place("query", "changed"), "by a caller"))  # the caller's own list
        assert request_values(row, min_len, memo) == request_values_before(
            row, min_len, before_memo
        )


def rows_before(sessions: pd.DataFrame) -> list[dict[str, Any]]:
    """correlations._rows as it was: dict(zip(...)) per row."""
    order = [c for c in ("session_id", "seq") if c in sessions.columns]
    ordered = sessions.sort_values(order, kind="stable")
    absent = [None] * len(ordered)
    columns = {c: ordered[c].tolist() if c in ordered.columns else absent for c in corr._COLUMNS}
    return [
        dict(zip(corr._COLUMNS, values, strict=True), seq=seq)
        for seq, values in enumerate(zip(*columns.values(), strict=True))
    ]


def a_frame(rng: np.random.Generator, sessions: int, answered: float) -> pd.DataFrame:
    """Sessions that log in (a token in the response, a constant, and a shared token that
    is a credential however many sessions get it), then use the token and an id they got."""
    rows = []
    for sid in range(sessions):
        token, item = f"tok{rng.integers(10**9):012d}", f"item{rng.integers(10**6):07d}"
        shared = "sharedtoken1" if rng.random() < 0.8 else token
        ok = rng.random() < answered
        body = {
            "token": token,
            "item": item,
            "state": "successful",
            "api_key": shared,
            "list": [{"id": item, "kind": "constantkind"}, {"id": "another1"}],
        }
        rows.append({"session_id": sid, "seq": 0, "endpoint": "POST /login", "path": "/login",
                     "query": None, "req_headers": [], "req_body": b'{"user": "someone"}',
                     "status": 200 if ok else None,
                     "resp_headers": [("X-Api-Version", "version-22")],
                     "resp_body": json.dumps(body).encode() if ok else None})  # fmt: skip
        for seq in range(1, 1 + int(rng.integers(1, 5))):
            rows.append({"session_id": sid, "seq": seq, "endpoint": "GET /items/{id}",
                         "path": f"/items/{item}", "query": f"page={seq}&sort=ascending",
                         "req_headers": [("Authorization", f"Bearer {token}")],
                         "req_body": None, "status": 200, "resp_headers": [],
                         "resp_body": None})  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=int(rng.integers(1000)))  # unsorted


@pytest.mark.parametrize("answered", [0.0, 0.5, 1.0])
def test_the_walks_rows_are_the_dicts_zip_made(answered: float) -> None:
    frame = a_frame(np.random.default_rng(1), 40, answered)
    got, before = corr._rows(frame), rows_before(frame)
    assert repr(got) == repr(before)  # (NaN: pandas' missing values, unequal to themselves)
    assert [list(row) for row in got] == [list(row) for row in before]  # the keys' order


@pytest.mark.parametrize("answered", [0.0, 0.3, 1.0])
def test_the_half_check_of_a_walk_is_the_one_each_half_gave(answered: float) -> None:
    frame = a_frame(np.random.default_rng(2), 60, answered)
    walk = walk_sessions(frame)
    assert bool(walk.uses) == (answered > 0)
    rules = find_correlations(frame, walk=walk)
    auth = find_auth(frame, rules, walk=walk)
    ids = frame["session_id"].to_numpy()
    sample = sample_sessions(ids, np.zeros(len(ids), np.int64), per_sample=50, per_endpoint=0)
    # the check the plain way: each half's rules and auth found on its own walk
    found = {(r.source_endpoint, r.source, r.target_endpoint, r.target) for r in rules}
    on_both, same_auth = set(found), True
    for half in sample.halves():
        part = walk.only(set(half.tolist()))
        half_rules = find_correlations(frame, walk=part)
        on_both &= {(r.source_endpoint, r.source, r.target_endpoint, r.target) for r in half_rules}
        same_auth = same_auth and find_auth(frame, half_rules, walk=part) == auth
    expected = {"rules_on_both_halves": len(on_both), "auth_same_on_halves": same_auth}
    assert half_check(frame, walk, sample, rules, auth) == expected
    if not walk.uses:
        assert auth == NO_AUTH and expected == {
            "rules_on_both_halves": 0,
            "auth_same_on_halves": True,
        }
    else:
        assert rules and walk.uses


def constants_before(rows: list[dict[str, Any]], sent: list[Values], got: list[Values]) -> set[str]:
    """walk_sessions' constant values as found before pay20: every place judged."""
    seen_in: dict[str, set[int]] = {}
    for row, values in zip(rows, got, strict=True):
        for _, value in values:
            seen_in.setdefault(value, set()).add(int(row["session_id"]))
    floor = max(CONSTANT_MIN_SESSIONS, CONSTANT_SHARE * len({row["session_id"] for row in rows}))
    every_place = {loc for values in (*sent, *got) for loc, _ in values}
    credential_places = {
        loc
        for loc in every_place
        if is_credential(loc) or _CREDENTIAL_HEADER.search(loc.key.rsplit("/", 1)[-1])
    }
    credentials = {
        value for values in (*sent, *got) for loc, value in values if loc in credential_places
    }
    return {v for v, where in seen_in.items() if len(where) >= floor and v not in credentials}


@pytest.mark.parametrize("answered", [0.0, 0.4, 1.0])
def test_the_constants_are_the_ones_every_place_judged_gave(answered: float) -> None:
    frame = a_frame(np.random.default_rng(3), 50, answered)
    rows = corr._rows(frame)
    memo: JsonMemo = {}
    sent = [request_values(row, 6, memo) for row in rows]
    got = [corr.response_values(row, 6, memo) if corr.answered_ok(row["status"]) else []
           for row in rows]  # fmt: skip
    expected = constants_before(rows, sent, got)
    assert corr._constants(rows, sent, got) == expected
    if answered == 1.0:  # yielded by every session: a constant, but not the credential
        assert {"successful", "constantkind", "version-22"} <= expected
        assert "sharedtoken1" not in expected


TEXTS = ["2026-01-02", "2026-01-02T10:00:00Z", "2026-01-02 10:00", "2026-1-02", "20260102",
         "abcd-efgh-ij", "1234-56-78x", "\u0662\u0660\u0662\u0666-01-02", "12345", "-1234",
         "-12", "ab", "", "long enough text", "2026-01-02T10:00:00+0100", "9999-99-99",
         "\uff11\uff12\uff13\uff14-01-02"]  # fmt: skip


@pytest.mark.parametrize("min_len", [1, 6, 12])
def test_a_text_is_judged_as_the_date_pattern_alone_judged_it(min_len: int) -> None:
    for text in TEXTS:
        short = len(text) < min_len
        digits = text.removeprefix("-")
        number = digits.isdigit() and len(digits) >= MIN_INT_DIGITS
        expected = not (short and not number) and _DATE.match(text) is None
        assert _eligible_text(text, min_len) == expected, text


def basic_endpoints_before(endpoints: list[str], headers: list[Any]) -> tuple[str, ...]:
    """outcomes.basic_auth_endpoints as it was: a Counter update per request, `any`."""
    basic: dict[str, int] = {}
    total: dict[str, int] = {}
    for endpoint, pairs in zip(endpoints, headers, strict=True):
        items = pairs.items() if isinstance(pairs, dict) else pairs or []
        carried = any(
            str(k).lower() == "authorization"
            and str(v).strip().partition(" ")[0].lower() == "basic"
            for k, v in items
        )
        total[endpoint] = total.get(endpoint, 0) + 1
        basic[endpoint] = basic.get(endpoint, 0) + carried
    return tuple(sorted(e for e, n in basic.items() if n and 2 * n >= total[e]))


@pytest.mark.parametrize("seed", range(4))
def test_basic_auth_endpoints_are_the_ones_counted_per_request(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kinds = [[], None, [("Authorization", "Basic dXNlcjpwYXNz")], [("authorization", " basic x")],
             [("Authorization", "Bearer abc")],
             [("X-Other", "Basic x"), ("AUTHORIZATION", "Basic")],
             {"Authorization": "Basic abc"}]  # fmt: skip
    n = 300
    endpoints = [f"GET /e{i}" for i in rng.integers(0, 6, n)]
    headers = [kinds[i] for i in rng.integers(0, len(kinds), n)]
    frame = pd.DataFrame({"endpoint": pd.Series(endpoints, dtype="str"),
                          "req_headers": pd.Series(headers, dtype=object)})  # fmt: skip
    expected = basic_endpoints_before(endpoints, headers)
    assert basic_auth_endpoints(frame) == expected
    assert basic_auth_endpoints(frame, [carries_basic(h) for h in headers]) == expected


def infer_body_before(bodies: list[Any], content_types: list[Any]) -> BodyModel | None:
    """payloads.infer_body as it was before pay20: `_media` and `bytes` of every body."""
    parsed: dict[str, list[tuple[Any, str | None]]] = {"json": [], "form": [], "text": []}
    for body, content_type in zip(bodies, content_types, strict=True):
        if isinstance(body, bytes | bytearray | memoryview) and len(body):
            declared = _media(content_type)
            kind, value = _classify(bytes(body), declared)
            parsed.setdefault(kind, []).append((value, declared))
    usable = [k for k in ("json", "form", "text") if parsed[k]]
    if not usable:
        return None
    kind = max(usable, key=lambda k: len(parsed[k]))
    values = [v for v, _ in parsed[kind]]
    declared_types = Counter(d for _, d in parsed[kind] if d)
    media = most_common(declared_types) if declared_types else _DEFAULT_MEDIA[kind]
    if kind == "form":
        root = object_node(_pairs_to_objects(values))
    elif kind == "text":
        root = {"k": "text", **lengths(values), "style": "words"}
    else:
        root = field_node("", values)
    return BodyModel(media, root, sig(len(values) / len(bodies), 3), len(values))


class Media(str):
    """A str subclass as a Content-Type: its media made each time, as before."""


@pytest.mark.parametrize("seed", range(6))
def test_a_body_model_is_the_one_each_bodys_media_gave(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bodies_of = [None, b"", b'{"id": 12345, "name": "somebody"}', bytearray(b'{"a": "xxxxxxx"}'),
                 memoryview(b"user=someone1&pass=x"), b"plain words here", b"\xff\xfe", "text",
                 b'{"bad": ']  # fmt: skip
    types_of = [None, "application/json", "application/json; charset=utf-8", "",
                "APPLICATION/X-WWW-FORM-URLENCODED", "text/plain", ";", 7,
                Media("application/json"), "application/octet-stream"]  # fmt: skip
    n = int(rng.integers(1, 60))
    bodies = [bodies_of[i] for i in rng.integers(0, len(bodies_of), n)]
    types = [types_of[i] for i in rng.integers(0, len(types_of), n)]
    got, before = infer_body(bodies, types), infer_body_before(bodies, types)
    assert (got and got.to_json()) == (before and before.to_json())
