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
