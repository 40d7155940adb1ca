"""Headers: credentials pseudonymized (keeping their syntax), URLs and free text anonymized.

Authorization keeps its scheme word, Cookie and Set-Cookie keep cookie names and
attributes; every other kept value goes through the detectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .policy import name_words
from .values import ValueAnonymizer

Headers = list[tuple[str, str]]

# CORS headers name credentials without carrying any ("Access-Control-Allow-Credentials").
_CORS_PREFIX = "access-control-"


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
        if lname in {"authorization", "proxy-authorization"}:
            out.append((name, authorization(values, value)))
        elif lname == "cookie":
            out.append((name, cookie_header(values, value)))
        elif lname == "set-cookie":
            out.append((name, set_cookie_header(values, value)))
        elif lname in policy.url_headers:
            out.append((name, values.url(value)))
        elif is_secret_header(values, lname):
            out.append((name, values.pseudo.secret(value.strip()) if value.strip() else value))
        else:
            out.append((name, values.text(value)))
    return out


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
    for part in value.split(";"):
        name, sep, cookie_value = part.strip().partition("=")
        if name or sep:
            yield name.strip(), cookie_value.strip()


def cookie_header(values: ValueAnonymizer, value: str) -> str:
    """Every cookie value in a Cookie header becomes a keyed pseudonym; names are kept."""
    pairs = []
    for name, cookie_value in split_cookies(value):
        pairs.append(f"{name}={_cookie_value(values, cookie_value)}")
    return "; ".join(pairs)


def set_cookie_header(values: ValueAnonymizer, value: str) -> str:
    """Set-Cookie: the value becomes a pseudonym, the attributes (Path, Expires, …) stay."""
    first, sep, attributes = value.partition(";")
    name, eq, cookie_value = first.strip().partition("=")
    if not eq:
        return values.text(value)
    return f"{name}={_cookie_value(values, cookie_value.strip())}{sep}{attributes}"


def _cookie_value(values: ValueAnonymizer, raw: str) -> str:
    quoted = len(raw) >= 2 and raw[0] == raw[-1] == '"'
    inner = raw[1:-1] if quoted else raw
    if not inner:
        return raw
    pseudonym = values.pseudo.secret(inner)
    return f'"{pseudonym}"' if quoted else pseudonym
