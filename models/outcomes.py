"""Real outcomes a replay must keep: per session whether its login failed and which role it
showed, per behavior their shares, which endpoints only one role was allowed to use, and
how many client addresses the sessions came from.

The role: the login answer's own field when it has one (a kept, low-cardinality JSON text
leaf named like a role, group or scope, in nearly every 2xx login answer); without one,
sessions that got 2xx on an endpoint others were refused (403) are "privileged". An
endpoint is *privileged* to a role when only sessions of that role got 2xx on it while
the trace holds other roles too. Sessions are placed in the behavior whose chain most
likely produced their path (share × probability of entry, transitions and end), so the
same rule places a synthesized session (`draw_outcome`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tracereplay.errors import ConfigError

from .addresses import session_addresses
from .behaviors import END, Behavior
from .correlations import AuthInfo, Location, answered_ok
from .values import json_leaves

if TYPE_CHECKING:  # pandas loads where a model is built, not by synthesize
    import pandas as pd

PRIVILEGED, UNPRIVILEGED = "privileged", "unprivileged"
_ROLE_NAME = re.compile(r"^(role|roles|user_?role|group|scope|permission|privilege|tier|"
                        r"access_?level|account_?type|user_?type)$", re.IGNORECASE)  # fmt: skip
_MAX_ROLES = 8
_FIELD_MIN_SHARE = 0.9  # of 2xx login answers that hold the field
_LOG_EPS = math.log(1e-9)  # a transition a chain never made: very unlikely, not impossible
_REFUSED = (401, 403)
PRIVILEGED_ROLE_NAME = re.compile(r"admin|root|super|owner|staff|manager|operator", re.I)
"""Role names that say the role is the privileged one (an `admin` beats a `client` that
happened to use more endpoints in a short capture)."""


@dataclass(frozen=True)
class BehaviorOutcome:
    roles: dict[str, float]
    """Role shares of the behavior's sessions that used no privileged endpoint."""
    logins: int
    failed_share: float
    """Of its sessions with a login, the share whose (first) login failed."""


@dataclass(frozen=True)
class Outcomes:
    role_field: Location | None = None
    roles: dict[str, int] = field(default_factory=dict)
    """Sessions per role shown."""
    privileged: dict[str, str] = field(default_factory=dict)
    """Endpoint → the only role that got 2xx on it."""
    logins: int = 0
    failed_logins: int = 0
    behaviors: dict[str, BehaviorOutcome] = field(default_factory=dict)
    sessions: int = 0
    addresses: int = 0
    """Distinct client addresses the sessions came from (0: unknown)."""
    addresses_from: str | None = None
    basic_auth: tuple[str, ...] = ()
    """Endpoints most of whose captured requests carried `Authorization: Basic`: the
    replay sends them with the session's account as HTTP Basic."""
    later_logins: int = 0
    """Logins that were not their session's first (a client's next attempt, keyed to the
    session by its connection; a sign-in again)."""
    later_failed_logins: int = 0
    """Of those, how many were refused: a synthesized session's later login is refused
    with this share (`later_failed_share`)."""

    after_first_login: dict[str, tuple[int, int]] = field(default_factory=dict)
    """What a session did right after its first login ("login": signed in again, "end":
    nothing, "other") → (such sessions, how many of their first logins failed): a user
    whose password was refused tries again or leaves; one who goes on mostly signed in."""

    def failed_odds(self, after: str) -> float:
        """How much likelier a first login followed by `after` failed than any first login
        (1.0 when unknown): `draw_outcome` scales a behavior's failed share by it."""
        n, failed = self.after_first_login.get(after, (0, 0))
        if not n or not self.logins or not self.failed_logins:
            return 1.0
        return (failed / n) / (self.failed_logins / self.logins)

    @property
    def later_failed_share(self) -> float:
        return self.later_failed_logins / self.later_logins if self.later_logins else 0.0


NO_OUTCOMES = Outcomes()


def is_basic(authorization: str) -> bool:
    """Whether an Authorization header value uses the Basic scheme."""
    return authorization.strip().partition(" ")[0].lower() == "basic"


def carries_basic(row_headers: object) -> bool:
    """Whether a request's headers (pairs or a dict) hold `Authorization: Basic …`."""
    if type(row_headers) is list:  # what Arrow's map columns give: no ABC check (slow)
        return bool(row_headers) and _basic_in(row_headers)  # (most requests send none)
    items = row_headers.items() if isinstance(row_headers, dict) else row_headers
    if not isinstance(items, Iterable) or isinstance(items, str):
        return False
    return _basic_in(items)


def _basic_in(pairs: Iterable[Any]) -> bool:
    return any(str(k).lower() == "authorization" and is_basic(str(v)) for k, v in pairs)


def basic_auth_endpoints(
    sessions: pd.DataFrame, basic_rows: Sequence[bool] | None = None
) -> tuple[str, ...]:
    """Endpoints at least half of whose requests carried `Authorization: Basic`
    (`basic_rows`: `carries_basic` of each row's `req_headers`, when the caller has it)."""
    if basic_rows is None:
        basic_rows = [carries_basic(h) for h in sessions["req_headers"]]
    # As a list: a column of pandas' `str` dtype yields its items one Arrow scalar at a
    # time (a fifth of the outcome facts' time at real1M's sample). Counted by Counter's
    # one pass in C, not an update per request (real1M's sample: 0.009 -> 0.002 s).
    endpoints = [str(endpoint) for endpoint in sessions["endpoint"].tolist()]
    total = Counter(endpoints)
    basic = Counter(e for e, carried in zip(endpoints, basic_rows, strict=True) if carried)
    return tuple(sorted(e for e, n in basic.items() if n and 2 * n >= total[e]))


def _login_doc(body: object) -> Any:
    if not isinstance(body, bytes | bytearray | memoryview) or not body:
        return None
    try:
        return json.loads(bytes(body).decode("utf-8", "replace"))
    except ValueError:
        return None


LoginLeaves = dict[object, dict[str, object] | None]
"""Login answers' leaves by body (`_login_leaves`): the role field is found in them and
then read from each session's first login, the same bodies (cap20: 1,026 parsed twice)."""


def _login_leaves(body: object, memo: LoginLeaves | None) -> dict[str, object] | None:
    """`dict(json_leaves(...))` of a login answer, None when it is not JSON."""
    key = bytes(body) if isinstance(body, bytearray) else body
    if memo is not None and isinstance(key, bytes | str) and key in memo:
        return memo[key]
    doc = _login_doc(body)
    leaves = None if doc is None else dict(json_leaves(doc))
    if memo is not None and isinstance(key, bytes | str):
        memo[key] = leaves
    return leaves


def find_role_field(logins: pd.DataFrame, memo: LoginLeaves | None = None) -> Location | None:
    """The login answers' role field (see the module doc), or None (`memo`: the answers'
    leaves, kept for `_role_in`)."""
    answers = [_login_leaves(b, memo)
               for b, s in zip(logins["resp_body"], logins["status"], strict=True)
               if answered_ok(s)]  # fmt: skip
    ok = [leaves for leaves in answers if leaves is not None]
    if not ok:
        return None
    seen: defaultdict[str, list[str]] = defaultdict(list)
    for leaves in ok:
        for pointer, leaf in leaves.items():
            name = pointer.rsplit("/", 1)[-1]
            if isinstance(leaf, str) and "*" not in pointer and _ROLE_NAME.match(name):
                seen[pointer].append(leaf)
    fits = [
        p for p, v in seen.items()
        if len(v) >= _FIELD_MIN_SHARE * len(ok) and len(set(v)) <= _MAX_ROLES
    ]  # fmt: skip
    return Location("json", min(fits, key=lambda p: (p.count("/"), p))) if fits else None


def _role_in(body: object, field_: Location, memo: LoginLeaves | None = None) -> str | None:
    leaves = _login_leaves(body, memo)
    if leaves is None:
        return None
    value = leaves.get(field_.key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SessionOutcome:
    role: str | None
    login: str | None
    """"ok", "failed" or None (no login in the session)."""
    used: frozenset[str]
    """Endpoints that answered 2xx/3xx."""
    refused: frozenset[str] = frozenset()
    """Endpoints that answered 403."""


def session_rows(
    sessions: pd.DataFrame, columns: Sequence[str], more: dict[str, Sequence[Any]] | None = None
) -> list[dict[str, list[Any]]]:
    """Per session, by session_id, the values of `columns` in the frame's row order
    (as `groupby("session_id", sort=True)` would give them; without a frame per group);
    `more`: other values, one per row, grouped the same way."""
    ids = sessions["session_id"].to_numpy()
    if not len(ids):
        return []
    order = np.argsort(ids, kind="stable")
    cuts = np.flatnonzero(ids[order][1:] != ids[order][:-1]) + 1
    bounds = zip([0, *cuts.tolist()], [*cuts.tolist(), len(ids)], strict=True)
    values = {c: sessions[c].to_numpy()[order].tolist() for c in columns}
    values.update((name, np.asarray(v)[order].tolist()) for name, v in (more or {}).items())
    return [{c: v[start:end] for c, v in values.items()} for start, end in bounds]


def session_outcomes(
    sessions: pd.DataFrame, auth: AuthInfo
) -> tuple[Location | None, list[SessionOutcome]]:
    """The role field and, per session (by session_id), its outcome."""
    role_field, out, _ = _outcomes_and_paths(sessions, auth)
    return role_field, out


def _outcomes_and_paths(
    sessions: pd.DataFrame, auth: AuthInfo, basic_rows: Sequence[bool] | None = None
) -> tuple[Location | None, list[SessionOutcome], list[list[str]]]:
    """`session_outcomes`, and each session's endpoints in order (`basic_rows`: see
    `basic_auth_endpoints`)."""
    login = auth.login_endpoint
    logins = sessions[sessions["endpoint"] == login] if login else sessions.iloc[:0]
    memo: LoginLeaves = {}
    role_field = find_role_field(logins, memo) if len(logins) else None
    refused: list[set[str]] = []
    out: list[SessionOutcome] = []
    paths: list[list[str]] = []
    basic_of = login is None and "req_headers" in sessions.columns
    if basic_of and basic_rows is None:
        basic_rows = [carries_basic(h) for h in sessions["req_headers"]]
    columns = ["status", "endpoint", *(["resp_body"] if role_field is not None else [])]
    more = {"basic": basic_rows} if basic_of and basic_rows is not None else None
    for group in session_rows(sessions, columns, more):
        statuses = group["status"]
        endpoints = [str(e) for e in group["endpoint"]]
        paths.append(endpoints)
        used = frozenset(e for e, s in zip(endpoints, statuses, strict=True) if answered_ok(s))
        denied = frozenset(e for e, s in zip(endpoints, statuses, strict=True) if s == 403)
        refused.append(set(denied))
        first = next((i for i, e in enumerate(endpoints) if e == login), None)
        outcome, role = None, None
        if first is not None:
            status = statuses[first]
            outcome = "ok" if answered_ok(status) else ("failed" if login_refused(status) else None)
            if role_field is not None and outcome == "ok":
                role = _role_in(group["resp_body"][first], role_field, memo)
        if basic_of:
            # HTTP Basic has no login: a session whose every Basic request got 401 failed.
            basic = [st for st, b in zip(statuses, group["basic"], strict=True) if b]
            if basic:
                outcome = "failed" if all(st == 401 for st in basic) else "ok"
        out.append(SessionOutcome(role, outcome, used, denied))
    if role_field is None:  # privileges shown by 403s: got 2xx where others were refused
        contested = set().union(*refused)
        out = [
            SessionOutcome(
                PRIVILEGED if o.used & contested else (UNPRIVILEGED if contested else None),
                o.login,
                o.used,
                o.refused,
            )
            for o in out
        ]
    return role_field, out, paths


def login_refused(status: object) -> bool:
    """A login refused for its credentials (4xx but not a rate limit)."""
    return isinstance(status, int | float) and 400 <= status < 500 and status != 429


def privileged_endpoints(outcomes: Sequence[SessionOutcome]) -> dict[str, str]:
    """Endpoint → the one role allowed on it: the only role that got 2xx there, when
    another role was refused there (403) or when it is the broadest role (the one named
    like a privileged role when exactly one is, else the one whose sessions used the most
    endpoints: an admin may do what a client did, not the reverse)."""
    allowed: defaultdict[str, set[str]] = defaultdict(set)
    denied: defaultdict[str, set[str]] = defaultdict(set)
    breadth: defaultdict[str, set[str]] = defaultdict(set)
    for o in outcomes:
        if o.role is not None:
            breadth[o.role] |= o.used
            for endpoint in o.used:
                allowed[endpoint].add(o.role)
            for endpoint in o.refused:
                denied[endpoint].add(o.role)
    if len(breadth) < 2:
        return {}
    named = [r for r in breadth if PRIVILEGED_ROLE_NAME.search(r)]
    broadest = named[0] if len(named) == 1 else min(breadth, key=lambda r: (-len(breadth[r]), r))
    out = {}
    for endpoint, roles in sorted(allowed.items()):
        if len(roles) == 1:
            (role,) = roles
            if role == broadest or denied[endpoint] - roles:
                out[endpoint] = role
    return out


def path_log_likelihood(behavior: Behavior, path: Sequence[str]) -> float:
    """log P(path | behavior's chain), with a tiny floor for moves it never made."""
    if not path:
        return _LOG_EPS

    def log(p: float | None) -> float:
        return math.log(p) if p else _LOG_EPS

    total = log(behavior.entry.get(path[0]))
    for a, b in zip(path, [*path[1:], END], strict=True):
        total += log(behavior.transitions.get(a, {}).get(b))
    return total


def behavior_posterior(behaviors: Sequence[Behavior], path: Sequence[str]) -> np.ndarray:
    """P(behavior | path) ∝ share × P(path | behavior)."""
    return _posterior(np.array([_log_share(b) + path_log_likelihood(b, path) for b in behaviors]))


def _log_share(behavior: Behavior) -> float:
    """log P(behavior), its share floored (a behavior of no share stays possible)."""
    return math.log(max(behavior.share, 1e-12))


def _posterior(logs: np.ndarray) -> np.ndarray:
    """The posterior along the last axis (the behaviors) of log share + log likelihood."""
    weights = np.exp(logs - logs.max(axis=-1, keepdims=True))
    return np.asarray(weights / weights.sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class DistinctPaths:
    """Sessions' distinct paths as endpoint codes, longest first, for `behavior_posterior`
    of them all under each behavior's chain at once (numpy over a matrix of each chain's
    logs; real1M's 1,390 paths × 2 behaviors: the placement stage 21.5 → 5.5 ms, after
    the child's answer)."""

    code: dict[str, int]
    """Each endpoint's code, END's last."""
    steps: np.ndarray
    """Per distinct path, its endpoints' codes, then END's to the longest path's length + 1."""
    lengths: np.ndarray
    """Per distinct path, its length (non-increasing)."""
    of_session: np.ndarray
    """Per session, its path's row."""

    @classmethod
    def of(cls, paths: Sequence[Sequence[str]]) -> DistinctPaths:
        rows: dict[tuple[str, ...], int] = {}
        first = [rows.setdefault(tuple(path), len(rows)) for path in paths]
        keys = sorted(rows, key=len, reverse=True)  # (stable: ties in first-seen order)
        at = np.empty(len(keys), dtype=np.intp)
        at[[rows[key] for key in keys]] = np.arange(len(keys))
        names = sorted({name for key in keys for name in key} - {END})
        code = {name: i for i, name in enumerate([*names, END])}
        lengths = np.array([len(key) for key in keys], dtype=np.intp)
        steps = np.full((len(keys), (int(lengths[0]) if keys else 0) + 1), code[END])
        for row, key in enumerate(keys):
            steps[row, : len(key)] = [code[name] for name in key]
        return cls(code, steps, lengths, at[np.asarray(first, dtype=np.intp)])

    def log_likelihoods(self, behavior: Behavior) -> np.ndarray:
        """`path_log_likelihood` of each distinct path: the same floats (its logs, added
        in the same order)."""
        width = len(self.code)
        entry = np.full(width, _LOG_EPS)
        moves = np.full((width, width), _LOG_EPS)
        for name, i in self.code.items():
            if p := behavior.entry.get(name):
                entry[i] = math.log(p)
            for to, p in behavior.transitions.get(name, {}).items():
                if p and (j := self.code.get(to)) is not None:
                    moves[i, j] = math.log(p)
        steps, lengths = self.steps, self.lengths
        total: np.ndarray = entry[steps[:, 0]]
        total[lengths == 0] = _LOG_EPS  # (an empty path: no entry, no move)
        for k in range(steps.shape[1] - 1):
            going = int(np.count_nonzero(lengths > k))  # the paths still going: a prefix
            total[:going] += moves[steps[:going, k], steps[:going, k + 1]]
        return total

    def likeliest(self, behaviors: Sequence[Behavior]) -> np.ndarray:
        """Per distinct path, the index of its `behavior_posterior`'s (first) greatest."""
        logs = np.column_stack([_log_share(b) + self.log_likelihoods(b) for b in behaviors])
        return np.asarray(np.argmax(_posterior(logs), axis=1))


@dataclass(frozen=True)
class SessionFacts:
    """What the outcomes hold that no behavior decides (`session_facts`), and what placing
    the sessions in behaviors reads (`place_outcomes`): `build_model` learns these while
    the behaviors are still being fitted (in its forked child)."""

    known: Outcomes
    """Every field but `behaviors`."""
    per_session: list[SessionOutcome]
    paths: list[list[str]]
    """Each session's endpoints, in order (by session_id, as `per_session`)."""


def session_facts(sessions: pd.DataFrame, auth: AuthInfo) -> SessionFacts | None:
    """The outcomes of a sessionized frame with `endpoint` but their shares per behavior
    (None: no sessions)."""
    if sessions.empty:
        return None
    basic = [carries_basic(h) for h in sessions["req_headers"]]  # once: both read it
    role_field, per_session, paths = _outcomes_and_paths(sessions, auth, basic)
    privileged = privileged_endpoints(per_session)
    addresses, source = session_addresses(sessions)
    later, later_failed = later_logins(sessions, auth.login_endpoint)
    after: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome, path in zip(per_session, paths, strict=True):
        if outcome.login is not None and auth.login_endpoint in path:
            counts = after[after_first_login(path, auth.login_endpoint)]
            counts[0] += 1
            counts[1] += outcome.login == "failed"
    known = Outcomes(
        role_field=role_field,
        roles=dict(sorted(Counter(o.role for o in per_session if o.role is not None).items())),
        privileged=privileged,
        logins=sum(o.login is not None for o in per_session),
        failed_logins=sum(o.login == "failed" for o in per_session),
        sessions=len(per_session),
        addresses=addresses,
        addresses_from=source,
        basic_auth=basic_auth_endpoints(sessions, basic),
        later_logins=later,
        later_failed_logins=later_failed,
        after_first_login={k: (n, f) for k, (n, f) in sorted(after.items())},
    )
    return SessionFacts(known, per_session, paths)


def place_outcomes(facts: SessionFacts, behaviors: Sequence[Behavior]) -> Outcomes:
    """`facts.known` with each behavior's outcome: every session placed in the behavior
    whose chain most likely produced its path (computed once per distinct path)."""
    placed: defaultdict[str, list[SessionOutcome]] = defaultdict(list)
    if behaviors:
        distinct = DistinctPaths.of(facts.paths)
        best = [behaviors[b].name for b in distinct.likeliest(behaviors).tolist()]
        for outcome, row in zip(facts.per_session, distinct.of_session.tolist(), strict=True):
            placed[best[row]].append(outcome)
    privileged = facts.known.privileged
    by_behavior = {name: _behavior_outcome(members, privileged) for name, members in placed.items()}
    return replace(facts.known, behaviors=dict(sorted(by_behavior.items())))


def after_first_login(path: Sequence[str], login: str | None) -> str:
    """ "login", "end" or "other": what the session did right after its first login."""
    first = path.index(login) if login in path else len(path)
    following = path[first + 1] if first + 1 < len(path) else None
    return "end" if following is None else ("login" if following == login else "other")


def later_logins(sessions: pd.DataFrame, login: str | None) -> tuple[int, int]:
    """(logins that were not their session's first, how many of them were refused)."""
    if login is None:
        return 0, 0
    logins = sessions[sessions["endpoint"] == login]
    later = logins[logins.duplicated("session_id", keep="first")]
    return len(later), int(sum(login_refused(st) for st in later["status"]))


def _behavior_outcome(members: list[SessionOutcome], privileged: dict[str, str]) -> BehaviorOutcome:
    plain = [o.role for o in members if o.role is not None and not (o.used & privileged.keys())]
    plain = plain or [o.role for o in members if o.role is not None]
    counts = Counter(plain)
    logins = [o for o in members if o.login is not None]
    failed = sum(o.login == "failed" for o in logins)
    return BehaviorOutcome(
        roles={r: round(n / len(plain), 4) for r, n in sorted(counts.items())},
        logins=len(logins),
        failed_share=round(failed / len(logins), 4) if logins else 0.0,
    )


def draw_outcome(
    outcomes: Outcomes,
    behaviors: Sequence[Behavior],
    path: Sequence[str],
    login_endpoint: str | None,
    rng: np.random.Generator,
) -> tuple[str | None, bool]:
    """(role, whether the login fails) for a synthesized session walking `path`: the role a
    privileged endpoint on it needs, else one drawn from its likely behaviors' roles; the
    login fails with those behaviors' failed share, times how much likelier the captured
    first logins followed as this one is (signed in again, nothing, other) failed."""
    u_role, u_fail = rng.random(), rng.random()  # always two draws: stable streams
    known = [b for b in behaviors if b.name in outcomes.behaviors]
    posterior = behavior_posterior(known, path) if known else np.zeros(0)
    needed = sorted({outcomes.privileged[e] for e in path if e in outcomes.privileged})
    role: str | None = needed[0] if needed else None
    if role is None and known:
        shares: defaultdict[str, float] = defaultdict(float)
        for weight, b in zip(posterior, known, strict=True):
            for name, share in outcomes.behaviors[b.name].roles.items():
                shares[name] += float(weight) * share
        total = sum(shares.values())
        acc = 0.0
        for name in sorted(shares):
            acc += shares[name] / total if total else 0.0
            if u_role < acc:
                role = name
                break
        else:
            role = max(shares, key=lambda n: shares[n]) if shares else None
    fails = False
    if login_endpoint is not None and login_endpoint in path and known:
        p_fail = sum(
            float(w) * outcomes.behaviors[b.name].failed_share
            for w, b in zip(posterior, known, strict=True)
        )
        p_fail *= outcomes.failed_odds(after_first_login(path, login_endpoint))
        fails = u_fail < p_fail
    return role, fails


# ---- model file ---------------------------------------------------------------------------


def outcomes_to_json(o: Outcomes) -> dict[str, Any]:
    return {
        "role_field": o.role_field.to_json() if o.role_field else None,
        "roles": o.roles,
        "privileged": o.privileged,
        "logins": o.logins,
        "failed_logins": o.failed_logins,
        "behaviors": {
            name: {"roles": b.roles, "logins": b.logins, "failed_share": b.failed_share}
            for name, b in o.behaviors.items()
        },
        "sessions": o.sessions,
        "addresses": o.addresses,
        "addresses_from": o.addresses_from,
        "basic_auth": list(o.basic_auth),
        "later_logins": o.later_logins,
        "later_failed_logins": o.later_failed_logins,
        "after_first_login": {k: list(v) for k, v in o.after_first_login.items()},
    }


def outcomes_from_json(data: Any) -> Outcomes:
    """The `outcomes` section of a model (absent in older models: nothing known)."""
    if data is None:
        return NO_OUTCOMES
    if not isinstance(data, dict):
        raise ConfigError("model: `outcomes` must be an object")
    try:
        role_field = data.get("role_field")
        behaviors = {
            str(name): BehaviorOutcome(
                {str(r): _share(s) for r, s in (b.get("roles") or {}).items()},
                int(b["logins"]),
                _share(b["failed_share"]),
            )
            for name, b in (data.get("behaviors") or {}).items()
        }
        return Outcomes(
            role_field=None if role_field is None else Location.from_json(role_field),
            roles={str(r): int(n) for r, n in (data.get("roles") or {}).items()},
            privileged={str(e): str(r) for e, r in (data.get("privileged") or {}).items()},
            logins=int(data.get("logins", 0)),
            failed_logins=int(data.get("failed_logins", 0)),
            behaviors=behaviors,
            sessions=int(data.get("sessions", 0)),
            addresses=int(data.get("addresses", 0)),
            addresses_from=data.get("addresses_from"),
            basic_auth=tuple(str(e) for e in data.get("basic_auth") or ()),
            later_logins=int(data.get("later_logins", 0)),
            later_failed_logins=int(data.get("later_failed_logins", 0)),
            after_first_login={
                str(k): (int(v[0]), int(v[1]))
                for k, v in (data.get("after_first_login") or {}).items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"model: bad `outcomes` ({type(exc).__name__}: {exc})") from None


def _share(value: Any) -> float:
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share {share!r} outside [0, 1]")
    return share
