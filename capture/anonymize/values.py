"""Anonymizing values by default deny: a value is stored as it is only when a rule says why.

`ValueAnonymizer.string` applies the policy's field-name rules (remove, secret, person,
phone, date of birth, id, keep), then the shapes that explain a value (number, timestamp,
version, enum word, allowed host); every other string becomes a keyed pseudonym of the same
shape. All substitutes come from one `Pseudonymizer`, so one value gets one pseudonym
wherever it appears.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .detectors import find_all
from .identifiers import colon_parts, looks_identifier
from .policy import Policy, name_words
from .pseudonyms import PSEUDO_HOST_SUFFIX, Pseudonymizer
from .shapes import (
    URL_START,
    UUID,
    is_host,
    is_long_integer,
    is_structural,
    looks_phone,
    looks_secret,
)
from .words import Vocabulary

REMOVED = "[removed]"

_ID_FIELD = re.compile(r"(?:^id$|_id$|[a-z0-9]Id$|^ID$|_ID$)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.\-]{1,15}://[^\s<>\"'`]+", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[A-Za-z_$@][\w$@.:\-\[\]]{0,63}")
_CARD_DIGITS = range(13, 20)
_SHORT_HEX = re.compile(r"[0-9a-f]{6,}|[0-9A-F]{6,}")
_QUOTED = 2
_SPACE = re.compile(r"\s")  # the characters str.isspace() takes, found by one C scan
_UUID_LENGTH = 36
_KEPT_KEYS_MAX = 4096


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


class ValueAnonymizer:
    """The policy's value rules over one keyed pseudonymizer."""

    def __init__(self, policy: Policy, pseudonyms: Pseudonymizer) -> None:
        self.policy = policy
        self.pseudo = pseudonyms
        self.vocabulary = Vocabulary(policy.keep_words)
        self._detectors = policy.detectors
        self._rule_cache: dict[str, str | None] = {}
        self._kept_keys: set[str] = set()
        self._kept_hosts = frozenset(h.lower() for h in policy.keep_hosts)
        self.own_host: str | None = None
        """The host of the exchange being anonymized: URLs to it keep their host."""

    # -- field-name rules ------------------------------------------------------------
    def field_rule(self, name: str) -> str | None:
        """ "remove", "secret", "person", "phone", "dob", "id", "keep" or None for a field."""
        rule = self._rule_cache.get(name, "?")
        if rule != "?":
            return rule
        rule = self._field_rule(name)
        if len(self._rule_cache) < 4096:
            self._rule_cache[name] = rule
        return rule

    def _field_rule(self, name: str) -> str | None:
        policy = self.policy
        words = name_words(name)
        snake = _snake(name)
        squashed = _NOT_ALNUM.sub("", snake)
        # A name written as one word (`oldpassword`, `accesstoken`) holds the policy's
        # longer words inside it.
        inside = squashed if len(words) == 1 else ""

        def among(listed: frozenset[str]) -> bool:
            return bool(words & listed) or any(len(w) >= 5 and w in inside for w in listed)

        if among(policy.remove_words):
            return "remove"
        if snake in policy.keep_fields or squashed in policy.keep_fields:
            return "keep"  # named whole (`token_type`): before the word rules
        if among(policy.secret_words) or snake in policy.secret_words:
            return "secret"
        for rule, names in (
            ("person", policy.person_names),
            ("phone", policy.phone_fields),
            ("dob", policy.dob_fields),
        ):
            if snake in names or squashed in names:
                return rule
        if _ID_FIELD.search(name):
            return "id"
        return None

    # -- strings ---------------------------------------------------------------------
    def text(self, value: str) -> str:
        """Detectors and UUIDs over a value otherwise kept: each finding becomes its pseudonym."""
        if not value:
            return value
        findings = find_all(value, self._detectors)
        if findings:
            parts: list[str] = []
            last = 0
            for f in findings:
                parts.append(value[last : f.start])
                parts.append(self.pseudo.for_kind(f.kind, f.value))
                last = f.end
            parts.append(value[last:])
            value = "".join(parts)
        if self.policy.pseudonymize_uuids and "-" in value:
            value = UUID.sub(lambda m: self.pseudo.uuid(m.group(0)), value)
        return value

    def string(self, value: str, field: str | None = None) -> str:  # noqa: PLR0911
        """A string value, under the rules of the field that holds it (if named)."""
        if not value or value.isspace():
            return value
        rule = self.field_rule(field) if field else None
        if rule == "remove":
            return REMOVED
        if rule == "secret":
            return self.pseudo.secret(value)
        if rule == "person":
            return self.text(value) if "@" in value else self.pseudo.name(value)
        if rule == "phone" and any(c.isdigit() for c in value):
            return self.pseudo.phone(value)
        if rule == "dob" and sum(c.isdigit() for c in value) >= 4:
            return self.pseudo.date_of_birth(value)
        if rule == "id" and self.policy.integer_id_fields and value.isdigit():
            return self.pseudo.integer(value)
        if rule == "keep" and not looks_secret(value) and _SPACE.search(value) is None:
            return self.text(value)
        return self.value(value)

    def value(self, value: str) -> str:  # noqa: PLR0911 (a cascade)
        """Default deny for a string no field rule covers: kept only when its shape says why."""
        stripped = value.strip()
        if stripped != value:
            head = value[: len(value) - len(value.lstrip())]
            tail = value[len(value.rstrip()) :]
            return head + self.value(stripped) + tail if stripped else value
        # First: no shape below takes a UUID (UUID only matches its 36 characters).
        if len(value) == _UUID_LENGTH and UUID.fullmatch(value):
            return self.pseudo.uuid(value) if self.policy.pseudonymize_uuids else value
        if len(value) >= _QUOTED and value[0] == value[-1] == '"':
            return f'"{self.value(value[1:-1])}"' if len(value) > _QUOTED else value
        if value[0] in "[{" and value[-1] in "]}":
            nested = _json_or_none(value)
            if nested is not None:
                return json.dumps(self.json_value(nested), ensure_ascii=False)
        if URL_START.match(value):
            from .urls import url

            return url(self, value)
        if is_structural(value):  # an IPv4 address reads as a version, a date as a phone…
            return value if not find_all(value) else self.token(value)
        if is_long_integer(value):
            return self.pseudo.integer(value)
        if _SPACE.search(value) is not None:
            return self.free_text(value)
        return self.token(value)

    def token(self, value: str) -> str:  # noqa: PLR0911 (a cascade)
        """One word-like value with no whitespace."""
        findings = find_all(value)
        if findings:
            return self._around_findings(value, findings, self.token)
        parts = colon_parts(value) if ":" in value else ()
        if len(parts) > 1:
            # `account:jessica.miller`, `urn:li:person:…`: each part on its own, so the
            # kind word stays and the name gets the pseudonym it gets anywhere else.
            return ":".join(self.value(part) if part else part for part in parts)
        if value.endswith(PSEUDO_HOST_SUFFIX):
            return value
        if "." in value and is_host(value):
            return self.host(value)
        if self.is_identifier(value):
            return self.pseudo.words(value)
        if self.vocabulary.is_enum(value):
            return value
        if looks_phone(value):
            return self.pseudo.phone(value)
        if looks_secret(value):
            return self.pseudo.token(value)
        if _SHORT_HEX.fullmatch(value) and not value.isalpha():
            return self.pseudo.hex(value)
        return self.pseudo.words(value)

    def is_identifier(self, value: str) -> bool:
        """A name or numbered handle of someone (`jessica.miller`, `jmiller82`, `user1`),
        not a random-looking token (see identifiers.py)."""
        return looks_identifier(value, self.vocabulary.extra) and not looks_secret(value)

    def free_text(self, value: str) -> str:
        """Free text: detector findings and URLs become their pseudonyms, every other word a
        Latin word of the same length, every number other digits."""
        findings = find_all(value)
        spans = [(f.start, f.end, self.pseudo.for_kind(f.kind, f.value)) for f in findings]
        if "://" in value:
            from .urls import url

            taken = [(s, e) for s, e, _ in spans]
            for m in _URL_IN_TEXT.finditer(value):
                if not any(s < m.end() and m.start() < e for s, e in taken):
                    spans.append((m.start(), m.end(), url(self, m.group())))
        if self.policy.pseudonymize_uuids:
            for m in UUID.finditer(value):
                if not any(s < m.end() and m.start() < e for s, e, _ in spans):
                    spans.append((m.start(), m.end(), self.pseudo.uuid(m.group())))
        spans.sort()
        parts: list[str] = []
        last = 0
        for start, end, made in spans:
            if start < last:
                continue
            if start > last:
                parts.append(self.pseudo.words(value[last:start]))
            parts.append(made)
            last = end
        if last < len(value):
            parts.append(self.pseudo.words(value[last:]))
        return "".join(parts)

    def _around_findings(self, value: str, findings: list[Any], rest: Any) -> str:
        parts: list[str] = []
        last = 0
        for f in findings:
            if f.start > last:
                parts.append(_keep_punctuation(value[last : f.start], rest))
            parts.append(self.pseudo.for_kind(f.kind, f.value))
            last = f.end
        if last < len(value):
            parts.append(_keep_punctuation(value[last:], rest))
        return "".join(parts)

    def host(self, host: str) -> str:
        """A host name: kept when it is the exchange's own host or allow-listed."""
        name, colon, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        bare = name.lower().rstrip(".")
        if (
            bare == (self.own_host or "").lower()
            or bare in self._kept_hosts
            or bare in ("localhost", "127.0.0.1", "[::1]")
            or bare.endswith(".invalid")
        ):
            return host
        if find_all(bare, ("ipv4", "ipv6")) or bare.replace(".", "").isdigit():
            return self.text(name) + colon + port
        return self.pseudo.host(bare) + colon + port

    # -- JSON ------------------------------------------------------------------------
    def key(self, key: str) -> str:
        """A JSON object key: names are structure and stay; an email, token or text does not."""
        if key in self._kept_keys:  # the same few names in every body
            return key
        if _IDENTIFIER.fullmatch(key) and not looks_secret(key) and "@" not in key:
            if len(self._kept_keys) < _KEPT_KEYS_MAX:
                self._kept_keys.add(key)
            return key
        return self.value(key)

    def json_value(self, value: Any, field: str | None = None) -> Any:
        """A parsed JSON value with every string, id and secret anonymized (a new tree)."""
        if isinstance(value, str):
            return self.string(value, field)
        if isinstance(value, dict):
            return {self.key(k): self.json_value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(v, field) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            return self.number(value, field)
        return value

    def number(self, value: int, field: str | None) -> int | None:
        rule = self.field_rule(field) if field else None
        if rule == "remove":
            return None
        if rule in ("secret", "phone") or (rule == "id" and self.policy.integer_id_fields):
            return int(self.pseudo.integer(str(value)))
        digits = str(abs(value))
        if len(digits) in _CARD_DIGITS and find_all(digits, ("card",)):
            # As many digits, never a valid card number (nor a leading 0 an int would lose).
            return int(self.pseudo.integer(digits))
        return value

    # -- query strings, forms, paths, URLs (urls.py) -----------------------------------
    def query(self, query: str) -> str:
        from .urls import query as anonymize_query

        return anonymize_query(self, query)

    def path(self, path: str) -> str:
        from .urls import path as anonymize_path

        return anonymize_path(self, path)

    def url(self, url: str) -> str:
        from .urls import url as anonymize_url

        return anonymize_url(self, url)


def _keep_punctuation(segment: str, rest: Any) -> str:
    """Between findings: separators stay, anything word-like is judged on its own."""
    return segment if not any(c.isalnum() for c in segment) else str(rest(segment))


def _json_or_none(text: str) -> Any:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, (dict, list)) else None
