"""Session keys: one per user session, from the credential a row carries, the client
connection it came on, and the login that handed the credential out.

A credential handed out by a response (a login, a token refresh) joins the session of the
request that got it, on that request's connection: two users of one account who sign in
within one second and get the same token (a whole-second `iat`) stay two sessions, each on
its own connection. A connection carries one client, so a request without a credential
belongs to its connection's session; a connection that comes with a credential a session
already holds joins that session when it is free (no request of it running on another
connection) and from the same address. One session whose requests interleave across two
connections (one starts while the other's runs, and not as one burst of parallel
fetches) is two users: the later connection is split off into a session of its own.
Without connection ids (older traces), the key is the credential's, else the address's.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from .headers import split_cookies, split_set_cookie
from .policy import Policy
from .pseudonyms import Pseudonymizer

if TYPE_CHECKING:
    from tracereplay.trace import TraceRecord

Credential = tuple[str, str]
"""(kind, pseudonym): kind is bearer, basic, auth, cookie, apikey or token."""

DEFAULT_MAX_CREDENTIALS = 200_000
BURST_S = 0.1
"""Requests of one session started this close together on two connections are one burst
(a browser fetching in parallel), not two users."""
_MAX_HOLDERS = 16  # sessions remembered per credential (users sharing one token)
_MAX_PER_SESSION = 32  # connections and addresses remembered per session

_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class Sighting:
    """Where and when an exchange was seen, besides the credentials it carries."""

    conn: str | None = None
    """Pseudonym of the client connection; None when the source does not say."""
    addr: str | None = None
    """Pseudonym of the originating client address."""
    start_s: float | None = None
    """Request start, epoch seconds."""
    end_s: float | None = None
    """End of the response (or the start, without one)."""

    @classmethod
    def at(
        cls, conn: str | None, addr: str | None, ts: datetime, duration_ms: float | None
    ) -> Sighting:
        start = ts.timestamp()
        end = start + duration_ms / 1000.0 if duration_ms is not None and duration_ms > 0 else start
        return cls(conn, addr, start, end)

    @classmethod
    def of(cls, record: TraceRecord) -> Sighting:
        return cls.at(record.conn, record.addr, record.ts, record.duration_ms)


class _Session:
    __slots__ = ("addrs", "conns", "creds", "key", "last_end")

    def __init__(self, key: str) -> None:
        self.key = key
        self.creds: dict[str, None] = {}
        self.conns: dict[str, tuple[float, float]] = {}
        """Connection → (start, end) of its last request."""
        self.addrs: dict[str, None] = {}
        self.last_end = -math.inf

    def holds(self, credentials: Sequence[Credential]) -> bool:
        return any(value in self.creds for _, value in credentials)

    def interleaves(self, seen: Sighting) -> bool:
        """Whether a request of this session on another connection runs across `seen`'s."""
        if seen.conn is None or seen.start_s is None:
            return False
        start = seen.start_s
        end = max(seen.end_s if seen.end_s is not None else start, start)
        return any(
            conn != seen.conn and s0 < end and start < e0 and abs(start - s0) > BURST_S
            for conn, (s0, e0) in self.conns.items()
        )


class SessionTracker:
    """Gives each exchange its session key, in the order exchanges are seen (bounded:
    least recently used credentials and connections are forgotten first).

    Session keys read `<kind>:<16 hex>`, where kind says what the session started from:
    `bearer`, `basic`, `auth` (another Authorization scheme), `cookie`, `apikey`, `token`
    (a credential first seen handed out by a response: a login), `conn` (no credential:
    the client connection) or `client` (no credential and no connection id: the client's
    address, as traces without connection ids were keyed).
    """

    def __init__(
        self, pseudonyms: Pseudonymizer, max_credentials: int = DEFAULT_MAX_CREDENTIALS
    ) -> None:
        self._pseudo = pseudonyms
        self._max = max_credentials
        self._bound: OrderedDict[tuple[str, str | None], _Session] = OrderedDict()
        self._holders: OrderedDict[str, list[_Session]] = OrderedDict()
        self._owners: OrderedDict[str, _Session] = OrderedDict()
        self._made: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._holders)

    def session_for(
        self,
        carried: Sequence[Credential],
        yielded: Sequence[Credential],
        client: str | None,
        seen: Sighting | None = None,
    ) -> str:
        """The session key of one exchange, remembering every credential it involves.

        `client` is the client address (or its pseudonym): the key of an exchange with no
        credential and no connection id.
        """
        seen = seen or Sighting()
        if seen.conn is None and not carried and not yielded:
            return f"client:{self._pseudo.digest('client', client or '')}"
        session = self._find(carried, yielded, seen)
        if session is None or session.interleaves(seen):
            session = self._new(carried, yielded, seen)
        self._note(session, carried, yielded, seen)
        return session.key

    def _find(
        self, carried: Sequence[Credential], yielded: Sequence[Credential], seen: Sighting
    ) -> _Session | None:
        for _, value in carried:
            bound = self._bound.get((value, seen.conn))
            if bound is not None:
                return bound
        owner = self._owners.get(seen.conn) if seen.conn is not None else None
        if carried:
            if owner is not None and (not owner.creds or owner.holds(carried)):
                return owner  # the connection's client, now with this credential
            for _, value in carried:
                holders = self._holders.get(value)
                if holders:
                    return self._join(holders, seen)
            return None  # a credential no session holds: another identity
        if owner is not None and owner.creds and any(v not in owner.creds for _, v in yielded):
            return None  # a new login on a connection whose session had signed in before
        return owner

    def _join(self, holders: list[_Session], seen: Sighting) -> _Session | None:
        """The session a new connection carrying their credential belongs to: one that is
        free and from the same address, idle the longest (a client back on a new
        connection after its old one closed); None when none fits (another user)."""
        fits = [
            s
            for s in holders
            if not s.interleaves(seen)
            and (seen.addr is None or not s.addrs or seen.addr in s.addrs)
        ]
        return min(fits, key=lambda s: s.last_end) if fits else None

    def _new(
        self, carried: Sequence[Credential], yielded: Sequence[Credential], seen: Sighting
    ) -> _Session:
        if carried:
            kind, basis = carried[0]
        elif yielded:
            kind, basis = "token", yielded[0][1]
        else:
            kind, basis = "conn", seen.conn or ""
        made = self._made.get(basis, 0)
        _put(self._made, basis, made + 1, self._max)
        # The first session of a credential keeps the key it always had.
        digest = self._pseudo.digest("session", basis if made == 0 else f"{basis}#{made}")
        return _Session(f"{kind}:{digest}")

    def _note(
        self,
        session: _Session,
        carried: Sequence[Credential],
        yielded: Sequence[Credential],
        seen: Sighting,
    ) -> None:
        for _, value in (*carried, *yielded):
            _put(self._bound, (value, seen.conn), session, self._max)
            holders = self._holders.get(value)
            if holders is None:
                holders = []
            if session not in holders:
                holders.append(session)
                del holders[:-_MAX_HOLDERS]
            _put(self._holders, value, holders, self._max)
            _add(session.creds, value)
        if seen.conn is not None:
            _put(self._owners, seen.conn, session, self._max)
            if seen.start_s is not None:
                end = seen.end_s if seen.end_s is not None else seen.start_s
                session.conns.pop(seen.conn, None)
                session.conns[seen.conn] = (seen.start_s, end)
                while len(session.conns) > _MAX_PER_SESSION:
                    del session.conns[next(iter(session.conns))]
                session.last_end = max(session.last_end, end)
        if seen.addr is not None:
            _add(session.addrs, seen.addr)


def origin_address(headers: Sequence[tuple[str, str]] | None, peer: str | None) -> str | None:
    """The originating client address: the first `X-Forwarded-For` hop, else `X-Real-IP`,
    else the first `Forwarded: for=`, else the peer (raw headers: before anonymizing)."""
    found: dict[str, str] = {}
    for name, value in headers or ():
        lname = name.lower()
        if lname in _FORWARDING and lname not in found and value.strip():
            found[lname] = value
    if "x-forwarded-for" in found:
        hop = found["x-forwarded-for"].split(",", 1)[0].strip()
    elif "x-real-ip" in found:
        hop = found["x-real-ip"].strip()
    elif "forwarded" in found:
        hop = next(
            (
                part.split("=", 1)[1].strip().strip('"')
                for part in found["forwarded"].split(",", 1)[0].split(";")
                if part.strip().lower().startswith("for=")
            ),
            "",
        )
    else:
        hop = ""
    return hop.lower() or peer


_FORWARDING = frozenset({"x-forwarded-for", "x-real-ip", "forwarded"})


def _put(table: OrderedDict[_K, _V], key: _K, value: _V, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


def _add(members: dict[str, None], value: str) -> None:
    members.pop(value, None)
    members[value] = None
    while len(members) > _MAX_PER_SESSION * 4:
        del members[next(iter(members))]


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
