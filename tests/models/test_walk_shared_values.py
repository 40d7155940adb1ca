"""The correlation walk's shared steps (walk23) give what the walk over every value gave:
each response list's values grouped once, the place a target reads picked once per value
and target, a use made as a named tuple, a response read for the values requests send
alone, an id place judged once per target, a request's headers judged once per distinct
list, a response's read pair by pair. Each against a reference written the old way (the
walk's: tests/models/test_sample_fixed_costs.py's `walk_before`)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.models.test_sample_fixed_costs import walk_before
from tracereplay.cookies import cookie_pairs
from tracereplay.models import correlations as corr
from tracereplay.models import values
from tracereplay.models.correlations import Location, Use, walk_sessions
from tracereplay.models.ids import learn_ids
from tracereplay.models.values import _eligible_text, response_values, sent_response_values


def a_frame(rng: np.random.Generator, sessions: int) -> pd.DataFrame:
    """Sessions whose login yields its token in two places (JSON and Set-Cookie), whose
    lists (one body many rows and sessions share) hold each item's id in several places,
    read back at a path parameter, a query value and a JSON field; echoes, a constant,
    failures."""
    groups = [[f"item{group}{n:05d}" for n in range(6)] for group in range(4)]
    listings = [
        json.dumps({"data": [{"id": i, "ref": i, "owner": {"itemId": i}} for i in items],
                    "v": "constant1"}).encode()
        for items in groups
    ]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for sid in range(sessions):
        items, listing = groups[sid % 4], listings[sid % 4]  # each read by a quarter
        token = f"tok{rng.integers(10**9):012d}"
        login = json.dumps({"access_token": token, "state": "constant1"}).encode()
        rows.append({"session_id": sid, "seq": 0, "endpoint": "POST /login", "path": "/login",
                     "query": None, "req_headers": [], "req_body": b'{"user": "someone"}',
                     "status": 200, "resp_headers": [("Set-Cookie", f"sid={token}; Path=/")],
                     "resp_body": login})  # fmt: skip
        for seq in range(1, 1 + int(rng.integers(2, 9))):
            item = items[int(rng.integers(len(items)))]
            kind = int(rng.integers(4))
            row = {"session_id": sid, "seq": seq, "endpoint": "GET /items/", "path": "/items/",
                   "query": None, "req_headers": [("Cookie", f"sid={token}")], "req_body": None,
                   "status": [200, 500][int(rng.random() < 0.1)], "resp_headers": [],
                   "resp_body": listing}  # fmt: skip
            if kind == 1:
                one = json.dumps({"id": item, "name": f"name-{item}"}).encode()
                row.update(endpoint="GET /items/{id}", path=f"/items/{item}", resp_body=one,
                           req_headers=[("Authorization", f"Bearer {token}")])  # fmt: skip
            elif kind == 2:
                row.update(endpoint="GET /search", query=f"item_id={item}&v=constant1")
            elif kind == 3:
                row.update(endpoint="POST /orders", req_body=json.dumps({"itemId": item}).encode(),
                           resp_body=json.dumps({"orderId": f"ord{sid:05d}{seq:03d}",
                                                 "itemId": item}).encode())  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(1000)))


@pytest.mark.parametrize("seed", range(4))
def test_the_walk_finds_the_uses_the_walk_over_every_value_found(seed: int) -> None:
    frame = a_frame(np.random.default_rng(seed), 12)
    uses = walk_sessions(frame).uses
    before = walk_before(frame)
    assert len({(u.target, u.source) for u in uses}) > 3  # several places picked
    assert sorted(uses) == sorted(before)


def test_a_values_place_is_picked_for_each_target() -> None:
    by_id, by_ref = Location("json", "/data/*/id"), Location("json", "/data/*/ref")
    cookie = Location("cookie", "item_id")
    held = corr._Held([by_ref, by_id, cookie])
    assert held.read_by(Location("path", "id")) == by_id
    assert held.read_by(Location("json", "/ref")) == by_ref
    assert held.read_by(Location("cookie", "other")) == cookie
    assert held.read_by(Location("path", "id")) == by_id  # the kept pick, per target


def test_a_responses_values_are_grouped_in_order_without_the_constants() -> None:
    a, b, c = Location("json", "/a"), Location("json", "/b"), Location("header", "x-c")
    resp = [(a, "value-one"), (b, "constant"), (b, "value-two"), (c, "value-one")]
    grouped = corr._by_value(resp, {"constant"})
    assert [(value, held.places) for value, held in grouped] == [
        ("value-one", [a, c]),
        ("value-two", [b]),
    ]


def test_a_use_is_a_tuple_of_its_fields() -> None:
    loc = Location("path", "id")
    use = Use(1, 2, "GET /x/{id}", loc, "GET /x", loc, "value-one", "GET /x", loc)
    assert use.rule == ("GET /x", loc, "GET /x/{id}", loc)
    assert use == (1, 2, "GET /x/{id}", loc, "GET /x", loc, "value-one", "GET /x", loc)
    with pytest.raises(AttributeError):
        use.value = "other"  # type: ignore[misc]


# ---- the response values the walk reads --------------------------------------------


def a_leaf(rng: np.random.Generator) -> Any:
    return [
        f"v{rng.integers(10**8)}", f"v{rng.integers(100)}", "2026-01-02T10:00:00Z", "2026-x-long",
        int(rng.integers(-99999, 99999)), int(rng.integers(-999, 999)), 12.5, True, False, None,
        "1234", "-1234", "12",
    ][int(rng.integers(13))]  # fmt: skip


def a_doc(rng: np.random.Generator, depth: int = 0) -> Any:
    pick = int(rng.integers(10)) if depth < 5 else 9
    if pick < 3:
        return [a_doc(rng, depth + 1) for _ in range(rng.integers(0, 5))]
    if pick < 7:
        names = ("id", "a/b", "c~d", "Item", "x")
        return {names[int(i)]: a_doc(rng, depth + 1) for i in rng.integers(0, 5, 3)}
    return a_leaf(rng)


@pytest.mark.parametrize("seed", range(6))
def test_the_walks_response_values_are_the_sent_ones_of_every_value(seed: int) -> None:
    """`sent_response_values` is `response_values` of the values `wanted` holds, when it
    holds only eligible values (the walk's: what requests send)."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        headers = [
            ("Set-Cookie", f"sid=v{rng.integers(10**8)}; Path=/"),
            ("Date", "x"),
            ("X-Token", f"v{rng.integers(10**8)}"),
            ("ETag", "short"),
        ][: rng.integers(5)]
        row = {"resp_headers": headers, "resp_body": json.dumps(a_doc(rng)).encode()}
        for min_len in (1, 6):
            every = response_values(row, min_len)
            wanted = {value for _, value in every if rng.random() < 0.5} | {"v12", "absent-1"}
            wanted = {value for value in wanted if _eligible_text(value, min_len)}
            assert sent_response_values(row, wanted, {}) == [
                pair for pair in every if pair[1] in wanted
            ]


def test_a_bodys_sent_values_are_made_once_for_its_rows() -> None:
    body = json.dumps({"token": "token-one", "list": [{"id": 123456}], "n": 12}).encode()
    headers = ([], [("Content-Type", "application/json")], [("X-Id", "123456")])
    rows = [{"resp_headers": pairs, "resp_body": bytes(body)} for pairs in headers]
    found: dict[object, Any] = {}
    first, again, with_header = (sent_response_values(row, {"123456"}, found) for row in rows)
    assert first == [(Location("json", "/list/*/id"), "123456")]
    assert again is first and list(found.values()) == [first]
    assert with_header == [*first, (Location("header", "x-id"), "123456")]


@pytest.mark.parametrize(
    ("body", "found"),
    [(b'"token-one"', ["token-one"]), (b"123456", ["123456"]), (b"12", []), (b"true", []),
     (b"not json", []), (b"", []), (None, []), ("[\"token-one\", 1.5]", ["token-one"])],
)  # fmt: skip
def test_a_lone_scalar_or_no_json_yields_as_before(body: Any, found: list[str]) -> None:
    row = {"resp_headers": None, "resp_body": body}
    wanted = {"token-one", "123456"}
    assert [v for _, v in sent_response_values(row, wanted, {})] == found
    assert sent_response_values(row, wanted, {}) == [
        pair for pair in response_values(row, 6) if pair[1] in wanted
    ]


# ---- the id model of a walk ---------------------------------------------------------


def test_an_id_place_is_judged_by_all_the_values_its_uses_sent() -> None:
    """A place not named like an id sends ids when every value it sent is a UUID: judged
    over all its uses' values, not each use's own."""
    src, ref, other = Location("json", "/id"), Location("json", "/ref"), Location("json", "/o")
    uuids = [str(uuid.UUID(int=n)) for n in range(1, 4)]
    sent = [(ref, uuids[0]), (ref, uuids[1]), (ref, "plainvalue"), (other, uuids[2])]
    uses = [Use(n, 1, "POST /orders", target, "GET /items/1", src, value, "GET /items/1", src)
            for n, (target, value) in enumerate(sent)]  # fmt: skip
    walk = corr.Walk(uses, Counter({("POST /orders", ref): 3, ("POST /orders", other): 1}),
                     Counter({"POST /orders": 4}), [])  # fmt: skip
    targets = learn_ids(walk, corr.NO_AUTH, ["POST /orders", "GET /items/1"]).targets
    assert [(t.target, t.requests) for t in targets] == [(other, 1)]


# ---- a request's headers ------------------------------------------------------------


@pytest.mark.parametrize("min_len", [1, 6])
def test_a_requests_headers_judged_once_give_what_they_gave_each_time(min_len: int) -> None:
    """A list of pairs (Arrow's) judged once per distinct list, pairs that are lists (not
    hashable) and other shapes each time: the same values, the same Content-Type."""
    pairs = [("Authorization", "Bearer tokentoken1"), ("Cookie", "sid=abcdefgh12; t=dark"),
             ("Content-Type", "application/x-www-form-urlencoded"), ("X-Key", "kkk")]  # fmt: skip
    judged = values._judged_headers(pairs, min_len)
    assert judged[1] == "application/x-www-form-urlencoded" and judged[0]
    for shape in (pairs, list(pairs), [list(pair) for pair in pairs], dict(pairs)):
        assert values._headers_sent(shape, min_len) == judged
    row = {"path": "/x", "endpoint": "POST /x", "query": None, "req_headers": pairs,
           "req_body": b"user=someone1&pass=secret99"}  # fmt: skip
    first = values.request_values(row, min_len)
    first.append((Location("form", "changed"), "by a caller"))  # the caller's own list
    again = values.request_values(row, min_len)
    assert again == first[:-1] and (Location("form", "user"), "someone1") in again


def header_values_before(headers: object) -> list[tuple[Location, str]]:
    """values._header_values as it was: every pair made lower-case text first."""
    out: list[tuple[Location, str]] = []
    for name, header in values._pairs(headers):
        if name == "set-cookie":
            pair = header.partition(";")[0]
            out += [(Location("cookie", k), v) for k, v in cookie_pairs(pair, unquote=True)]
        elif name not in values._RESPONSE_META:
            out.append((Location("header", name), header))
    return out


@pytest.mark.parametrize(
    "headers",
    [None, [], [("Date", "x"), ("Server", "y")], {"X-Csrf": "token-1", "Date": "x"},
     [("Set-Cookie", 'sid="abc def"; Path=/'), ("SET-COOKIE", "a=1"), ("ETag", "W/1"),
      ("X-Count", 12), (7, None), ("Content-Type", "application/json")],
     (("X-Tuple", "pairs"), ("Vary", "Accept"))],
)  # fmt: skip
def test_a_responses_header_values_are_the_ones_lower_cased_pairs_gave(headers: object) -> None:
    assert values._header_values(headers) == header_values_before(headers)


def test_a_requests_headers_of_no_list_are_not_asked_their_truth() -> None:
    row = {"path": "/x", "endpoint": "GET /x", "query": None, "req_body": None,
           "req_headers": pd.NA}  # fmt: skip
    assert values.request_values(row, 6) == []
