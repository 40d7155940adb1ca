"""Body and query models: field kinds inferred from faker-made payloads, seeded rendering."""

from __future__ import annotations

import json
import math
import random
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from faker import Faker

from tracereplay.errors import ConfigError
from tracereplay.models.payloads import (
    FORM_MEDIA,
    BodyModel,
    QueryModel,
    infer_body,
    infer_query,
)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
JWT_HEAD = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIiwidHJhY2VyZXBsYXkiOiJwc2V1ZG9ueW0ifQ"


def seeded(seed: int = 1) -> tuple[random.Random, Faker]:
    fake = Faker()
    fake.seed_instance(seed)
    return random.Random(seed), fake


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def make_bodies(n: int, build: Callable[[random.Random, Faker], Any], seed: int = 3) -> list[bytes]:
    rng, fake = seeded(seed)
    return [encode(build(rng, fake)) for _ in range(n)]


def client_record(rng: random.Random, fake: Faker) -> dict[str, Any]:
    return {
        "name": fake.name(),
        "email": fake.email(),
        "phone": fake.phone_number(),
        "company": fake.company(),
        "notes": fake.sentence(nb_words=rng.randint(4, 12)),
    }


def fields(model: BodyModel | QueryModel) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in model.root["fields"]}


def kinds(model: BodyModel | QueryModel) -> dict[str, str]:
    return {name: f["k"] for name, f in fields(model).items()}


def render_many(model: BodyModel, n: int, seed: int = 7) -> list[Any]:
    rng, fake = seeded(seed)
    return [json.loads(model.render(rng, fake)) for _ in range(n)]


def field_of(values: list[Any], key: str = "value") -> dict[str, Any]:
    """The inferred node of one field that took `values` in consecutive bodies."""
    model = infer_body([encode({key: v}) for v in values])
    assert model is not None
    return fields(model)[key]


def test_client_records_round_trip() -> None:
    model = infer_body(make_bodies(80, client_record))
    assert model is not None
    assert model.media_type == "application/json"
    assert kinds(model) == {
        "name": "name",
        "email": "email",
        "phone": "phone",
        "company": "company",
        "notes": "text",
    }
    rendered = render_many(model, 40)
    assert all(list(r) == ["name", "email", "phone", "company", "notes"] for r in rendered)
    assert all("@" in r["email"] for r in rendered)
    notes = fields(model)["notes"]
    assert all(notes["min"] <= len(r["notes"]) <= notes["max"] for r in rendered)
    # What it renders is recognised as the same kinds again.
    again = infer_body([encode(r) for r in rendered])
    assert again is not None and kinds(again) == kinds(model)


def test_login_keeps_removed_password_constant() -> None:
    model = infer_body(
        make_bodies(
            30, lambda r, f: {"email": f"{f.user_name()}.x@anon.invalid", "password": "[removed]"}
        )
    )
    assert model is not None
    assert model.to_json()["root"]["fields"] == [
        {"key": "email", "k": "email"},
        {"key": "password", "k": "const", "v": "[removed]"},
    ]
    assert all(r["password"] == "[removed]" for r in render_many(model, 10))


def test_nested_filters_and_enum_limit() -> None:
    def build(rng: random.Random, fake: Faker) -> dict[str, Any]:
        status = sorted(rng.sample(["a", "b"], rng.randint(1, 2)))
        return {"filters": {"status": status}, "limit": rng.choice([10, 20, 50])}

    model = infer_body(make_bodies(60, build))
    assert model is not None
    filters, limit = fields(model)["filters"], fields(model)["limit"]
    assert limit["k"] == "enum" and limit["v"] == [10, 20, 50]
    status = filters["fields"][0]
    assert (status["key"], status["k"], status["min"], status["max"]) == ("status", "arr", 1, 2)
    assert status["item"]["k"] == "enum" and status["item"]["v"] == ["a", "b"]
    for body in render_many(model, 30):
        assert body["limit"] in (10, 20, 50)
        assert set(body["filters"]["status"]) <= {"a", "b"} and body["filters"]["status"]


def test_array_of_objects_keeps_int_ranges() -> None:
    def build(rng: random.Random, fake: Faker) -> dict[str, Any]:
        items = [
            {"sku": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "qty": rng.randint(1, 99)}
            for _ in range(rng.randint(1, 4))
        ]
        return {"items": items, "price": round(rng.uniform(1, 500), 2)}

    model = infer_body(make_bodies(50, build))
    assert model is not None
    items = fields(model)["items"]
    assert (items["min"], items["max"]) == (1, 4)
    item = {f["key"]: f for f in items["item"]["fields"]}
    assert item["sku"] == {"key": "sku", "k": "uuid"}
    assert item["qty"]["k"] == "int" and 1 <= item["qty"]["min"] < item["qty"]["max"] <= 99
    assert fields(model)["price"]["k"] == "float" and fields(model)["price"]["dp"] == 2
    for body in render_many(model, 20):
        assert 1 <= len(body["items"]) <= 4
        assert all(UUID_RE.match(i["sku"]) and isinstance(i["qty"], int) for i in body["items"])
        assert round(body["price"], 2) == body["price"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([str(uuid.UUID(int=i * 7919 + 1)) for i in range(6)], {"k": "uuid"}),
        (
            [f"{JWT_HEAD}.{'a' * (40 + i)}.{'b' * 43}" for i in range(4)],
            {"k": "jwt", "head": JWT_HEAD, "body": [40, 43], "sig": [43, 43]},
        ),
        (
            [f"anon_{'Ab3' * 10}{i}" for i in range(5)],
            {"k": "token", "prefix": "anon_", "abc": "b62", "min": 36, "max": 36},
        ),
        ([f"{i:040x}" for i in range(1000, 1005)], {"k": "token", "prefix": "", "abc": "hex"}),
        (["2026-01-0" + str(d) for d in range(1, 8)], {"k": "date", "min": "2026-01-01"}),
        (
            [f"2026-01-05T09:0{i}:00Z" for i in range(6)],
            {"k": "datetime", "tz": "Z", "prec": "seconds", "max": "2026-01-05T09:05:00"},
        ),
        (
            ["https://a.example.com/x", "https://b.example.org", "https://c.example.net/"],
            {"k": "url"},
        ),
        ([True, False, True, True], {"k": "bool", "true": 0.75}),
        ([3, 17, 250, 4, 9, 11], {"k": "int", "min": 3, "max": 250}),
        ([0.5, 2.25, 1.125], {"k": "float", "min": 0.5, "max": 2.25, "dp": 3}),
        (["7d", "30d", "7d", "30d", "7d"], {"k": "enum", "v": ["30d", "7d"], "w": [0.4, 0.6]}),
        ([20, 20, 20], {"k": "const", "v": 20}),
        (["[removed]"], {"k": "const", "v": "[removed]"}),
        ([None, None], {"k": "null"}),
        ([None, 1, None, 1], {"k": "mix", "w": [0.5, 0.5]}),
        (["+1-485-555-0153", "+1-612-555-0115", "(331)770-6690x7439"], {"k": "phone"}),
    ],
)
def test_kind_detection(values: list[Any], expected: dict[str, Any]) -> None:
    node = field_of(values)
    assert {k: node[k] for k in expected} == expected


def test_kinds_from_field_names() -> None:
    assert field_of(["Ann", "Bob", "Cy"], "first_name")["part"] == "first"
    assert field_of(["Acme Works", "Blue Sky"], "company")["k"] == "company"
    # A company-looking "name" (faker's company formats) is a company, not a person.
    assert field_of(["Smith LLC", "Ross, Lee and Park", "Cole-Hart"], "name")["k"] == "company"
    assert field_of(["2015550123", "2015550188"], "mobile")["k"] == "phone"
    # Without a telling name, capitalised words stay text.
    assert field_of(["Daily Sync", "Weekly Report", "Old Backup"], "title")["k"] == "text"
    # snake_case words are a vocabulary, not tokens; opaque mixed-case ids are tokens.
    events = ["workflow_execution_started", "workflow_execution_finished"] * 3
    assert field_of(events, "event")["k"] == "enum"
    assert field_of(["aB3dE5gH7jK9mN1pQ", "Zx8Yw7Vu6Ts5Rq4Po"], "ref")["k"] == "token"


def test_enum_only_for_a_small_repeated_vocabulary() -> None:
    rng, fake = seeded(2)
    statuses = [rng.choice(["success", "error"]) for _ in range(50)]
    assert field_of(statuses)["k"] == "enum"
    assert field_of([fake.sentence() for _ in range(50)])["k"] == "text"
    # Three values seen once each: a sample of an open set, not a vocabulary.
    assert field_of(["alpha", "beta", "gamma"])["k"] == "text"
    many = [f"v{i % 30}" for i in range(200)]  # 30 distinct > ENUM_MAX_VALUES
    # Few values seen a few times: the share of observations seen once (Good-Turing's
    # chance of a new value) is at most ENUM_MAX_UNSEEN = 1/2 on one side, over on the other.
    assert field_of(["success", "error", "error"])["k"] == "enum"  # 1/3
    assert field_of(["day", "week", "month", "month"])["k"] == "enum"  # 2/4
    assert field_of(["day", "week", "month", "month", "year"])["k"] == "text"  # 3/5
    assert field_of(["north", "south"])["k"] == "text"  # 2/2: nothing seen twice
    assert field_of([3, 7, 7])["k"] == "enum" and field_of([3, 7, 7, 9, 11])["k"] == "int"
    assert field_of(many)["k"] == "text"
    # One sentence seen once is text (a single note), a short word seen once a constant.
    assert field_of(["Call back after the demo."])["k"] == "text"
    assert field_of(["pending"])["k"] == "const"


def test_optional_field_presence() -> None:
    def build(rng: random.Random, fake: Faker) -> dict[str, Any]:
        body: dict[str, Any] = {"id": rng.randint(1, 9999)}
        if rng.random() < 0.3:
            body["coupon"] = fake.lexify("????-????")
        return body

    model = infer_body(make_bodies(400, build))
    assert model is not None
    p = fields(model)["coupon"]["p"]
    assert 0.25 < p < 0.35 and "p" not in fields(model)["id"]
    share = sum("coupon" in b for b in render_many(model, 2000)) / 2000
    assert math.isclose(share, p, abs_tol=0.04)


def test_rendering_is_deterministic() -> None:
    model = infer_body(make_bodies(40, client_record))
    assert model is not None
    rng_a, fake_a = seeded(11)
    rng_b, fake_b = seeded(11)
    first = [model.render(rng_a, fake_a) for _ in range(20)]
    assert first == [model.render(rng_b, fake_b) for _ in range(20)]
    assert model.render(*seeded(11)) != model.render(*seeded(12))


def test_model_json_ignores_input_order() -> None:
    def build(rng: random.Random, fake: Faker) -> dict[str, Any]:
        body = client_record(rng, fake) | {"score": round(rng.uniform(0, 1), 3)}
        keys = list(body)
        rng.shuffle(keys)  # key order differs from body to body
        return {k: body[k] for k in keys if rng.random() < 0.8}

    bodies: list[bytes | None] = [*make_bodies(60, build), None, None]
    shuffled = list(bodies)
    random.Random(5).shuffle(shuffled)
    a, b = infer_body(bodies), infer_body(shuffled)
    assert a is not None and b is not None
    assert json.dumps(a.to_json()) == json.dumps(b.to_json())
    assert a.presence == round(60 / 62, 3)


def test_json_form_round_trips_and_is_checked() -> None:
    model = infer_body(make_bodies(20, client_record))
    assert model is not None
    stored = json.loads(json.dumps(model.to_json()))
    again = BodyModel.from_json(stored)
    assert again == model and again.render(*seeded()) == model.render(*seeded())
    with pytest.raises(ConfigError, match="unknown payload kind 'nope'"):
        BodyModel.from_json({"media": "application/json", "root": {"k": "nope"}})
    with pytest.raises(ConfigError, match="body model"):
        BodyModel.from_json({"root": {"k": "null"}})
    lacking = {"k": "obj", "fields": [{"key": "a", "k": "int", "min": 1}]}
    with pytest.raises(ConfigError, match="'int' node lacks max"):
        BodyModel.from_json({"media": "application/json", "root": lacking})
    query = infer_query(["a=1", "a=2"])
    assert query is not None and QueryModel.from_json(query.to_json()) == query


def test_degenerate_bodies() -> None:
    assert infer_body([]) is None
    assert infer_body([None, None, b""]) is None
    assert infer_body([b"\x89PNG\x00\xff\xfe"]) is None
    assert infer_body([b"x"], ["image/png"]) is None
    mixed = infer_body(
        [b'{"a": 1}', b"{not json", b'{"a": 2}', b'{"a": 3'], ["application/json"] * 4
    )
    assert mixed is not None and mixed.n == 2 and mixed.presence == 0.5
    assert infer_body([b'{"x": NaN}', b'{"x": 1.5}', b'{"x": 2.5}']).n == 2  # type: ignore[union-attr]
    single = infer_body([b'{"limit": 20, "q": "x"}'])
    assert single is not None and kinds(single) == {"limit": "const", "q": "const"}
    empty = infer_body([b"{}", b"{}"])
    assert empty is not None and empty.render(*seeded()) == b"{}"
    top = infer_body([b"[1, 2]", b"[3]", b"[]"])
    assert top is not None and top.root["k"] == "arr"
    assert all(isinstance(x, int) for x in json.loads(top.render(*seeded())))
    scalar = infer_body([b"true", b"true"])
    assert scalar is not None and scalar.render(*seeded()) == b"true"
    with pytest.raises(ValueError, match="differ in length"):
        infer_body([b"{}"], [])


def test_text_and_form_bodies() -> None:
    text = infer_body([b"hello there world", b"plain words only here"], ["text/plain", None])
    assert text is not None and text.media_type == "text/plain" and text.root["k"] == "text"
    out = text.render(*seeded()).decode()
    assert 17 <= len(out) <= 21
    bodies = [f"user={u}&remember=true&age={a}".encode() for u, a in [("ann", 30), ("bob", 41)] * 5]
    form = infer_body(bodies, [f"{FORM_MEDIA}; charset=utf-8"] * 10)
    assert form is not None and form.media_type == FORM_MEDIA
    assert kinds(form) == {"user": "enum", "remember": "const", "age": "enum"}
    pairs = parse_qsl(form.render(*seeded()).decode())
    assert [k for k, _ in pairs] == ["user", "remember", "age"] and pairs[1] == ("remember", "true")
    # Without a Content-Type, a body shaped like a form is read as one.
    sniffed = infer_body([b"a=1&b=x", b"a=2&b=y"])
    assert sniffed is not None and sniffed.media_type == FORM_MEDIA


def test_query_model() -> None:
    rng, _ = seeded(4)
    queries: list[str | None] = [
        f"client_id={uuid.UUID(int=rng.getrandbits(128), version=4)}"
        f"&limit={rng.choice([10, 20, 50])}&offset=0&status={rng.choice(['success', 'error'])}"
        for _ in range(40)
    ]
    queries += [None, "", float("nan")]  # type: ignore[list-item]  # pandas' missing value
    model = infer_query(queries)
    assert model is not None
    assert model.n == 40 and model.presence == round(40 / 43, 3)
    assert kinds(model) == {
        "client_id": "uuid",
        "limit": "enum",
        "offset": "const",
        "status": "enum",
    }
    assert fields(model)["offset"]["v"] == 0
    rendered = model.render(*seeded())
    assert rendered == model.render(*seeded())
    pairs = parse_qsl(rendered)
    assert [k for k, _ in pairs] == ["client_id", "limit", "offset", "status"]
    assert UUID_RE.match(pairs[0][1]) and pairs[1][1] in {"10", "20", "50"} and pairs[2][1] == "0"


def test_query_edge_cases() -> None:
    assert infer_query([None, "", None]) is None
    repeated = infer_query(["tag=a&tag=b", "tag=b", "?tag=c&tag=a&tag=b"])
    assert repeated is not None and fields(repeated)["tag"]["k"] == "arr"
    tags = parse_qsl(repeated.render(*seeded()))
    assert all(k == "tag" and v in "abc" for k, v in tags)
    blank = infer_query(["q=&page=1", "q=&page=2"])
    assert blank is not None and blank.render(*seeded()).startswith("q=&page=")
    dates = infer_query([f"since=2026-01-{d:02d}" for d in range(1, 29)])
    assert dates is not None and fields(dates)["since"]["k"] == "date"
