"""Anonymizing values: strings, JSON trees, query strings and form fields, path segments.

`ValueAnonymizer` applies the policy's field-name rules (remove, secret, person name,
phone, id) and then the detectors to every string; all substitutes come from one keyed
`Pseudonymizer`, so one value gets one pseudonym wherever it appears.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .detectors import find_all
from .policy import Policy, name_words
from .pseudonyms import Pseudonymizer

REMOVED = "[removed]"

_UUID = re.compile(
    r"(?<![0-9A-Fa-f-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![0-9A-Fa-f-])"
)
_INTEGER = re.compile(r"-?[0-9]+")
_ID_FIELD = re.compile(r"(?:^id$|_id$|[a-z0-9]Id$|^ID$|_ID$)")


class ValueAnonymizer:
    """The policy's value rules over one keyed pseudonymizer."""

    def __init__(self, policy: Policy, pseudonyms: Pseudonymizer) -> None:
        self.policy = policy
        self.pseudo = pseudonyms
        self._detectors = policy.detectors
        self._rule_cache: dict[str, str | None] = {}

    # -- field-name rules ------------------------------------------------------------
    def field_rule(self, name: str) -> str | None:
        """ "remove", "secret", "person", "phone", "id" or None for a field name."""
        rule = self._rule_cache.get(name, "?")
        if rule != "?":
            return rule
        words = name_words(name)
        lowered = name.lower()
        if words & self.policy.remove_words:
            rule = "remove"
        elif words & self.policy.secret_words or lowered in self.policy.secret_words:
            rule = "secret"
        elif lowered in self.policy.person_names:
            rule = "person"
        elif lowered in self.policy.phone_fields:
            rule = "phone"
        elif _ID_FIELD.search(name):
            rule = "id"
        else:
            rule = None
        if len(self._rule_cache) < 4096:
            self._rule_cache[name] = rule
        return rule

    # -- strings ---------------------------------------------------------------------
    def text(self, value: str) -> str:
        """Detectors and UUIDs over free text: each finding becomes its pseudonym."""
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
            value = _UUID.sub(lambda m: self.pseudo.uuid(m.group(0)), value)
        return value

    def string(self, value: str, field: str | None = None) -> str:
        """A string value, under the rules of the field that holds it (if named)."""
        rule = self.field_rule(field) if field else None
        if rule == "remove":
            return REMOVED if value else value
        if rule == "secret" and value:
            return self.pseudo.secret(value)
        if rule == "person" and value.strip():
            return self.pseudo.name(value)
        if rule == "phone" and any(c.isdigit() for c in value):
            return self.pseudo.phone(value)
        if rule == "id" and self.policy.integer_id_fields and _INTEGER.fullmatch(value):
            return self.pseudo.integer(value)
        return self.text(value)

    # -- JSON ------------------------------------------------------------------------
    def json_value(self, value: Any, field: str | None = None) -> Any:  # noqa: PLR0911
        """A parsed JSON value with every string and id anonymized (a new tree)."""
        if isinstance(value, str):
            return self.string(value, field)
        if isinstance(value, dict):
            return {k: self.json_value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(v, field) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int) and field:
            rule = self.field_rule(field)
            if rule == "remove":
                return None
            if rule == "secret" or (rule == "id" and self.policy.integer_id_fields):
                return int(self.pseudo.integer(str(value)))
        return value

    # -- query strings, forms, paths, URLs -------------------------------------------
    def query(self, query: str) -> str:
        """An urlencoded query or form body: names kept, each value anonymized."""
        if not query:
            return query
        if "=" not in query:
            return quote(self.text(unquote(query)), safe="/:,;@+")
        pairs = parse_qsl(query, keep_blank_values=True)
        return urlencode([(self.text(k), self.string(v, k)) for k, v in pairs])

    def path(self, path: str) -> str:
        """Each path segment anonymized on its own (percent-encoding kept)."""
        return "/".join(self._segment(s) for s in path.split("/"))

    def _segment(self, segment: str) -> str:
        if not segment:
            return segment
        if self.policy.integer_path_segments and segment.isdigit():
            return self.pseudo.integer(segment)
        decoded = unquote(segment)
        anonymized = self.text(decoded)
        if anonymized == decoded:
            return segment
        return quote(anonymized, safe="@:!$&'()*+,;=-._~")

    def url(self, url: str) -> str:
        """An absolute or relative URL: path and query anonymized, credentials in it removed."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return self.text(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "[removed]@" + netloc.rsplit("@", 1)[1]
        return urlunsplit(
            (
                parts.scheme,
                self.text(netloc),
                self.path(parts.path),
                self.query(parts.query),
                self.text(parts.fragment),
            )
        )
