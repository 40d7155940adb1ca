"""URL-shaped values: paths, query strings and forms, fragments, whole URLs, Link and Refresh.

A URL keeps its scheme and the shape of its path; its host is kept only when it is the
exchange's own host or allow-listed. Path segments that look like tokens, matrix
parameters (`;jsessionid=`), query and fragment values go through the value rules.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

from .identifiers import colon_parts
from .shapes import looks_secret

if TYPE_CHECKING:
    from .values import ValueAnonymizer

_PAIR_SEPARATORS = re.compile(r"([&;])")
_SEGMENT_SAFE = "@:!$&'()*+,;=-._~"
_LINK = re.compile(r"<([^>]*)>")
_REFRESH_URL = re.compile(r"(url\s*=\s*['\"]?)([^'\"]*)", re.IGNORECASE)


def query(values: ValueAnonymizer, text: str) -> str:
    """An urlencoded query or form: names kept, each value under its name's rules; `&` and
    `;` both separate pairs (`a=1;token=…`), and stay as they were."""
    if not text:
        return text
    if "=" not in text:
        return quote(values.string(unquote_plus(text)), safe="/:,;@+")
    out: list[str] = []
    for piece in _PAIR_SEPARATORS.split(text):
        if piece in ("&", ";", ""):
            out.append(piece)
            continue
        name, eq, raw = piece.partition("=")
        plain_name = unquote_plus(name)
        kept_name = values.key(plain_name)
        name_out = name if kept_name == plain_name else quote_plus(kept_name)
        if not eq:
            out.append(name_out)
            continue
        value = unquote_plus(raw)
        made = values.string(value, plain_name)
        out.append(f"{name_out}={raw if made == value else quote_plus(made)}")
    return "".join(out)


def path(values: ValueAnonymizer, text: str) -> str:
    """Each path segment on its own (percent-encoding kept where nothing changed)."""
    return "/".join(_segment(values, s) for s in text.split("/"))


def _segment(values: ValueAnonymizer, segment: str) -> str:
    if not segment:
        return segment
    if ";" in segment:  # matrix parameters: /a;jsessionid=XYZ
        head, _, params = segment.partition(";")
        return (
            _segment(values, head) + ";" + query(values, params)
            if head
            else ";" + query(values, params)
        )
    if values.policy.integer_path_segments and segment.isdigit():
        return values.pseudo.integer(segment)
    decoded = unquote(segment)
    made = values.text(decoded)
    if made == decoded and _identifies(values, decoded):
        # The pseudonym the same value gets in a body or a query, so `/accounts/<name>`
        # still matches the `"id": "<name>"` a response gave.
        made = values.token(decoded)
    elif made == decoded and any(c.isspace() for c in decoded.strip()):
        made = values.free_text(decoded)
    return segment if made == decoded else quote(made, safe=_SEGMENT_SAFE)


def _identifies(values: ValueAnonymizer, segment: str) -> bool:
    """A segment that is a credential, a handle or someone's name, not a route word: a
    random-looking token (`/reset/<token>`), or an identifier (`/users/jsmith42`,
    `/accounts/jessica.miller`, `/principals/account:user1`; see identifiers.py)."""
    if looks_secret(segment):
        return True
    return any(values.is_identifier(part) for part in colon_parts(segment) if part)


def fragment(values: ValueAnonymizer, text: str) -> str:
    """`#access_token=…&token_type=bearer` as a query, `#/route/7` as a path, else a value."""
    if not text:
        return text
    if "=" in text:
        return query(values, text)
    if text.startswith("/"):
        return path(values, text)
    return quote(values.string(unquote(text)), safe=_SEGMENT_SAFE)


def url(values: ValueAnonymizer, text: str) -> str:
    """An absolute or relative URL: host (unless own or allowed), path, query and fragment
    anonymized; user information removed."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return values.value(text) if "://" not in text else values.free_text(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "[removed]@" + netloc.rsplit("@", 1)[1]
    if netloc:
        userinfo, at, hostport = netloc.rpartition("@")
        netloc = userinfo + at + values.host(hostport)
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            path(values, parts.path),
            query(values, parts.query),
            fragment(values, parts.fragment),
        )
    )


def link_header(values: ValueAnonymizer, text: str) -> str:
    """`<https://…?page=2&access_token=…>; rel="next", <…>; rel="last"`: each URL anonymized."""
    return _LINK.sub(lambda m: f"<{url(values, m.group(1))}>", text)


def refresh_header(values: ValueAnonymizer, text: str) -> str:
    """`5; url=https://…`: the URL anonymized, the delay kept."""
    return _REFRESH_URL.sub(lambda m: m.group(1) + url(values, m.group(2)), text)
