"""Pseudonyms: deterministic per key, shape-preserving, and never a finding themselves."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from faker import Faker
from hypothesis import given
from hypothesis import strategies as st

from tracereplay.capture.anonymize.detectors import find_all, luhn_ok
from tracereplay.capture.anonymize.pseudonyms import PSEUDO_JWT_HEADER, Pseudonymizer, load_key
from tracereplay.capture.anonymize.words import is_lorem_text
from tracereplay.errors import ConfigError

KEY = b"test-key-0123456789"
EMAIL = re.compile(r"[a-z]+\.[a-z]+[0-9a-f]{4}@anon\.invalid")


@pytest.fixture(scope="module")
def pseudo() -> Pseudonymizer:
    return Pseudonymizer(KEY)


@pytest.fixture
def fake() -> Faker:
    faker = Faker("en_US")
    faker.seed_instance(99)
    return faker


def make_jwt(fake: Faker) -> str:
    payload = {"sub": fake.uuid4(), "name": fake.name(), "iat": fake.unix_time()}
    return jwt.encode(payload, fake.password(length=32), algorithm="HS256")


def b64json(part: str) -> object:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# Every shape, with a faker-made input.
MAKERS: dict[str, tuple[str, Callable[[Faker], str]]] = {
    "email": ("email", lambda f: f.email()),
    "jwt": ("jwt", make_jwt),
    "token": ("token", lambda f: f.password(length=f.random_int(8, 80), special_chars=False)),
    "uuid": ("uuid", lambda f: f.uuid4()),
    "integer": ("integer", lambda f: str(f.random_int(0, 10 ** f.random_int(1, 19)))),
    "phone": ("phone", lambda f: f.phone_number()),
    "card": ("card", lambda f: f.credit_card_number()),
    "ipv4": ("ipv4", lambda f: f.ipv4()),
    "ipv6": ("ipv6", lambda f: f.ipv6()),
    "name": ("name", lambda f: f.name()),
    "words": ("words", lambda f: f.sentence() + " " + f.company() + " " + str(f.random_int())),
    "hex": ("hex", lambda f: f.sha1()[: f.random_int(6, 15)]),
    "host": ("host", lambda f: f.domain_name(levels=2)),
    "dob": ("date_of_birth", lambda f: f.date_of_birth().isoformat()),
    "ssn": ("_ssn", lambda f: f.ssn()),
    "iban": ("_iban", lambda f: f.iban()),
}


@pytest.mark.parametrize("shape", list(MAKERS))
def test_pseudonyms_are_never_findings(pseudo: Pseudonymizer, fake: Faker, shape: str) -> None:
    method, make = MAKERS[shape]
    for _ in range(1000):
        value = make(fake)
        made = getattr(pseudo, method)(value)
        assert find_all(made) == [], (shape, made)
        if shape in ("token", "jwt"):
            assert find_all(f"Authorization: Bearer {made}") == [], made


# card(), ssn() and iban() keep the input's non-digit characters, date_of_birth() its
# format: only inputs of their own shape are clean there.
@given(
    st.sampled_from(sorted(set(MAKERS) - {"card", "ssn", "iban", "dob", "hex"})),
    st.text(max_size=40),
)
def test_any_input_gives_a_clean_pseudonym(shape: str, value: str) -> None:
    made = getattr(Pseudonymizer(KEY), MAKERS[shape][0])(value)
    assert isinstance(made, str)
    assert find_all(made) == []


@pytest.mark.parametrize("shape", list(MAKERS))
def test_deterministic_and_keyed(fake: Faker, shape: str) -> None:
    method, make = MAKERS[shape]
    value = make(fake)
    first = getattr(Pseudonymizer(KEY), method)(value)
    assert getattr(Pseudonymizer(KEY, cache_size=1), method)(value) == first
    assert getattr(Pseudonymizer(b"another key"), method)(value) != first


def test_same_value_same_pseudonym_whatever_the_kind_dispatch(pseudo: Pseudonymizer) -> None:
    assert pseudo.for_kind("email", "Jane@Example.com") == pseudo.email("jane@example.com")
    assert pseudo.for_kind("phone", "234.567.8901") == pseudo.phone("234.567.8901")
    assert pseudo.for_kind("bearer", "tok-0123456789abcdef") == pseudo.token("tok-0123456789abcdef")
    with pytest.raises(ValueError, match="no pseudonym"):
        pseudo.for_kind("uuid", "x")


def test_email_shape(pseudo: Pseudonymizer) -> None:
    made = pseudo.email("John.Doe@Example.COM")
    assert EMAIL.fullmatch(made)
    assert made == pseudo.email("john.doe@example.com")
    assert pseudo.email("john.doe%40example.com") == made.replace("@", "%40")


def test_jwt_shape(pseudo: Pseudonymizer, fake: Faker) -> None:
    token = make_jwt(fake)
    made = pseudo.jwt(token)
    parts, made_parts = token.split("."), made.split(".")
    assert made_parts[0] == PSEUDO_JWT_HEADER
    assert b64json(PSEUDO_JWT_HEADER) == {"alg": "none", "typ": "JWT", "tracereplay": "pseudonym"}
    assert [len(p) for p in made_parts[1:]] == [len(p) for p in parts[1:]]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in made_parts)
    short = pseudo.jwt("eyJhbGciOiJub25lIn0.e30.")
    assert [len(p) for p in short.split(".")[1:]] == [16, 16]
    assert pseudo.secret(token) == made


@pytest.mark.parametrize(("length", "expected"), [(3, 16), (16, 16), (40, 40), (500, 128)])
def test_token_shape(pseudo: Pseudonymizer, length: int, expected: int) -> None:
    made = pseudo.token("k" * length)
    assert len(made) == expected
    assert re.fullmatch(r"anon_[0-9A-Za-z]+", made)
    assert pseudo.secret("k" * length) == made


def test_uuid_shape_and_case(pseudo: Pseudonymizer, fake: Faker) -> None:
    value = fake.uuid4()
    made = pseudo.uuid(value)
    parsed = uuid.UUID(made)
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert made == made.lower()
    assert pseudo.uuid(value.upper()) == made.upper()
    assert pseudo.uuid(value.replace("-", "")) == parsed.hex


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_integer_shape(value: int) -> None:
    made = Pseudonymizer(KEY).integer(str(value))
    assert len(made.lstrip("-")) == len(str(abs(value)))
    assert made.startswith("-") == (value < 0)
    assert made == "0" if value == 0 else not made.lstrip("-").startswith("0")


def test_phone_shape_and_normalisation(pseudo: Pseudonymizer) -> None:
    made = pseudo.phone("(555) 123-4567")
    assert re.fullmatch(r"\+1-[2-9]\d\d-555-01\d\d", made)
    for same in ("555.123.4567", "+1-555-123-4567", "001-555-123-4567", "5551234567"):
        assert pseudo.phone(same) == made
    assert pseudo.phone("555-123-4567x89") != made


@pytest.mark.parametrize("card", ["4111111111111111", "4111 1111 1111 1111", "3782-822463-10005"])
def test_card_shape(pseudo: Pseudonymizer, card: str) -> None:
    made = pseudo.card(card)
    assert len(made) == len(card)
    assert [c.isdigit() for c in made] == [c.isdigit() for c in card]
    assert [c for c in made if not c.isdigit()] == [c for c in card if not c.isdigit()]
    assert not luhn_ok(made.replace(" ", "").replace("-", ""))


def test_ip_shapes(pseudo: Pseudonymizer, fake: Faker) -> None:
    for _ in range(200):
        v4 = ipaddress.ip_address(pseudo.ipv4(fake.ipv4()))
        assert v4 in ipaddress.ip_network("198.18.0.0/15")
        made6 = pseudo.ipv6(fake.ipv6())
        assert ipaddress.ip_address(made6) in ipaddress.ip_network("2001:db8::/32")
        assert str(ipaddress.ip_address(made6)) == made6  # compressed form


def test_name_is_latin_words(pseudo: Pseudonymizer) -> None:
    made = pseudo.name("Jane Q. Public")
    assert len(made.split()) == 3 and all(w[0].isupper() for w in made.split())
    assert is_lorem_text(made)  # scan recognises it as a pseudonym
    assert pseudo.name("  jane q.  PUBLIC ") == made


def test_words_keep_the_shape(pseudo: Pseudonymizer) -> None:
    for text in ["Test client for Smith-Jones LLC", "Müller & Söhne GmbH, Berlin 10115", "x"]:
        made = pseudo.words(text)
        assert made != text and is_lorem_text(made)
        assert [len(w) for w in made.split()] == [len(w) for w in text.split()]
        assert [c for c in made if not c.isalnum()] == [c for c in text if not c.isalnum()]
    assert (
        pseudo.words("ACME-42") == pseudo.words("ACME-42") and pseudo.words("ACME-42")[:4].isupper()
    )


def test_host_date_ssn_iban_shapes(pseudo: Pseudonymizer, fake: Faker) -> None:
    from stdnum import iban
    from stdnum.us import ssn

    assert pseudo.host("api.partner.com").endswith(".anon.invalid")
    assert pseudo.host("API.partner.com.") == pseudo.host("api.partner.com")
    made = pseudo.date_of_birth("03/12/1985")
    assert re.fullmatch(r"01/01/(19[4-9][0-9]|200[0-5])", made), made
    for _ in range(200):
        number, account = fake.ssn(), fake.iban()
        made_ssn, made_iban = pseudo.for_kind("ssn", number), pseudo.for_kind("iban", account)
        assert made_ssn.startswith("9") and not ssn.is_valid(made_ssn)
        assert len(made_iban) == len(account) and not iban.is_valid(made_iban)
    assert pseudo.hex("822218a7a763") != "822218a7a763" and len(pseudo.hex("822218a7a763")) == 12


def test_digest(pseudo: Pseudonymizer) -> None:
    expected = hmac.new(KEY, b"session\0abc", hashlib.sha256).hexdigest()
    assert pseudo.digest("session", "abc") == expected[:16]
    assert pseudo.digest("session", "abc", 64) == expected
    with pytest.raises(ValueError, match=r"1\.\.64"):
        pseudo.digest("session", "abc", 65)


def test_small_cache_evicts_and_stays_consistent() -> None:
    small = Pseudonymizer(KEY, cache_size=2)
    firsts = [small.email(f"user{i}@example.com") for i in range(5)]
    assert [small.email(f"user{i}@example.com") for i in range(5)] == firsts
    assert len(set(firsts)) == 5


def test_key_never_in_repr() -> None:
    assert "test-key" not in repr(Pseudonymizer(KEY))
    with pytest.raises(ValueError, match="empty"):
        Pseudonymizer(b"")


# --- load_key ------------------------------------------------------------------------------


def test_key_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    monkeypatch.setenv("TRACEREPLAY_KEY", "from-env")
    assert load_key(key_file=key_file) == (b"from-file", "file")
    assert load_key() == (b"from-env", "env")
    monkeypatch.delenv("TRACEREPLAY_KEY")
    key, source = load_key()
    assert source == "random" and len(key) == 32
    assert load_key()[0] != key


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "key file not found"),
        (lambda p: p.write_bytes(b" \n"), "key file is empty"),
        (lambda p: p.mkdir(), "key file cannot be read"),
    ],
)
def test_bad_key_file(tmp_path: Path, setup: Callable[[Path], object], message: str) -> None:
    key_file = tmp_path / "key"
    setup(key_file)
    with pytest.raises(ConfigError, match=message) as info:
        load_key(key_file=key_file)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value", ["10:20:30:40:50:60:70:80", "abc 1::2 def", "x 2001:0:0:0:0:0:0:1"]
)
def test_words_of_a_shape_that_stays_a_finding_end_as_a_clean_token(
    pseudo: Pseudonymizer, value: str
) -> None:
    """Whatever its digits, `10:20:…:80` is an IPv6 address: redrawing the digits never
    cleans it, which once hung an anonymizer worker for good (and the capture's stop)."""
    made = pseudo.words(value)
    assert find_all(made) == [] and made != value
    assert pseudo.words(value) == made  # still keyed and consistent


@pytest.mark.parametrize(
    ("make", "value"),
    [
        (Pseudonymizer.integer, "4111111111111111"),
        (Pseudonymizer.integer, "-20231"),
        (Pseudonymizer.hex, "DEADBEEF0042"),
        (Pseudonymizer.hex, "9f86d081884c7d65"),
        (lambda p, v: p.for_kind("card", v), "4111 1111 1111 1111"),
        (lambda p, v: p.for_kind("iban", v), "DE89 3704 0044 0532 0130 00"),
        (Pseudonymizer.jwt, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"),
        (Pseudonymizer.words, "call 555 0100"),
    ],
)
def test_every_redraw_ends_even_when_no_draw_is_clean(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[Pseudonymizer, str], str], value: str
) -> None:
    """A shape the scanner always flags must not loop: with a detector that flags every
    draw, each maker ends on its fallback, and that fallback is clean to the real one."""
    from tracereplay.capture.anonymize import pseudonyms

    calls = 0

    def always_a_finding(text: str, kinds: object = None) -> list[str]:
        nonlocal calls
        calls += 1
        assert calls < 100, "redraws without a bound"
        return ["flagged"]

    monkeypatch.setattr(pseudonyms, "find_all", always_a_finding)
    made = make(Pseudonymizer(KEY), value)
    monkeypatch.undo()
    assert calls == 8  # the bound: _REDRAWS draws, then the fallback
    assert made != value
    assert find_all(made) == []
