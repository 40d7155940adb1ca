"""Policy headers: Content-Security-Policy (and its Report-Only and legacy names),
Feature-Policy and Permissions-Policy, parsed rather than kept or replaced whole.

Their directive and feature names, keywords (`'self'`, `'none'`, `'unsafe-inline'`), scheme
sources (`data:`, `https:`) and `*` are structure and stay as they are. What they may carry
that is not structure goes through the value rules: hosts and URLs (a third-party host
becomes `h….anon.invalid`, `report-uri` is a URL like any other), nonces and hashes (keyed
`anon_…` pseudonyms; a nonce is a per-response secret), and any other word.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .shapes import HOST, URL_START

if TYPE_CHECKING:
    from .values import ValueAnonymizer

CSP_HEADERS = frozenset(
    (
        "content-security-policy",
        "content-security-policy-report-only",
        "x-content-security-policy",
        "x-webkit-csp",
        "feature-policy",  # the same grammar: `camera 'none'; geolocation 'self' https://…`
    )
)
PERMISSIONS_HEADERS = frozenset(("permissions-policy",))
PERMISSION_WORDS = frozenset(("self", "src", "*"))

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_KEYWORD = re.compile(r"'[a-z][a-z0-9-]*'|\*|[a-z][a-z0-9+.-]*:")  # 'self', *, data:
_NONCE_OR_HASH = re.compile(r"'(?:nonce|sha256|sha384|sha512)-([^']*)'", re.IGNORECASE)
_WILDCARD_HOST = re.compile(r"(?:\*\.)?([A-Za-z0-9.-]+)(?::[0-9*]+)?")
_NOT_SPACE = re.compile(r"\S+")
_ITEM = re.compile(r'"([^"]*)"|([^\s()"]+)')


def classify(token: str) -> tuple[str, str]:
    """What a source expression is: ("keyword", token) for keywords, schemes and `*`;
    ("nonce", its value) for a nonce or hash; ("url", token); ("host", the name) for
    `*.example.com:443`; else ("value", token)."""
    if _KEYWORD.fullmatch(token):
        return "keyword", token
    nonce = _NONCE_OR_HASH.fullmatch(token)
    if nonce is not None:
        return "nonce", nonce.group(1)
    if URL_START.match(token) or token.startswith("/"):
        return "url", token
    host = _WILDCARD_HOST.fullmatch(token)
    if host is not None and "." in host.group(1) and HOST.fullmatch(host.group(1)):
        return "host", host.group(1)
    return "value", token


def csp_sources(text: str) -> list[str]:
    """Every source expression of a Content-Security-Policy (what scan checks)."""
    return [t for directive in text.split(";") for t in directive.split()[1:]]


def permission_items(text: str) -> list[tuple[str, bool]]:
    """(item, quoted) of each allowlist item of a Permissions-Policy (what scan checks)."""
    return [
        (m.group(1), True) if m.group(1) is not None else (m.group(2), False)
        for feature in text.split(",")
        for m in _ITEM.finditer(feature.partition("=")[2])
    ]


def content_security_policy(values: ValueAnonymizer, text: str) -> str:
    """`default-src 'self' https://cdn.example.com; script-src 'nonce-…'; report-uri /r`."""
    return ";".join(_directive(values, d) for d in text.split(";"))


def _directive(values: ValueAnonymizer, text: str) -> str:
    seen_name = False

    def one(match: re.Match[str]) -> str:
        nonlocal seen_name
        token = match.group()
        if not seen_name:
            seen_name = True
            return token if _NAME.fullmatch(token) else values.value(token)
        return source(values, token)

    return _NOT_SPACE.sub(one, text)


def source(values: ValueAnonymizer, token: str) -> str:
    """One source expression: keywords and schemes kept, nonces and hashes pseudonymized,
    hosts and URLs by the URL rules, anything else by the value rules."""
    kind, part = classify(token)
    if kind == "keyword" or (kind == "nonce" and not part):
        return token
    if kind == "nonce":
        return token.replace(part, values.pseudo.token(part), 1)
    if kind == "url":
        return values.url(token)
    if kind == "host":
        return token.replace(part, values.host(part), 1)
    return values.value(token)


def permissions_policy(values: ValueAnonymizer, text: str) -> str:
    """`camera=(), geolocation=(self "https://maps.example.com"), fullscreen=*`: feature
    names, `self`, `src` and `*` kept, each quoted origin by the URL rules."""
    return ",".join(_feature(values, f) for f in text.split(","))


def _feature(values: ValueAnonymizer, text: str) -> str:
    name, eq, allowlist = text.partition("=")
    kept_name = name if _NAME.fullmatch(name.strip()) else values.value(name)
    if not eq:
        return kept_name

    def one(match: re.Match[str]) -> str:
        quoted, bare = match.group(1), match.group(2)
        if quoted is not None:
            return f'"{values.url(quoted)}"'
        return bare if bare in PERMISSION_WORDS else values.value(bare)

    return f"{kept_name}={_ITEM.sub(one, allowlist)}"
