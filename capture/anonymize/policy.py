"""The anonymization policy: a TOML file read into a frozen `Policy`, with its hash.

The default policy ships as `default_policy.toml` beside this module and documents every
setting; `load_policy(path)` reads another one, checked strictly (unknown keys are errors).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracereplay.config import parse_toml, read_config_text
from tracereplay.errors import ConfigError

from .detectors import KINDS

DEFAULT_POLICY_NAME = "default_policy.toml"
RULES_VERSION = 3
"""1: deny-list (field words and detectors); 2: default deny (values kept only by a rule);
3: identifiers of people (`user1`, `jessica.miller`, `account:…`) replaced in paths and
values, policy headers (Content-Security-Policy) parsed."""

_SECTIONS: dict[str, dict[str, type]] = {
    "bodies": {"max_bytes": int},
    "fields": {
        "remove_words": list,
        "secret_words": list,
        "person_names": list,
        "phones": list,
        "dates_of_birth": list,
    },
    "ids": {"uuids": bool, "integer_path_segments": bool, "integer_id_fields": bool},
    "headers": {"secret": list, "drop": list, "urls": list},
    "detectors": {"enabled": list},
    "session": {"cookies": list, "credential_fields": list},
    "keep": {"fields": list, "words": list, "headers": list, "hosts": list},
}
# Added after policy files were first written: a file without them gets these (an empty
# [keep] keeps nothing beyond the built-in shapes).
_OPTIONAL: dict[str, dict[str, Any]] = {
    "fields": {"dates_of_birth": []},
    "keep": {"fields": [], "words": [], "headers": [], "hosts": []},
}


@dataclass(frozen=True)
class Policy:
    """What gets removed, pseudonymized and detected; see default_policy.toml."""

    max_body_bytes: int
    remove_words: frozenset[str]
    secret_words: frozenset[str]
    person_names: frozenset[str]
    phone_fields: frozenset[str]
    dob_fields: frozenset[str]
    pseudonymize_uuids: bool
    integer_path_segments: bool
    integer_id_fields: bool
    secret_headers: frozenset[str]
    drop_headers: frozenset[str]
    url_headers: frozenset[str]
    detectors: tuple[str, ...]
    session_cookies: frozenset[str]
    credential_fields: frozenset[str]
    keep_fields: frozenset[str]
    """Fields whose values are stored as they are (detectors still run)."""
    keep_words: frozenset[str]
    """Words an enum value may be made of, beyond common English."""
    keep_headers: frozenset[str]
    """Headers of known syntax whose values are stored as they are (detectors still run)."""
    keep_hosts: frozenset[str]
    """Hosts that URLs may name as they are, beyond the exchange's own."""
    hash: str
    """sha256 (first 16 hex digits) of the policy's canonical JSON form."""
    source: str
    """Where it was read from: "default" or the file's path."""


def load_policy(path: Path | None = None) -> Policy:
    """The policy in `path`, or the default one; ConfigError on anything unusable."""
    text, source = read_config_text(
        path, label="policy", package=__package__ or "", default_name=DEFAULT_POLICY_NAME
    )
    return parse_policy(text, source=source)


def parse_policy(text: str, *, source: str = "<string>") -> Policy:
    raw = parse_toml(text, f"policy {source}")
    checked = _check(raw, source)
    # The rules' version is part of the hash: the same file applied by other rules is
    # another policy (so --append never mixes them).
    canonical = json.dumps(
        {**checked, "rules": RULES_VERSION}, sort_keys=True, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def words(section: str, key: str) -> frozenset[str]:
        return frozenset(str(v).lower() for v in checked[section][key])

    detectors = tuple(checked["detectors"]["enabled"])
    unknown = [d for d in detectors if d not in KINDS]
    if unknown:
        raise ConfigError(
            f"policy {source}: unknown detector {unknown[0]!r} (known: {', '.join(KINDS)})"
        )
    max_bytes = checked["bodies"]["max_bytes"]
    if max_bytes < 0:
        raise ConfigError(f"policy {source}: bodies.max_bytes must be >= 0")
    return Policy(
        max_body_bytes=max_bytes,
        remove_words=words("fields", "remove_words"),
        secret_words=words("fields", "secret_words"),
        person_names=words("fields", "person_names"),
        phone_fields=words("fields", "phones"),
        dob_fields=words("fields", "dates_of_birth"),
        pseudonymize_uuids=checked["ids"]["uuids"],
        integer_path_segments=checked["ids"]["integer_path_segments"],
        integer_id_fields=checked["ids"]["integer_id_fields"],
        secret_headers=words("headers", "secret"),
        drop_headers=words("headers", "drop"),
        url_headers=words("headers", "urls"),
        detectors=detectors,
        session_cookies=words("session", "cookies"),
        credential_fields=words("session", "credential_fields"),
        keep_fields=words("keep", "fields"),
        keep_words=words("keep", "words"),
        keep_headers=words("keep", "headers"),
        keep_hosts=words("keep", "hosts"),
        hash=digest,
        source=source,
    )


def _check(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Every section and key present, of the right type, and nothing else."""
    extra = set(raw) - set(_SECTIONS) - {"version"}
    if extra:
        raise ConfigError(f"policy {source}: unknown section {sorted(extra)[0]!r}")
    if raw.get("version", 1) != 1:
        raise ConfigError(f"policy {source}: version {raw['version']!r} not supported (want 1)")
    checked: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        table = raw.get(section, {} if section in _OPTIONAL else None)
        if not isinstance(table, dict):
            raise ConfigError(f"policy {source}: missing [{section}] table")
        table = {**_OPTIONAL.get(section, {}), **table}
        unknown = set(table) - set(keys)
        if unknown:
            raise ConfigError(f"policy {source}: unknown key {section}.{sorted(unknown)[0]}")
        checked[section] = {}
        for key, kind in keys.items():
            if key not in table:
                raise ConfigError(f"policy {source}: missing {section}.{key}")
            value = table[key]
            ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
            if ok and kind is list:
                ok = all(isinstance(v, str) for v in value)
            if not ok:
                want = {list: "a list of strings", int: "an integer", bool: "true or false"}
                raise ConfigError(f"policy {source}: {section}.{key} must be {want[kind]}")
            checked[section][key] = value
    return checked


_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def name_words(name: str) -> frozenset[str]:
    """The words of a field or header name: `X-Api-Key`, `apiKey`, `api_key` → api, key."""
    spaced = _CAMEL.sub("_", name).lower()
    return frozenset(w for w in _WORD_SPLIT.split(spaced) if w)
