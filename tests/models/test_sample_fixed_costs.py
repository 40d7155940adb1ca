"""The payloads' and correlations' cheaper steps (fix22) give what the plain code gave:
an answer's objects described from each id's last object, the listed items' pairs counted
flat, a JSON body's eligible leaves with floats, bools and nulls skipped early, the walk
reading only the response values some request sends, places picked by cached names, the
reads of most rows sharing one read, a file's kept rows checked once, and an endpoint's
bodies and query strings parsed once for its sample and its half. Each against a
reference written the old way."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.factories import T0, make_record, make_table
from tracereplay.models import correlations as corr
from tracereplay.models import id_select, outcomes, source
from tracereplay.models.correlations import Location, Use, answered_ok, walk_sessions
from tracereplay.models.payloads import infer_body, infer_query
from tracereplay.models.source import ParquetSource
from tracereplay.models.values import (
    _eligible_leaves,
    _text,
    json_leaves,
    request_values,
    response_values,
)

# ---- id_select ----------------------------------------------------------------------


def describe_before(doc: object, id_keys: list[str]) -> dict[str, dict[str, Any]]:
    """id_select.describe as it was: every object's fields made, the later one kept."""
    keys = tuple(id_keys)
    out: dict[str, dict[str, Any]] = {}
    for obj in id_select.json_objects(doc, 0):
        ident = next((obj[k] for k in keys if k in obj), None)
        if ident is not None and not isinstance(ident, bool | dict | list):
            out[str(ident)] = id_select.object_fields(obj, keys)
    return out


def random_doc(rng: np.random.Generator, depth: int = 0) -> Any:
    """JSON with repeated ids (strings, ints, a bool, null), nested past the depth limit."""
    pick = rng.integers(10) if depth < 9 else 9
    if pick < 3:
        return [random_doc(rng, depth + 1) for _ in range(rng.integers(0, 5))]
    if pick < 7:
        obj: dict[str, Any] = {}
        for key in ("id", "client_id", "name", "ok", "note", "n", "child"):
            if rng.random() < 0.5:
                obj[key] = random_doc(rng, depth + 1) if key == "child" else random_leaf(rng)
        return obj
    return random_leaf(rng)


def random_leaf(rng: np.random.Generator) -> Any:
    return [f"id{rng.integers(4)}", int(rng.integers(3)), True, None, 1.5, "x" * 50, "ab",
            "2026-01-02T03:04:05Z", -123456, "abcdefgh"][rng.integers(10)]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_describe_is_the_later_objects_fields_in_first_seen_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        doc = random_doc(rng)
        for keys in (["id"], ["client_id", "id"], ["n"]):
            got, before = id_select.describe(doc, keys), describe_before(doc, keys)
            assert got == before
            assert list(got) == list(before)  # the ids' order, as dicts keep it
    assert list(id_select._objects(doc)) == list(id_select.json_objects(doc, 0))


def test_describe_keeps_the_last_of_an_ids_objects() -> None:
    doc = {"a": [{"id": "x", "ok": True}, {"id": "y"}, {"id": "x", "ok": False, "s": "v"}]}
    assert id_select.describe(doc, ["id"]) == {"x": {"ok": False, "s": "v"}, "y": {}}
    assert list(id_select.describe(doc, ["id"])) == ["x", "y"]


def test_the_listed_pairs_count_as_each_items_fields_did() -> None:
    """`_Tally.counts` over answers repeated and items repeated, as the Counter of each
    item's `object_fields` tuple counted pair by pair gave."""
    rng = np.random.default_rng(4)
    src = Location("json", "/data/items/*/id")
    other = Location("json", "/data/items/*/owner")
    key = ("GET /x/{id}", Location("path", "id"))
    tally = id_select._Tally({key: [("GET /items/", src), ("GET /items/", other)]})
    bodies = []
    for _ in range(30):
        items = [{"id": f"i{rng.integers(8)}", "owner": f"o{rng.integers(3)}",
                  "ready": bool(rng.random() < 0.5), "tag": ["a", "b", "x" * 41][rng.integers(3)],
                  "n": 3} for _ in range(rng.integers(0, 6))]  # fmt: skip
        bodies.append(json.dumps({"data": {"items": items}}).encode())
    answers: Counter[bytes] = Counter()
    for i in rng.integers(0, len(bodies), 80):
        tally.answer("GET /items/", bodies[i])
        answers[bodies[i]] += 1
    having, among = tally.counts(key)
    having_before: Counter[str] = Counter()
    among_before: Counter[tuple[str, Any]] = Counter()
    for producer in (src, other):
        for body, times in answers.items():
            doc = json.loads(body)
            listed = Counter(
                tuple(id_select.object_fields(item, (id_select.id_key(producer),)).items())
                for item in id_select.items_at(doc, producer)
            )
            for fields, n in listed.items():
                for pair in fields:
                    having_before[pair[0]] += n * times
                    among_before[pair] += n * times
    assert having == having_before and among == among_before


# ---- values -------------------------------------------------------------------------


def leaves_before(doc: object, min_len: int) -> list[tuple[Location, str]]:
    """The eligible leaves as `_text` of `json_leaves` gave them."""
    return [
        (Location("json", pointer), found)
        for pointer, leaf in json_leaves(doc)
        if (found := _text(leaf, min_len)) is not None
    ]


@pytest.mark.parametrize("seed", range(6))
def test_a_bodys_leaves_are_those_text_keeps_in_document_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(80):
        doc = random_doc(rng)
        if rng.random() < 0.2:
            doc = {"a/b~c": doc, "f": [1.25, False, None, 12345, "2026-01-02"]}
        for min_len in (1, 6):
            out: list[tuple[Location, str]] = []
            _eligible_leaves(doc, "", min_len, out)
            assert out == leaves_before(doc, min_len)


def test_a_response_without_header_values_shares_its_bodys_list() -> None:
    body = json.dumps({"token": "abcdefgh1234", "n": 123456}).encode()
    row = {"resp_headers": [("Date", "x"), ("Content-Type", "application/json")], "resp_body": body}
    memo: dict[Any, Any] = {}
    first, again = response_values(row, 6, memo), response_values(dict(row), 6, memo)
    assert first is again and first == response_values(row, 6)
    row["resp_headers"] = [("X-Csrf", "csrf-token-1")]
    with_header = response_values(row, 6, memo)
    assert with_header is not first and with_header == response_values(row, 6)
    assert with_header[: len(first)] == first


# ---- the walk -----------------------------------------------------------------------


def walk_before(frame: pd.DataFrame, min_len: int = 6) -> list[Use]:
    """walk_sessions' uses as the walk over every response value found them."""
    rows = corr._rows(frame)
    sent = [request_values(row, min_len) for row in rows]
    got = [response_values(row, min_len) if answered_ok(row["status"]) else [] for row in rows]
    seen_in: defaultdict[str, set[int]] = defaultdict(set)
    for row, values in zip(rows, got, strict=True):
        for _, value in values:
            seen_in[value].add(int(row["session_id"]))
    floor = max(
        corr.CONSTANT_MIN_SESSIONS, corr.CONSTANT_SHARE * len({r["session_id"] for r in rows})
    )
    credentials = {
        value
        for values in (*sent, *got)
        for loc, value in values
        if corr.is_credential(loc) or corr._CREDENTIAL_HEADER.search(loc.key.rsplit("/", 1)[-1])
    }
    constant = {v for v, where in seen_in.items() if len(where) >= floor} - credentials

    def pick(places: list[Location], target: Location) -> Location:
        def rank(place: Location) -> tuple[bool, bool, int, int, str]:
            same = place.key.rsplit("/", 1)[-1].lower() == target.key.rsplit("/", 1)[-1].lower()
            where = corr._WHERE_ORDER.get(place.where, 9)
            return (place.where != target.where, not same, where, len(place.key), place.key)

        return min(places, key=rank)

    uses, index, first, current = [], {}, {}, -1
    for row, req, resp in zip(rows, sent, got, strict=True):
        if int(row["session_id"]) != current:
            current, index, first = int(row["session_id"]), {}, {}
        for loc, value in set(req):
            if value in index:
                uses.append(Use(current, row["seq"], str(row["endpoint"]), loc, index[value][0],
                                pick(index[value][1], loc), value, first[value][0],
                                pick(first[value][1], loc)))  # fmt: skip
        echoed = {value for _, value in req}
        fresh: dict[str, list[Location]] = {}
        for loc, value in resp:
            if value not in echoed and value not in constant:
                fresh.setdefault(value, []).append(loc)
        for value, held in fresh.items():
            index[value] = (str(row["endpoint"]), held)
            first.setdefault(value, index[value])
    return uses


def a_frame(rng: np.random.Generator, sessions: int) -> pd.DataFrame:
    """Sessions whose answers hold values later requests send (one in two places), values
    no request sends, a constant some request sends, echoes, and a body shared by many."""
    rows = []
    shared = json.dumps({"menu": [{"id": "menuitem01"}, {"id": "menuitem02"}]}).encode()
    for sid in range(sessions):
        token, item = f"tok{rng.integers(10**9):012d}", f"item{rng.integers(40):07d}"
        body = {"token": token, "item": item, "state": "successful", "unused": f"u{sid:09d}",
                "again": {"Item": item}, "list": [{"id": item}, {"id": "another1"}]}  # fmt: skip
        rows.append({"session_id": sid, "seq": 0, "endpoint": "POST /login", "path": "/login",
                     "query": None, "req_headers": [], "req_body": b'{"user": "someone"}',
                     "status": 200, "resp_headers": [("X-Request-Id", f"req-{sid:08d}")],
                     "resp_body": json.dumps(body).encode()})  # fmt: skip
        for seq in range(1, 1 + int(rng.integers(1, 6))):
            echo = rng.random() < 0.3
            own = json.dumps([item]).encode()
            rows.append({"session_id": sid, "seq": seq, "endpoint": "GET /items/{id}",
                         "path": f"/items/{item if rng.random() < 0.8 else 'menuitem01'}",
                         "query": "state=successful&page=123456" if seq % 2 else None,
                         "req_headers": [("Authorization", f"Bearer {token}")],
                         "req_body": json.dumps({"item": item}).encode() if echo else None,
                         "status": [200, 404][int(rng.random() < 0.1)], "resp_headers": [],
                         "resp_body": shared if seq % 3 else own})  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(1000)))


@pytest.mark.parametrize("seed", range(4))
def test_the_walk_finds_the_uses_the_walk_over_every_value_found(seed: int) -> None:
    frame = a_frame(np.random.default_rng(seed), 30)
    walk = walk_sessions(frame)
    assert walk.uses
    assert sorted(map(repr, walk.uses)) == sorted(map(repr, walk_before(frame)))


def test_only_sent_values_are_kept_of_each_shared_list() -> None:
    a = Location("json", "/a")
    shared = json.dumps({"a": "kept-one", "b": ["dropped1", "kept-one"]}).encode()
    rows = [{"status": status, "resp_headers": [], "resp_body": body}
            for status, body in ((200, shared), (200, None), (201, shared), (500, shared),
                                 (200, b'{"a": "dropped2"}'))]  # fmt: skip
    out = corr._sent_only(rows, [[(a, "kept-one")], [], [], [], []])
    assert out[0] == [(a, "kept-one"), (Location("json", "/b/*"), "kept-one")]
    assert out[0] is out[2] and out[1] == out[3] == out[4] == []
    assert corr._sent_only([{"status": None}], [[(a, "kept-one")]]) == [[]]


# ---- the reads ----------------------------------------------------------------------


def _trace(directory: Path, files: int, rows: int) -> Path:
    rng = np.random.default_rng(7)
    directory.mkdir()
    for f in range(files):
        records = [
            make_record(
                ts=T0 + timedelta(seconds=f * rows + i),
                path=f"/p/{i}",
                query=f"q={rng.integers(9)}",
                req_body=b'{"a": %d}' % i,
                resp_body=b"x" * int(rng.integers(0, 50)),
            )
            for i in range(rows)
        ]
        pq.write_table(make_table(records), directory / f"part-{f:06d}.parquet")
    return directory


@pytest.mark.parametrize("batch_rows", [3, 4096])
def test_the_reads_of_several_wants_are_each_wants_own_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(source, "LEAN_BATCH_ROWS", batch_rows)
    trace = ParquetSource.open(_trace(tmp_path / "t", 3, 20))
    rng = np.random.default_rng(1)
    most, few = rng.choice(60, 50, replace=False), rng.choice(60, 7, replace=False)
    again = np.concatenate([most[:40], most[:5]])  # a position asked twice
    wants = [(most, ["req_body", "query"]), (few, ["path", "resp_body", "query"]),
             (again, ["path", "status"]), (np.zeros(0, np.int64), ["query"])]  # fmt: skip
    together = trace.rows_of(wants)
    alone = [trace.rows_of([want])[0] for want in wants]
    whole = trace.trace.to_table(sort=False)
    for (positions, columns), got, single in zip(wants, together, alone, strict=True):
        assert got.equals(single)
        assert got.to_pylist() == whole.select(columns).take(positions).to_pylist()


# ---- payloads -----------------------------------------------------------------------


def test_an_endpoints_bodies_and_queries_parsed_once_give_the_same_models() -> None:
    rng = np.random.default_rng(3)
    bodies = [[None, b"", b'{"a": 1, "b": "xy"}', b'{"a": 2.5}', b"a=1&b=2", b"\xff\xfe",
               b'{"c": [1, 2]}', b"not json"][rng.integers(8)] for _ in range(200)]  # fmt: skip
    types = [[None, "application/json", "application/x-www-form-urlencoded", "text/plain"][
        rng.integers(4)] for _ in bodies]  # fmt: skip
    queries = [[None, "", "?a=1", "a=1&a=2", "b=x%20y", "page=3&q=abc"][rng.integers(6)]
               for _ in bodies]  # fmt: skip
    parsed: dict[Any, Any] = {}
    split: dict[str, Any] = {}
    for cut in (len(bodies), len(bodies) // 2, 7):
        plain = infer_body(bodies[:cut], types[:cut])
        shared = infer_body(bodies[:cut], types[:cut], parsed)
        assert (plain and plain.to_json()) == (shared and shared.to_json())
        q_plain, q_shared = infer_query(queries[:cut]), infer_query(queries[:cut], split)
        assert (q_plain and q_plain.to_json()) == (q_shared and q_shared.to_json())
    assert parsed and split


# ---- outcomes -----------------------------------------------------------------------


def test_the_login_answers_parsed_once_give_the_role_they_gave() -> None:
    rng = np.random.default_rng(5)
    roles = ["admin", "viewer", "editor"]
    bodies = [
        json.dumps({"user": {"id": f"u{i}", "role": roles[rng.integers(3)]}}).encode()
        if i % 7
        else b"not json"
        for i in range(40)
    ]
    logins = pd.DataFrame({"resp_body": bodies, "status": [200] * 39 + [500]})
    memo: outcomes.LoginLeaves = {}
    field = outcomes.find_role_field(logins, memo)
    assert field == outcomes.find_role_field(logins) == Location("json", "/user/role")
    assert memo  # the answers' leaves, kept
    for body in bodies:
        assert outcomes._role_in(body, field, memo) == outcomes._role_in(body, field)
    assert outcomes._role_in(bodies[1], field, {bodies[1]: {"/user/role": "other"}}) == "other"
