"""The anonymizer as a pure function: Exchange in, TraceRecord out, no proxy involved."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import brotli
import pytest
from faker import Faker

from tests.capture.canaries import Canaries, make_canaries
from tracereplay.capture.anonymize.detectors import find_all
from tracereplay.capture.anonymize.policy import Policy, load_policy, parse_policy
from tracereplay.capture.anonymize.record import Anonymizer
from tracereplay.capture.anonymize.values import REMOVED
from tracereplay.capture.exchange import Exchange
from tracereplay.errors import ConfigError
from tracereplay.trace import TraceRecord

KEY = b"k" * 32
DEFAULT_TEXT = files("tracereplay.capture.anonymize").joinpath("default_policy.toml").read_text()
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


# --- default deny -------------------------------------------------------------------------


def body_of(record: object, name: str = "req_body") -> dict[str, object]:
    data = getattr(record, name)
    assert data is not None
    parsed: dict[str, object] = json.loads(data)
    return parsed


def test_only_what_a_rule_explains_is_kept(anon: Anonymizer) -> None:
    fake = Faker()
    fake.seed_instance(3)
    kept = {
        "token_type": "bearer", "status": "in_progress", "role": "admin", "count": 7,
        "ratio": "0.25", "created_at": "2026-03-02T09:30:00Z", "version": "1.64.3",
        "active": True, "mode": "webhook", "tags": ["ops", "finance"], "locale": "en-US",
    }  # fmt: skip
    replaced = {
        "owner": fake.user_name(), "description": f"Test client for {fake.company()}",
        "handle": "jsmith42", "team": "Acme", "blurb": fake.sentence(),
    }  # fmt: skip
    rec = anon.record(
        exchange(method="POST", req_headers=JSON, req_body=json_body(kept | replaced))
    )
    stored = body_of(rec)
    for name, value in kept.items():
        assert stored[name] == value, name
    for name, value in replaced.items():
        assert stored[name] != value and isinstance(stored[name], str), name
    # Shape: same word count, same lengths; Latin words scan recognises as a pseudonym.
    text = str(stored["description"])
    assert [len(w) for w in text.split()] == [len(w) for w in replaced["description"].split()]
    assert find_all(stored_text(rec)) == []


def test_field_names_the_deny_list_missed(anon: Anonymizer) -> None:
    secret = "Xy7!secret-Value"
    names = ["pass", "pw", "passcode", "user_pass", "oldpassword", "newpassword", "pincode"]
    doc = {n: secret for n in names} | {"passwords": [secret, secret]}
    rec = anon.record(exchange(method="POST", req_headers=JSON, req_body=json_body(doc)))
    stored = body_of(rec)
    assert all(stored[n] == REMOVED for n in names)
    assert stored["passwords"] == [REMOVED, REMOVED]
    people = {"displayName": "Jane Roe", "givenName": "Jane", "contactName": "Jo Bloggs",
              "owner": "Jane Roe", "address": "12 High St", "company": "Roe & Co"}  # fmt: skip
    rec = anon.record(exchange(method="POST", req_headers=JSON, req_body=json_body(people)))
    assert all(v not in stored_text(rec) for v in people.values())


def test_values_no_detector_knew(anon: Anonymizer) -> None:
    fake = Faker()
    fake.seed_instance(4)
    card = fake.credit_card_number(card_type="visa16")
    values = {
        "a": "AKIA" + "QWERTYUIOPASDFGH", "b": "ghp_" + "a1B2" * 9, "c": "sk_live_" + "x9Y8" * 6,
        "d": fake.ssn(), "e": fake.iban(), "dob": "1985-03-12", "card": int(card),
        "f": "030 12345678", "g": "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----",
    }  # fmt: skip
    doc = {**values, fake.email(): 1}
    rec = anon.record(exchange(method="POST", req_headers=JSON, req_body=json_body(doc)))
    stored = body_of(rec)
    text = stored_text(rec)
    for value in [*map(str, values.values()), *[k for k in doc if "@" in k]]:
        assert value not in text, value
    assert stored["dob"] == f"{str(stored['dob'])[:4]}-01-01"  # a year, on January 1st
    assert isinstance(stored["card"], int) and len(str(stored["card"])) == 16


def test_urls_keep_scheme_and_shape_with_a_pseudonym_host(anon: Anonymizer) -> None:
    doc = {
        "callback": "https://hooks.partner-example.com/in/7?x=1",
        "self": "http://127.0.0.1:8000/a",
    }
    rec = anon.record(exchange(resp_headers=JSON, resp_body=json_body(doc)))
    stored = body_of(rec, "resp_body")
    assert str(stored["callback"]).startswith("https://h") and ".anon.invalid/in/" in str(
        stored["callback"]
    )
    assert stored["self"] == "http://127.0.0.1:8000/a"  # the exchange's own host stays


def test_url_shaped_places(anon: Anonymizer) -> None:
    token = "abcDEF123ghiJKL456mnoPQR"
    rec = anon.record(
        exchange(
            path=f"/reset/{token}/shop;jsessionid={token}",
            query=f"a=1;token={token}&sig={token}",
            req_headers=[("Referer", f"https://app.example.com/p#tok={token}")],
            status=302,
            resp_headers=[
                (
                    "Location",
                    f"https://client.example.com/cb#access_token={token}&token_type=bearer",
                ),
                ("Link", f'<https://api.example.com/i?page=2&access_token={token}>; rel="next"'),
                ("Refresh", f"0; url=/w?session_token={token}"),
                ("Set-Cookie", f"a=1; Path=/, sid={token}; HttpOnly"),
                ("Set-Cookie", token),
            ],
        )
    )
    text = stored_text(rec)
    assert token not in text
    location = dict(rec.resp_headers)["Location"]
    assert location.startswith("https://h") and location.endswith("&token_type=bearer")
    assert 'rel="next"' in dict(rec.resp_headers)["Link"]
    cookies = [v for k, v in rec.resp_headers if k == "Set-Cookie"]
    assert cookies[0].startswith("a=anon_") and ", sid=anon_" in cookies[0]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"\xef\xbb\xbf" + b'{"password": "CANARY-1x", "n": 1}'),
        ("text/json", b'{"password": "CANARY-1x"}'),
        ("application/x-json", b'{"password": "CANARY-1x"}'),
        ("text/javascript", b'cb({"password": "CANARY-1x"});'),
        ("application/x-ndjson", b'{"password": "CANARY-1x"}\n{"n": 2}\n'),
        ("application/json", b'{"payload": "{\\"password\\": \\"CANARY-1x\\"}"}'),
        ("text/plain", b"Dear CANARY-1x, welcome"),
        ("text/html", b'<p title="CANARY-1x">Hi CANARY-1x</p><!-- CANARY-1x -->'),
        ("application/xml", b'<a b="CANARY-1x"><password>CANARY-1x</password></a>'),
        ("", b'{"password": "CANARY-1x"}'),
    ],
)
def test_every_body_goes_through_a_parser(anon: Anonymizer, content_type: str, body: bytes) -> None:
    rec = anon.record(exchange(resp_headers=[("Content-Type", content_type)], resp_body=body))
    assert rec.resp_body is not None, "a parsable body is stored"
    assert b"CANARY" not in rec.resp_body
    assert rec.resp_body_size == len(body)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"password": "CANARY-1x", "n": '),  # truncated
        ("application/xml", b'<!DOCTYPE x [<!ENTITY a "CANARY-1x">]><x>&a;</x>'),  # entities
    ],
)
def test_a_body_that_does_not_parse_is_not_stored(
    anon: Anonymizer, content_type: str, body: bytes
) -> None:
    rec = anon.record(exchange(resp_headers=[("Content-Type", content_type)], resp_body=body))
    assert rec.resp_body is None and rec.resp_body_size == len(body)


def test_a_body_too_big_to_parse_is_size_only(anon: Anonymizer) -> None:
    raw = json_body([{"password": "CANARY-1x", "pad": "x" * 100}] * 12000)
    assert len(raw) > 16 * anon.policy.max_body_bytes
    rec = anon.record(exchange(resp_headers=JSON, resp_body=raw))
    assert rec.resp_body is None and rec.resp_body_size == len(raw)  # never a raw prefix


def test_anonymizer_is_picklable_and_pure(anon: Anonymizer, canaries: Canaries) -> None:
    import pickle

    ex = exchange(query=f"email={canaries.email}", req_headers=[("X-Name", "Jane Roe")])
    first = anon.record(ex)
    clone = pickle.loads(pickle.dumps(Anonymizer(load_policy(), KEY)))
    assert clone.record(ex) == first


# --- --append refuses another key or policy -----------------------------------------------


def test_append_refuses_another_key_or_policy(tmp_path: Path) -> None:
    from tracereplay.capture.anonymize.provenance import (
        check_append,
        key_fingerprint,
        trace_metadata,
    )
    from tracereplay.errors import UsageError
    from tracereplay.trace import open_trace, open_writer

    policy, other = (
        load_policy(),
        parse_policy(DEFAULT_TEXT.replace("max_bytes = 65536", "max_bytes = 1024")),
    )
    out = tmp_path / "t"
    writer = open_writer(out, trace_metadata(out, "capture", policy, KEY, append=True))
    writer.write(anon_record(policy))
    writer.close()
    stored = open_trace(out).metadata
    assert stored.key_fingerprint == key_fingerprint(KEY) and KEY.hex() not in str(stored)
    trace_metadata(out, "capture", policy, KEY, append=True)  # same key and policy: fine
    with pytest.raises(UsageError, match="another key"):
        trace_metadata(out, "capture", policy, b"another key", append=True)
    with pytest.raises(UsageError, match="policy"):
        trace_metadata(out, "capture", other, KEY, append=True)
    with pytest.raises(UsageError, match="did not record"):
        check_append(replace(stored, key_fingerprint=""), policy.hash, key_fingerprint(KEY))


def test_capture_append_with_another_key_exits_2(tmp_path: Path) -> None:
    from tracereplay.capture.anonymize.provenance import trace_metadata
    from tracereplay.trace import open_writer

    out = tmp_path / "t"
    writer = open_writer(out, trace_metadata(out, "capture", load_policy(), KEY, append=False))
    writer.write(anon_record(load_policy()))
    writer.close()
    before = sorted(p.name for p in out.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "capture", "--target", "http://127.0.0.1:9",
         "--listen", "127.0.0.1:0", "--out", str(out), "--append", "--duration", "1s"],
        capture_output=True, text=True, check=False, env={**os.environ, "TRACEREPLAY_KEY": "other"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "another key" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written


def anon_record(policy: Policy) -> TraceRecord:
    return Anonymizer(policy, KEY).record(exchange())
