"""Ids: for every request place that sends an object's id (a path parameter, an id-like
query value or body field), the answers that hand it out and whether sessions changed
objects they had created themselves; what each create makes and which DELETE removes it;
which POSTs to an object store their body on it (an update under another name).

Read by the replay's ownership rules (replay/ownership.py), its discovery phase and its
cleanup. Producers of a value, by the answer that handed it out:

- *create*: a POST (not the login or the refresh) whose answer holds an id-like value the
  request did not send (`POST /clients/` → `/data/id`);
- *list*: a GET whose answer holds it in an array (`/data/items/*/id`);
- *read*: a GET whose answer holds it once (`GET /auth/me` → `/data/client_id`);
- *login*: the login's or the refresh's answer; *other*: anything else.

A use counts as *own* when the first answer of its session that handed out the value was
a create: the real session changed an object it had made itself.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tracereplay.errors import ConfigError

from .correlations import (
    DEFAULT_MIN_VALUE_LEN,
    AuthInfo,
    Location,
    Walk,
    answered_ok,
    is_credential,
)
from .values import request_values, response_values

PRODUCER_KINDS = ("create", "list", "read", "login", "other")
CREATE_MIN_SHARE = 0.5
"""A POST is a create when this share of its 2xx answers hold a new id at one place."""
STORES_BODY_MIN_SHARE = 0.5
"""... and a POST to an object stores its body when this share of them give a body value back."""
FOLLOWS_MIN_SESSIONS = 2
"""Sessions that sent an action on an object after a change of it, to call it a sequel."""
_CHANGES = ("PUT ", "PATCH ")
_ID_NAME = re.compile(r"(^|[_\-.])id$|[a-z0-9]Id$|^ids?$|_ids$", re.IGNORECASE)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, order=True)
class Producer:
    """Answers of `endpoint` hand out the id at `source`; seen in `support` sessions."""

    endpoint: str
    source: Location
    kind: str
    support: int


@dataclass(frozen=True, order=True)
class IdTarget:
    """Requests of `endpoint` send an id at `target`: `requests` of them carried a value
    there, `explained` one an earlier answer of the session handed out, `own` one the
    session had itself created."""

    endpoint: str
    target: Location
    producers: tuple[Producer, ...]
    requests: int
    explained: int
    own: int


@dataclass(frozen=True, order=True)
class Creation:
    """A 2xx answer of `endpoint` holds a new object's id at `source`; `delete` (a DELETE
    endpoint, its path parameter `param`) removes it, as learned `from` the trace (a
    session deleted what it made) or the template (`POST /a/` → `DELETE /a/{p}`)."""

    endpoint: str
    source: Location
    answers: int
    delete: str | None
    param: str | None
    learned_from: str | None


@dataclass(frozen=True)
class IdModel:
    targets: tuple[IdTarget, ...] = ()
    creations: tuple[Creation, ...] = ()
    stores_body: tuple[str, ...] = ()
    """POST endpoints naming an object whose answers give their body's values back."""
    follows: tuple[tuple[str, str], ...] = ()
    """(action, change): POST actions on an object that sessions sent after a state change
    of the same object (a `configure` before a `sync`): when the replay withholds the
    change, the action on that object is withheld too (it would fail only because of it)."""

    def changes_before(self, endpoint: str) -> set[str]:
        """The state changes `endpoint` (an action) follows."""
        return {change for action, change in self.follows if action == endpoint}

    def places(self, endpoint: str) -> tuple[Location, ...]:
        """Where requests of `endpoint` send ids (learned), path parameters first."""
        return self._places.get(endpoint, ())

    def id_places(self, endpoint: str) -> tuple[Location, ...]:
        """Where requests of `endpoint` send object ids: its template's path parameters,
        then the learned places. Asked for every replayed request, it depends only on the
        endpoint: computed once per endpoint."""
        known = self._id_places.get(endpoint)
        if known is None:
            template = endpoint.partition(" ")[2].partition("?")[0]
            params = [Location("path", s[1:-1]) for s in template.split("/") if s.startswith("{")]
            known = tuple(dict.fromkeys([*params, *self.places(endpoint)]))
            self._id_places[endpoint] = known
        return known

    @cached_property
    def _places(self) -> dict[str, tuple[Location, ...]]:
        by_endpoint: defaultdict[str, set[Location]] = defaultdict(set)
        for t in self.targets:
            by_endpoint[t.endpoint].add(t.target)
        return {
            endpoint: tuple(sorted(places, key=lambda loc: (loc.where != "path", loc)))
            for endpoint, places in by_endpoint.items()
        }

    @cached_property
    def _id_places(self) -> dict[str, tuple[Location, ...]]:
        return {}  # filled by id_places, one entry per endpoint asked about

    def producers(self, endpoint: str, target: Location) -> tuple[Producer, ...]:
        for t in self.targets:
            if t.endpoint == endpoint and t.target == target:
                return t.producers
        return ()

    def list_producers(self) -> list[Producer]:
        """The list answers that hand out ids, of endpoints without path parameters (what
        a discovery phase can call without knowing any id), one per (endpoint, source)."""
        seen: dict[tuple[str, Location], Producer] = {}
        for t in self.targets:
            for p in t.producers:
                if p.kind == "list" and "{" not in p.endpoint:
                    seen.setdefault((p.endpoint, p.source), p)
        return sorted(seen.values())

    def creation(self, endpoint: str) -> Creation | None:
        return next((c for c in self.creations if c.endpoint == endpoint), None)


NO_IDS = IdModel()


def is_id_place(loc: Location, values: Iterable[str]) -> bool:
    """A request place that sends an object id: a path parameter, or a query, JSON or form
    field named like an id (`id`, `client_id`, `clientId`) or whose values are all UUIDs."""
    if loc.where == "path":
        return not loc.key.isdigit()  # a template parameter, not a literal segment
    if loc.where not in ("query", "json", "form") or is_credential(loc):
        return False
    name = loc.key.rsplit("/", 1)[-1]
    if _ID_NAME.search(name):
        return True
    seen = list(values)
    return bool(seen) and all(_UUID.fullmatch(v) for v in seen)


def producer_kind(endpoint: str, source: Location, auth: AuthInfo) -> str:
    if endpoint in (auth.login_endpoint, auth.refresh_endpoint):
        return "login"
    method = endpoint.partition(" ")[0]
    if method == "POST":
        return "create"
    if method in _SAFE:
        return "list" if "*" in source.key.split("/") else "read"
    return "other"


def learn_ids(walk: Walk, auth: AuthInfo, endpoints: Iterable[str]) -> IdModel:
    """The id model of one walk of the sessions (`correlations.walk_sessions`)."""
    values: defaultdict[tuple[str, Location], set[str]] = defaultdict(set)
    for use in walk.uses:
        values[(use.target_endpoint, use.target)].add(use.value)
    by_target: defaultdict[tuple[str, Location], list[Any]] = defaultdict(list)
    for use in walk.uses:
        key = (use.target_endpoint, use.target)
        if is_id_place(use.target, values[key]):
            by_target[key].append(use)
    endpoints = list(endpoints)
    creations = _creations(walk, auth)
    created_at = {(c.endpoint, c.source) for c in creations}
    targets = []
    for (endpoint, target), uses in sorted(by_target.items()):
        support: defaultdict[tuple[str, Location], set[int]] = defaultdict(set)
        for use in uses:
            support[(use.source_endpoint, use.source)].add(use.session)
            support[(use.origin_endpoint, use.origin)].add(use.session)
        producers = tuple(
            sorted(
                Producer(ep, src, producer_kind(ep, src, auth), len(sessions))
                for (ep, src), sessions in support.items()
            )
        )
        requests = {(u.session, u.seq) for u in uses}
        own = {(u.session, u.seq) for u in uses if (u.origin_endpoint, u.origin) in created_at}
        carried = walk.carried[(endpoint, target)]
        targets.append(IdTarget(endpoint, target, producers, carried, len(requests), len(own)))
    deletes = _deletes_from_trace(walk, created_at)
    creations = [_with_delete(c, deletes.get((c.endpoint, c.source)), endpoints) for c in creations]
    stores = tuple(_stores_body(walk, auth))
    return IdModel(tuple(targets), tuple(sorted(creations)), stores, _follows(walk, auth, stores))


def path_objects(endpoint: str, path: object) -> list[str]:
    """The values of `endpoint`'s path parameters in `path` ([] when it does not match)."""
    slots = endpoint.partition(" ")[2].partition("?")[0].split("/")
    segments = str(path).split("/")
    if len(slots) != len(segments):
        return []
    return [seg for slot, seg in zip(slots, segments, strict=True) if slot.startswith("{")]


def _follows(walk: Walk, auth: AuthInfo, stores_body: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(action, change) pairs: a POST action on an object whose latest earlier state change
    in the same session (a 2xx PUT, PATCH or body-storing POST of that object) was
    `change`, in at least FOLLOWS_MIN_SESSIONS sessions."""
    auth_endpoints = {auth.login_endpoint, auth.refresh_endpoint, auth.logout_endpoint}
    latest: dict[str, str] = {}  # object → its latest change in the current session
    current: object = None
    seen: defaultdict[tuple[str, str], set[object]] = defaultdict(set)
    for row in walk.rows:
        if row["session_id"] != current:
            current, latest = row["session_id"], {}
        endpoint = str(row["endpoint"])
        if "{" not in endpoint or endpoint in auth_endpoints:
            continue
        objects = path_objects(endpoint, row["path"])
        if endpoint.startswith(_CHANGES) or endpoint in stores_body:
            if answered_ok(row["status"]):
                latest |= dict.fromkeys(objects, endpoint)
        elif endpoint.startswith("POST "):
            for obj in objects:
                if obj in latest:
                    seen[(endpoint, latest[obj])].add(current)
    return tuple(sorted(pair for pair, sessions in seen.items()
                        if len(sessions) >= FOLLOWS_MIN_SESSIONS))  # fmt: skip


def _creations(walk: Walk, auth: AuthInfo) -> list[Creation]:
    """POST endpoints whose 2xx answers mostly hold a new id-like value at one place."""
    answers: Counter[str] = Counter()
    fresh: defaultdict[str, Counter[Location]] = defaultdict(Counter)
    auth_endpoints = {auth.login_endpoint, auth.refresh_endpoint, auth.logout_endpoint}
    for row in walk.rows:
        endpoint = str(row["endpoint"])
        if not endpoint.startswith("POST ") or endpoint in auth_endpoints:
            continue
        if not answered_ok(row["status"]):
            continue
        answers[endpoint] += 1
        sent = {value for _, value in request_values(row, DEFAULT_MIN_VALUE_LEN)}
        places = {
            loc
            for loc, value in response_values(row, DEFAULT_MIN_VALUE_LEN)
            if value not in sent and loc.where == "json" and is_id_place(loc, [value])
        }
        fresh[endpoint].update(places)
    out = []
    for endpoint, counts in sorted(fresh.items()):
        if not counts:
            continue
        # The id of the object itself: the most frequent place, then the shortest pointer.
        loc = min(counts, key=lambda p: (-counts[p], p.key.count("/"), len(p.key), p.key))
        if counts[loc] >= CREATE_MIN_SHARE * answers[endpoint] and "*" not in loc.key:
            out.append(Creation(endpoint, loc, answers[endpoint], None, None, None))
    return out


def _deletes_from_trace(
    walk: Walk, created_at: set[tuple[str, Location]]
) -> dict[tuple[str, Location], tuple[str, str]]:
    """Per create, the DELETE (endpoint, path parameter) sessions used on what it made."""
    votes: defaultdict[tuple[str, Location], Counter[tuple[str, str]]] = defaultdict(Counter)
    for use in walk.uses:
        origin = (use.origin_endpoint, use.origin)
        deleting = use.target_endpoint.startswith("DELETE ") and use.target.where == "path"
        if origin in created_at and deleting and not use.target.key.isdigit():
            votes[origin][(use.target_endpoint, use.target.key)] += 1
    return {k: min(v, key=lambda d: (-v[d], d)) for k, v in votes.items()}


def _with_delete(
    creation: Creation, learned: tuple[str, str] | None, endpoints: Iterable[str]
) -> Creation:
    if learned is not None:
        return Creation(
            creation.endpoint, creation.source, creation.answers, learned[0], learned[1], "trace"
        )
    collection = creation.endpoint.partition(" ")[2].rstrip("/")
    for endpoint in sorted(endpoints):
        method, _, template = endpoint.partition(" ")
        head, _, last = template.rstrip("/").rpartition("/")
        if method == "DELETE" and head == collection and re.fullmatch(r"\{\w+\}", last):
            return Creation(
                creation.endpoint, creation.source, creation.answers, endpoint, last[1:-1],
                "template",
            )  # fmt: skip
    return creation


def _stores_body(walk: Walk, auth: AuthInfo) -> list[str]:
    """POSTs to a path with a parameter (not creates, not auth) whose 2xx answers give a
    value of their JSON or form body back: the object took what was sent."""
    bodies: Counter[str] = Counter()
    echoed: Counter[str] = Counter()
    auth_endpoints = {auth.login_endpoint, auth.refresh_endpoint, auth.logout_endpoint}
    for row in walk.rows:
        endpoint = str(row["endpoint"])
        if not endpoint.startswith("POST ") or "{" not in endpoint or endpoint in auth_endpoints:
            continue
        if not answered_ok(row["status"]):
            continue
        sent = request_values(row, DEFAULT_MIN_VALUE_LEN)
        body = {value for loc, value in sent if loc.where in ("json", "form")}
        if not body:
            continue
        bodies[endpoint] += 1
        named = {value for loc, value in sent if loc.where == "path"}
        got = {value for _, value in response_values(row, DEFAULT_MIN_VALUE_LEN)}
        if (body - named) & got:
            echoed[endpoint] += 1
    return sorted(e for e, n in bodies.items() if echoed[e] >= STORES_BODY_MIN_SHARE * n)


# ---- model file ---------------------------------------------------------------------------


def ids_to_json(model: IdModel) -> dict[str, Any]:
    return {
        "targets": [
            {
                "endpoint": t.endpoint,
                **t.target.to_json(),
                "requests": t.requests,
                "explained": t.explained,
                "own": t.own,
                "producers": [
                    {
                        "endpoint": p.endpoint,
                        **p.source.to_json(),
                        "kind": p.kind,
                        "support": p.support,
                    }
                    for p in t.producers
                ],
            }
            for t in model.targets
        ],
        "creations": [
            {
                "endpoint": c.endpoint,
                **c.source.to_json(),
                "answers": c.answers,
                "delete": c.delete,
                "param": c.param,
                "learned_from": c.learned_from,
            }
            for c in model.creations
        ],
        "stores_body": list(model.stores_body),
        "follows": [list(pair) for pair in model.follows],
    }


def ids_from_json(data: Any) -> IdModel:
    """The `ids` section of a model (absent in older models: no ids known)."""
    if data is None:
        return NO_IDS
    if not isinstance(data, dict):
        raise ConfigError("model: `ids` must be an object")
    try:
        targets = tuple(
            IdTarget(
                str(t["endpoint"]),
                Location.from_json(t),
                tuple(_producer(p) for p in t.get("producers") or ()),
                int(t["requests"]),
                int(t["explained"]),
                int(t["own"]),
            )
            for t in data.get("targets") or ()
        )
        creations = tuple(
            Creation(
                str(c["endpoint"]),
                Location.from_json(c),
                int(c["answers"]),
                None if c.get("delete") is None else str(c["delete"]),
                None if c.get("param") is None else str(c["param"]),
                None if c.get("learned_from") is None else str(c["learned_from"]),
            )
            for c in data.get("creations") or ()
        )
        stores = tuple(str(e) for e in data.get("stores_body") or ())
        follows = tuple((str(a), str(c)) for a, c in data.get("follows") or ())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"model: bad `ids` entry ({type(exc).__name__}: {exc})") from None
    return IdModel(targets, creations, stores, follows)


def _producer(data: Any) -> Producer:
    kind = str(data["kind"])
    if kind not in PRODUCER_KINDS:
        raise ValueError(f"producer kind {kind!r}")
    return Producer(str(data["endpoint"]), Location.from_json(data), kind, int(data["support"]))


def check_ids(model: IdModel, endpoints: Sequence[str]) -> None:
    """Every endpoint the id model names exists in the model."""
    known = set(endpoints)
    named = [t.endpoint for t in model.targets] + [c.endpoint for c in model.creations]
    named += [c.delete for c in model.creations if c.delete] + list(model.stores_body)
    named += [endpoint for pair in model.follows for endpoint in pair]
    named += [p.endpoint for t in model.targets for p in t.producers]
    for endpoint in named:
        if endpoint not in known:
            raise ConfigError(f"model: ids: unknown endpoint {endpoint[:60]!r}")
