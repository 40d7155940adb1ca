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
- Ids: which live id each id place takes, and what a create made, is replay/idvalues.py
  (its order: replay/liveids.py); a state change that does not go is remembered, so the
  actions that follow it on that object do not go either (`clear`).
- With --spread-addresses, every request carries the session's X-Forwarded-For.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import replace

from tracereplay.cookies import cookie_pairs
from tracereplay.models.correlations import AuthInfo, CorrelationRule, Location
from tracereplay.models.id_model import NO_IDS, IdModel
from tracereplay.models.id_select import describe
from tracereplay.models.ids import is_id_place

from .credentials import (
    Credential,
    credential_for,
    fill_handed_tokens,
    fill_login_body,
    handed_tokens,
    load_credentials,
    wrong_password,
)
from .evidence import Saw
from .idvalues import IdValues, Seen, creates_for
from .liveids import CredentialPools, Key, RunObjects, SessionIds
from .ownership import Cleared, Protection, Skipped, clear, object_ids
from .placeholders import (
    fill_basic,
    fill_handed_query,
    handed_query_values,
    may_hold_placeholder,
)
from .plan import PlannedRequest
from .rewrite import (
    PreparedRequest,
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

_AUTH_HEADERS = ("authorization", "proxy-authorization")
ADDRESS_HEADER = "x-forwarded-for"


_CURSOR_BODY_MAX = 256 << 10
_CURSOR_HINTS = (b"?", b"token", b"cursor", b"secret", b"key", b"pass", b"session")
"""What a body that hands out a query value to send back holds (a URL's `?`, the field's
name); a session keeps its last answer's body for that only when it does."""


def may_hand_out_a_cursor(body: bytes | None) -> bool:
    """Whether `body` holds one of `_CURSOR_HINTS`, in any case. Substring tests on the
    lowered body: a case-insensitive regex took ~260 us on a 4 KB answer, on every 2xx."""
    if body is None or len(body) > _CURSOR_BODY_MAX:
        return False
    lowered = body.lower()
    return any(hint in lowered for hint in _CURSOR_HINTS)


class SessionCorrelator:
    """Correlation state of one replayed session."""

    def __init__(
        self,
        rules: Sequence[CorrelationRule],
        auth: AuthInfo,
        credential: Credential | None,
        *,
        min_confidence: float = 0.2,
        ids: IdModel = NO_IDS,
        session_ids: SessionIds | None = None,
        protection: Protection | None = None,
        address: str | None = None,
        evidence: Sequence[Saw] = (),
    ) -> None:
        """`evidence`: what the real session saw of the objects it used (trace replays,
        replay/evidence.py): a live id it takes for one of them looks the same."""
        self.auth = auth
        self.credential = credential
        self.id_model = ids
        self.ids = session_ids or SessionIds(
            0, random.Random(0), RunObjects(), CredentialPools(), None
        )
        self.protection = protection or Protection()
        self.address = address
        self._targets: dict[str, dict[Location, list[Key]]] = {}
        self._sources: dict[str, set[Location]] = {}
        for rule in rules:
            if rule.confidence >= min_confidence:
                by_target = self._targets.setdefault(rule.target_endpoint, {})
                by_target.setdefault(rule.target, []).append((rule.source_endpoint, rule.source))
                self._sources.setdefault(rule.source_endpoint, set()).add(rule.source)
        self._idv = IdValues(ids, self.ids, self._targets, self._sources, evidence)
        for endpoint in (auth.login_endpoint, auth.refresh_endpoint):
            if endpoint is not None and auth.credential is not None:
                self._sources.setdefault(endpoint, set()).add(auth.credential)
        self._changes = {change for _, change in ids.follows}  # changes an action follows
        self._before: dict[str, set[str]] = {}  # endpoint -> the changes it follows
        self._as_planned: dict[str, bool] = {}  # endpoint -> no rule, id or login touches it
        self._answer_plain: dict[str, bool] = {}  # endpoint -> observe reads nothing of it
        self._retargeted: list[str] = []  # ids the last prepare moved to the session's own
        self._values: dict[Key, Seen] = {}
        self._jar: dict[str, str] = {}  # what the client's cookie jar holds, by name
        self._tokens: dict[str, str] = {}  # tokens the login / refreshes handed out, by field
        self._handed: dict[str, str] = {}  # query values answers' headers handed out
        self._last_body: bytes | None = None  # the latest 2xx answer's (read for a cursor)
        self._order = 0
        self._logged_in = False
        self._login_failed = False

    @property
    def logged_in(self) -> bool:
        """A login answered 2xx/3xx (and no logout since; a later refused login keeps it)."""
        return self._logged_in

    @property
    def login_failed(self) -> bool:
        """The login answered >= 400 or not at all."""
        return self._login_failed

    @property
    def owned(self) -> dict[str, str]:
        """Ids of the objects this session created (and has not deleted), oldest first."""
        return self.ids.owned

    def id_places(self, endpoint: str) -> tuple[Location, ...]:
        """Where requests of `endpoint` send object ids: its path parameters and the
        model's learned id places (computed once per endpoint, models/id_model.py)."""
        return self.id_model.id_places(endpoint)

    # ---- before a request -------------------------------------------------------------

    def clear(self, request: PlannedRequest, protection: Protection) -> Cleared | Skipped:
        """The request with its live values, as ownership decides it; a state change that
        does not go is remembered, so the actions that follow it on that object do not go
        either (`follows_withheld`)."""
        endpoint = request.endpoint
        self._retargeted = []
        self._idv.as_seen.clear()
        prepared = self.prepare(request)
        places = self.id_places(endpoint)
        before = self._before.get(endpoint)
        if before is None:
            before = self._before[endpoint] = self.id_model.changes_before(endpoint)
        # An object that already meets the action's learned selection, or looks as the
        # real session saw it (trace evidence), does not need a change the run withheld.
        withheld: Collection[str] = ()
        if before:
            withheld = self.ids.run.withheld(before) - self._idv.as_seen
        decision = clear(prepared, endpoint, self.owned, protection, places, withheld)
        if isinstance(decision, Skipped) and endpoint in self._changes:
            # The object it named and, where a protected change was put on the session's
            # own object instead, the one it named before: its sequels name that one.
            objects = object_ids(endpoint, prepared.path, None, ()) or []
            self.ids.run.withhold(endpoint, [*objects, *self._retargeted])
        return decision

    def stand_in_create(self, request: PlannedRequest) -> str | None:
        """For a protected request ownership skipped as naming an object this session did
        not create: the learned create that makes objects of the kind it names at its one
        path or query id place (replay/standins.py), when the session has none of them."""
        places = [p for p in self.id_places(request.endpoint) if p.where in ("path", "query")]
        if len(places) != 1 or not self.protection.protects(request.endpoint, request.method):
            return None
        creates = creates_for(self.id_model, request.endpoint, places[0])
        if not creates or self.ids.owned_from(creates) is not None:
            return None
        return min(creates)

    def prepare(self, request: PlannedRequest) -> PreparedRequest:
        """The request with the most recent live value at each of its rules' targets."""
        if self._sent_as_planned(request):  # what `_with_live_values` would give, directly
            return PreparedRequest(
                request.method, request.path, request.query, list(request.headers), request.body
            )
        return self._with_live_values(request)

    def _with_live_values(self, request: PlannedRequest) -> PreparedRequest:
        headers = list(request.headers)
        body = request.body
        if request.endpoint == self.auth.login_endpoint:
            if self.credential is not None:
                body, headers = self._login_body(request, body, headers, self.credential)
        elif self._logged_in:
            body = fill_handed_tokens(body, headers, self._tokens)
        live = self._live(request, headers)
        path, query = request.path, request.query
        if live and (paths := {t.key: str(s.value) for t, s in live.items() if t.where == "path"}):
            path = set_path(request, paths)
        if live and (
            queries := {t.key: str(s.value) for t, s in live.items() if t.where == "query"}
        ):
            query = set_query(query, queries)
        if may_hold_placeholder(query):  # a cursor the target handed out, filled live
            last = self._last_body if may_hand_out_a_cursor(self._last_body) else None
            handed = self._handed | handed_query_values((), last)
            query = fill_handed_query(query, handed)
        for target, seen in live.items():
            if target.where == "header":
                headers = set_header(headers, target.key, _header_value(target, seen, headers))
        headers = self._with_cookies(
            headers, {t.key: s for t, s in live.items() if t.where == "cookie"} if live else {}
        )
        if live and body:
            fields = {t: _scalar(s.value) for t, s in live.items() if t.where in ("json", "form")}
            if fields:
                body = set_body_fields(body, headers, fields)
        if body is not request.body:  # the client computes the new length
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers = fill_basic(headers, self.credential)  # a Basic placeholder: the account
        if self.address is not None:
            headers = set_header(headers, ADDRESS_HEADER, self.address)
        return PreparedRequest(request.method, path, query, headers, body)

    def _sent_as_planned(self, request: PlannedRequest) -> bool:
        """Whether `prepare` leaves `request` as planned, told without its steps: no rule
        target, id place or login on its endpoint; no credential the session would add
        (the used_as fallback, a Basic account), no token for its body, no address; no
        Cookie header (rebuilt from the jar) and no query placeholder. Most requests of a
        run; `prepare`'s steps cost them ~20 us each in a busy replay, this ~2 us."""
        endpoint = request.endpoint
        plain = self._as_planned.get(endpoint)
        if plain is None:
            plain = self._as_planned[endpoint] = (
                endpoint != self.auth.login_endpoint
                and endpoint not in self._targets
                and not self.id_places(endpoint)
            )
        if not plain or self.address is not None:
            return False
        auth = self.auth
        if self._logged_in and (
            (request.body and self._tokens)
            or (
                auth.used_as
                and endpoint != auth.refresh_endpoint
                and auth.login_endpoint is not None
                and auth.credential is not None
                and self._values.get((auth.login_endpoint, auth.credential)) is not None
            )
        ):
            return False
        if request.query and may_hold_placeholder(request.query):
            return False
        for name, _ in request.headers:
            lowered = name.lower()
            if lowered == "cookie" or (lowered == "authorization" and self.credential is not None):
                return False
        return True

    def _login_body(
        self,
        request: PlannedRequest,
        body: bytes | None,
        headers: list[tuple[str, str]],
        credential: Credential,
    ) -> tuple[bytes | None, list[tuple[str, str]]]:
        """The login body with the account: a wrong password where the real login was
        refused (the trace's answer, or the session's first login where its real one
        failed: `credential.then` is what its later logins send)."""
        if request.login_refused and credential.then is None:
            filled = fill_login_body(body, headers, wrong_password(credential))
        else:
            filled = fill_login_body(body, headers, credential)
        if credential.then is not None:  # only the first login fails
            self.credential = credential.then
        return filled

    def _live(
        self, request: PlannedRequest, headers: list[tuple[str, str]]
    ) -> dict[Location, Seen]:
        """Target location → the value to send there (rules first, then the credential)."""
        endpoint = request.endpoint
        rule_targets = self._targets.get(endpoint, {})
        places = self.id_places(endpoint)
        protected = self.protection.protects(endpoint, request.method)
        live: dict[Location, Seen] = {}
        for target in dict.fromkeys([*rule_targets, *places]):
            keys = rule_targets.get(target, [])
            value = self._idv.value(request, target, keys, target in places, self._values)
            if protected and target in places and target.where in ("path", "query"):
                named = value
                value = self._idv.owned_value(endpoint, target, value)
                if named is not None and value is not named:  # put on the session's own
                    self._retargeted.append(str(named.value))
            if value is not None:
                live[target] = value
        auth = self.auth
        credential = None
        if auth.login_endpoint is not None and auth.credential is not None:
            credential = self._values.get((auth.login_endpoint, auth.credential))
        no_rule = not any(target in rule_targets for target in auth.used_as)
        # The login and the refresh obtain credentials: only their own rules feed them.
        obtains = endpoint in (auth.login_endpoint, auth.refresh_endpoint)
        if self._logged_in and not obtains and credential and no_rule:
            live |= {target: replace(credential, fallback=True) for target in auth.used_as}
        if live and self._is_browser(headers):
            live = {
                t: s for t, s in live.items() if not (t.where == "header" and t in auth.used_as)
            }
        return live

    def _with_cookies(
        self, headers: list[tuple[str, str]], cookies: dict[str, Seen]
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
        sent: PreparedRequest | None = None,
    ) -> None:
        """Store what the response yields at the rules' source locations for its endpoint;
        record what a create made and what a DELETE removed (`sent`: what went out)."""
        self._order += 1
        endpoint, auth = request.endpoint, self.auth
        ok = status is not None and 200 <= status < 400
        set_cookies, hands_out = _cookies_and_urls(headers)
        if set_cookies:  # the client's jar takes them whatever the status; expiring: deleted
            self._jar.update(set_cookies)
            self._jar = {name: value for name, value in self._jar.items() if value}
        if endpoint == auth.login_endpoint:
            # A refused login does not sign a signed-in session out: the client keeps the
            # credential it has (a seat's mistyped attempt beside its live token).
            self._logged_in, self._login_failed = ok or self._logged_in, not ok
        if not ok:
            return  # an error answer hands out nothing a client would reuse
        if hands_out:  # only a URL's query hands one out
            self._handed |= handed_query_values(headers, None)
        # Read for a cursor only when a later query may take one (`prepare`): the hints
        # are looked for there, not in every answer (the bound is the same).
        self._last_body = body if body is None or len(body) <= _CURSOR_BODY_MAX else None
        sent_body = fill_handed_tokens(request.body, request.headers, self._tokens)
        if sent_body is not request.body or endpoint in (
            auth.login_endpoint,
            auth.refresh_endpoint,
        ):
            self._tokens |= handed_tokens(body)  # the login's, or renewed ones
        if not self._yields_nothing(endpoint) or request.method.upper() == "DELETE":
            self._what_it_yields(request, Response(headers, body, set_cookies), sent)

    def _what_it_yields(
        self, request: PlannedRequest, response: Response, sent: PreparedRequest | None
    ) -> None:
        """`observe` of a 2xx answer that may show, create, remove or hand out something."""
        endpoint, auth = request.endpoint, self.auth
        if endpoint in self.id_model.describers:  # what it shows of objects, for selections
            self.ids.pools.describe(describe(response.document(), self.id_model.id_keys))
        # A create is recorded first: its answer then maps its captured id to what it made.
        self._idv.record(request, response, sent)
        if sources := self._sources.get(endpoint):
            captured = dict(request.yields)
            for source in sources:
                self._store((endpoint, source), response, source, captured.get(source, ()))
        if endpoint == auth.refresh_endpoint and auth.login_endpoint is not None:
            for source in self._sources.get(auth.login_endpoint, ()):
                self._store((auth.login_endpoint, source), response, source, ())
        if endpoint == auth.logout_endpoint:
            self._logged_in = False
        if endpoint in self._changes and sent is not None:
            self.ids.run.changed(endpoint, object_ids(endpoint, sent.path, None, ()) or [])

    def _yields_nothing(self, endpoint: str) -> bool:
        """Whether the rest of `observe` has nothing to do for a 2xx answer of `endpoint`
        (decided once per endpoint): it shows no objects, creates none, feeds no rule or
        credential source, and is neither the refresh nor the logout nor a change that
        actions follow. (A DELETE is told by its method, per request.)"""
        plain = self._answer_plain.get(endpoint)
        if plain is None:
            auth = self.auth
            plain = self._answer_plain[endpoint] = (
                endpoint not in self.id_model.describers
                and self.id_model.creation(endpoint) is None
                and not self._sources.get(endpoint)
                and endpoint not in (auth.refresh_endpoint, auth.logout_endpoint)
                and endpoint not in self._changes
            )
        return plain

    def _store(
        self, key: Key, response: Response, source: Location, captured: Sequence[str]
    ) -> None:
        is_list = source.where == "json" and "*" in source.key.split("/")
        values = response.values_at(source) if is_list else []
        single = None if is_list else response.value_at(source)
        if single is not None:
            values = [single]
        if not values:
            return
        set_cookie = source.where == "cookie"
        value: Scalar | tuple[Scalar, ...] = tuple(values) if is_list else values[0]
        self._values[key] = Seen(self._order, value, set_cookie)
        credential = (self.auth.login_endpoint, self.auth.credential)
        if (
            not set_cookie
            and key != credential
            and (key in self._idv.pooled or is_id_place(source, []))
        ):
            self.ids.answered(key, values, captured)


def _cookies_and_urls(headers: Sequence[tuple[str, str]]) -> tuple[dict[str, str], bool]:
    """The answer's Set-Cookie values (`response_cookies`) and whether a header value may
    hold a URL's query (a `?`), in one pass that lowers only names of Set-Cookie's length."""
    set_cookie = hands_out = False
    for name, value in headers:
        hands_out = hands_out or "?" in value
        set_cookie = set_cookie or (len(name) == 10 and name.lower() == "set-cookie")
    return (dict(response_cookies(headers)) if set_cookie else {}), hands_out


def _scalar(value: Scalar | tuple[Scalar, ...]) -> Scalar:
    return value[0] if isinstance(value, tuple) else value


def _header_value(target: Location, seen: Seen, headers: list[tuple[str, str]]) -> str:
    value = _scalar(seen.value)
    if target.key not in _AUTH_HEADERS:
        return str(value)
    planned = header(headers, target.key) or ""
    scheme, space, _ = planned.strip().partition(" ")
    return f"{scheme if space else 'Bearer'} {value}"
