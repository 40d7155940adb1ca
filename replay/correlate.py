"""Runtime correlation: live values from a replayed session's responses (login token,
created ids, refreshed tokens) put into its later requests, as the model's rules say.

The runner calls `prepare` before and `observe` after each request of one session; no
I/O here. Choices where the rules alone do not decide:

- A JSON pointer source with `*` takes the first array element that has a value there. A
  JSON or form target is only replaced where the planned body has it (bodies keep their
  planned shape; a `*` target sets every element); query and header targets are set,
  added when missing. A value keeps the planned leaf's JSON type (an id stays a number).
- Cookies: the runner's HTTP client keeps a cookie jar that sends what Set-Cookie set, but
  an explicit Cookie header stops it. So a planned Cookie header is rebuilt with the
  session's Set-Cookie values and the rules' values over the planned (captured) ones; without
  one, a Cookie header is only built for values that did not come from a Set-Cookie.
- Credential (`auth.used_as`): rules decide where an endpoint sends it. An endpoint with no
  rule for any used_as location (too rare in the trace for one; not the login or the
  refresh) gets the live credential
  at every used_as header, and cookie when the plan has a Cookie header. A planned request
  that carries a used_as cookie and no Authorization is a browser's: it gets no credential
  header (rule or not), since captured sessions send one or the other.
- Login: credential fields of the planned body get the --credentials account; an empty
  body becomes {"email", "password"}; any other body is sent as planned.
- Refresh: values its response holds where the login's does replace the login's, so every
  target the login fed (token, refresh token) gets the renewed value.
- Tokens in bodies: a planned body field named like a token that the login handed out in
  its JSON (`refresh_token`) holds a captured pseudonym, never a live token, so while
  logged in it gets the session's latest such token, rule or not (as the credential header
  does: a rule too rare in the trace to be learned would leave the pseudonym, and a 401).
  Rules still win where they have a value. An answer to the refresh, or to any request
  that sent such a token, that hands out new ones renews them (a rotation).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from tracereplay.cookies import cookie_pairs
from tracereplay.models.correlations import AuthInfo, CorrelationRule, Location

from .credentials import (
    Credential,
    credential_for,
    fill_handed_tokens,
    fill_login_body,
    handed_tokens,
    load_credentials,
)
from .plan import PlannedRequest

__all__ = [  # the runner imports the credential helpers from here too
    "Credential",
    "PreparedRequest",
    "SessionCorrelator",
    "credential_for",
    "load_credentials",
]

Scalar = str | int | float
_Key = tuple[str, Location]  # (source endpoint, where its response holds the value)
_AUTH_HEADERS = ("authorization", "proxy-authorization")


@dataclass(frozen=True)
class PreparedRequest:
    """What the runner sends: the planned request with live values in it."""

    method: str
    path: str
    query: str | None
    headers: list[tuple[str, str]]
    body: bytes | None


@dataclass(frozen=True)
class _Seen:
    order: int  # observation count: the largest is the most recent
    value: Scalar
    set_cookie: bool  # the HTTP client's cookie jar holds it too
    fallback: bool = False  # the credential where no rule says so (auth.used_as)


class SharedValues:
    """Ids (not credentials) that responses of any session yielded, most recent last.

    A synthesized session may reach an endpoint that needs an id (a path parameter, a
    `client_id` query value) without having visited, in this session, the response that
    handed it out: its Markov chain is first order. Rather than sending the planned fresh
    value (a sure 404), such a target takes the most recent value any session saw at one
    of its rules' sources. Shared by the sessions of one process.
    """

    def __init__(self, keep: int = 64) -> None:
        self._values: dict[_Key, deque[tuple[int, Scalar]]] = {}
        self._keep = keep
        self._order = 0

    def add(self, key: _Key, value: Scalar) -> None:
        self._order += 1
        self._values.setdefault(key, deque(maxlen=self._keep)).append((self._order, value))

    def latest(self, keys: Sequence[_Key]) -> Scalar | None:
        seen = [self._values[k][-1] for k in keys if self._values.get(k)]
        return max(seen, key=lambda s: s[0])[1] if seen else None


_SHARED_TARGETS = ("path", "query", "json", "form")


class SessionCorrelator:
    """Correlation state of one replayed session."""

    def __init__(
        self,
        rules: Sequence[CorrelationRule],
        auth: AuthInfo,
        credential: Credential | None,
        *,
        min_confidence: float = 0.2,
        shared: SharedValues | None = None,
    ) -> None:
        self.auth = auth
        self.credential = credential
        self.shared = shared
        self._targets: dict[str, dict[Location, list[_Key]]] = {}
        self._sources: dict[str, set[Location]] = {}
        for rule in rules:
            if rule.confidence >= min_confidence:
                by_target = self._targets.setdefault(rule.target_endpoint, {})
                by_target.setdefault(rule.target, []).append((rule.source_endpoint, rule.source))
                self._sources.setdefault(rule.source_endpoint, set()).add(rule.source)
        for endpoint in (auth.login_endpoint, auth.refresh_endpoint):
            if endpoint is not None and auth.credential is not None:
                self._sources.setdefault(endpoint, set()).add(auth.credential)
        self._values: dict[_Key, _Seen] = {}
        self._jar: dict[str, str] = {}  # what the client's cookie jar holds, by name
        self._tokens: dict[str, str] = {}  # tokens the login / refreshes handed out, by field
        self._order = 0
        self._logged_in = False
        self._login_failed = False

    @property
    def logged_in(self) -> bool:
        """The login answered 2xx/3xx (and no logout since)."""
        return self._logged_in

    @property
    def login_failed(self) -> bool:
        """The login answered >= 400 or not at all: the runner ends the session."""
        return self._login_failed

    # ---- before a request -------------------------------------------------------------

    def prepare(self, request: PlannedRequest) -> PreparedRequest:
        """The request with the most recent live value at each of its rules' targets."""
        headers = list(request.headers)
        body = request.body
        if request.endpoint == self.auth.login_endpoint:
            if self.credential is not None:
                body, headers = fill_login_body(body, headers, self.credential)
        elif self._logged_in:
            body = fill_handed_tokens(body, headers, self._tokens)
        live = self._live(request.endpoint, headers)
        path, query = request.path, request.query
        if paths := {t.key: str(s.value) for t, s in live.items() if t.where == "path"}:
            path = _set_path(request, paths)
        if queries := {t.key: str(s.value) for t, s in live.items() if t.where == "query"}:
            query = _set_query(query, queries)
        for target, seen in live.items():
            if target.where == "header":
                headers = _set_header(headers, target.key, _header_value(target, seen, headers))
        headers = self._with_cookies(
            headers, {t.key: s for t, s in live.items() if t.where == "cookie"}
        )
        fields = {t: s.value for t, s in live.items() if t.where in ("json", "form")}
        if fields and body:
            body = _set_body_fields(body, headers, fields)
        if body is not request.body:  # the client computes the new length
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        return PreparedRequest(request.method, path, query, headers, body)

    def _live(self, endpoint: str, headers: list[tuple[str, str]]) -> dict[Location, _Seen]:
        """Target location → the value to send there (rules first, then the credential)."""
        rule_targets = self._targets.get(endpoint, {})
        live: dict[Location, _Seen] = {}
        for target, keys in rule_targets.items():
            seen = [self._values[key] for key in keys if key in self._values]
            if seen:
                live[target] = max(seen, key=lambda s: s.order)
            elif self.shared is not None and target.where in _SHARED_TARGETS:
                value = self.shared.latest(keys)
                if value is not None:
                    live[target] = _Seen(-1, value, False)
        auth = self.auth
        credential = None
        if auth.login_endpoint is not None and auth.credential is not None:
            credential = self._values.get((auth.login_endpoint, auth.credential))
        no_rule = not any(target in rule_targets for target in auth.used_as)
        # The login and the refresh obtain credentials: only their own rules feed them.
        obtains = endpoint in (auth.login_endpoint, auth.refresh_endpoint)
        if self._logged_in and not obtains and credential and no_rule:
            live |= {target: replace(credential, fallback=True) for target in auth.used_as}
        if self._is_browser(headers):
            live = {
                t: s for t, s in live.items() if not (t.where == "header" and t in auth.used_as)
            }
        return live

    def _with_cookies(
        self, headers: list[tuple[str, str]], cookies: dict[str, _Seen]
    ) -> list[tuple[str, str]]:
        planned = _header(headers, "cookie")
        if planned is not None:  # it stops the client's jar: it must carry the jar's values
            merged = dict(cookie_pairs(planned)) | self._jar
            merged |= {name: str(seen.value) for name, seen in cookies.items()}
            return _set_header(headers, "cookie", _cookie_text(merged))
        needed = {n: str(s.value) for n, s in cookies.items() if not (s.set_cookie or s.fallback)}
        if needed:
            return _set_header(headers, "cookie", _cookie_text(self._jar | needed))
        return headers  # the client's jar sends what Set-Cookie set

    def _is_browser(self, headers: list[tuple[str, str]]) -> bool:
        """A planned request with a credential cookie and no Authorization header."""
        cookie_header = _header(headers, "cookie")
        if cookie_header is None or _header(headers, "authorization") is not None:
            return False
        names = {name for name, _ in cookie_pairs(cookie_header)}
        return any(loc.where == "cookie" and loc.key in names for loc in self.auth.used_as)

    # ---- after a response ---------------------------------------------------------------

    def observe(
        self,
        request: PlannedRequest,
        status: int | None,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
    ) -> None:
        """Store what the response yields at the rules' source locations for its endpoint."""
        self._order += 1
        endpoint, auth = request.endpoint, self.auth
        ok = status is not None and 200 <= status < 400
        set_cookies = dict(_set_cookies(headers))
        # The client's jar takes them whatever the status; an expiring one is a deletion.
        self._jar.update(set_cookies)
        self._jar = {name: value for name, value in self._jar.items() if value}
        if endpoint == auth.login_endpoint:
            self._logged_in, self._login_failed = ok, not ok
        if not ok:
            return  # an error answer hands out nothing a client would reuse
        response = _Response(headers, body, set_cookies)
        sent = fill_handed_tokens(request.body, request.headers, self._tokens)
        if sent is not request.body or endpoint in (auth.login_endpoint, auth.refresh_endpoint):
            self._tokens |= handed_tokens(body)  # the login's, or renewed ones
        for source in self._sources.get(endpoint, ()):
            self._store((endpoint, source), response.value_at(source), source.where == "cookie")
        if endpoint == auth.refresh_endpoint and auth.login_endpoint is not None:
            for source in self._sources.get(auth.login_endpoint, ()):
                value = response.value_at(source)
                self._store((auth.login_endpoint, source), value, source.where == "cookie")
        if endpoint == auth.logout_endpoint:
            self._logged_in = False

    def _store(self, key: _Key, value: Scalar | None, set_cookie: bool) -> None:
        if value is not None:
            self._values[key] = _Seen(self._order, value, set_cookie)
            credential = (self.auth.login_endpoint, self.auth.credential)
            if self.shared is not None and not set_cookie and key != credential:
                self.shared.add(key, value)


class _Response:
    """One response's values by location, its JSON body parsed once."""

    def __init__(
        self, headers: Sequence[tuple[str, str]], body: bytes | None, cookies: dict[str, str]
    ) -> None:
        self.headers = [(name.lower(), value) for name, value in headers]
        self.body = body
        self.cookies = cookies
        self._doc: object = None
        self._parsed = False

    def value_at(self, loc: Location) -> Scalar | None:
        if loc.where == "cookie":
            return self.cookies.get(loc.key)
        if loc.where == "header":
            return next((v for k, v in self.headers if k == loc.key), None)
        if loc.where != "json":
            return None  # responses yield JSON leaves, cookies and headers only
        if not self._parsed:
            self._parsed = True
            try:
                self._doc = json.loads(self.body or b"")
            except ValueError:
                self._doc = None
        return _first_at(self._doc, _pointer(loc.key))


# ---- JSON pointers --------------------------------------------------------------------------


def _pointer(key: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in key.split("/")[1:]]


def _first_at(node: object, parts: list[str]) -> Scalar | None:
    """The leaf at `parts`; `*` takes the first array element that has one."""
    if not parts:
        if isinstance(node, bool) or not isinstance(node, str | int | float):
            return None
        return node
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        return _first_at(node[head], rest) if head in node else None
    if isinstance(node, list):
        if head == "*":
            return next((v for item in node if (v := _first_at(item, rest)) is not None), None)
        if head.isdigit() and int(head) < len(node):
            return _first_at(node[int(head)], rest)
    return None


def _replace_at(node: object, parts: list[str], value: Scalar) -> bool:
    """Replace the existing leaf(s) at `parts` (every element for `*`); whether any was."""
    if not parts:
        return False
    head, rest = parts[0], parts[1:]
    slots: list[tuple[Any, Any]] = []  # (container, key or index)
    if isinstance(node, dict) and head in node:
        slots = [(node, head)]
    elif isinstance(node, list) and head == "*":
        slots = [(node, i) for i in range(len(node))]
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        slots = [(node, int(head))]
    changed = False
    for parent, slot in slots:
        child = parent[slot]
        if rest:
            changed = _replace_at(child, rest, value) or changed
        elif not isinstance(child, dict | list):
            parent[slot] = _like(child, value)
            changed = True
    return changed


def _like(planned: object, value: Scalar) -> object:
    """`value` with the planned leaf's JSON type, when it can have it."""
    if isinstance(planned, str):
        return str(value)
    if (
        isinstance(planned, int | float)
        and not isinstance(planned, bool)
        and isinstance(value, str)
    ):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


# ---- request parts ------------------------------------------------------------------------


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _set_header(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """`name` set to `value` once (replacing every planned copy, where the first was)."""
    out: list[tuple[str, str]] = []
    placed = False
    for key, old in headers:
        if key.lower() != name:
            out.append((key, old))
        elif not placed:
            out.append((key, value))
            placed = True
    if not placed:
        out.append(("-".join(part.capitalize() for part in name.split("-")), value))
    return out


def _header_value(target: Location, seen: _Seen, headers: list[tuple[str, str]]) -> str:
    if target.key not in _AUTH_HEADERS:
        return str(seen.value)
    planned = _header(headers, target.key) or ""
    scheme, space, _ = planned.strip().partition(" ")
    return f"{scheme if space else 'Bearer'} {seen.value}"


def _cookie_text(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def _set_cookies(headers: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(name, value) of each Set-Cookie; value "" for one that expires it (Max-Age=0)."""
    for name, header in headers:
        if name.lower() == "set-cookie":
            pair, _, attributes = header.partition(";")
            expired = "max-age=0" in attributes.lower().replace(" ", "")
            yield from ((k, "" if expired else v) for k, v in cookie_pairs(pair))


def _set_path(request: PlannedRequest, values: dict[str, str]) -> str:
    """The path with parameters (by template name, or by segment index) replaced."""
    template = request.endpoint.partition(" ")[2].partition("?")[0]
    segments, slots = request.path.split("/"), template.split("/")
    for key, value in values.items():
        encoded = quote(value, safe="")
        if key.isdigit() and int(key) < len(segments):
            segments[int(key)] = encoded
        elif len(slots) == len(segments) and "{" + key + "}" in slots:
            segments[slots.index("{" + key + "}")] = encoded
        elif key in request.path_params:  # a path the template does not match: by value
            old = {request.path_params[key], quote(request.path_params[key], safe="")}
            segments = [encoded if s in old else s for s in segments]
    return "/".join(segments)


def _set_query(query: str | None, values: dict[str, str]) -> str:
    """The query with each of `values` set once: at its first planned place, else added."""
    out: list[tuple[str, str]] = []
    done: set[str] = set()
    for name, value in parse_qsl(query or "", keep_blank_values=True):
        if name not in values:
            out.append((name, value))
        elif name not in done:  # later copies of a replaced parameter are dropped
            out.append((name, values[name]))
            done.add(name)
    return urlencode(out + [(n, v) for n, v in values.items() if n not in done])


def _is_form(headers: list[tuple[str, str]]) -> bool:
    return "x-www-form-urlencoded" in (_header(headers, "content-type") or "").lower()


def _set_body_fields(
    body: bytes, headers: list[tuple[str, str]], fields: dict[Location, Scalar]
) -> bytes:
    """The body with existing JSON leaves / form fields replaced (its shape kept)."""
    if _is_form(headers):
        form = {t.key: str(v) for t, v in fields.items() if t.where == "form"}
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        if not any(name in form for name, _ in pairs):
            return body
        return urlencode([(name, form.get(name, value)) for name, value in pairs]).encode()
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    changed = False
    for target, value in fields.items():
        if target.where == "json":
            changed = _replace_at(doc, _pointer(target.key), value) or changed
    return json.dumps(doc, ensure_ascii=False).encode() if changed else body
