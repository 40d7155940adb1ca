"""The anonymizer as a pure function: Exchange in, TraceRecord out, no proxy involved."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime

import brotli
import pytest
from faker import Faker

from tests.capture.canaries import Canaries, make_canaries
from tracereplay.capture.anonymize.detectors import find_all
from tracereplay.capture.anonymize.policy import load_policy, parse_policy
from tracereplay.capture.anonymize.record import Anonymizer
from tracereplay.capture.anonymize.values import REMOVED
from tracereplay.capture.exchange import Exchange
from tracereplay.errors import ConfigError

KEY = b"k" * 32
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def anon() -> Anonymizer:
    return Anonymizer(load_policy(), KEY)


@pytest.fixture
def canaries() -> Canaries:
    return make_canaries(seed=11)


def exchange(**kw: object) -> Exchange:
    base: dict[str, object] = {
        "ts": T0,
        "method": "GET",
        "path": "/api/v1/clients/",
        "scheme": "http",
        "host": "127.0.0.1",
        "port": 8000,
        "client_addr": "127.0.0.1",
        "status": 200,
        "duration_ms": 3.5,
    }
    base.update(kw)
    return Exchange(**base)  # type: ignore[arg-type]


def stored_text(record: object) -> str:
    """Every stored string of a record, joined (what a leak would show up in)."""
    parts: list[str] = []
    for name in ("path", "query", "session", "client", "host", "error"):
        parts.append(str(getattr(record, name) or ""))
    for name in ("req_headers", "resp_headers"):
        for k, v in getattr(record, name):
            parts += [k, v]
    for name in ("req_body", "resp_body"):
        body = getattr(record, name)
        parts.append(body.decode("utf-8", "replace") if body else "")
    return "\n".join(parts)


def json_body(data: object) -> bytes:
    return json.dumps(data).encode()


JSON = [("Content-Type", "application/json")]


def test_login_password_removed_email_pseudonymized(anon: Anonymizer, canaries: Canaries) -> None:
    ex = exchange(
        method="POST",
        path="/api/v1/auth/login",
        req_headers=JSON,
        req_body=json_body({"email": canaries.email, "password": canaries.password}),
    )
    rec = anon.record(ex)
    assert rec.req_body is not None
    body = json.loads(rec.req_body)
    assert body["password"] == REMOVED
    assert body["email"] != canaries.email and body["email"].endswith(".invalid")
    assert canaries.password not in stored_text(rec)
    assert rec.req_body_size == len(ex.req_body or b"")


def test_same_value_same_pseudonym_everywhere(anon: Anonymizer, canaries: Canaries) -> None:
    client_id = str(uuid.UUID(int=Faker().random.getrandbits(128), version=4))
    created = anon.record(
        exchange(
            method="POST",
            resp_headers=JSON,
            resp_body=json_body(
                {"status": "success", "data": {"id": client_id, "email": canaries.email}}
            ),
            status=201,
        )
    )
    later = anon.record(
        exchange(
            path=f"/api/v1/clients/{client_id}",
            query=f"client_id={client_id}&contact={canaries.email}",
            req_headers=[("X-Contact", canaries.email)],
        )
    )
    assert created.resp_body is not None
    data = json.loads(created.resp_body)["data"]
    new_id = data["id"]
    assert new_id != client_id and uuid.UUID(new_id)
    assert later.path == f"/api/v1/clients/{new_id}"
    assert later.query is not None and f"client_id={new_id}" in later.query
    pseudo_email = data["email"]
    assert dict(later.req_headers)["X-Contact"] == pseudo_email
    assert pseudo_email.replace("@", "%40") in later.query


def test_other_key_other_pseudonyms(canaries: Canaries) -> None:
    ex = exchange(
        req_headers=[("Authorization", f"Bearer {canaries.jwt}")], query=f"email={canaries.email}"
    )
    one = Anonymizer(load_policy(), b"a" * 32).record(ex)
    two = Anonymizer(load_policy(), b"b" * 32).record(ex)
    again = Anonymizer(load_policy(), b"a" * 32).record(ex)
    assert one.req_headers != two.req_headers and one.query != two.query
    assert one.req_headers == again.req_headers and one.query == again.query
    assert one.session != two.session and one.session == again.session


def test_credentials_in_headers(anon: Anonymizer, canaries: Canaries) -> None:
    ex = exchange(
        req_headers=[
            ("Authorization", f"Bearer {canaries.jwt}"),
            ("Cookie", f"access_token={canaries.cookie}; theme=dark"),
            ("X-N8N-API-KEY", canaries.api_key),
            ("X-Forwarded-For", f"{canaries.ip}, 10.1.2.3"),
            ("User-Agent", "pytest"),
        ],
        resp_headers=[("Set-Cookie", f"refresh_token={canaries.jwt}; Path=/api/v1/auth; HttpOnly")],
    )
    rec = anon.record(ex)
    text = stored_text(rec)
    for raw in (canaries.jwt, canaries.cookie, canaries.api_key, canaries.ip, "10.1.2.3"):
        assert raw not in text
    headers = dict(rec.req_headers)
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Bearer" and len(token.split(".")) == 3  # a JWT stays JWT-shaped
    assert headers["Cookie"].startswith("access_token=") and "; theme=" in headers["Cookie"]
    assert headers["User-Agent"] == "pytest"
    assert dict(rec.resp_headers)["Set-Cookie"].endswith("; Path=/api/v1/auth; HttpOnly")
    assert find_all(text) == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_bodies_are_decoded_first(
    anon: Anonymizer, canaries: Canaries, encoding: str
) -> None:
    raw = json_body({"data": [{"email": canaries.email, "phone": canaries.phone}]})
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[encoding](raw)
    rec = anon.record(
        exchange(
            resp_headers=[*JSON, ("Content-Encoding", encoding)],
            resp_body=packed,
            resp_body_encoding=encoding,
        )
    )
    assert rec.resp_body is not None and rec.resp_body_size == len(raw)
    text = rec.resp_body.decode()
    assert canaries.email not in text and canaries.phone not in text
    assert json.loads(text)["data"][0]["email"].endswith(".invalid")


def test_text_and_form_bodies(anon: Anonymizer, canaries: Canaries) -> None:
    form = f"email={canaries.email}&password={canaries.password}&remember=1"
    rec = anon.record(
        exchange(
            method="POST",
            req_headers=[("Content-Type", "application/x-www-form-urlencoded")],
            req_body=form.encode(),
        )
    )
    assert rec.req_body is not None
    stored = rec.req_body.decode()
    assert "remember=1" in stored and "password=%5Bremoved%5D" in stored
    assert canaries.password not in stored
    text = f"card {canaries.card} called from {canaries.phone}".encode()
    rec = anon.record(exchange(resp_headers=[("Content-Type", "text/plain")], resp_body=text))
    assert rec.resp_body is not None
    assert canaries.card not in rec.resp_body.decode() and find_all(rec.resp_body.decode()) == []


def test_awkward_bodies_never_crash(anon: Anonymizer) -> None:
    cases = [
        ([("Content-Type", "image/png")], b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
        ([("Content-Type", "text/plain; charset=utf-8")], b"\xff\xfe\xfa not utf-8"),
        ([("Content-Type", "application/json")], b'{"truncated": '),
        ([("Content-Type", "application/json"), ("Content-Encoding", "gzip")], b"not gzip"),
        ([("Content-Type", "multipart/form-data; boundary=x")], b"--x\r\npassword\r\n--x--"),
        ([], b""),
    ]
    for headers, body in cases:
        enc = dict(headers).get("Content-Encoding")
        rec = anon.record(exchange(resp_headers=headers, resp_body=body, resp_body_encoding=enc))
        assert rec.resp_body_size == len(body)
        if b"PNG" in body or b"\xff" in body or enc or b"--x" in body:
            assert rec.resp_body is None  # not storable safely: size only


def test_big_body_cut_with_original_size(anon: Anonymizer, canaries: Canaries) -> None:
    limit = anon.policy.max_body_bytes
    items = [{"email": canaries.email, "n": i} for i in range(limit // 20)]
    raw = json_body(items)
    assert len(raw) > limit
    rec = anon.record(exchange(resp_headers=JSON, resp_body=raw))
    assert rec.resp_body is not None and len(rec.resp_body) == limit
    assert rec.resp_body_size == len(raw)
    assert canaries.email not in rec.resp_body.decode("utf-8", "replace")


def test_integer_ids_keep_their_shape(anon: Anonymizer) -> None:
    rec = anon.record(
        exchange(
            path="/api/v1/orders/123456/items/42",
            resp_headers=JSON,
            resp_body=json_body({"id": 123456, "count": 42, "owner_id": 77}),
        )
    )
    segments = rec.path.split("/")
    assert segments[4].isdigit() and len(segments[4]) == 6 and segments[4] != "123456"
    assert rec.resp_body is not None
    body = json.loads(rec.resp_body)
    assert str(body["id"]) == segments[4]  # same id in the path and in the body
    assert body["count"] == 42  # not an id: kept
    assert isinstance(body["owner_id"], int) and len(str(body["owner_id"])) == 2


def test_sessions_follow_login_and_refresh(anon: Anonymizer, canaries: Canaries) -> None:
    token_a, token_b, refresh = canaries.jwt, make_canaries(seed=12).jwt, make_canaries(seed=13).jwt
    login = anon.record(
        exchange(
            method="POST",
            path="/api/v1/auth/login",
            resp_headers=JSON,
            resp_body=json_body({"data": {"access_token": token_a, "refresh_token": refresh}}),
        )
    )
    use = anon.record(exchange(req_headers=[("Authorization", f"Bearer {token_a}")]))
    renew = anon.record(
        exchange(
            method="POST",
            path="/api/v1/auth/refresh",
            req_headers=JSON,
            req_body=json_body({"refresh_token": refresh}),
            resp_headers=JSON,
            resp_body=json_body({"data": {"access_token": token_b}}),
        )
    )
    after = anon.record(exchange(req_headers=[("Authorization", f"Bearer {token_b}")]))
    other = anon.record(exchange(req_headers=[("Authorization", f"Bearer {canaries.cookie}")]))
    anonymous = anon.record(exchange(path="/health"))
    assert login.session is not None and login.session.startswith("token:")
    assert login.session == use.session == renew.session == after.session
    assert other.session != login.session and other.session is not None
    assert other.session.startswith("bearer:")
    assert anonymous.session is not None and anonymous.session.startswith("client:")


def test_transport_error_row(anon: Anonymizer, canaries: Canaries) -> None:
    rec = anon.record(
        exchange(status=None, duration_ms=None, error=f"connection to {canaries.ip} refused")
    )
    assert rec.status is None and rec.error is not None and canaries.ip not in rec.error


def test_policy_file_errors_are_one_line() -> None:
    with pytest.raises(ConfigError, match=r"policy <string>: not valid TOML"):
        parse_policy("[bodies")
    with pytest.raises(ConfigError, match=r"unknown section 'extra'"):
        parse_policy("[extra]\n")
    default = (load_policy().source, load_policy().hash)
    assert default[0] == "default" and len(default[1]) == 16
