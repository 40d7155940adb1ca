"""Shapes of values: the pure predicates that say why a value may be stored as it is.

A value is kept only when one of these explains it (a number, a timestamp, a version, a
media type, an enum word); `scan` uses the same shapes, and the reserved shapes of
pseudonyms, to tell what it may ignore.
"""

from __future__ import annotations

import math
import re
from collections import Counter

UUID = re.compile(
    r"(?<![0-9A-Fa-f-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![0-9A-Fa-f-])"
)
INTEGER = re.compile(r"[+-]?[0-9]+")
# Small numbers, decimals, amounts, percentages, exponents: `12`, `-3.5`, `1,234.50`, `12%`.
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?%?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
    r"|[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    # RFC 1123 / 850 (HTTP dates): Mon, 02 Mar 2026 09:30:00 GMT
    r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*, [0-9]{2}[ -][A-Z][a-z]{2}[ -][0-9]{2,4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} (?:GMT|UTC|[+-][0-9]{4})"
)
_VERSION = re.compile(r"v?[0-9]+(?:\.[0-9]+){1,3}(?:[-+][0-9A-Za-z.]{1,20})?")
_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9][a-z0-9.+-]*(?:; ?[a-z-]+=[\w.-]+)?")
_DURATION = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:ms|us|ns|s|m|h|d|w)")
_LOCALE = re.compile(r"[a-z]{2}(?:[-_][A-Z]{2})?")
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64ISH = re.compile(r"[A-Za-z0-9_\-+/=.~]+")
_TOKEN_PARTS = re.compile(r"[-_.~=/+]")
_PHONE_CHARS = re.compile(r"\+?[0-9 ().\-/]+(?: ?(?:x|ext\.?|#) ?[0-9]{1,6})?", re.IGNORECASE)
HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\.?", re.IGNORECASE)
URL_START = re.compile(r"[a-z][a-z0-9+.\-]{1,15}://", re.IGNORECASE)


# One fullmatch of the alternation is true when any one of them fullmatches (re backtracks
# into the next alternative until one spans the whole value).
_KEPT_SHAPES = re.compile(
    "|".join(f"(?:{p.pattern})" for p in (_TIMESTAMP, _VERSION, _MEDIA_TYPE, _DURATION, _LOCALE))
)


def is_structural(value: str) -> bool:
    """A number (not a long integer: those are ids), a timestamp, a version, a media type,
    a duration or a locale: stored as it is."""
    if INTEGER.fullmatch(value):
        return len(value.lstrip("+-")) <= 4
    return bool(
        (_NUMBER.fullmatch(value) and any(c.isdigit() for c in value))
        or _KEPT_SHAPES.fullmatch(value)
    )


def is_long_integer(value: str) -> bool:
    return INTEGER.fullmatch(value) is not None and len(value.lstrip("+-")) > 4


def shannon_bits(value: str) -> float:
    """Shannon entropy of the characters of `value`, bits per character."""
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_secret(value: str) -> bool:
    """A random-looking token: long hex, or 16+ characters of base64/base62 mixing letters
    and digits with high entropy, that is not words joined by separators."""
    if len(value) < 16 or not _B64ISH.fullmatch(value):
        return False
    if value.isdigit():
        return False  # a long number is an id or a count: the integer rules judge it
    if _HEX.fullmatch(value):
        return True
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return len(value) >= 32 and shannon_bits(value) >= 4.0
    parts = [p for p in _TOKEN_PARTS.split(value) if p]
    if all(p.isalpha() or p.isdigit() or len(p) <= 3 for p in parts):
        return False  # `refresh-cache-v2`, `2024_report_final`
    return shannon_bits(value) >= 3.0


def looks_phone(value: str) -> bool:
    """Only phone characters, with 7 to 15 digits and a phone-like start."""
    if not _PHONE_CHARS.fullmatch(value):
        return False
    digits = sum(c.isdigit() for c in value)
    return 7 <= digits <= 15 and value.lstrip()[:1] in "+(0123456789"


def is_host(value: str) -> bool:
    """A DNS name with a public suffix (`api.example.com`), not a file name (`a.pdf`)."""
    if not HOST.fullmatch(value) or value.replace(".", "").isdigit():
        return False
    from publicsuffix2 import get_sld  # mitmproxy's own dependency

    try:
        return get_sld(value.lower().rstrip("."), strict=True) is not None
    except (ValueError, IndexError):
        return False
