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

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

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
from .rewrite import (
    Response,
    Scalar,
    cookie_text,
    header,
    response_cookies,
    set_body_fields,
    set_header,
    set_path,
    set_query,
)

__all__ = [  # the runner imports the credential helpers from here too
    "Credential",
    "PreparedRequest",
    "SessionCorrelator",
    "credential_for",
    "load_credentials",
]

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
            path = set_path(request, paths)
        if queries := {t.key: str(s.value) for t, s in live.items() if t.where == "query"}:
            query = set_query(query, queries)
        for target, seen in live.items():
            if target.where == "header":
                headers = set_header(headers, target.key, _header_value(target, seen, headers))
        headers = self._with_cookies(
            headers, {t.key: s for t, s in live.items() if t.where == "cookie"}
        )
        fields = {t: s.value for t, s in live.items() if t.where in ("json", "form")}
        if fields and body:
            body = set_body_fields(body, headers, fields)
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
        planned = header(headers, "cookie")
        if planned is not None:  # it stops the client's jar: it must carry the jar's values
            merged = dict(cookie_pairs(planned)) | self._jar
            merged |= {name: str(seen.value) for name, seen in cookies.items()}
            return set_header(headers, "cookie", cookie_text(merged))
        needed = {n: str(s.value) for n, s in cookies.items() if not (s.set_cookie or s.fallback)}
        if needed:
            return set_header(headers, "cookie", cookie_text(self._jar | needed))
        return headers  # the client's jar sends what Set-Cookie set

    def _is_browser(self, headers: list[tuple[str, str]]) -> bool:
        """A planned request with a credential cookie and no Authorization header."""
        cookie_header = header(headers, "cookie")
        if cookie_header is None or header(headers, "authorization") is not None:
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
        set_cookies = dict(response_cookies(headers))
        # The client's jar takes them whatever the status; an expiring one is a deletion.
        self._jar.update(set_cookies)
        self._jar = {name: value for name, value in self._jar.items() if value}
        if endpoint == auth.login_endpoint:
            self._logged_in, self._login_failed = ok, not ok
        if not ok:
            return  # an error answer hands out nothing a client would reuse
        response = Response(headers, body, set_cookies)
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


def _header_value(target: Location, seen: _Seen, headers: list[tuple[str, str]]) -> str:
    if target.key not in _AUTH_HEADERS:
        return str(seen.value)
    planned = header(headers, target.key) or ""
    scheme, space, _ = planned.strip().partition(" ")
    return f"{scheme if space else 'Bearer'} {seen.value}"
