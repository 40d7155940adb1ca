"""Identifiers of people in paths and values (as a real API shows them: Kinto's accounts),
route words kept; the same pseudonym in a path, a body and a principal."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from faker import Faker

from tests.capture.test_anonymizer import JSON, KEY, exchange, json_body, stored_text
from tracereplay.capture.anonymize.identifiers import colon_parts, looks_identifier
from tracereplay.capture.anonymize.policy import load_policy
from tracereplay.capture.anonymize.record import Anonymizer

KEEP = load_policy().keep_words

# Route words of the sandbox, of the APIs the brief names and of common public APIs.
_ROUTE_WORDS = (
    "api v1 v2 v3 n8n clients test-connection metrics my-historical historical oauth2 "
    "userinfo jwks jwks.json graphql s3 health auth login logout refresh me cache stats "
    "export data-freshness execution-stats executions workflows system audit configure sync "
    "refresh-cache accounts buckets collections records default tasks groups permissions "
    "batch heartbeat .well-known openid-configuration authorize token introspect revoke "
    "users repos orgs issues pulls commits branches releases gists hooks webhooks teams "
    "customers charges invoices subscriptions prices products payment_intents refunds "
    "namespaces pods deployments nodes configmaps ingresses page pages price state chart "
    "favicon.ico robots.txt swagger.json api-docs mark-as-read grace-period base64 sha256 "
    "ipv6 http2 utf-8 k8s i18n ed25519 x509 us-east-1 eu-west-2 2024-01-01 v1.2.3"
)
ROUTES = _ROUTE_WORDS.split()


@pytest.mark.parametrize("word", ROUTES)
def test_route_words_are_not_identifiers(word: str) -> None:
    assert not looks_identifier(word, KEEP)


@pytest.mark.parametrize(
    "token",
    [
        "user1", "user_42", "jessica.miller", "miller.jessica", "jessicamiller",
        "millerjessica", "jessica82", "jmiller", "jmiller82", "j.miller", "JessicaMiller",
        "@jessica", "bob99", "jsmith42",
    ],
)  # fmt: skip
def test_names_and_numbered_handles_are(token: str) -> None:
    assert looks_identifier(token, KEEP)


def test_pseudonyms_are_not_identifiers() -> None:
    pseudo = Anonymizer(load_policy(), KEY).pseudonyms
    for raw in ("user1", "jessica.miller", "jmiller82", "millerjessica"):
        assert not looks_identifier(pseudo.words(raw), KEEP), pseudo.words(raw)


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "fr_FR", "es_ES"])
def test_faker_usernames_are_found(locale: str) -> None:
    """faker's user_name() in its four shapes; measured 99.2 % (en_US) to 99.9 % (es_ES)
    on 2,000 each; the bound leaves room for other seeds."""
    fake = Faker(locale)
    fake.seed_instance(3)
    names = [fake.unique.user_name() for _ in range(500)]
    missed = [n for n in names if not looks_identifier(n, KEEP)]
    assert len(missed) / len(names) <= 0.03, missed


def test_kind_value_strings_split_at_colons_times_and_urls_do_not() -> None:
    assert colon_parts("account:user1") == ["account", "user1"]
    assert colon_parts("urn:li:person:x") == ["urn", "li", "person", "x"]
    for whole in ("2026-03-02T09:30:00Z", "12:30", "https://a.example/x", "2001:db8::1"):
        assert colon_parts(whole) == [whole]


# --- through the anonymizer: Kinto's account shapes --------------------------------------


def kinto_account(name: str) -> list[object]:
    """PUT /v1/accounts/NAME, then GET /v1/ as NAME: the name in a path, an `id`, a
    principal (`account:NAME`) and a list of principals."""
    created = exchange(
        method="PUT",
        path=f"/v1/accounts/{name}",
        req_headers=JSON,
        req_body=json_body({"data": {"password": "not-a-real-one"}}),
        status=201,
        resp_headers=JSON,
        resp_body=json_body(
            {"permissions": {"write": [f"account:{name}"]}, "data": {"id": name, "n": 1}}
        ),
    )
    hello = exchange(
        path="/v1/",
        resp_headers=JSON,
        resp_body=json_body(
            {
                "user": {
                    "id": f"account:{name}",
                    "principals": [f"account:{name}", "system.Everyone"],
                }
            }
        ),
    )
    return [created, hello]


@pytest.mark.parametrize("name", ["user1", "jessica.miller", "jmiller82", "millerjessica"])
def test_a_username_gets_one_pseudonym_in_path_body_and_principals(name: str) -> None:
    anon = Anonymizer(load_policy(), KEY)
    created, hello = (anon.record(ex) for ex in kinto_account(name))  # type: ignore[arg-type]
    assert name not in stored_text(created) + stored_text(hello)
    made = created.path.rsplit("/", 1)[1]
    assert created.path == f"/v1/accounts/{made}" and made != name
    doc = json.loads(created.resp_body or b"")
    assert doc["data"]["id"] == made
    assert doc["permissions"]["write"] == [f"account:{made}"]
    user = json.loads(hello.resp_body or b"")["user"]
    assert user == {"id": f"account:{made}", "principals": [f"account:{made}", "system.Everyone"]}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/n8n/workflows",
        "/api/v1/metrics/my-historical",
        "/oauth2/userinfo",
        "/.well-known/jwks.json",
        "/graphql",
        "/v2/s3/buckets/default/collections/tasks/records",
    ],
)
def test_route_words_stay_in_paths(path: str) -> None:
    anon = Anonymizer(load_policy(), KEY)
    assert anon.record(exchange(path=path)).path == path
    numbered = anon.record(exchange(path="/api/v1/clients/123/test-connection")).path
    assert numbered.startswith("/api/v1/clients/") and numbered.endswith("/test-connection")


def test_a_next_page_url_header() -> None:
    """Kinto's `Next-Page` (an absolute URL to the target itself): the host and route kept,
    the sort key and limit kept, the page token and the bucket id pseudonymized — the
    bucket as the same UUID pseudonym the path gets."""
    anon = Anonymizer(load_policy(), KEY)
    bucket = "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
    token = "eyJsYXN0X21vZGlmaWVkIjoxNzk2MTcwMjU1MjYxfQ2x9Zk3Lq"
    next_page = (
        f"http://127.0.0.1:18888/v1/buckets/{bucket}/collections/tasks/records"
        f"?_limit=5&_sort=-last_modified&_token={token}"
    )
    record = anon.record(
        exchange(
            path=f"/v1/buckets/{bucket}/collections/tasks/records",
            query="_limit=5&_sort=-last_modified",
            host="127.0.0.1",
            port=18888,
            resp_headers=[*JSON, ("Next-Page", next_page)],
            resp_body=b'{"data":[]}',
        )
    )
    stored = dict(record.resp_headers)["Next-Page"]
    parts = urlsplit(stored)
    assert (parts.scheme, parts.netloc) == ("http", "127.0.0.1:18888")
    assert parts.path == record.path  # the bucket pseudonym is the path's
    assert bucket not in stored and token not in stored
    query = dict(parse_qsl(parts.query))
    assert query["_limit"] == "5" and query["_sort"] == "-last_modified"
    assert query["_token"].startswith("anon_")
    elsewhere = anon.record(
        exchange(
            resp_headers=[("Next-Page", f"https://api.partner-example.com/p?page=2&q={token}")]
        )
    )
    assert str(urlsplit(dict(elsewhere.resp_headers)["Next-Page"]).hostname).endswith(".invalid")
