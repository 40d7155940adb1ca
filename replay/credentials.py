"""Accounts a replay logs in with (--credentials CSV), which session gets which, and
filling one into a planned login body.

Captured login bodies hold pseudonymized emails and removed passwords, so a replayed
session signs in with a real account from this list instead, chosen round-robin.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from tracereplay.errors import UsageError

_REQUIRED = ("email", "password")
_IDENTITY_FIELD = re.compile(r"mail|user_?name|^user$|^login$|^account$|identifier", re.I)
_SECRET_FIELD = re.compile(r"password|passwd|pwd|passphrase", re.I)


@dataclass(frozen=True)
class Credential:
    email: str
    password: str
    role: str | None = None
    """Matched to PlannedSession.role (a behavior's role) when both are known."""


def load_credentials(path: Path) -> list[Credential]:
    """The accounts in a CSV with a header `email,password[,role]` (in any order, any
    case; other columns ignored), e.g. `tracereplay demo-target --print-accounts`."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a spreadsheet export
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--credentials {path}: cannot read ({exc})") from exc
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise UsageError(f"--credentials {path}: line 1: empty file, expected email,password")
    names = [name.strip().lower() for name in header]
    missing = [name for name in _REQUIRED if name not in names]
    if missing:
        raise UsageError(
            f"--credentials {path}: line 1: header needs email and password, got {header!r}"
        )
    email, password = names.index("email"), names.index("password")
    role = names.index("role") if "role" in names else None
    credentials = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines, e.g. a trailing one
        line = reader.line_num
        if len(row) <= max(email, password, role or 0):
            raise UsageError(f"--credentials {path}: line {line}: expected {len(names)} columns")
        if not row[email].strip() or not row[password]:
            raise UsageError(f"--credentials {path}: line {line}: empty email or password")
        # Passwords are taken as written: leading or trailing spaces may be part of them.
        role_value = row[role].strip() if role is not None else ""
        credentials.append(Credential(row[email].strip(), row[password], role_value or None))
    if not credentials:
        raise UsageError(f"--credentials {path}: line 2: no accounts after the header")
    return credentials


def credential_for(
    credentials: Sequence[Credential], index: int, role: str | None = None
) -> Credential | None:
    """The account session `index` logs in with: round-robin over the accounts with
    `role` when any has it, else over all; None when there are none."""
    pool = [c for c in credentials if c.role == role] if role is not None else []
    pool = pool or list(credentials)
    return pool[index % len(pool)] if pool else None


def fill_login_body(
    body: bytes | None, headers: list[tuple[str, str]], credential: Credential
) -> tuple[bytes | None, list[tuple[str, str]]]:
    """A login body (JSON, at any depth, or a form) with `credential` in its fields named
    like an email / user name / login and like a password. An empty body becomes
    {"email", "password"} JSON; any other body without such fields is left as planned."""

    def value_for(name: str) -> str | None:
        if _SECRET_FIELD.search(name):
            return credential.password
        return credential.email if _IDENTITY_FIELD.search(name) else None

    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    if not body or not body.strip():
        doc = {"email": credential.email, "password": credential.password}
        if content_type is None:
            headers = [*headers, ("Content-Type", "application/json")]
        return json.dumps(doc).encode(), headers
    if "x-www-form-urlencoded" in (content_type or "").lower():
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        filled = [(name, value_for(name) or value) for name, value in pairs]
        return (urlencode(filled).encode() if filled != pairs else body), headers
    try:
        doc = json.loads(body)
    except ValueError:
        return body, headers

    def fill(node: object) -> bool:
        changed = False
        if isinstance(node, dict):
            for name, value in node.items():
                if isinstance(value, dict | list):
                    changed = fill(value) or changed
                elif (new := value_for(str(name))) is not None and new != value:
                    node[name] = new
                    changed = True
        elif isinstance(node, list):
            for item in node:
                changed = fill(item) or changed
        return changed

    return (json.dumps(doc, ensure_ascii=False).encode() if fill(doc) else body), headers
