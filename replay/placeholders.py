"""Anonymized credentials never reach the target; HTTP Basic from --credentials.

A captured credential is stored as a placeholder: `[removed]` (a password field), an
`anon_…` token or a pseudonym JWT (an Authorization header, a token field). Sent as is it
does harm (a Basic-auth backend took `PUT /accounts/{id}` with password `[removed]` and
created the account) and never authenticates. So `credential_placeholder` names the first
place of a prepared request where a credential carries one, and `ownership.clear` skips
that request (reason `placeholder_credential`): a session without a live credential for it
sends nothing there, never the placeholder.

A pagination cursor is not a credential: a value the target itself handed this session in
an answer (a `Next-Page: …?_token=…` header, a `next` URL or a same-named field in the JSON
body) that the next request sends back in its query is a correlation, filled live
(`handed_query_values`, `fill_handed_query`) before the placeholder check; a query
credential the target never handed out stays a placeholder and its request is skipped.

HTTP Basic: a planned `Authorization: Basic <placeholder>` (kept from the trace, or put
there for an endpoint the model learned to be called with Basic, `outcomes.basic_auth`) is
filled from the session's --credentials account (`fill_basic`); without an account it stays
a placeholder and the request is skipped.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from tracereplay.capture.anonymize.detectors import PSEUDO_JWT_HEADER, PSEUDO_TOKEN_PREFIX
from tracereplay.capture.anonymize.values import REMOVED

from .credentials import Credential, credential_field
from .rewrite import PreparedRequest, header, is_form, set_header

BASIC_PLACEHOLDER = f"Basic {REMOVED}"
"""The planned Authorization of a Basic-auth request before its account is known."""
_SECRET_HINT = re.compile(r"token|secret|pass|pwd|session|key", re.I)
"""Words at least one of which a field `credential_field` calls a secret contains."""
_CREDENTIAL_HEADER = re.compile(
    r"^(proxy-)?authorization$|api[-_]?key|auth[-_]?token|access[-_]?token|secret|password",
    re.I,
)


def is_placeholder(value: str) -> bool:
    """Whether `value` (a credential, an Authorization header without or with its scheme)
    is what the anonymizer left in place of one."""
    text = value.strip()
    _, space, rest = text.partition(" ")
    if space and rest.strip():
        text = rest.strip()  # "Basic anon_…", "Bearer <pseudonym JWT>"
    return (
        REMOVED in text
        or text.startswith(PSEUDO_TOKEN_PREFIX)
        or text.startswith(PSEUDO_JWT_HEADER + ".")
    )


_CREDENTIAL_HEADER_MEMO_MAX = 4096
_credential_header_names: dict[str, bool] = {}
"""Header name → whether it names a credential (`_CREDENTIAL_HEADER`): a run sends a few
names again and again, and the search on each header of every request was ~1 us of it."""


def is_credential_header(name: str) -> bool:
    """Whether a request header of this name carries a credential."""
    known = _credential_header_names.get(name)
    if known is None:
        if len(_credential_header_names) >= _CREDENTIAL_HEADER_MEMO_MAX:
            _credential_header_names.clear()
        known = _credential_header_names[name] = _CREDENTIAL_HEADER.search(name) is not None
    return known


def credential_placeholder(request: PreparedRequest) -> str | None:
    """Where `request` would send an anonymized credential ("header Authorization",
    "json password", "query api_key"), or None."""
    for name, value in request.headers:
        if is_credential_header(name) and is_placeholder(value):
            return f"header {name}"
    for name, value in parse_qsl(request.query, keep_blank_values=True) if request.query else ():
        if credential_field(name) and is_placeholder(value):
            return f"query {name}"
    if request.body:
        found = _body_placeholder(request.body, request.headers)
        if found is not None:
            return found
    return None


def _body_placeholder(body: bytes, headers: Sequence[tuple[str, str]]) -> str | None:
    if is_form(headers):
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return next(
            (f"form {n}" for n, v in pairs if credential_field(n) and is_placeholder(v)), None
        )
    marks = (REMOVED, PSEUDO_TOKEN_PREFIX, PSEUDO_JWT_HEADER)
    if not any(mark.encode() in body for mark in marks):
        return None  # cheap: most bodies hold no placeholder at all
    try:
        doc = json.loads(body)
    except ValueError:
        return None

    def walk(node: object) -> str | None:
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for name, value in items:
            if isinstance(value, dict | list):
                if (found := walk(value)) is not None:
                    return found
            elif (
                isinstance(name, str)
                and isinstance(value, str)
                and credential_field(name)
                and is_placeholder(value)
            ):
                return f"json {name}"
        return None

    return walk(doc)


def _url_query(value: str) -> list[tuple[str, str]]:
    text = value.strip()
    if "?" not in text or not (text.startswith(("http://", "https://", "/"))):
        return []
    return parse_qsl(urlsplit(text).query, keep_blank_values=True)


def _json_leaves(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _json_leaves(value, str(name))
    elif isinstance(node, list):
        for item in node:
            yield from _json_leaves(item, key)
    elif isinstance(node, str) and key:
        yield key, node


def handed_query_values(headers: Sequence[tuple[str, str]], body: bytes | None) -> dict[str, str]:
    """Query values an answer hands out for the client to send back: the query of every
    URL in its headers (`Next-Page`, `Link`, `Location`) and JSON string leaves, and each
    JSON string leaf by its field name (`{"next_token": …}`)."""
    found: dict[str, str] = {}
    for _, value in headers:
        for part in value.split(","):  # Link: <url>; rel="next", <url>; rel="prev"
            found.update(_url_query(part.strip().split(";")[0].strip("<> ")))
    if body and body.lstrip()[:1] in (b"{", b"["):
        try:
            doc = json.loads(body)
        except ValueError:
            return found
        for name, leaf in _json_leaves(doc):
            found.update(_url_query(leaf))
            found.setdefault(name, leaf)
    return found


def may_hold_placeholder(query: str | None) -> bool:
    """A cheap test whether a query string may hold a placeholder (no parsing)."""
    if not query:
        return False
    text = unquote_plus(query)
    return any(mark in text for mark in (REMOVED, PSEUDO_TOKEN_PREFIX, PSEUDO_JWT_HEADER))


def fill_handed_query(query: str | None, handed: dict[str, str]) -> str | None:
    """`query` with each placeholder value the session was handed a live one for replaced
    by it (a pagination cursor); other values, and placeholders never handed out, stay."""
    if not query or not handed or not may_hold_placeholder(query):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    filled = [(n, handed[n] if is_placeholder(v) and n in handed else v) for n, v in pairs]
    return query if filled == pairs else urlencode(filled)


def recorded_query(query: str | None) -> str | None:
    """`query` as the run folder records it: the value of every field named like a secret
    (a live cursor handed back, a live key) blanked to `[removed]`, as the capture does."""
    if not query or not _SECRET_HINT.search(query):
        return query  # cheap: most queries name no secret at all
    pairs = parse_qsl(query, keep_blank_values=True)
    blanked = [(n, REMOVED if credential_field(n) and v else v) for n, v in pairs]
    return query if blanked == pairs else urlencode(blanked)


def basic_value(credential: Credential) -> str:
    """`Basic base64(user:password)` (RFC 7617, UTF-8)."""
    pair = f"{credential.email}:{credential.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def fill_basic(
    headers: list[tuple[str, str]], credential: Credential | None
) -> list[tuple[str, str]]:
    """`headers` with a placeholder Basic Authorization replaced by the account's."""
    if credential is None:
        return headers
    planned = header(headers, "authorization")
    if planned is None:
        return headers
    scheme, _, rest = planned.strip().partition(" ")
    if scheme.lower() != "basic" or not is_placeholder(rest or scheme):
        return headers
    return set_header(headers, "authorization", basic_value(credential))
