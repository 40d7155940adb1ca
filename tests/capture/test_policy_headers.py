"""Content-Security-Policy and Permissions-Policy: syntax kept, hosts, URLs and nonces not;
scan reads them the same way."""

from __future__ import annotations

from faker import Faker

from tests.capture.test_anonymizer import KEY, exchange
from tracereplay.capture.anonymize.policy import load_policy
from tracereplay.capture.anonymize.record import Anonymizer
from tracereplay.capture.scan import cell_findings
from tracereplay.capture.scan_checks import Checker

KINTO_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none';"


def stored(*headers: tuple[str, str]) -> dict[str, str]:
    record = Anonymizer(load_policy(), KEY).record(
        exchange(host="api.example.com", port=443, scheme="https", resp_headers=list(headers))
    )
    return dict(record.resp_headers)


def scan(headers: dict[str, str]) -> list[tuple[str, str]]:
    checker = Checker(own_hosts=frozenset({"api.example.com"}))
    return list(cell_findings(checker, "resp_headers", list(headers.items())))


def test_a_structural_policy_is_kept_as_it_is() -> None:
    """Kinto's CSP was stored as lorem words (`numquam-cum 'eius'; …`) before."""
    headers = stored(
        ("Content-Security-Policy", KINTO_CSP),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-site"),
        ("Permissions-Policy", "camera=(), geolocation=(self), fullscreen=*"),
    )
    assert headers == {
        "Content-Security-Policy": KINTO_CSP,
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-site",
        "Permissions-Policy": "camera=(), geolocation=(self), fullscreen=*",
    }
    assert scan(headers) == []


def test_hosts_urls_and_nonces_in_a_policy_are_not_kept() -> None:
    fake = Faker()
    fake.seed_instance(4)
    partner = f"{fake.domain_word()}-cdn.example-partner.com"
    nonce = fake.pystr(min_chars=22, max_chars=22) + "9Z"
    report_token = fake.pystr(min_chars=30, max_chars=30) + "42"
    csp = (
        f"default-src 'self' https://{partner}/js/ *.{partner}:443 data: blob:; "
        f"script-src 'self' 'nonce-{nonce}' 'strict-dynamic'; img-src *; "
        f"report-uri https://api.example.com/csp?token={report_token}; sandbox allow-scripts"
    )
    permissions = f'geolocation=(self "https://maps.{partner}"), camera=()'
    raw = {"Content-Security-Policy": csp, "Permissions-Policy": permissions}
    assert {kind for kind, _ in scan(raw)} >= {"host", "field", "entropy"}

    headers = stored(*raw.items())
    text = "\n".join(headers.values())
    assert partner not in text and nonce not in text and report_token not in text
    directives = [d.split()[0] for d in headers["Content-Security-Policy"].split(";")]
    assert directives == ["default-src", "script-src", "img-src", "report-uri", "sandbox"]
    assert "'self'" in text and "'strict-dynamic'" in text and "data: blob:" in text
    assert "'nonce-anon_" in text and "https://api.example.com/csp?token=anon_" in text
    assert "*.h" in text and ".anon.invalid:443" in text and "allow-scripts" in text
    assert headers["Permissions-Policy"].startswith('geolocation=(self "https://h')
    assert scan(headers) == []
