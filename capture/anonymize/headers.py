"""Headers: credentials pseudonymized (keeping their syntax), URLs anonymized, the rest by
default deny unless the policy keeps a header of known syntax.

Authorization keeps its scheme word; Cookie and Set-Cookie keep cookie names and
attributes (also when several Set-Cookie values were folded into one with commas);
Content-Security-Policy and Permissions-Policy keep their syntax (policy_headers.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .policy import name_words
from .policy_headers import (
    CSP_HEADERS,
    PERMISSIONS_HEADERS,
    content_security_policy,
    permissions_policy,
)
from .urls import link_header, path, refresh_header
from .values import ValueAnonymizer

Headers = list[tuple[str, str]]

# CORS headers name credentials without carrying any ("Access-Control-Allow-Credentials").
_CORS_PREFIX = "access-control-"
# A comma that starts another cookie (`a=1; Path=/, sid=S`), not the one in an Expires date.
_FOLD = re.compile(r",\s*(?=[^;,=\s]+=)")
_KEPT_ATTRIBUTES = frozenset(
    ("expires", "max-age", "secure", "httponly", "samesite", "priority", "partitioned")
)


def anonymize_headers(
    values: ValueAnonymizer, headers: Sequence[tuple[str, str]] | None
) -> Headers:
    """The stored form of a header list: order and names kept, dropped headers left out."""
    policy = values.policy
    out: Headers = []
    for name, value in headers or ():
        lname = name.lower()
        if lname in policy.drop_headers:
            continue
        out.append((values.key(name), _header_value(values, lname, value)))
    return out


def _header_value(values: ValueAnonymizer, lname: str, value: str) -> str:  # noqa: PLR0911
    policy = values.policy
    if lname in {"authorization", "proxy-authorization"}:
        return authorization(values, value)
    if lname == "cookie":
        return cookie_header(values, value)
    if lname == "set-cookie":
        return set_cookie_header(values, value)
    if lname in policy.url_headers:
        return values.url(value.strip()) if value.strip() not in ("*", "null") else value
    if lname == "link":
        return link_header(values, value)
    if lname == "refresh":
        return refresh_header(values, value)
    if lname in CSP_HEADERS:
        return content_security_policy(values, value)
    if lname in PERMISSIONS_HEADERS:
        return permissions_policy(values, value)
    if is_secret_header(values, lname):
        return values.pseudo.secret(value.strip()) if value.strip() else value
    if lname in policy.keep_headers:
        return values.text(value)
    return values.string(value, lname)


def is_secret_header(values: ValueAnonymizer, lname: str) -> bool:
    if lname in values.policy.secret_headers:
        return True
    if lname.startswith(_CORS_PREFIX):
        return False
    return bool(name_words(lname) & values.policy.secret_words)


def authorization(values: ValueAnonymizer, value: str) -> str:
    """`Bearer <token>` → `Bearer <pseudonym>`; the scheme word is kept, the rest replaced."""
    scheme, sep, credentials = value.strip().partition(" ")
    if not sep:
        return values.pseudo.secret(scheme) if scheme else value
    credentials = credentials.strip()
    return f"{scheme} {values.pseudo.secret(credentials)}" if credentials else scheme


def split_cookies(value: str) -> Iterable[tuple[str, str]]:
    """(name, value) of each cookie in a Cookie header; a cookie without `=` has no name."""
    for part in value.split(";"):
        name, sep, cookie_value = part.strip().partition("=")
        if not sep:
            name, cookie_value = "", name
        if name or cookie_value:
            yield name.strip(), cookie_value.strip()


def cookie_header(values: ValueAnonymizer, value: str) -> str:
    """Every cookie value in a Cookie header becomes a keyed pseudonym; names are kept."""
    pairs = []
    for name, cookie_value in split_cookies(value):
        made = _cookie_value(values, cookie_value)
        pairs.append(f"{values.key(name)}={made}" if name else made)
    return "; ".join(pairs)


def set_cookie_header(values: ValueAnonymizer, value: str) -> str:
    """Set-Cookie: each value becomes a pseudonym, the attributes (Path, Expires, …) stay;
    cookies folded into one header with commas are each handled."""
    return ", ".join(_one_set_cookie(values, cookie) for cookie in split_set_cookie(value))


def split_set_cookie(value: str) -> list[str]:
    """The cookies of a Set-Cookie value, unfolded where commas joined several."""
    return _FOLD.split(value)


def _one_set_cookie(values: ValueAnonymizer, value: str) -> str:
    first, sep, attributes = value.partition(";")
    name, eq, cookie_value = first.strip().partition("=")
    if not eq:  # no name: the whole first part is the value
        name, cookie_value = "", name
    made = _cookie_value(values, cookie_value.strip())
    head = f"{values.key(name.strip())}={made}" if name.strip() else made
    return head + sep + _attributes(values, attributes) if sep else head


def _attributes(values: ValueAnonymizer, text: str) -> str:
    out = []
    for attribute in text.split(";"):
        name, eq, raw = attribute.partition("=")
        lname = name.strip().lower()
        if not eq or lname in _KEPT_ATTRIBUTES:
            out.append(attribute)
        elif lname == "path":
            out.append(f"{name}={path(values, raw.strip())}")
        elif lname == "domain":
            out.append(f"{name}={values.host(raw.strip().lstrip('.'))}")
        else:
            out.append(f"{name}={values.string(raw.strip(), lname)}")
    return ";".join(out)


def _cookie_value(values: ValueAnonymizer, raw: str) -> str:
    quoted = len(raw) >= 2 and raw[0] == raw[-1] == '"'
    inner = raw[1:-1] if quoted else raw
    if not inner:
        return raw
    pseudonym = values.pseudo.secret(inner)
    return f'"{pseudonym}"' if quoted else pseudonym
