"""Correlations: values a response yields that later requests of the same session reuse,
and how a session obtains, refreshes and drops its credential (login, refresh, logout).

Input is a sessionized frame (`sessions.sessionize`) with an `endpoint` column ("METHOD
/path/{param}"). A 2xx/3xx response *yields* the JSON leaves of its body (strings of at
least `min_value_len` characters or integers of at least 4 digits, but no dates), its
Set-Cookie values and its non-standard headers, unless the request that got it sent the
same value (an echo yields nothing new). A request *uses* its path segments, query
values, header values (Authorization without its scheme), cookies, JSON body leaves and
form fields. A use whose value an earlier response of the same session yielded is
explained by the most recent such response.

A value that responses of at least `CONSTANT_SHARE` of all sessions (and at least
`CONSTANT_MIN_SESSIONS` sessions) yield is a constant of the API ("success", a fixed id),
not a correlation: it is never indexed. With fewer sessions nothing counts as constant.
A credential never is: a value sent as one, or yielded under a credential-like name
(`access_token`, `session`, …), is per login even when logins within one second of one
account get the same token (a whole-second `iat`) in most sessions of a small trace.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from tracereplay.errors import ConfigError, UsageError

from .values import (
    JsonMemo,
    Location,
    Values,
    request_values,
    response_values,
    sent_response_values,
)

if TYPE_CHECKING:  # pandas loads where a model is built, not by synthesize
    import pandas as pd

__all__ = [  # Location is re-exported: rules and the auth description are made of them
    "NO_AUTH",
    "AuthInfo",
    "CorrelationRule",
    "Location",
    "Use",
    "Walk",
    "answered_ok",
    "auth_from_json",
    "auth_to_json",
    "correlations_from_json",
    "correlations_to_json",
    "find_auth",
    "find_correlations",
    "is_credential",
    "walk_sessions",
]

DEFAULT_MIN_VALUE_LEN = 6
CONSTANT_SHARE = 0.5
CONSTANT_MIN_SESSIONS = 3
CONFIDENCE_DIGITS = 4  # significant digits kept in the model file
_CREDENTIAL_HEADER = re.compile(r"auth|token|session|api[-_]?key|secret", re.IGNORECASE)
# When one response carries the value in several places, prefer the place a client reads.
_WHERE_ORDER = {"json": 0, "cookie": 1, "header": 2, "path": 3, "query": 4, "form": 5}
_LOGIN_MAX_CREDENTIALED = 0.5  # a login is mostly sent without the credential it yields
_LOGOUT_TERMINAL_SHARE = 0.9  # ... and a logout is (almost) always the credential's last use
_LOGOUT_MIN_SHARE = 0.1  # of the sessions that use the credential
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # these change nothing: never a logout


@dataclass(frozen=True, order=True)
class CorrelationRule:
    """The value at `source` in responses of `source_endpoint` is sent at `target` by
    later requests to `target_endpoint`: seen in `support` sessions, explaining the share
    `confidence` of the target requests that carry a value there."""

    source_endpoint: str
    source: Location
    target_endpoint: str
    target: Location
    support: int
    confidence: float


@dataclass(frozen=True)
class AuthInfo:
    """How a session obtains its credential (`login_endpoint` yields it at `credential`),
    sends it (`used_as`), renews it and drops it; all None/empty when none was found."""

    login_endpoint: str | None
    credential: Location | None
    used_as: tuple[Location, ...]
    refresh_endpoint: str | None
    logout_endpoint: str | None


NO_AUTH = AuthInfo(None, None, (), None, None)
_COLUMNS = ("session_id", "endpoint", "path", "query", "req_headers", "req_body", "status",
            "resp_headers", "resp_body")  # fmt: skip


# ---- the walk: which request values earlier responses explain -------------------------


class Use(NamedTuple):
    """One request value explained by an earlier response of its session: by the most
    recent one that yielded it (`source`) and by the first (`origin`). A named tuple: made
    in C, where a frozen dataclass sets each field by a call (stretchcap_x100's walk makes
    315 k: 1.6 -> 0.4 us each)."""

    session: int
    seq: int
    target_endpoint: str
    target: Location
    source_endpoint: str
    source: Location
    value: str
    origin_endpoint: str
    origin: Location

    @property
    def rule(self) -> tuple[str, Location, str, Location]:
        return (self.source_endpoint, self.source, self.target_endpoint, self.target)


@dataclass
class Walk:
    """What `walk_sessions` found: every explained use, and per endpoint how many requests
    it made and how many carried a value at each place."""

    uses: list[Use]
    carried: Counter[tuple[str, Location]]  # requests of an endpoint sending a value there
    requests: Counter[str]  # requests per endpoint
    rows: list[dict[str, Any]]
    places: list[frozenset[Location]] = field(default_factory=list)  # each row's, in order
    memo: JsonMemo = field(default_factory=dict)  # bodies' values, for later readers of rows

    def only(self, sessions: set[int]) -> Walk:
        """The walk of these sessions alone (values stay constant as in the whole walk)."""
        kept = [i for i, row in enumerate(self.rows) if int(row["session_id"]) in sessions]
        uses = [u for u in self.uses if u.session in sessions]
        walk = Walk(uses, Counter(), Counter(), [], memo=self.memo)
        endpoints = [str(self.rows[i]["endpoint"]) for i in kept]
        walk.requests.update(endpoints)  # one update of all: Counter's per call check is slow
        walk.carried.update(
            (endpoint, loc) for i, endpoint in zip(kept, endpoints, strict=True)
            for loc in self.places[i]
        )  # fmt: skip
        walk.rows = [self.rows[i] for i in kept]
        walk.places = [self.places[i] for i in kept]
        return walk


def _rows(sessions: pd.DataFrame) -> list[dict[str, Any]]:
    for column in ("session_id", "endpoint", "path"):
        if column not in sessions.columns:
            raise UsageError(f"correlations need a sessionized frame with `{column}`")
    order = [c for c in ("session_id", "seq") if c in sessions.columns]
    ordered = sessions.sort_values(order, kind="stable")
    absent = [None] * len(ordered)
    columns = [ordered[c].tolist() if c in ordered.columns else absent for c in _COLUMNS]
    # `seq` becomes the position in the walk: unique, and increasing within a session.
    # A dict display with its keys written out (`_COLUMNS`' order, then `seq`): twice as
    # fast as dict(zip(...)) per row (real1M's sample, 19 k rows: 0.021 -> 0.01 s).
    return [
        {"session_id": session_id, "endpoint": endpoint, "path": path, "query": query,
         "req_headers": req_headers, "req_body": req_body, "status": status,
         "resp_headers": resp_headers, "resp_body": resp_body, "seq": seq}
        for seq, (session_id, endpoint, path, query, req_headers, req_body, status,
                  resp_headers, resp_body) in enumerate(zip(*columns, strict=True))
    ]  # fmt: skip


def _pick(places: list[Location], target: Location) -> Location:
    """Of the places one response holds the value, the one `target` most likely reads:
    the same kind of place, then the same field name, then JSON over cookies over headers."""
    if len(places) == 1:
        return places[0]
    name = _last_name(target)

    def rank(place: Location) -> tuple[bool, bool, int, int, str]:
        where = _WHERE_ORDER.get(place.where, 9)
        same_name = _last_name(place) == name
        return (place.where != target.where, not same_name, where, len(place.key), place.key)

    return min(places, key=rank)


@lru_cache(maxsize=1 << 14)
def _last_name(place: Location) -> str:
    """A place's last name, lower case (`/data/items/*/Id` → `id`), made once per place."""
    return place.key.rsplit("/", 1)[-1].lower()


def answered_ok(status: object) -> bool:
    """A 2xx or 3xx status."""
    return isinstance(status, int | float) and 200 <= status < 400


def walk_sessions(sessions: pd.DataFrame, min_len: int = DEFAULT_MIN_VALUE_LEN) -> Walk:
    """Walk every session in order: which request values earlier responses explain."""
    rows = _rows(sessions)
    memo: JsonMemo = {}
    sent = [request_values(row, min_len, memo) for row in rows]
    got = _sent_only(rows, sent)
    constant = _constants(rows, sent, got)

    walk = Walk([], Counter(), Counter(), rows, memo=memo)
    endpoints = [str(row["endpoint"]) for row in rows]
    walk.requests.update(endpoints)  # one update of all: Counter's per call check is slow
    walk.places = [frozenset([loc for loc, _ in req]) for req in sent]
    walk.carried.update(
        (endpoint, loc) for endpoint, places in zip(endpoints, walk.places, strict=True)
        for loc in places
    )  # fmt: skip
    walk.uses = _explained(rows, endpoints, sent, got, constant)
    return walk


def _explained(
    rows: list[dict[str, Any]],
    endpoints: list[str],
    sent: list[Values],
    got: list[Values],
    constant: set[str],
) -> list[Use]:
    """The walk proper: each request value an earlier response of its session yielded,
    explained by the most recent and the first such response. A response's values are
    grouped by value once per list (`values.sent_response_values` shares a body's among its
    rows), and each value's place a target reads is ranked once (`_Held`)."""
    uses: list[Use] = []
    grouped: dict[int, list[tuple[str, _Held]]] = {}
    index: dict[str, tuple[str, _Held]] = {}
    first: dict[str, tuple[str, _Held]] = {}  # the response that first yielded it
    current = -1
    for row, endpoint, req, resp in zip(rows, endpoints, sent, got, strict=True):
        if int(row["session_id"]) != current:
            current, index, first = int(row["session_id"]), {}, {}
        # Nothing yielded yet in this session: no use to look for; no response values:
        # nothing to index (a trace of requests alone has neither: real1M).
        for loc, value in set(req) if index else ():
            if value in index:
                source_endpoint, held = index[value]
                origin_endpoint, origin_held = first[value]
                uses.append(
                    Use(current, row["seq"], endpoint, loc, source_endpoint, held.read_by(loc),
                        value, origin_endpoint, origin_held.read_by(loc))
                )  # fmt: skip
        if not resp:
            continue
        values = grouped.get(id(resp))
        if values is None:
            values = grouped[id(resp)] = _by_value(resp, constant)
        echoed = {value for _, value in req}
        for value, held in values:  # one entry, read only, in both indexes
            if value not in echoed:
                entry = index[value] = (endpoint, held)
                if value not in first:
                    first[value] = entry
    return uses


class _Held:
    """The places one response holds a value at, and the one each target reads there
    (`_pick`, kept: the rows of a body share theirs; stretchcap_x100's walk: 383 k picks
    among several places, of 51 distinct pairs)."""

    __slots__ = ("places", "read")

    def __init__(self, places: list[Location]) -> None:
        self.places = places
        self.read: dict[Location, Location] = {}

    def read_by(self, target: Location) -> Location:
        found = self.read.get(target)
        if found is None:
            found = self.read[target] = _pick(self.places, target)
        return found


def _by_value(resp: Values, constant: set[str]) -> list[tuple[str, _Held]]:
    """A response's values but the constants, each once with all its places, in order."""
    held: dict[str, list[Location]] = {}
    for loc, value in resp:
        if value not in constant:
            places = held.get(value)
            if places is None:
                held[value] = [loc]  # (no list made for a value seen again)
            else:
                places.append(loc)
    return [(value, _Held(places)) for value, places in held.items()]


def _sent_only(rows: list[dict[str, Any]], sent: list[Values]) -> list[Values]:
    """Each answered response's values that some request of the walk sends, in order, all
    places of each kept: what the walk reads of them. A value no request sends explains
    no use, so its index entry is never read, and whether it is a constant changes
    nothing: the constants among the values kept come out the same (their sessions and
    places are all kept). A body's list is made once and shared by its rows
    (`values.sent_response_values`): cap20's 383 k values yielded, of which few are ever
    sent, were each given a place before."""
    answered = [answered_ok(row["status"]) for row in rows]
    if not any(answered):  # (a trace of requests alone: real1M)
        return [[] for _ in rows]
    wanted = {value for values in sent for _, value in values}
    found: dict[object, Values] = {}
    return [
        sent_response_values(row, wanted, found) if ok else []
        for row, ok in zip(rows, answered, strict=True)
    ]


def _constants(rows: list[dict[str, Any]], sent: list[Values], got: list[Values]) -> set[str]:
    """The values responses of at least `CONSTANT_SHARE` of the sessions (and at least
    `CONSTANT_MIN_SESSIONS`) yield, but credentials: a value sent or yielded at a
    credential's place. Only those values' places are judged (each place once), in one
    pass over the values, none when no value is yielded that often. A list of values
    several rows share (one body's: `values.sent_response_values`) is read once per session,
    its values as one set, and judged once (cap20: 0.052-0.059 -> 0.040-0.048 CPU s)."""
    by_session: defaultdict[int, set[str]] = defaultdict(set)
    read: set[tuple[int, int]] = set()  # (session, list) pairs read
    value_sets: dict[int, frozenset[str]] = {}
    for row, values in zip(rows, got, strict=True):
        if values:
            session = int(row["session_id"])
            if (session, id(values)) in read:
                continue
            read.add((session, id(values)))
            found = value_sets.get(id(values))
            if found is None:
                found = value_sets[id(values)] = frozenset([value for _, value in values])
            by_session[session] |= found
    sessions_of: Counter[str] = Counter()  # sessions whose responses yield each value
    for yielded in by_session.values():
        sessions_of.update(yielded)
    n_sessions = len({row["session_id"] for row in rows})
    floor = max(CONSTANT_MIN_SESSIONS, CONSTANT_SHARE * n_sessions)
    often = {value for value, n in sessions_of.items() if n >= floor}
    credentials: set[str] = set()
    if often:
        judged: dict[Location, bool] = {}
        lists = {id(values): values for values in (*sent, *got)}  # each list once
        for values in lists.values():
            for loc, value in values:
                if value in often and value not in credentials:
                    credential = judged.get(loc)
                    if credential is None:
                        credential = judged[loc] = bool(
                            is_credential(loc)
                            or _CREDENTIAL_HEADER.search(loc.key.rsplit("/", 1)[-1])
                        )
                    if credential:
                        credentials.add(value)
    return often - credentials


def _round(x: float) -> float:
    return float(f"{x:.{CONFIDENCE_DIGITS}g}")


def find_correlations(
    sessions: pd.DataFrame,
    *,
    min_support: int = 2,
    min_value_len: int = DEFAULT_MIN_VALUE_LEN,
    walk: Walk | None = None,
) -> list[CorrelationRule]:
    """The correlation rules of `sessions`, seen in at least `min_support` sessions,
    sorted by source endpoint, source, target endpoint, target (`walk`: one already made
    of `sessions` with `min_value_len`)."""
    if min_support < 1 or min_value_len < 1:
        raise UsageError("min_support and min_value_len must be at least 1")
    if sessions.empty:
        return []
    walk = walk or walk_sessions(sessions, min_value_len)
    seen: defaultdict[tuple[str, Location, str, Location], set[tuple[int, int]]]
    seen = defaultdict(set)
    for use in walk.uses:
        seen[use.rule].add((use.session, use.seq))
    rules = []
    for (src_ep, src, tgt_ep, tgt), requests in seen.items():
        support = len({session for session, _ in requests})
        if support >= min_support:
            confidence = _round(len(requests) / walk.carried[(tgt_ep, tgt)])
            rules.append(CorrelationRule(src_ep, src, tgt_ep, tgt, support, confidence))
    return sorted(rules)


# ---- auth -------------------------------------------------------------------------------


def is_credential(loc: Location) -> bool:
    """A place requests send credentials: a cookie, Authorization or an auth-named header."""
    return loc.where == "cookie" or (
        loc.where == "header" and _CREDENTIAL_HEADER.search(loc.key) is not None
    )


def _best(counts: Counter[str]) -> str | None:
    """The most voted name, ties broken by name so that the result is deterministic."""
    return min(counts, key=lambda name: (-counts[name], name)) if counts else None


def find_auth(
    sessions: pd.DataFrame,
    rules: Sequence[CorrelationRule],
    *,
    min_value_len: int = DEFAULT_MIN_VALUE_LEN,
    walk: Walk | None = None,
) -> AuthInfo:
    """The login endpoint (its response yields a value later requests send as a credential
    and it is sent without one), the credential, how it is sent, refresh and logout."""
    if sessions.empty or not rules:
        return NO_AUTH
    kept = {(r.source_endpoint, r.source, r.target_endpoint, r.target) for r in rules}
    walk = walk or walk_sessions(sessions, min_value_len)
    uses = [u for u in walk.uses if u.rule in kept]
    creds = [u for u in uses if is_credential(u.target)]
    credentialed = Counter(
        ep for ep, _, _ in {(u.target_endpoint, u.session, u.seq) for u in creds}
    )
    login_votes: Counter[str] = Counter()
    for endpoint, _ in {(u.source_endpoint, u.session) for u in creds}:
        if credentialed[endpoint] < _LOGIN_MAX_CREDENTIALED * walk.requests[endpoint]:
            login_votes[endpoint] += 1
    login = _best(login_votes)
    if login is None:
        return NO_AUTH
    from_login = [u for u in creds if u.source_endpoint == login]
    by_source = Counter(u.source for u in from_login)
    credential = min(by_source, key=lambda s: (-by_source[s], _WHERE_ORDER.get(s.where, 9), s))
    # The login response may carry the credential twice (JSON field and Set-Cookie): every
    # place that holds the same value is the credential, wherever later requests send it.
    aliases = set()
    for row in walk.rows:
        if row["endpoint"] == login and answered_ok(row["status"]):
            got = response_values(row, min_value_len, walk.memo)
            tokens = {value for loc, value in got if loc == credential}
            aliases |= {loc for loc, value in got if value in tokens}
    used_as = tuple(sorted({u.target for u in from_login if u.source in aliases}))

    # A refresh is sent with a value the login (or an earlier refresh) yielded, and yields
    # a new credential that later requests send where they sent the login's.
    fed_by: defaultdict[str, set[str]] = defaultdict(set)
    for u in uses:
        fed_by[u.target_endpoint].add(u.source_endpoint)
    refresh_votes: Counter[str] = Counter()
    for endpoint, _ in {(u.source_endpoint, u.session) for u in creds if u.target in used_as}:
        if endpoint != login and fed_by[endpoint] & {login, endpoint}:
            refresh_votes[endpoint] += 1
    refresh = _best(refresh_votes)
    return AuthInfo(login, credential, used_as, refresh, _logout(creds, used_as, login, refresh))


def _logout(
    creds: list[Use], used_as: tuple[Location, ...], login: str, refresh: str | None
) -> str | None:
    """The endpoint after which a session never sends its credential again."""
    carriers: defaultdict[int, list[tuple[int, str]]] = defaultdict(list)
    for u in creds:
        if u.target in used_as:
            carriers[u.session].append((u.seq, u.target_endpoint))
    sent_in: Counter[str] = Counter()
    last_in: Counter[str] = Counter()
    for requests in carriers.values():
        sent_in.update({endpoint for _, endpoint in requests})
        last_in[max(requests)[1]] += 1
    floor = max(2.0, _LOGOUT_MIN_SHARE * len(carriers))
    for endpoint, n in list(last_in.items()):
        terminal = n >= floor and n >= _LOGOUT_TERMINAL_SHARE * sent_in[endpoint]
        safe = endpoint.partition(" ")[0] in _SAFE_METHODS
        if not terminal or safe or endpoint in (login, refresh):
            del last_in[endpoint]
    return _best(last_in)


# ---- model file ---------------------------------------------------------------------------


def correlations_to_json(rules: Sequence[CorrelationRule]) -> list[dict[str, Any]]:
    return [
        {
            "source": {"endpoint": r.source_endpoint, **r.source.to_json()},
            "target": {"endpoint": r.target_endpoint, **r.target.to_json()},
            "support": r.support,
            "confidence": _round(r.confidence),
        }
        for r in sorted(rules)
    ]


def correlations_from_json(data: Any) -> list[CorrelationRule]:
    if not isinstance(data, list):
        raise ConfigError("model: `correlations` must be a list")
    try:
        return sorted(
            CorrelationRule(
                str(item["source"]["endpoint"]),
                Location.from_json(item["source"]),
                str(item["target"]["endpoint"]),
                Location.from_json(item["target"]),
                int(item["support"]),
                float(item["confidence"]),
            )
            for item in data
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"model: bad correlation rule ({exc})") from exc


def auth_to_json(auth: AuthInfo) -> dict[str, Any]:
    return {
        "login": auth.login_endpoint,
        "credential": auth.credential.to_json() if auth.credential else None,
        "used_as": [loc.to_json() for loc in auth.used_as],
        "refresh": auth.refresh_endpoint,
        "logout": auth.logout_endpoint,
    }


def auth_from_json(data: Any) -> AuthInfo:
    if not isinstance(data, dict):
        raise ConfigError("model: `auth` must be an object")
    login, refresh, logout = (
        None if data.get(k) is None else str(data[k]) for k in ("login", "refresh", "logout")
    )
    credential = data.get("credential")
    return AuthInfo(
        login,
        None if credential is None else Location.from_json(credential),
        tuple(Location.from_json(loc) for loc in data.get("used_as") or []),
        refresh,
        logout,
    )
