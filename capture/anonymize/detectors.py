"""Detectors: pure functions that find personal data and secrets in text.

Also owns the reserved shapes of tracereplay's pseudonyms, so a pseudonym is never reported.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

# Speed (timeit, Python 3.11, this 2-core sandbox, lru caches warm): `find_all` takes
# ~0.5 ms over a 4 KiB JSON body dense with faker records (42 findings: emails, phones,
# IPs; UUIDs and timestamps around them), ~0.3 ms over a 4 KiB body of UUIDs, timestamps and
# numbers with no finding, ~10 µs over a Date header, ~1 µs over a value with no digit,
# '@', "eyJ" or "bearer". Hence: one anchor check first, every detector skipped unless its
# anchor is present, and patterns that start with a character class (see below).
from .keys import KEY_KINDS, find_keys, find_national_ids, has_key_prefix, national_phones

KINDS = ("email", "jwt", "bearer", "card", "phone", "ipv4", "ipv6", *KEY_KINDS)

# --- reserved shapes of pseudonyms (pseudonyms.py makes them, find_all skips them) ---------

PSEUDO_EMAIL_DOMAIN = "anon.invalid"
"""RFC 2606 reserves the .invalid TLD: such an address can never belong to anyone."""
PSEUDO_JWT_HEADER = (
    base64.urlsafe_b64encode(
        json.dumps(
            {"alg": "none", "typ": "JWT", "tracereplay": "pseudonym"}, separators=(",", ":")
        ).encode()
    )
    .rstrip(b"=")
    .decode()
)
PSEUDO_TOKEN_PREFIX = "anon_"  # noqa: S105 (a prefix, not a password)
PSEUDO_IPV4_NET = ipaddress.IPv4Network("198.18.0.0/15")
"""RFC 2544 benchmarking range: never assigned to a real host on the Internet."""
PSEUDO_IPV6_NET = ipaddress.IPv6Network("2001:db8::/32")
"""RFC 3849 documentation prefix."""
_PSEUDO_PHONE = re.compile(r"\+1-[2-9]\d\d-555-01\d\d")
"""NANP keeps 555-0100..0199 fictional in every area code."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: `text[start:end] == value`."""

    kind: str
    start: int
    end: int
    value: str


def luhn_ok(digits: str) -> bool:
    """True when `digits` (digits only) passes the Luhn checksum of card numbers."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _b64url_json(part: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError):  # JSONDecodeError and UnicodeDecodeError included
        return None


_B64URL_PART = r"[A-Za-z0-9_-]"
_JWT_SHAPE = re.compile(rf"eyJ{_B64URL_PART}+\.{_B64URL_PART}+\.{_B64URL_PART}*")


def looks_like_jwt(value: str) -> bool:
    """Three base64url parts whose first decodes to a JSON header with "alg" or "typ"."""
    if _JWT_SHAPE.fullmatch(value) is None:
        return False
    header = _b64url_json(value.partition(".")[0])
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


# Parsed addresses are memoised: the same few client and server addresses fill a capture.
@lru_cache(maxsize=4096)
def _ipv4(value: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _ipv6(value: str) -> ipaddress.IPv6Address | None:
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:  # times (12:30:45), MACs, C++ scopes
        return None


def _in_net(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    return address is not None and address in net


_PSEUDONYM_SHAPES: dict[str, Callable[[str], bool]] = {
    "email": lambda v: v.lower().endswith(".invalid"),
    "jwt": lambda v: v.startswith(PSEUDO_JWT_HEADER + "."),
    "bearer": lambda v: v.startswith((PSEUDO_TOKEN_PREFIX, PSEUDO_JWT_HEADER + ".")),
    "phone": lambda v: _PSEUDO_PHONE.fullmatch(v) is not None,
    "card": lambda v: not luhn_ok(v.replace(" ", "").replace("-", "")),
    "ipv4": lambda v: _in_net(_ipv4(v), PSEUDO_IPV4_NET),
    "ipv6": lambda v: _in_net(_ipv6(v), PSEUDO_IPV6_NET),
    "key": lambda v: v.startswith(PSEUDO_TOKEN_PREFIX),
    "private_key": lambda v: v.startswith(PSEUDO_TOKEN_PREFIX),
}


def is_pseudonym(kind: str, value: str) -> bool:
    """True when `value` has the reserved shape of a tracereplay pseudonym of `kind`."""
    shape = _PSEUDONYM_SHAPES.get(kind)
    return shape is not None and shape(value)


# --- detectors: each yields (kind, start, end) of validated values ------------------------
#
# Python's re tries a match at every position of a pattern that starts with a lookbehind
# (~100 ns a character). So each pattern starts with a character class or a literal, which
# re skips to in C ('@', ':', "eyJ", 'B', a digit), then checks the character before it.

Spans = Iterator[tuple[str, int, int]]

_EMAIL = re.compile(
    r"(?<![\w.%+-])[a-z0-9._+-]{1,64}(?:@|%40)"
    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,63}"
    r"(?![\w-])",
    re.IGNORECASE,
)
_AT = re.compile(r"@|%40")  # URL-encoded '@' too: raw queries and form bodies
_LOCAL_PART = re.compile(r"[a-z0-9._+-]{1,64}", re.IGNORECASE)


def _emails(text: str, _kinds: Collection[str]) -> Spans:
    if "@" not in text and "%40" not in text:  # str search beats a regex pass
        return
    resume = 0
    for at in _AT.finditer(text):
        at_start = at.start()
        if at_start < resume:
            continue
        # The local part ends at '@': match it backwards on the reversed 64 characters before.
        before = text[max(resume, at_start - 64) : at_start][::-1]
        local = _LOCAL_PART.match(before)
        match = _EMAIL.match(text, at_start - local.end()) if local else None
        if match is not None:
            resume = match.end()
            yield "email", *match.span()


_JWT = re.compile(rf"eyJ(?<![\w-]eyJ){_JWT_SHAPE.pattern[3:]}(?![\w-])")


def _jwts(text: str, _kinds: Collection[str]) -> Spans:
    if "eyJ" in text:  # base64url of '{"': every JWT header starts so
        for match in _JWT.finditer(text):
            if looks_like_jwt(match.group()):
                yield "jwt", *match.span()


# RFC 6750: "Bearer" 1*SP b64token (spaces only: a newline ends a header value).
_BEARER = re.compile(
    r"[Bb](?<!\w[Bb])[Ee][Aa][Rr][Ee][Rr][ \t]+([A-Za-z0-9._~+/-]+=*)(?![\w.~+/=-])"
)
_BEARER_MIN_LEN = 8
_AUTH_PARAM = re.compile(r'[A-Za-z_]+="')  # `Bearer realm="api", error="invalid_token"`


def _bearers(text: str, _kinds: Collection[str]) -> Spans:
    if "earer" in text or "EARER" in text:
        for match in _BEARER.finditer(text):
            start, end = match.span(1)
            if end - start >= _BEARER_MIN_LEN and not _AUTH_PARAM.fullmatch(text, start, end + 1):
                yield "bearer", start, end


# Cards, IPv4 addresses and phones share one pass: one attempt per digit, '(' or '+' that
# starts a token. The first character is consumed before the lookbehinds, so they look two
# characters back; each branch then checks what that first character was.
_NANP = r"(?:\(\d{{3}}\)\ ?\d{{3}}[-. ]?\d{{4}}|\d{{3}}(?P<{0}>[-. ])\d{{3}}(?P={0})\d{{4}})"
_NUMERIC_PARTS = {
    # 13-19 digits: ungrouped, or a 4-digit group then groups of 3-6 split by one separator.
    "card": r"""(?P<card>(?<=[0-9])(?<![,+-].)(?<![0-9][ -].)
        \d{3}(?:(?P<cs>[ -])\d{3,6}(?:(?P=cs)\d{3,6}){1,4}|\d{9,15})
        (?![\w+-]|[ -]?\d|[.,]\d))""",
    "ipv4": r"(?P<ipv4>(?<=[0-9])\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\w|\.\d))",
    "phone": rf"""(?P<phone>(?<![+-].)
        (?: (?<=\() \d{{3}}\)\ ?\d{{3}}[-. ]?\d{{4}}            # (234)567-8901
          | (?<=\+) 1[-. ]? {_NANP.format("s1")}                # +1-234-567-8901
          | (?<=\+) [1-9](?:[ -]?\d){{7,14}}                   # +44 20 7946 0958
          | (?<=0) 01[-. ] {_NANP.format("s2")}                 # 001-234-567-8901
          | (?<=1) [-. ] {_NANP.format("s3")}                   # 1-234-567-8901
          | (?<=[0-9]) \d\d(?P<s4>[-. ])\d{{3}}(?P=s4)\d{{4}}   # 234.567.8901
          | (?<=[2-9]) (?P<plain>\d\d[2-9]\d{{6}})              # 2345678901, NANP-valid
        )
        (?:\ ?(?:x|ext\.?|\#)\ ?\d{{1,6}})?                     # extension
        (?![\w+-]|[.,]\d))""",
}


@lru_cache(maxsize=8)
def _numeric_pattern(kinds: frozenset[str]) -> re.Pattern[str]:
    branches = "|".join(part for kind, part in _NUMERIC_PARTS.items() if kind in kinds)
    return re.compile(rf"[(+0-9](?<![\w.].)(?:{branches})", re.VERBOSE | re.IGNORECASE)


_ISO_DATE_AFTER_PLUS = re.compile(r"\+\d{4,6}-\d\d-\d\d")
_JSON_KEY_BEFORE = re.compile(r'":\s*$')


_NUMERIC_KINDS = frozenset(_NUMERIC_PARTS)


def _numerics_pattern(kinds: Collection[str]) -> re.Pattern[str] | None:
    wanted = _NUMERIC_KINDS.intersection(kinds)
    return _numeric_pattern(wanted) if wanted else None


def _numerics(text: str, kinds: Collection[str]) -> Spans:
    pattern = _per_kinds(_NUMERIC_PLANS, kinds, _numerics_pattern)
    if pattern is None:
        return
    for match in pattern.finditer(text):
        start, end = match.span()
        kind = match.lastgroup  # the branch's outer group: "card", "ipv4" or "phone"
        if kind == "card":
            ok = _card_ok(match.group())
        elif kind == "ipv4":
            ok = _ipv4_ok(text, start, match.group())
        else:
            ok = _phone_ok(text, start, match.group("plain"))
        if ok and kind is not None:
            yield kind, start, end


def _card_ok(value: str) -> bool:
    digits = value.replace(" ", "").replace("-", "")
    # Card networks use major industry identifiers 2-6 (and old 15-digit JCB 1800): this
    # keeps epoch milli/micro/nanoseconds and snowflake ids (all "1…") out.
    issuer_ok = digits[0] in "23456" or (len(digits) == 15 and digits.startswith("1800"))
    return 13 <= len(digits) <= 19 and issuer_ok and luhn_ok(digits)


_PRODUCT_TOKEN = re.compile(r"[A-Za-z][\w.-]*/$")


def _ipv4_ok(text: str, start: int, value: str) -> bool:
    address = _ipv4(value)
    if address is None or address.is_loopback or address.is_unspecified:
        return False
    # `Chrome/120.0.0.0` in a user agent is a version, not an address (but /hosts/1.2.3.4 is).
    if start and text[start - 1] == "/":
        floor = max(0, start - 64)
        token_start = max(floor - 1, *(text.rfind(c, floor, start) for c in " \t\r\n(;,\"='"))
        return _PRODUCT_TOKEN.fullmatch(text, token_start + 1, start) is None
    return True


def _phone_ok(text: str, start: int, plain: str | None) -> bool:
    # An unquoted JSON number is a count or an id far more often than a phone, and replacing
    # it with "+1-…" would break the body's syntax.
    if plain is not None and _JSON_KEY_BEFORE.search(text, max(0, start - 8), start):
        return False
    return _ISO_DATE_AFTER_PLUS.match(text, start) is None  # ISO 8601 expanded years


# Anchor: two colons with at most one hex group between; then a loose candidate from the
# start of its hex run, and ipaddress decides.
_IPV6_HINT = re.compile(r":[0-9a-f]{0,4}:", re.IGNORECASE)
_IPV6 = re.compile(
    r"(?<![\w:.])(?=(?:[0-9a-f]{0,4}:){2})[0-9a-f:]{2,39}(?:(?:\.\d{1,3}){3})?(?![\w:]|\.\d)",
    re.IGNORECASE,
)
_HEX_RUN_END = re.compile(r"[0-9a-f]{1,4}$", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")


def _ipv6s(text: str, _kinds: Collection[str]) -> Spans:
    position = 0
    while (hint := _IPV6_HINT.search(text, position)) is not None:
        run = _HEX_RUN_END.search(text, max(0, hint.start() - 4), hint.start())
        match = _IPV6.match(text, run.start() if run else hint.start())
        if match is None:
            position = hint.start() + 1
            continue
        position = match.end()
        candidate = match.group()
        if _HAS_DIGIT.search(candidate) is None:  # `cafe::bad`, `Foo::Bar`: names, not hosts
            continue
        address = _ipv6(candidate)
        if address is None:
            continue
        judged = address.ipv4_mapped or address
        if not (judged.is_loopback or judged.is_unspecified):
            yield "ipv6", *match.span()


# Priority order: a span claimed by an earlier detector hides overlapping later ones. A JWT
# after "Bearer" is therefore reported once, as jwt; an email's digits never count as a phone.
_DETECTORS: tuple[tuple[frozenset[str], Callable[[str, Collection[str]], Spans]], ...] = (
    (frozenset(("private_key", "key")), find_keys),
    (frozenset(("jwt",)), _jwts),
    (frozenset(("bearer",)), _bearers),
    (frozenset(("email",)), _emails),
    (frozenset(("ipv6",)), _ipv6s),
    (_NUMERIC_KINDS, _numerics),
    (frozenset(("ssn", "iban")), find_national_ids),
    (frozenset(("phone",)), national_phones),
)


# Every finding holds a digit, '@', a JWT's "eyJ", the word bearer (a@b.co is the shortest),
# a PEM block's dashes; or else a service key's prefix (keys.has_key_prefix).
_ANY_ANCHOR = re.compile(r"[0-9@]|eyJ|earer|EARER|-----")


def find_all(text: str, kinds: Collection[str] = KINDS) -> list[Finding]:
    """Non-overlapping findings sorted by start; values that are already tracereplay
    pseudonyms are NOT reported (they still hide what overlaps them).

    Kinds not in KINDS are ignored.
    """
    if len(text) < 6 or (_ANY_ANCHOR.search(text) is None and not has_key_prefix(text)):
        return []  # most header values end here
    # Claimed spans never overlap, so sorted starts and ends answer "overlaps?" by bisection.
    starts: list[int] = []
    ends: list[int] = []
    findings: list[Finding] = []
    for detect in _per_kinds(_PLANS, kinds, _plan):  # the detectors of `kinds`, in order
        for kind, start, end in detect(text, kinds):
            at = bisect_right(starts, start)
            if (at and ends[at - 1] > start) or (at < len(starts) and starts[at] < end):
                continue
            starts.insert(at, start)
            ends.insert(at, end)
            value = text[start:end]
            if not is_pseudonym(kind, value):
                findings.append(Finding(kind, start, end, value))
    if len(findings) > 1:
        findings.sort(key=lambda f: f.start)
    return findings


Detector = Callable[[str, Collection[str]], Spans]
_PLANS: dict[Collection[str], tuple[Detector, ...]] = {}
_NUMERIC_PLANS: dict[Collection[str], re.Pattern[str] | None] = {}
_PLANS_KEPT = 64
_Plan = TypeVar("_Plan")


def _per_kinds(
    plans: dict[Collection[str], _Plan],
    kinds: Collection[str],
    make: Callable[[Collection[str]], _Plan],
) -> _Plan:
    """`make(kinds)`, memoised in `plans` for a tuple or frozenset of kinds: a capture asks
    with a handful of kind sets, millions of times."""
    try:
        return plans[kinds]
    except (KeyError, TypeError):  # not asked yet, or a set/list (unhashable)
        pass
    plan = make(kinds)
    if isinstance(kinds, (tuple, frozenset)) and len(plans) < _PLANS_KEPT:
        plans[kinds] = plan
    return plan


def _plan(kinds: Collection[str]) -> tuple[Detector, ...]:
    return tuple(detect for named, detect in _DETECTORS if not named.isdisjoint(kinds))
