"""The leak scanner: raw values are found per kind and column, masked; pseudonyms are clean."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jwt
import pytest
from faker import Faker
from rich.console import Console

from tests.factories import make_record, realistic_records, write_trace
from tracereplay.capture.anonymize.pseudonyms import Pseudonymizer
from tracereplay.capture.scan import mask, render_scan, scan_trace
from tracereplay.errors import TraceNotFoundError, UsageError
from tracereplay.trace import TraceRecord


@pytest.fixture
def fake() -> Faker:
    faker = Faker("en_US")
    faker.seed_instance(7)
    return faker


def raw_values(fake: Faker) -> dict[str, str]:
    token = jwt.encode({"sub": fake.uuid4()}, fake.password(length=32), algorithm="HS256")
    return {
        "email": fake.email(),
        "jwt": token,
        "card": "4111 1111 1111 1111",
        "phone": "+1-234-567-8901",
        "ipv4": fake.ipv4_public(),
        "ipv6": "2a00:1450:4007:80e::200e",
    }


def leaky_records(values: dict[str, str]) -> list[TraceRecord]:
    """One record per column, each holding every raw value in that column."""
    text = " | ".join(values.values())
    body = json.dumps({"note": text}).encode()
    return [
        make_record(path=f"/api/v1/users/{text}"),
        make_record(query=f"q={text}"),
        make_record(session=text),
        make_record(client=text),
        make_record(host=text),
        make_record(error=text),
        make_record(req_headers=(("x-note", text), (f"x-{values['email']}", "1"))),
        make_record(resp_headers=(("x-note", text),)),
        make_record(req_body=body, req_body_size=len(body)),
        make_record(resp_body=body, resp_body_size=len(body)),
    ]


COLUMNS = (
    "path",
    "query",
    "session",
    "client",
    "host",
    "error",
    "req_headers",
    "resp_headers",
    "req_body",
    "resp_body",
)


def test_every_kind_found_in_every_column(tmp_path: Path, fake: Faker) -> None:
    values = raw_values(fake)
    trace = write_trace(tmp_path / "leaky", leaky_records(values))
    report = scan_trace(trace)
    assert not report.clean
    assert report.rows == len(COLUMNS)
    for kind in values:
        for column in COLUMNS:
            assert report.counts.get((kind, column), 0) >= 1, (kind, column)
    assert report.counts[("email", "req_headers")] == 2  # a header name counts too
    for kind, examples in report.examples.items():
        assert 1 <= len(examples) <= 5
        for column, masked in examples:
            assert column in COLUMNS
            assert masked == mask(values[kind])
            assert values[kind] not in masked


def test_examples_are_capped_and_masked(tmp_path: Path, fake: Faker) -> None:
    emails = [fake.unique.email() for _ in range(20)]
    trace = write_trace(tmp_path / "t", [make_record(path=f"/u/{e}") for e in emails])
    report = scan_trace(trace, max_examples=3)
    assert report.counts == {("email", "path"): 20}
    assert len(report.examples["email"]) == 3
    assert all(masked.endswith(")") and "@" not in masked for _, masked in report.examples["email"])
    assert mask("jane@example.com") == "ja…(16)"


def test_percent_encoded_values_are_found(tmp_path: Path) -> None:
    record = make_record(query="phone=%2B1-234-567-8901&mail=jane%40example.org")
    report = scan_trace(write_trace(tmp_path / "t", [record]))
    assert report.counts == {("email", "query"): 1, ("phone", "query"): 1}


def test_pseudonymized_trace_is_clean(tmp_path: Path, fake: Faker) -> None:
    pseudo = Pseudonymizer(b"scan-test-key")
    records = []
    for _ in range(20):
        values = raw_values(fake)
        made = {kind: pseudo.for_kind(kind, value) for kind, value in values.items()}
        records.extend(leaky_records(made))
        bearer = f"Bearer {pseudo.secret('tok-' + fake.sha1())}"
        records.append(make_record(req_headers=(("authorization", bearer),)))
    trace = write_trace(tmp_path / "clean", records)
    seen: list[tuple[int, int]] = []
    report = scan_trace(trace, progress=lambda done, total: seen.append((done, total)))
    assert report.clean, report.counts
    assert report.rows == len(records)
    assert report.values > 5 * len(records)
    assert seen[-1] == (len(records), len(records))


def test_realistic_trace_in_several_batches(tmp_path: Path) -> None:
    records = list(realistic_records(1200))
    seen: list[int] = []
    report = scan_trace(write_trace(tmp_path / "t", records), progress=lambda d, t: seen.append(d))
    assert report.rows == 1200
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == 1200
    for where in [("email", "resp_body"), ("bearer", "req_headers"), ("ipv4", "req_headers")]:
        assert report.counts[where] >= 1000, where
    assert report.counts[("email", "req_body")] > 0 and report.counts[("phone", "req_body")] > 0


def test_invalid_utf8_bodies_do_not_crash(tmp_path: Path) -> None:
    body = b"\xff\xfe\x00garbage \xc3( jane@example.com \x80"
    trace = write_trace(tmp_path / "t", [make_record(req_body=body, resp_body=b"\xc3\x28")])
    report = scan_trace(trace)
    assert report.counts == {("email", "req_body"): 1}


def test_kinds_filter(tmp_path: Path, fake: Faker) -> None:
    trace = write_trace(tmp_path / "t", leaky_records(raw_values(fake)))
    report = scan_trace(trace, kinds=["phone"])
    assert {kind for kind, _ in report.counts} == {"phone"}
    assert report.kinds == ("phone",)
    with pytest.raises(UsageError, match="unknown finding kind 'phones'"):
        scan_trace(trace, kinds=["phone", "phones"])


def test_missing_trace_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceNotFoundError):
        scan_trace(tmp_path / "nope")


def test_render(tmp_path: Path, fake: Faker) -> None:
    values = raw_values(fake)
    report = scan_trace(write_trace(tmp_path / "t", leaky_records(values)))
    out = io.StringIO()
    render_scan(report, Console(file=out, width=120))
    text = out.getvalue()
    assert "Possible leaks" in text and "req_headers" in text and "jwt" in text
    assert all(value not in text for value in values.values())

    clean = scan_trace(write_trace(tmp_path / "c", [make_record()]))
    out = io.StringIO()
    render_scan(clean, Console(file=out, width=120))
    assert "clean" in out.getvalue()


# --- checks beyond the detectors, and independence from the capture's policy --------------


def one_body(tmp_path: Path, doc: object, name: str = "t") -> Path:
    body = json.dumps(doc).encode()
    return write_trace(tmp_path / name, [make_record(resp_body=body, resp_body_size=len(body))])


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        ({"note": "Lunch with Jane Roe on Friday"}, "free-text"),
        ({"team": "Acmecorp"}, "word"),
        ({"handle": "jroe1984"}, "identifier"),
        ({"data": {"id": "user1"}}, "identifier"),
        ({"permissions": {"write": ["account:jessica.miller"]}}, "identifier"),
        ({"displayName": "Jane Roe"}, "field"),
        ({"password": "hunter2"}, "field"),
        ({"dob": "1985-03-12"}, "field"),
        ({"ref": "x7Kf9qLm2Zt8Wv3Rp5Yd"}, "entropy"),
        ({"callback": "https://hooks.partner-example.com/in"}, "host"),
    ],
)
def test_each_check_fires(tmp_path: Path, doc: dict[str, object], kind: str) -> None:
    report = scan_trace(one_body(tmp_path, doc))
    assert (kind, "resp_body") in report.counts, report.counts


def test_what_a_pseudonym_looks_like_passes_each_check(tmp_path: Path) -> None:
    pseudo = Pseudonymizer(b"k")
    doc = {
        "note": pseudo.words("Lunch with Jane Roe on Friday"), "team": pseudo.words("Acmecorp"),
        "displayName": pseudo.name("Jane Roe"), "password": "[removed]", "status": "active",
        "dob": pseudo.date_of_birth("1985-03-12"), "ref": pseudo.token("x7Kf9qLm2Zt8Wv3Rp5Yd"),
        "callback": f"https://{pseudo.host('hooks.partner-example.com')}/in", "n": 12,
        "self": "http://127.0.0.1:8000/api", "token_type": "bearer", "at": "2026-03-02T09:30:00Z",
        "id": pseudo.words("user1"), "write": [f"account:{pseudo.words('jessica.miller')}"],
        "principals": ["system.Everyone", "account:" + pseudo.words("jmiller82")],
    }  # fmt: skip
    report = scan_trace(one_body(tmp_path, doc))
    assert report.clean, report.counts


def test_allowed_hosts_and_canaries(tmp_path: Path) -> None:
    trace = one_body(tmp_path, {"callback": "https://hooks.partner-example.com/in"})
    assert scan_trace(trace, allow_hosts=["hooks.partner-example.com"]).clean
    report = scan_trace(trace, allow_hosts=["hooks.partner-example.com"], canaries=["partner-ex"])
    assert report.counts == {("canary", "resp_body"): 1}
    assert report.examples["canary"] == (("resp_body", "pa…(10)"),)


def test_scan_does_not_trust_the_policy(tmp_path: Path) -> None:
    """A trace whose policy kept free text and a foreign host is not clean to scan, whatever
    its metadata says; the same traffic under the default policy is."""
    from importlib.resources import files

    from tests.capture.test_anonymizer import exchange
    from tracereplay.capture.anonymize.policy import load_policy, parse_policy
    from tracereplay.capture.anonymize.record import Anonymizer
    from tracereplay.trace import TraceMetadata, open_writer

    text = files("tracereplay.capture.anonymize").joinpath("default_policy.toml").read_text()
    lax = parse_policy(
        text.replace('fields = ["status",', 'fields = ["notes", "status",').replace(
            "hosts = []", 'hosts = ["hooks.partner-example.com"]'
        )
    )
    doc = {"notes": "Lunch with Jane Roe", "callback": "https://hooks.partner-example.com/in"}
    ex = exchange(
        resp_headers=[("Content-Type", "application/json")], resp_body=json.dumps(doc).encode()
    )
    for policy, name in ((lax, "lax"), (load_policy(), "default")):
        writer = open_writer(
            tmp_path / name, TraceMetadata(source="capture", policy_hash=policy.hash)
        )
        writer.write(Anonymizer(policy, b"k").record(ex))
        writer.close()
    lax_report = scan_trace(tmp_path / "lax")
    assert ("host", "resp_body") in lax_report.counts
    assert scan_trace(tmp_path / "default").clean


def test_a_default_deny_capture_of_realistic_traffic_is_clean(tmp_path: Path) -> None:
    """No false alarm: the default policy's output passes every check."""
    from tests.capture.canaries.corpus import build_corpus
    from tests.capture.canaries.drive import exchange as case_exchange
    from tracereplay.capture.anonymize.policy import load_policy
    from tracereplay.capture.anonymize.record import Anonymizer
    from tracereplay.trace import TraceMetadata, open_writer

    anonymizer = Anonymizer(load_policy(), b"k")
    writer = open_writer(tmp_path / "t", TraceMetadata(source="capture"))
    for case in build_corpus():
        writer.write(anonymizer.record(case_exchange(case)))
    writer.close()
    report = scan_trace(tmp_path / "t")
    assert report.clean, report.counts


def test_a_body_cut_at_the_size_limit_is_still_read(tmp_path: Path) -> None:
    body = json.dumps({"items": [{"displayName": "Jane Roe", "n": i} for i in range(50)]})
    cut = body[: len(body) // 2].encode()  # as the capture stores a body over its limit
    trace = write_trace(tmp_path / "t", [make_record(resp_body=cut, resp_body_size=len(body))])
    assert scan_trace(trace).counts[("field", "resp_body")] >= 10


# --- URL-valued headers, sort keys and identifiers (seen on a real third-party API) --------

NEXT_PAGE = "http://127.0.0.1:18888/v1/buckets/{bucket}/collections/tasks/records?_limit=5&_sort=-last_modified&_token={token}"


def header_findings(name: str, value: str) -> list[tuple[str, str]]:
    from tracereplay.capture.scan import cell_findings
    from tracereplay.capture.scan_checks import Checker

    checker = Checker(own_hosts=frozenset({"127.0.0.1"}))
    return list(cell_findings(checker, "resp_headers", [(name, value)]))


def test_a_header_holding_an_absolute_url_is_read_as_a_url(fake: Faker) -> None:
    """A header scan does not know by name (Kinto's `Next-Page`) whose value is a URL: its
    query and path are judged as a URL's, so the capture's own output is clean there."""
    pseudo = Pseudonymizer(b"k")
    raw_token = fake.pystr(min_chars=60, max_chars=60) + "42"
    clean = NEXT_PAGE.format(bucket=fake.uuid4(), token=pseudo.token(raw_token))
    assert header_findings("Next-Page", clean) == []
    leaky = NEXT_PAGE.format(bucket=fake.uuid4(), token=raw_token)
    assert {kind for kind, _ in header_findings("Next-Page", leaky)} >= {"entropy", "field"}
    named = "https://127.0.0.1/v1/accounts/jessica.miller?x=1"
    assert ("identifier", "jessica.miller") in header_findings("X-Next", named)
    foreign = f"https://{fake.domain_name()}/cb?code=1"
    assert [k for k, _ in header_findings("X-Callback", foreign)] == ["host"]


@pytest.mark.parametrize(
    ("query", "clean"),
    [
        ("_limit=5&_sort=-last_modified", True),
        ("order_by=created_at,-priority&fields=title,done", True),
        ("sort=+dueDate", True),
        ("q=-last_modified", False),  # not a sort parameter: a word nothing explains
        ("_sort=jessica.miller", False),  # a name is a name, in a sort key too
        ("fields=title,jessica.miller", False),  # and in a list of field names
    ],
)
def test_sort_keys_are_field_names(tmp_path: Path, query: str, clean: bool) -> None:
    report = scan_trace(write_trace(tmp_path / "t", [make_record(query=query)]))
    assert report.clean is clean, report.counts


def test_identifiers_in_paths_are_found_route_words_are_not(tmp_path: Path) -> None:
    routes = [
        "/api/v1/n8n/workflows", "/api/v1/clients/123/test-connection",
        "/api/v1/metrics/my-historical", "/oauth2/userinfo", "/.well-known/jwks.json",
        "/graphql", "/v2/s3/buckets/default/collections/tasks/records",
    ]  # fmt: skip
    named = ["/v1/accounts/user1", "/v1/accounts/jessica.miller", "/users/jmiller82/repos",
             "/principals/account:millerjessica"]  # fmt: skip
    records = [make_record(path=p) for p in routes + named]
    report = scan_trace(write_trace(tmp_path / "t", records))
    assert report.counts == {("identifier", "path"): len(named)}


def test_an_anonymized_csv_body_is_clean_and_a_raw_one_is_not(tmp_path: Path) -> None:
    from tracereplay.capture.anonymize.policy import load_policy
    from tracereplay.capture.anonymize.record import Anonymizer
    from tracereplay.capture.exchange import Exchange

    fake = Faker()
    fake.seed_instance(3)
    rows = [f"{fake.uuid4()},{fake.name()},{fake.company()},success,{fake.iso8601()},42"
            for _ in range(20)]  # fmt: skip
    csv = ("id,owner,company,status,started_at,duration_ms\r\n" + "\r\n".join(rows)).encode()
    csv_type = [("Content-Type", "text/csv; charset=utf-8")]
    exchange = Exchange(ts=make_record().ts, method="GET", path="/export", status=200,
                        resp_headers=csv_type, resp_body=csv)  # fmt: skip
    record = Anonymizer(load_policy(), b"k" * 32).record(exchange)
    assert scan_trace(write_trace(tmp_path / "anon", [record])).clean
    raw = make_record(resp_body=csv, resp_body_size=len(csv))
    assert ("free-text", "resp_body") in scan_trace(write_trace(tmp_path / "raw", [raw])).counts
