"""Learning the id model (models/id_model.py) from one walk of the sessions: which request
places send object ids and which answers hand them out, which POSTs create objects and
which DELETE removes them, which POSTs store their body on the object they name, which
actions follow a state change of their object.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from .correlations import (
    DEFAULT_MIN_VALUE_LEN,
    AuthInfo,
    Location,
    Walk,
    answered_ok,
    is_credential,
)
from .id_model import (
    NO_IDS,
    PRODUCER_KINDS,
    Creation,
    IdModel,
    IdTarget,
    Producer,
    check_ids,
    ids_from_json,
    ids_to_json,
)
from .id_select import Tails, binomial_tails, learn_selections
from .templating import path_template
from .values import request_values, response_values

__all__ = [  # the id model's names, for the modules that learn and read it through here
    "NO_IDS",
    "PRODUCER_KINDS",
    "Creation",
    "IdModel",
    "IdTarget",
    "Producer",
    "check_ids",
    "ids_from_json",
    "ids_to_json",
    "is_id_place",
    "learn_ids",
    "path_objects",
    "producer_kind",
]

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


def learn_ids(
    walk: Walk, auth: AuthInfo, endpoints: Iterable[str], tails: Tails = binomial_tails
) -> IdModel:
    """The id model of one walk of the sessions (`correlations.walk_sessions`); `tails`:
    where the selections' binomial tests run (`id_select.learn_selections`)."""
    # Each target's uses, in walk order, then kept where the place sends ids: judged once
    # per target (stretchcap_x100's sample: 315 k uses of a few hundred targets).
    by_key: defaultdict[tuple[str, Location], list[Any]] = defaultdict(list)
    for use in walk.uses:
        by_key[(use.target_endpoint, use.target)].append(use)
    by_target = {
        key: uses for key, uses in by_key.items()
        if is_id_place(key[1], {use.value for use in uses})
    }  # fmt: skip
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
    changes = {t.endpoint for t in targets if t.endpoint.startswith(_CHANGES)} | set(stores)
    selections = learn_selections(
        walk,
        {(t.endpoint, t.target): [(p.endpoint, p.source, p.kind) for p in t.producers]
         for t in targets},
        changes, tails,
    )  # fmt: skip
    targets = [replace(t, select=selections.get((t.endpoint, t.target))) for t in targets]
    return IdModel(tuple(targets), tuple(sorted(creations)), stores, _follows(walk, auth, stores))


def path_objects(endpoint: str, path: object) -> list[str]:
    """The values of `endpoint`'s path parameters in `path` ([] when it does not match)."""
    slots = path_template(endpoint).split("/")
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
        sent = {value for _, value in request_values(row, DEFAULT_MIN_VALUE_LEN, walk.memo)}
        places = {
            loc
            for loc, value in response_values(row, DEFAULT_MIN_VALUE_LEN, walk.memo)
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
        sent = request_values(row, DEFAULT_MIN_VALUE_LEN, walk.memo)
        body = {value for loc, value in sent if loc.where in ("json", "form")}
        if not body:
            continue
        bodies[endpoint] += 1
        named = {value for loc, value in sent if loc.where == "path"}
        got = {value for _, value in response_values(row, DEFAULT_MIN_VALUE_LEN, walk.memo)}
        if (body - named) & got:
            echoed[endpoint] += 1
    return sorted(e for e, n in bodies.items() if echoed[e] >= STORES_BODY_MIN_SHARE * n)
