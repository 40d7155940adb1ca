"""Accounts a replay logs in with (--credentials CSV), which session gets which, and
filling one into a planned login body; tokens a login hands out into later bodies.

Captured login bodies hold pseudonymized emails and removed passwords, so a replayed
session signs in with a real account from this list instead: round-robin among the
accounts whose `role` column fits the session's role (the role its real session showed,
see models/outcomes.py), among all when none fits (counted and said once). A session whose
real login failed signs in with a deliberately wrong password, so it fails again (its
first login only: a later one, the real user's corrected retry, gets the right one). A
captured body that sends a token back (`{"refresh_token": …}`) holds a pseudonym too.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tracereplay.errors import UsageError
from tracereplay.models.outcomes import PRIVILEGED_ROLE_NAME

from .rewrite import header, is_form

MAX_CREDENTIALS_BYTES = 64 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IDENTITY_FIELD = re.compile(r"mail|user_?name|^user$|^login$|^account$|identifier", re.I)
_SECRET_FIELD = re.compile(r"password|passwd|pwd|passphrase", re.I)
# A field of a login or refresh answer whose value the client sends back as a credential
# (access_token, refreshToken, id_token, session_id, api_key, client_secret; not token_type).
_TOKEN_FIELD = re.compile(r"(token|secret|session_?id|api_?key)$", re.I)
# Without a role field in the login answer the model calls roles privileged/unprivileged
# (models/outcomes.py); accounts whose role is named like these are the privileged ones.
_PRIVILEGED_ROLE = PRIVILEGED_ROLE_NAME
WRONG_PASSWORD = "tracereplay-deliberately-wrong-password"  # noqa: S105  # meant to fail
_IDENTITY_COLUMNS = ("email", "username")
"""The account's identity column: an email, or a user name (HTTP Basic backends)."""


def credential_field(name: str) -> bool:
    """Whether a body or query field of this name carries a secret (a password, a token)."""
    return bool(_SECRET_FIELD.search(name) or _TOKEN_FIELD.search(name))


@dataclass(frozen=True)
class Credential:
    email: str
    """The identity: the `email` column, or `username` when there is no email column."""
    password: str
    role: str | None = None
    """Matched to PlannedSession.role (a behavior's role) when both are known."""
    then: Credential | None = field(default=None, repr=False, compare=False)
    """A deliberately wrong credential's account: what the session's later logins send
    (the real session's first login failed, a corrected one after it did not)."""


def load_credentials(path: Path) -> list[Credential]:
    """The accounts in a CSV with a header `email,password[,role]` (in any order, any
    case; other columns ignored; `username` instead of `email` for backends that sign in
    by user name, e.g. HTTP Basic), e.g. `tracereplay demo-target --print-accounts`.

    The one loader of --credentials, run in the parent before anything starts (and again in
    each worker). Its errors say where (line, column count) but never echo a cell: a file
    without its header has a password on line 1.
    """
    where = f"--credentials {path}"
    try:
        if path.stat().st_size > MAX_CREDENTIALS_BYTES:
            raise UsageError(f"{where}: larger than {MAX_CREDENTIALS_BYTES >> 20} MiB")
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a spreadsheet export
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read ({exc.strerror or type(exc).__name__})") from None
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader, None)
        if header is None:
            raise UsageError(f"{where}: line 1: empty file, expected email,password")
        names = [name.strip().lower() for name in header]
        if "password" not in names or not any(n in names for n in _IDENTITY_COLUMNS):
            raise UsageError(
                f"{where}: line 1: the header needs columns named email and password (or "
                "username and password) "
                f"(found {len(names)} columns, not named so: is the header line missing?)"
            )
        credentials = list(_accounts(reader, names, where))
    except csv.Error as exc:
        raise UsageError(f"{where}: line {reader.line_num}: not CSV ({exc})") from None
    if not credentials:
        raise UsageError(f"{where}: line 2: no accounts after the header")
    return credentials


def _accounts(reader: Any, names: list[str], where: str) -> Iterator[Credential]:
    identity = next(n for n in _IDENTITY_COLUMNS if n in names)
    email, password = names.index(identity), names.index("password")
    role = names.index("role") if "role" in names else None
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines, e.g. a trailing one
        line = reader.line_num
        if len(row) <= max(email, password, role or 0):
            raise UsageError(f"{where}: line {line}: expected {len(names)} columns")
        if not row[email].strip() or not row[password]:
            raise UsageError(f"{where}: line {line}: empty email or password")
        if any(_CONTROL.search(row[i]) for i in (email, password)):
            raise UsageError(f"{where}: line {line}: a control character in email or password")
        # Passwords are taken as written: leading or trailing spaces may be part of them.
        role_value = row[role].strip() if role is not None else ""
        yield Credential(row[email].strip(), row[password], role_value or None)


def secret_values(credentials: Sequence[Credential]) -> frozenset[str]:
    """What must never reach a file: every password and email of --credentials."""
    return frozenset(v for c in credentials for v in (c.password, c.email) if v)


def scrub(text: str, secrets: frozenset[str]) -> str:
    """`text` with every secret in it replaced by "***" (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def role_fits(account_role: str | None, session_role: str) -> bool:
    """Whether an account of `account_role` plays a session that showed `session_role`."""
    if account_role is None:
        return False
    account = account_role.strip().lower()
    if session_role == "privileged":
        return _PRIVILEGED_ROLE.search(account) is not None
    if session_role == "unprivileged":
        return _PRIVILEGED_ROLE.search(account) is None
    return account == session_role.strip().lower()


@dataclass(frozen=True)
class Assignment:
    """The account a session logs in with (its index in --credentials), and whether its
    role fitted (False: the session showed a role no account has)."""

    credential: Credential | None
    index: int | None
    matched: bool = True


def assign_account(
    credentials: Sequence[Credential],
    index: int,
    role: str | None = None,
    login_fails: bool = False,
    prefer: Callable[[int], float] | None = None,
) -> Assignment:
    """Round-robin over the accounts that fit `role` (all when it is None or none fits),
    over those of them `prefer` scores best where that score is above 0 (True/False, or
    a number: an account that can see an object the session's learned selections need,
    or the objects its real session used, replay/idvalues.py); with `login_fails`, the
    account's email with a wrong password for the session's first login (`then`: the right
    one, for a login after it, as a person corrects a typo)."""
    every = list(range(len(credentials)))
    if not every:
        return Assignment(None, None, role is None)
    fitting = [i for i in every if role_fits(credentials[i].role, role)] if role else every
    pool = fitting or every
    if prefer is not None:
        scores = [prefer(i) for i in pool]
        best = max(scores)
        if best > 0:
            pool = [i for i, score in zip(pool, scores, strict=True) if score == best]
    chosen = pool[index % len(pool)]
    credential = credentials[chosen]
    if login_fails:
        credential = wrong_password(credential, then=credential)
    return Assignment(credential, chosen, bool(fitting))


def wrong_password(credential: Credential, then: Credential | None = None) -> Credential:
    """The account's identity with a password that is not its own (a login refused as the
    captured one was); `then`: what the session's later logins send."""
    wrong = WRONG_PASSWORD if credential.password != WRONG_PASSWORD else WRONG_PASSWORD + "!"
    return Credential(credential.email, wrong, credential.role, then=then)


def credential_for(
    credentials: Sequence[Credential], index: int, role: str | None = None
) -> Credential | None:
    """The account session `index` logs in with (see `assign_account`)."""
    return assign_account(credentials, index, role).credential


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

    if not body or not body.strip():
        doc = {"email": credential.email, "password": credential.password}
        if header(headers, "content-type") is None:
            headers = [*headers, ("Content-Type", "application/json")]
        return json.dumps(doc).encode(), headers
    return _fill_fields(body, headers, value_for), headers


def blank_login_body(body: bytes | None, headers: list[tuple[str, str]]) -> str | None:
    """A planned login (or logout) body as text with every identity, password and token
    field emptied, so it can be kept on disk (cleanup fills it again); None when there is
    none or it is not text."""
    if not body:
        return None

    def blank(name: str) -> str | None:
        named = _SECRET_FIELD.search(name) or _IDENTITY_FIELD.search(name)
        return "" if named or _TOKEN_FIELD.search(name) else None

    try:
        return _fill_fields(body, headers, blank).decode("utf-8")
    except UnicodeDecodeError:
        return None


def handed_tokens(body: bytes | None) -> dict[str, str]:
    """The tokens an answer hands out in its JSON body (a login's, a refresh's), by field
    name without case, `_` or `-` (at any depth, the first of each name): text leaves named
    like a token, a secret, a session id or an API key."""
    try:
        doc = json.loads(body or b"")
    except ValueError:
        return {}
    tokens: dict[str, str] = {}

    def collect(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                collect(item)
        elif isinstance(node, dict):
            for name, value in node.items():
                if isinstance(value, dict | list):
                    collect(value)
                elif isinstance(value, str) and value and _TOKEN_FIELD.search(str(name)):
                    tokens.setdefault(_field_key(str(name)), value)

    collect(doc)
    return tokens


def fill_handed_tokens(
    body: bytes | None, headers: Sequence[tuple[str, str]], tokens: dict[str, str]
) -> bytes | None:
    """A planned body (JSON, at any depth, or a form) with the live `tokens` in its fields
    of the same names: the captured values there are pseudonyms the target never issued.
    The very same object when no field changed."""
    if not body or not tokens:
        return body
    return _fill_fields(body, headers, lambda name: tokens.get(_field_key(name)))


def _field_key(name: str) -> str:
    """refresh_token, refreshToken and Refresh-Token name the same field."""
    return name.replace("_", "").replace("-", "").lower()


def _fill_fields(
    body: bytes, headers: Sequence[tuple[str, str]], value_for: Callable[[str], str | None]
) -> bytes:
    """`body` (a form, or JSON at any depth) with each field `value_for` has a value for
    set to it; the same bytes when nothing changed or the body is neither."""
    if is_form(headers):
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        filled = [
            (name, v if (v := value_for(name)) is not None else value) for name, value in pairs
        ]
        return urlencode(filled).encode() if filled != pairs else body
    try:
        doc = json.loads(body)
    except ValueError:
        return body

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

    return json.dumps(doc, ensure_ascii=False).encode() if fill(doc) else body
