"""The canary corpus: faker-made secrets and personal data in the places real APIs put them.

Each `Case` is one HTTP exchange carrying one canary in one place (a JSON field, a header,
a query, a URL fragment, a body of some media type, …). `build_corpus()` makes every
place with several faker seeds; the same cases are captured live, imported from HAR and
from mitmdump files, and planted raw into traces for `scan`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from faker import Faker

Headers = tuple[tuple[str, str], ...]
JSON_TYPE: Headers = (("Content-Type", "application/json"),)


@dataclass(frozen=True)
class Case:
    place: str
    """Where the canary sits, e.g. "json field pass" or "Location fragment"."""
    canary: str
    """The raw value that must never be stored."""
    method: str = "GET"
    path: str = "/api/v1/things"
    query: str = ""
    req_headers: Headers = ()
    req_body: bytes | None = None
    status: int = 200
    resp_headers: Headers = JSON_TYPE
    resp_body: bytes | None = b'{"status":"success"}'
    index: int = field(default=0, compare=False)


def _post_json(place: str, canary: str, doc: object) -> Case:
    return Case(place, canary, "POST", req_headers=JSON_TYPE, req_body=json.dumps(doc).encode())


def _answer(place: str, canary: str, body: bytes, content_type: str) -> Case:
    return Case(place, canary, resp_headers=(("Content-Type", content_type),), resp_body=body)


def _token(fake: Faker, length: int = 32) -> str:
    return fake.pystr(min_chars=length, max_chars=length) + str(fake.random_int(10, 99))


def _json_field(name: str, make: Callable[[Faker], str]) -> Callable[[Faker], Case]:
    def case(fake: Faker) -> Case:
        value = make(fake)
        return _post_json(f"json field {name}", value, {name: value, "count": 3})

    return case


def _password(fake: Faker) -> str:
    return fake.password(length=16, special_chars=True)


def _de_phone(fake: Faker) -> str:
    german = Faker("de_DE")
    german.seed_instance(fake.random_int(0, 10**6))  # seeded like every other canary
    return german.phone_number()


def _pem(fake: Faker) -> str:
    lines = "\n".join(fake.pystr(min_chars=64, max_chars=64) for _ in range(4))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----"


_FIELDS: list[tuple[str, Callable[[Faker], str]]] = [
    ("pass", _password),
    ("pw", _password),
    ("passcode", lambda f: str(f.random_int(100000, 999999)) + "x"),
    ("user_pass", _password),
    ("oldpassword", _password),
    ("newpassword", _password),
    ("pincode", lambda f: f"{f.random_int(1000, 9999)}-{f.random_int(10, 99)}"),
    ("displayName", lambda f: f.name()),
    ("givenName", lambda f: f.first_name() + "ia"),
    ("contactName", lambda f: f.name()),
    ("owner", lambda f: f.user_name() + str(f.random_int(1, 99))),
    ("address", lambda f: f.address().replace("\n", ", ")),
    ("street_address", lambda f: f.street_address()),
    ("company", lambda f: f.company()),
    ("notes", lambda f: f"Call {f.name()} about the {f.company()} renewal"),
    ("handle", lambda f: f.user_name() + "x" + str(f.random_int(10, 99))),
    ("aws_access", lambda f: "AKIA" + f.pystr(min_chars=16, max_chars=16).upper()),
    ("gh", lambda f: "ghp_" + f.pystr(min_chars=36, max_chars=36)),
    ("stripe", lambda f: "sk_live_" + f.pystr(min_chars=24, max_chars=24)),
    (
        "slack_hook",
        lambda f: f"xoxb-{f.random_int(1000, 9999)}-{f.pystr(min_chars=24, max_chars=24).lower()}",
    ),
    ("maps", lambda f: "AIza" + f.pystr(min_chars=35, max_chars=35)),
    ("pem", _pem),
    ("ssn", lambda f: f.ssn()),
    ("tax_number", lambda f: f.ssn()),
    ("iban", lambda f: f.iban()),
    ("payout_account", lambda f: f.iban()),
    ("dob", lambda f: f.date_of_birth().isoformat()),
    ("date_of_birth", lambda f: f.date_of_birth().strftime("%m/%d/%Y")),
    ("contact_phone_de", _de_phone),
    ("phone", lambda f: f"0{f.random_int(30, 89)} {f.random_int(1000000, 9999999)}"),
    ("reachable_at", lambda f: f"+44 20 {f.random_int(7000, 7999)} {f.random_int(1000, 9999)}"),
    ("website", lambda f: f"https://{f.domain_word()}-{f.random_int(10, 99)}.{f.tld()}/about"),
]


def _fields() -> list[Callable[[Faker], Case]]:
    return [_json_field(name, make) for name, make in _FIELDS]


def _nested(fake: Faker) -> Case:
    value = _password(fake)
    return _post_json("json field passwords[]", value, {"passwords": [value, "other1A!"]})


def _card_number(fake: Faker) -> Case:
    card = fake.credit_card_number(card_type="visa16")
    doc = {"payment": {"number": int(card), "amount": 12.5}}
    return _post_json("json number card", card, doc)


def _email_key(fake: Faker) -> Case:
    email = fake.email()
    return _post_json("json key email", email, {"scores": {email: 3}})


def _json_in_string(fake: Faker) -> Case:
    secret = _password(fake)
    inner = json.dumps({"password": secret, "user": fake.email()})
    return _post_json("json inside a json string", secret, {"payload": inner})


def _free_text(fake: Faker) -> Case:
    company = fake.company()
    doc = {"description": f"Test client for {company}", "status": "active"}
    return Case("json free text (company)", company, resp_body=json.dumps(doc).encode())


def _third_party_url(fake: Faker) -> Case:
    host = f"{fake.domain_word()}{fake.random_int(10, 99)}.example-partner.com"
    doc = {"callback_url": f"https://{host}/hooks/in", "n": 1}
    return Case("json url third-party host", host, resp_body=json.dumps(doc).encode())


# --- headers, queries, URL-shaped places ----------------------------------------------------


def _header(name: str, make: Callable[[Faker], str], wrap: str = "{}") -> Callable[[Faker], Case]:
    def case(fake: Faker) -> Case:
        value = make(fake)
        return Case(f"header {name}", value, req_headers=((name, wrap.format(value)),))

    return case


def _query(name: str, make: Callable[[Faker], str], template: str) -> Callable[[Faker], Case]:
    def case(fake: Faker) -> Case:
        value = make(fake)
        return Case(f"query {name}", value, query=template.format(value))

    return case


def _response_header(
    name: str, make: Callable[[Faker], str], template: str, status: int = 200
) -> Callable[[Faker], Case]:
    def case(fake: Faker) -> Case:
        value = make(fake)
        headers = (*JSON_TYPE, (name.split(" ", maxsplit=1)[0], template.format(value)))
        return Case(f"{name}", value, status=status, resp_headers=headers)

    return case


def _path_token(fake: Faker) -> Case:
    token = _token(fake, 40)
    return Case("path segment token", token, path=f"/reset/{token}")


def _jsessionid(fake: Faker) -> Case:
    sid = fake.pystr(min_chars=32, max_chars=32).upper()
    return Case("path matrix jsessionid", sid, path=f"/shop/cart;jsessionid={sid}")


def _folded_cookie(fake: Faker) -> Case:
    sid = _token(fake)
    headers = (*JSON_TYPE, ("Set-Cookie", f"a=1; Path=/, sid={sid}; HttpOnly"))
    return Case("Set-Cookie folded", sid, resp_headers=headers)


def _nameless_cookie(fake: Faker) -> Case:
    value = _token(fake)
    return Case("Cookie without =", value, req_headers=(("Cookie", f"theme=dark; {value}"),))


# --- bodies the JSON rules never saw ---------------------------------------------------------


def _big_body(fake: Faker) -> Case:
    secret = _password(fake)
    items = [{"password": secret, "api_key": _token(fake), "name": fake.name()}]
    items += [{"n": i, "pad": "x" * 100} for i in range(11000)]
    return _answer("body over 1 MiB", secret, json.dumps(items).encode(), "application/json")


def _typed_json(kind: str, content_type: str, bom: bool = False) -> Callable[[Faker], Case]:
    def case(fake: Faker) -> Case:
        secret = _password(fake)
        body = json.dumps({"password": secret, "name": fake.name()}).encode()
        return _answer(
            f"body {kind}", secret, (b"\xef\xbb\xbf" if bom else b"") + body, content_type
        )

    return case


def _ndjson(fake: Faker) -> Case:
    name = fake.name()
    lines = [json.dumps({"contactName": name, "n": 1}), json.dumps({"n": 2})]
    return _answer("body NDJSON", name, "\n".join(lines).encode(), "application/x-ndjson")


def _jsonp(fake: Faker) -> Case:
    email = fake.email()
    body = f"callback({json.dumps({'email': email})});".encode()
    return _answer("body JSONP text/javascript", email, body, "text/javascript")


def _truncated(fake: Faker) -> Case:
    secret = _password(fake)
    body = json.dumps({"password": secret, "user": fake.user_name()})[:-5].encode()
    return _answer("body truncated JSON", secret, body, "application/json")


def _plain(fake: Faker) -> Case:
    name = fake.name()
    return _answer(
        "body text/plain", name, f"Dear {name}, your order shipped.".encode(), "text/plain"
    )


def _html(fake: Faker) -> Case:
    name = fake.name()
    body = f'<html><body><p class="greeting">Hello {name}</p><a href="/u/1">me</a></body></html>'
    return _answer("body text/html text", name, body.encode(), "text/html")


def _html_attribute(fake: Faker) -> Case:
    email = fake.email()
    body = f'<form><input type="hidden" name="contact" value="{email}"></form>'
    return _answer("body text/html attribute", email, body.encode(), "text/html; charset=utf-8")


def _xml(fake: Faker) -> Case:
    name = fake.name()
    body = f'<?xml version="1.0"?><user id="7"><fullName>{name}</fullName></user>'
    return _answer("body XML element", name, body.encode(), "application/xml")


def _xml_attribute(fake: Faker) -> Case:
    secret = _token(fake)
    body = f'<session token="{secret}"><state>active</state></session>'
    return _answer("body XML attribute", secret, body.encode(), "text/xml")


def _form(fake: Faker) -> Case:
    secret = _password(fake)
    body = urlencode({"user": fake.user_name(), "pw": secret})
    headers = (("Content-Type", "application/x-www-form-urlencoded"),)
    return Case("body form pw", secret, "POST", req_headers=headers, req_body=body.encode())


# --- identifiers of people as a real API shows them (Kinto 26.5: accounts, principals) ----


def _username(fake: Faker) -> str:
    return fake.user_name()  # faker's four shapes: millerjessica, jessicamiller, jessica82, jmiller


def _dotted(fake: Faker) -> str:
    return f"{fake.first_name()}.{fake.last_name()}".lower()


def _initial_digits(fake: Faker) -> str:
    return f"{fake.first_name()[0]}{fake.last_name()}{fake.random_int(10, 99)}".lower()


def _numbered(fake: Faker) -> str:
    """A numbered account (`user1`, Kinto's own test accounts): a word and a number."""
    return f"{fake.random_element(('user', 'member', 'tester', 'player'))}{fake.random_int(1, 999)}"


def _account(place: str, make: Callable[[Faker], str]) -> Callable[[Faker], Case]:
    """PUT /v1/accounts/NAME: the name in the path, as the `id` and as a principal."""

    def case(fake: Faker) -> Case:
        name = make(fake)
        body = {"permissions": {"write": [f"account:{name}"]}, "data": {"id": name, "n": 1}}
        return Case(
            f"path account {place}", name, "PUT", f"/v1/accounts/{name}",
            req_headers=JSON_TYPE, req_body=json.dumps({"data": {"password": "x"}}).encode(),
            status=201, resp_body=json.dumps(body).encode(),
        )  # fmt: skip

    return case


def _principals(fake: Faker) -> Case:
    name = _username(fake)
    doc = {"user": {"id": f"account:{name}", "principals": [f"ldap:{name}", "system.Everyone"]}}
    return Case("json principals", name, path="/v1/", resp_body=json.dumps(doc).encode())


def _record_id(fake: Faker) -> Case:
    name = _username(fake)
    doc = {"data": [{"id": name, "last_modified": 1796170242298}]}
    return Case("json id username", name, resp_body=json.dumps(doc).encode())


def _principal_query(fake: Faker) -> Case:
    name = _dotted(fake)
    return Case("query principal", name, query=f"_limit=5&principal=account:{name}")


def _next_page(fake: Faker) -> Case:
    token = _token(fake, 60)
    url = f"https://api.canary.test/v1/records?_limit=5&_sort=-last_modified&_token={token}"
    return Case("Next-Page header token", token, resp_headers=(*JSON_TYPE, ("Next-Page", url)))


def _csp_nonce(fake: Faker) -> Case:
    nonce = _token(fake, 22)
    csp = f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; base-uri 'none'"
    return Case("CSP nonce", nonce, resp_headers=(*JSON_TYPE, ("Content-Security-Policy", csp)))


def _csp_host(fake: Faker) -> Case:
    host = f"{fake.domain_word()}{fake.random_int(10, 99)}.example-cdn.com"
    csp = f"default-src 'self' https://{host} *.{host}; img-src *"
    return Case("CSP host", host, resp_headers=(*JSON_TYPE, ("Content-Security-Policy", csp)))


PLACES: list[Callable[[Faker], Case]] = [
    *_fields(),
    _nested,
    _card_number,
    _email_key,
    _json_in_string,
    _free_text,
    _third_party_url,
    _header("X-Password", _password),
    _header("X-Api-Sig", lambda f: f.sha1()),
    _header("X-Display-Name", lambda f: f.name()),
    _header("X-Forwarded-For", lambda f: f.ipv4_public(), "{}, 10.0.0.1"),
    _header("Referer", _token, "https://app.example.com/page#tok={}"),
    _query("sig", lambda f: f.sha256()[:40], "sig={}&page=2"),
    _query("code", lambda f: _token(f, 24), "code={}&state=ok"),
    _query(";token", _token, "a=1;token={}"),
    _query("q name", lambda f: f.name(), "q={}&limit=10"),
    _response_header(
        "Location fragment", _token, "https://client.example.com/cb#access_token={}&x=1", 302
    ),
    _response_header("Location code", lambda f: _token(f, 24), "/callback?code={}", 302),
    _response_header(
        "Link", _token, '<https://api.example.com/items?page=2&access_token={}>; rel="next"'
    ),
    _response_header("Refresh", _token, "0; url=/welcome?session_token={}"),
    _response_header("Content-Location", lambda f: f.email(), "/users/{}"),
    _path_token,
    _jsessionid,
    _folded_cookie,
    _nameless_cookie,
    _big_body,
    _typed_json("UTF-8 BOM", "application/json", bom=True),
    _typed_json("text/json", "text/json"),
    _typed_json("application/x-json", "application/x-json"),
    _typed_json("vendor +json", "application/vnd.api+json"),
    _typed_json("no content type", ""),
    _ndjson,
    _jsonp,
    _truncated,
    _plain,
    _html,
    _html_attribute,
    _xml,
    _xml_attribute,
    _form,
    _account("faker user_name", _username),
    _account("first.last", _dotted),
    _account("initial, last name, digits", _initial_digits),
    _account("numbered", _numbered),
    _principals,
    _record_id,
    _principal_query,
    _next_page,
    _csp_nonce,
    _csp_host,
]


def build_corpus(seeds: tuple[int, ...] = (1, 2, 3)) -> list[Case]:
    """Every place once per seed (a different canary each time), numbered."""
    cases: list[Case] = []
    for seed in seeds:
        for make in PLACES:
            fake = Faker("en_US")
            fake.seed_instance(seed * 1000 + len(cases))
            cases.append(replace(make(fake), index=len(cases)))
    return cases
