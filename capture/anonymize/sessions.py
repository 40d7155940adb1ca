"""Session keys: from the pseudonym of the session credential a row carries, else its client.

A credential handed out by a response (login, token refresh) joins the session of the
request that got it, so a session keeps one key across its login and refreshes.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from .headers import split_cookies, split_set_cookie
from .policy import Policy
from .pseudonyms import Pseudonymizer

Credential = tuple[str, str]
"""(kind, pseudonym): kind is bearer, basic, auth, cookie, apikey or token."""

DEFAULT_MAX_CREDENTIALS = 200_000


class SessionTracker:
    """Maps credential pseudonyms to session keys (bounded: least recently used go first).

    Session keys read `<kind>:<16 hex>`, where kind says what the key was derived from:
    `bearer`, `basic`, `auth` (another Authorization scheme), `cookie`, `apikey`, `token`
    (a credential first seen in a response or request body), or `client` (no credential:
    the client's address).
    """

    def __init__(
        self, pseudonyms: Pseudonymizer, max_credentials: int = DEFAULT_MAX_CREDENTIALS
    ) -> None:
        self._pseudo = pseudonyms
        self._sessions: OrderedDict[str, str] = OrderedDict()
        self._max = max_credentials

    def __len__(self) -> int:
        return len(self._sessions)

    def session_for(
        self,
        carried: Sequence[Credential],
        yielded: Sequence[Credential],
        client: str | None,
    ) -> str:
        """The session key of one exchange, remembering every credential it involves."""
        key = None
        for _, value in carried:
            key = self._sessions.get(value)
            if key is not None:
                break
        if key is None:
            first = carried[0] if carried else (yielded[0] if yielded else None)
            if first is not None:
                kind = first[0] if carried else "token"
                key = f"{kind}:{self._pseudo.digest('session', first[1])}"
            else:
                key = f"client:{self._pseudo.digest('client', client or '')}"
        for _, value in (*carried, *yielded):
            self._remember(value, key)
        return key

    def _remember(self, value: str, key: str) -> None:
        self._sessions[value] = key
        self._sessions.move_to_end(value)
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)


def request_credentials(
    policy: Policy, headers: Sequence[tuple[str, str]], body: bytes | None
) -> list[Credential]:
    """Credentials an (anonymized) request carries, strongest first."""
    auth: list[Credential] = []
    cookies: list[Credential] = []
    keys: list[Credential] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "authorization":
            scheme, sep, rest = value.strip().partition(" ")
            if sep and rest:
                kind = scheme.lower() if scheme.lower() in ("bearer", "basic") else "auth"
                auth.append((kind, rest.strip()))
            elif scheme:
                auth.append(("auth", scheme))
        elif lname == "cookie":
            cookies.extend(
                ("cookie", v)
                for n, v in split_cookies(value)
                if n.lower() in policy.session_cookies and v
            )
        elif lname in policy.secret_headers and lname != "proxy-authorization" and value:
            keys.append(("apikey", value.strip()))
    return [*auth, *cookies, *keys, *body_credentials(policy, body)]


def response_credentials(
    policy: Policy, headers: Sequence[tuple[str, str]], body: bytes | None
) -> list[Credential]:
    """Credentials an (anonymized) response hands out: session cookies and token fields."""
    found: list[Credential] = []
    for name, value in headers:
        if name.lower() == "set-cookie":
            for cookie in split_set_cookie(value):
                cname, _, rest = cookie.partition("=")
                cvalue = rest.split(";", 1)[0].strip().strip('"')
                if cname.strip().lower() in policy.session_cookies and cvalue:
                    found.append(("cookie", cvalue))
    found.extend(body_credentials(policy, body))
    return found


def body_credentials(policy: Policy, body: bytes | None) -> list[Credential]:
    """String values of the policy's credential fields anywhere in a JSON body."""
    if not body or not policy.credential_fields:
        return []
    if not any(f'"{f}"'.encode() in body for f in policy.credential_fields):
        return []  # cheap check before parsing: most bodies carry no credential
    try:
        tree = json.loads(body)
    except ValueError:  # cut at the size limit, or not JSON after all
        return []
    return [("token", v) for v in _fields(tree, policy.credential_fields)]


def _fields(tree: Any, names: frozenset[str]) -> Iterator[str]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            if isinstance(v, str) and v and k.lower() in names:
                yield v
            elif isinstance(v, (dict, list)):
                yield from _fields(v, names)
    elif isinstance(tree, list):
        for v in tree:
            yield from _fields(v, names)
