"""Detectors for service keys, private keys and national numbers: spans of validated values.

Service key formats come from detect-secrets' plugins (kept up to date there), plus the few
it lacks (GitHub fine-grained tokens, Stripe publishable keys, Google API keys, whole PEM
blocks); SSNs are checked by python-stdnum, IBANs by their checksum (python-stdnum),
national phone numbers by phonenumbers.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from functools import lru_cache

Spans = Iterator[tuple[str, int, int]]

KEY_KINDS = ("key", "private_key", "ssn", "iban")

# detect-secrets plugins whose patterns are specific enough for HTTP traffic (the keyword
# and entropy plugins are not: they would fire on every id; scan has its own entropy check).
_PLUGINS = (
    ("aws", "AWSKeyDetector", 1),  # the second pattern needs an `aws…key` keyword context
    ("github_token", "GitHubTokenDetector", None),
    ("gitlab_token", "GitLabTokenDetector", None),
    ("stripe", "StripeDetector", None),
    ("slack", "SlackDetector", None),
    ("sendgrid", "SendGridDetector", None),
    ("openai", "OpenAIDetector", None),
    ("pypi_token", "PypiTokenDetector", None),
    ("square_oauth", "SquareOAuthDetector", None),
    ("azure_storage_key", "AzureStorageKeyDetector", None),
)
# Twilio (AC…/SK…), Mailchimp (…-us1) and Discord keys have no fixed prefix to look for
# cheaply; as 32+ random characters, the capture replaces them and scan's entropy check
# flags them anyway.
# Each pattern above and below starts with one of these: a few substring searches (C speed)
# rule out most strings before the alternation (~70 ns a character) runs.
_PREFIXES = (
    "A3T", "ABIA", "ACCA", "AKIA", "ASIA", "gh", "github_pat_", "gl", "GR1348941", "k_live_",
    "k_test_", "xox", "hooks.slack.com", "SG.", "T3BlbkFJ", "pypi-", "sq0csp-", "AccountKey=",
    "AIza",
)  # fmt: skip
# Formats detect-secrets 1.5 does not know.
_OWN_KEY_PATTERNS = (
    r"github_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained personal access tokens
    r"(?:pk|rk|sk)_(?:live|test)_[0-9A-Za-z]{10,}",  # Stripe, publishable and test too
    r"AIza[0-9A-Za-z_-]{35}",  # Google API keys
)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-]*")
_GROUP = re.compile(r"(?<!\\)\((?!\?)")


@lru_cache(maxsize=1)
def _key_pattern() -> re.Pattern[str]:
    import importlib

    patterns: list[str] = []
    for module, name, count in _PLUGINS:
        plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)()
        patterns.extend(p.pattern for p in list(plugin.denylist)[:count])
    patterns.extend(_OWN_KEY_PATTERNS)
    # Non-capturing: the plugins' own groups are of no use here.
    body = "|".join("(?:" + _GROUP.sub("(?:", p) + ")" for p in patterns)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{body})")


_ANY_PREFIX = re.compile("|".join(map(re.escape, _PREFIXES)))
# One regex pass beats 19 substring searches on a short value; a long text is the other way
# round (the searches run at memchr speed).
_SHORT_TEXT = 512


def has_key_prefix(text: str) -> bool:
    if len(text) <= _SHORT_TEXT:
        return _ANY_PREFIX.search(text) is not None
    return any(prefix in text for prefix in _PREFIXES)


def _keys(text: str) -> Spans:
    if not has_key_prefix(text):
        return
    for match in _key_pattern().finditer(text):
        start, end = match.span()
        # A pattern may stop at the length it knows (Stripe's 24): take the whole token.
        end = _TOKEN_CHARS.match(text, end).end()  # type: ignore[union-attr]
        yield "key", start, end


_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)", re.DOTALL
)
# JSON-escaped newlines keep a PEM block on one line ("-----BEGIN…-----\nMII…").


def _private_keys(text: str) -> Spans:
    if "-----BEGIN " in text:
        for match in _PEM.finditer(text):
            yield "private_key", *match.span()


_SSN = re.compile(r"[0-9](?<![\w-][0-9])[0-9]{2}-[0-9]{2}-[0-9]{4}(?![\w-])")


def _ssns(text: str) -> Spans:
    for match in _SSN.finditer(text):
        from stdnum.us import ssn  # on a candidate only: `from … import` costs µs each time

        if ssn.is_valid(match.group()):
            yield "ssn", *match.span()


_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")


def _ibans(text: str) -> Spans:
    for match in _IBAN.finditer(text):
        from stdnum import iban

        if iban.is_valid(match.group()):
            yield "iban", *match.span()


def find_keys(text: str, kinds: Collection[str]) -> Spans:
    """Spans of service keys and private keys (of the kinds in `kinds`)."""
    if "key" in kinds:
        yield from _keys(text)
    if "private_key" in kinds:
        yield from _private_keys(text)


def find_national_ids(text: str, kinds: Collection[str]) -> Spans:
    """Spans of SSNs and IBANs (of the kinds in `kinds`)."""
    if "ssn" in kinds and "-" in text:
        yield from _ssns(text)
    if "iban" in kinds:
        yield from _ibans(text)


# --- phone numbers in national formats (`030 12345678`, `020 7946 0958`, `06 12 34 56 78`) --
# The NANP and international formats are the phone detector's in detectors.py; a number
# written with a trunk prefix 0 has no country code, so phonenumbers tries the regions
# whose numbers are most often written so.
NATIONAL_REGIONS = ("DE", "GB", "FR", "IT", "NL", "ES", "AT", "CH", "BE", "AU", "JP", "BR")
# International numbers in the forms the NANP-shaped detector does not take:
# `+49 (0) 9065 805191`, `+44(0)20 7946 0958`, `+33 1 83 41 77 76`.
_INTERNATIONAL = re.compile(r"\+(?<![\w+]\+)[1-9][0-9 ()./-]{6,22}[0-9](?![\w-]|[.,][0-9])")
_ISO_YEAR = re.compile(r"\+[0-9]{4,6}-[0-9]{2}-[0-9]{2}")
_NATIONAL = re.compile(
    r"\(?0(?<![\w+.-]0)(?<![\w+.-]\(0)(?<![0-9][ -]0)"
    r"[0-9]{1,4}\)?(?:[ /.-]?[0-9]{2,8}){1,4}(?![\w.-]|[.,][0-9])"
)


def national_phones(text: str, _kinds: Collection[str] = ()) -> Spans:
    if "+" in text:
        for match in _INTERNATIONAL.finditer(text):
            if _ISO_YEAR.match(text, match.start()):  # +2026-11-26: an ISO 8601 expanded year
                continue
            import phonenumbers  # on a candidate only, as the national ones below

            try:
                number = phonenumbers.parse(match.group(), None)
            except phonenumbers.NumberParseException:
                continue
            # A country code and a possible length: the + says it is a phone number.
            if phonenumbers.is_possible_number(number):
                yield "phone", *match.span()
    if "0" not in text:
        return

    for match in _NATIONAL.finditer(text):
        candidate = match.group()
        digits = sum(c.isdigit() for c in candidate)
        if not 9 <= digits <= 13:  # 8 would take dates (01.02.2024)
            continue
        import phonenumbers

        for region in NATIONAL_REGIONS:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                yield "phone", *match.span()
                break
