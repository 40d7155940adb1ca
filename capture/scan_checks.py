"""What the leak scanner looks for in one stored value, without trusting the capture's policy.

Each check names a kind of finding: a detector's kind (email, jwt, key, ssn, …), `entropy`
(a random-looking token that is no pseudonym), `free-text` (words that are not the Latin
words of a pseudonym), `identifier` (a name or numbered handle of someone: `jessica.miller`,
`user1`, the `user1` of `account:user1`, also in paths), `word` (a lone word no vocabulary
explains), `field` (a value in a field named like a password, secret, person or birth date
that is not a pseudonym), `host` (a host outside the trace's own and the allow-list) and
`canary` (a value the user listed).
`body_leaves` and `markup_leaves` turn a stored body into the (field, value) pairs checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tracereplay.capture.anonymize.detectors import (
    PSEUDO_JWT_HEADER,
    PSEUDO_TOKEN_PREFIX,
    find_all,
    is_pseudonym,
)
from tracereplay.capture.anonymize.identifiers import colon_parts, looks_identifier
from tracereplay.capture.anonymize.policy import load_policy, name_words
from tracereplay.capture.anonymize.shapes import (
    HOST,
    URL_START,
    UUID,
    is_host,
    is_structural,
    looks_phone,
    looks_secret,
)
from tracereplay.capture.anonymize.words import Vocabulary, is_lorem_text

CHECK_KINDS = ("entropy", "free-text", "identifier", "word", "field", "host", "canary")

Finding = tuple[str, str]
"""(kind, the value found)."""

_TOKENS = re.compile(r"[A-Za-z0-9_\-+/=.~]{16,}")
_WORDS = re.compile(r"[^\W\d_]{2,}")
_URLS = re.compile(r"\b[a-z][a-z0-9+.\-]{1,15}://[^\s<>\"'`]+", re.IGNORECASE)
_PSEUDO_ADDRESS = re.compile(r"[\w.+%@-]+\.invalid\b", re.IGNORECASE)
_HEX_HANDLE = re.compile(r"[0-9a-f]{6,}|[0-9A-F]{6,}")
_PSEUDO_IBAN = re.compile(r"[A-Z]{2}00(?: ?[A-Z0-9]){11,30}")
_JSON_STRING = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?')
_JSONP = re.compile(r"[\w$.]{1,64}\s*\((.*)\)\s*;?", re.DOTALL)
_SESSION_KEY = re.compile(r"[a-z]+:[0-9a-f]{16}")
_DATE_DIGITS = re.compile(r"[0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
REMOVED = "[removed]"

# Scan's own idea of sensitive field names: words of the name (see policy.name_words).
_PASSWORD_WORDS = frozenset(("password", "passwd", "pwd", "pass", "pw", "passphrase",
                             "passcode", "pin", "pincode", "cvv", "cvc"))  # fmt: skip
_SECRET_WORDS = frozenset(("token", "secret", "key", "apikey", "auth", "credential",
                           "credentials", "signature", "sig", "session", "sessionid",
                           "otp", "cookie", "nonce"))  # fmt: skip
_PERSON_NAMES = frozenset(("name", "first_name", "last_name", "full_name", "display_name",
                           "given_name", "family_name", "contact_name", "username",
                           "user_name", "owner", "author", "company", "address",
                           "street", "street_address", "city", "nickname"))  # fmt: skip
_DOB_NAMES = frozenset(("dob", "date_of_birth", "birth_date", "birthdate", "birthday"))
# Parameters whose values name fields (`_sort=-last_modified`, `fields=title,done`).
_FIELD_LIST_WORDS = frozenset(("sort", "sortby", "order", "orderby", "ordering", "fields",
                               "include", "exclude", "expand", "select"))  # fmt: skip
_FIELD_LIST = re.compile(r"[+-]?[A-Za-z][A-Za-z0-9_.]*(?:,[+-]?[A-Za-z][A-Za-z0-9_.]*)*")


class Checker:
    """The checks over values, with the trace's own hosts and the user's allow-list."""

    def __init__(
        self,
        *,
        own_hosts: frozenset[str] = frozenset(),
        allow_hosts: frozenset[str] = frozenset(),
        canaries: tuple[str, ...] = (),
    ) -> None:
        builtin = load_policy()  # the built-in policy's vocabulary, never the trace's policy
        self.vocabulary = Vocabulary(builtin.keep_words)
        self.known_headers = builtin.keep_headers | {"authorization", "cookie", "set-cookie"}
        self.hosts = frozenset(h.lower() for h in own_hosts | allow_hosts)
        self.canaries = tuple(c for c in canaries if c)
        self._canary = (
            re.compile("|".join(re.escape(c) for c in sorted(self.canaries, key=len)[::-1]))
            if self.canaries
            else None
        )
        self.memo = lru_cache(maxsize=65536)(self._value)

    # -- everywhere -------------------------------------------------------------------
    def anywhere(self, text: str) -> Iterator[Finding]:
        """Detectors and canaries: for whole cells, header names, keys, bodies as text."""
        for finding in find_all(text):
            yield finding.kind, finding.value
        if self._canary is not None:
            for match in self._canary.finditer(text):
                yield "canary", match.group()

    # -- a value the capture claims to have replaced (body, query, header value) --------
    def value(self, value: str, field: str | None = None) -> tuple[Finding, ...]:
        if len(value) <= 256:
            return self.memo(value, field)
        return self._value(value, field)

    def _value(self, value: str, field: str | None) -> tuple[Finding, ...]:
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].strip()
        if not value:
            return ()
        found = list(self.anywhere(value))
        found.extend(self._field(value, field))
        found.extend(self.urls(value))
        if any(kind in ("email", "jwt", "canary") for kind, _ in found):
            return tuple(found)
        rest = _PSEUDO_ADDRESS.sub(" ", value) if ".invalid" in value.lower() else value
        found.extend(("entropy", t) for t in _TOKENS.findall(rest) if _secret_token(t))
        if self._field_list(value, field):  # `fields=title,done`: names, each judged alone
            found.extend(
                ("identifier", p) for part in value.split(",") for p in self.identifiers(part)
            )
            return tuple(found)
        # Commas and semicolons part words too (a CSV line); each part is judged alone.
        tokens = [t for t in _SEPARATORS.split(value) if t]
        if len(tokens) >= 2:
            # Free text: a pseudonym's is Latin words; emails, tokens, numbers may stand in it.
            if any(_WORDS.search(t) and not _in_free_text(t.strip(_PUNCTUATION)) for t in tokens):
                found.append(("free-text", value))
            return tuple(found)
        people = self.identifiers(value)
        found.extend(("identifier", p) for p in people)
        if not people and _WORDS.search(value) and not self._lone_explained(value, field):
            found.append(("word", value))
        return tuple(found)

    def identifiers(self, token: str) -> list[str]:
        """The parts of a lone token (split at `:`, as in `account:user1`) that name someone
        or a numbered thing (`jessica.miller`, `jmiller82`, `user1`; see identifiers.py)."""
        return [
            part
            for part in colon_parts(token)
            if part
            and looks_identifier(part, self.vocabulary.extra)
            and not (_is_pseudonym(part) or looks_secret(part))
        ]

    def _lone_explained(self, token: str, field: str | None) -> bool:
        """A lone token explained whole, part by part (`account:quia7`), or as a list of
        field names in a sort or fields parameter (`-last_modified`)."""
        if self._explained(token):
            return True
        parts = colon_parts(token)
        if len(parts) > 1 and all(self._explained(p) or not _WORDS.search(p) for p in parts):
            return True
        return self._field_list(token, field)

    @staticmethod
    def _field_list(value: str, field: str | None) -> bool:
        """Field names (`-last_modified`, `title,done`) as the value of a sort or fields
        parameter."""
        return (
            field is not None
            and bool(name_words(field) & _FIELD_LIST_WORDS)
            and _FIELD_LIST.fullmatch(value) is not None
        )

    def _explained(self, token: str) -> bool:
        """A lone token that a shape, a vocabulary or a pseudonym shape explains."""
        if token[:1] in "+-" and token[1:2].isalpha():  # a sign: `-created`, `+priority`
            token = token[1:]
        return (
            is_structural(token)
            or self.vocabulary.is_enum(token)
            or is_lorem_text(token)
            or _is_pseudonym(token)
            or UUID.fullmatch(token) is not None
            or looks_phone(token)
            or is_host(token)  # judged by urls()
            or token == REMOVED
            or not any(c.isalpha() for c in token)
            or URL_START.match(token) is not None  # its host is judged by urls()
            or _HEX_HANDLE.fullmatch(token) is not None  # a digest or handle: no one's name
        )

    def _field(self, value: str, field: str | None) -> Iterator[Finding]:
        if not field:
            return
        words = name_words(field)
        snake = _CAMEL.sub("_", field).lower()
        if len(words) == 1:  # `oldpassword`, `accesstoken`: the longer words inside count
            whole = next(iter(words))
            words = words | {
                w for w in _PASSWORD_WORDS | _SECRET_WORDS if len(w) >= 5 and w in whole
            }
        if words & _PASSWORD_WORDS:
            if value != REMOVED:
                yield "field", value
        elif words & _SECRET_WORDS and not self.vocabulary.is_enum(value):
            if not _is_pseudonym(value) and not is_structural(value):
                yield "field", value
        elif snake in _PERSON_NAMES:
            if not (is_lorem_text(value) or _is_pseudonym(value)):
                yield "field", value
        elif snake in _DOB_NAMES and any(c.isdigit() for c in value):
            parts = [p for p in _DATE_DIGITS.findall(value) if len(p) != 4]
            if any(p.strip("0") not in ("", "1") for p in parts):
                yield "field", value

    # -- hosts ------------------------------------------------------------------------
    def urls(self, text: str) -> Iterator[Finding]:
        """Hosts named by URLs in `text` (or `text` itself as a host) that are not allowed."""
        candidates = [m.group() for m in _URLS.finditer(text)]
        hosts = []
        for candidate in candidates:
            try:
                hostname = urlsplit(candidate).hostname
            except ValueError:
                continue
            if hostname:
                hosts.append(hostname)
        if not candidates and HOST.fullmatch(text) and is_host(text):
            hosts.append(text)
        for host in hosts:
            bare = host.lower().rstrip(".")
            if not self._host_ok(bare):
                yield "host", host

    def _host_ok(self, host: str) -> bool:
        return (
            host in self.hosts
            or host.endswith(".invalid")
            or host in ("localhost", "127.0.0.1", "::1")
            or host.replace(".", "").isdigit()  # addresses: the detectors judge those
            or ":" in host
        )

    # -- keys that are hashes by design --------------------------------------------------
    @staticmethod
    def session_key(value: str) -> bool:
        return _SESSION_KEY.fullmatch(value) is not None


_PUNCTUATION = ".,;:!?()[]{}<>\"'|/\\-_*&#+="
_SEPARATORS = re.compile(r"[\s,;]+")


def _in_free_text(token: str) -> bool:
    """A word of free text that a pseudonym could hold (not: any English word)."""
    return (
        is_lorem_text(token)
        or _is_pseudonym(token)
        or is_structural(token)
        or UUID.fullmatch(token) is not None
        or is_pseudonym("ipv6", token)
        or not _WORDS.search(token)
    )


def _is_pseudonym(value: str) -> bool:
    return (
        _PSEUDO_IBAN.fullmatch(value) is not None  # check digits 00: never issued
        or value.startswith(PSEUDO_TOKEN_PREFIX)
        or value.startswith(PSEUDO_JWT_HEADER + ".")
        or value.lower().endswith(".invalid")
        or value.startswith(("Bearer anon_", "Basic anon_", f"Bearer {PSEUDO_JWT_HEADER}."))
    )


def _secret_token(token: str) -> bool:
    token = token.strip(".=/+-_~")
    if _is_pseudonym(token) or UUID.fullmatch(token) or PSEUDO_JWT_HEADER in token:
        return False
    return looks_secret(token) and not is_lorem_text(token)


def body_leaves(text: str) -> list[tuple[str | None, str]] | None:
    """(field, value) of every string a body holds, or None for plain text."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        docs = _json_docs(stripped)
        if docs is None:  # cut at the capture's size limit: its string literals still count
            return _json_strings(stripped)
        out: list[tuple[str | None, str]] = []
        for doc in docs:
            _json_leaves(doc, None, out)
        return out
    padded = _JSONP.fullmatch(stripped)
    if padded is not None:
        return body_leaves(padded.group(1))
    if stripped.startswith("<"):
        return markup_leaves(stripped)
    if "=" in stripped and not any(c.isspace() for c in stripped):
        return [(k, v) for k, v in parse_qsl(stripped, keep_blank_values=True)]
    return None


def _json_strings(text: str) -> list[tuple[str | None, str]]:
    """(field, value) of the string literals of broken JSON: a literal before `:` is a key."""
    out: list[tuple[str | None, str]] = []
    field: str | None = None
    for match in _JSON_STRING.finditer(text):
        try:
            literal = json.loads(match.group(1))
        except ValueError:
            continue
        if match.group(2):
            field = literal
        else:
            out.append((field, literal))
    return out


def _json_docs(text: str) -> list[Any] | None:
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return None


def _json_leaves(node: Any, name: str | None, out: list[tuple[str | None, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if not key.isidentifier():
                out.append((None, key))
            _json_leaves(value, key, out)
    elif isinstance(node, list):
        for item in node:
            _json_leaves(item, name, out)
    elif isinstance(node, str):
        nested = _json_docs(node) if node[:1] in ("{", "[") else None
        if nested is not None:
            for doc in nested:
                _json_leaves(doc, name, out)
        else:
            out.append((name, node))
    elif isinstance(node, int) and not isinstance(node, bool):
        out.append((name, str(node)))


class _Leaves(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.leaves: list[tuple[str | None, str]] = []
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag.rsplit(":", 1)[-1]
        self.leaves.extend((name, value) for name, value in attrs if value)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.leaves.append((self._tag, data))


def markup_leaves(text: str) -> list[tuple[str | None, str]]:
    """(element or attribute name, text) of an XML or HTML document, parsed leniently."""
    parser = _Leaves()
    parser.feed(text)
    parser.close()
    return parser.leaves
