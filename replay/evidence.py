"""What a trace replay's real sessions saw of the objects they used, and which account can
show such an object live: the account choice where the model learned no list-item
selection (models/id_select.py needs >= 5 sessions and a clear difference to learn one).

A captured session says more than its role. Its client user read their client
(`n8n_configured: true`) and synced it; an account of the same role whose own client is
not configured answers that sync 400 where the real one got 200. So, per captured session
(`session_saw`), for each object it named at an id place that a list hands out, the
object's fields as the session's own earlier 2xx answers last showed them (booleans and
short strings, `id_select.object_fields`' rule). At replay (`can_match`), an account
scores, for each such object, the most fields one of the objects its pool holds at that
place's sources shares with it, counting only fields that tell objects apart: 2 to
ENUM_MAX_VALUES values among what every account's pool holds there, the captured value
one of them (an anonymized name or e-mail is no live value and counts for nothing; a
field every object shares excludes nobody). The accounts of the session's role with the
best positive score are preferred (replay/credentials.py `assign_account`), round-robin
among them; no score: round-robin among the role's accounts as before.

The same evidence holds the live id (replay/idvalues.py): a live counterpart that does
not look like the captured object (`meets` on the telling fields) moves to a live id of
the session's answers or its account's pool that does, for the session's later uses of
that captured id too; and an action on an object that already looks so is not withheld
for a change the run withheld on it (`follows_withheld`: the change made no difference).

Objects are described by their own id only (`own_objects`): `id` where an object has one,
else its one id-like field (a freshness row's `client_id`), never a second id it merely
refers to (a workflow's `client_id` is not the client). Model replays have no evidence.
Nothing here sends anything or changes what ownership allows: it decides every protected
request after the id is chosen, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tracereplay.models.correlations import Location, answered_ok
from tracereplay.models.id_model import IdModel
from tracereplay.models.id_select import (
    ENUM_MAX_VALUES,
    FieldValue,
    id_key,
    json_objects,
    object_fields,
    parse_json,
)

from .liveids import CredentialPools, Key
from .rewrite import planned_value

_ID_LIKE = re.compile(r"(?:_id|[a-z]Id|_uuid|[a-z]Uuid|^uuid|^pk)$")
_OWN_ID = "id"


@dataclass(frozen=True)
class Saw:
    """A captured session named an object at `place` of `endpoint`; its answers had shown
    the object with these `fields` (sorted)."""

    endpoint: str
    place: Location
    fields: tuple[tuple[str, FieldValue], ...]
    value: str = ""
    """The captured id it named (a pseudonym: only the trace's own requests hold it)."""


def evidence_keys(model: IdModel) -> tuple[str, ...]:
    """The fields list answers hold their objects' ids in (`/data/items/*/id` → `id`)."""
    return tuple(sorted({id_key(p.source) for p in model.list_producers()}))


def own_objects(
    doc: object, keys: Iterable[str], only: Collection[str] | None = None
) -> dict[str, dict[str, FieldValue]]:
    """Every object of a JSON answer that one of `keys` names as itself: its `id` where it
    has one (and `id` is a key), else its only id-like field when that is a key; its id
    as text (those in `only`, when given) → its boolean and short string fields but ids
    (the later of two descriptions wins)."""
    wanted = frozenset(keys)
    out: dict[str, dict[str, FieldValue]] = {}
    for obj in json_objects(doc, 0):
        own = _own_key(obj, wanted)
        if own is None:
            continue
        ident = obj[own]
        if ident is None or isinstance(ident, bool | dict | list):
            continue
        text = str(ident)
        if only is None or text in only:
            out[text] = object_fields(obj, (own, *(k for k in obj if _id_like(k))))
    return out


@lru_cache(maxsize=4096)
def _id_like(name: str) -> bool:
    return _ID_LIKE.search(name) is not None


def _own_key(obj: Mapping[str, Any], wanted: frozenset[str]) -> str | None:
    if _OWN_ID in obj:
        return _OWN_ID if _OWN_ID in wanted else None
    id_like = [k for k in obj if _id_like(k)]
    return id_like[0] if len(id_like) == 1 and id_like[0] in wanted else None


def list_places(model: IdModel, endpoint: str) -> tuple[Location, ...]:
    """The id places of `endpoint` that a list answer hands out values for."""
    return tuple(
        place
        for place in model.id_places(endpoint)
        if any(p.kind == "list" for p in model.producers(endpoint, place))
    )


def session_saw(
    requests: Sequence[Any], statuses: Sequence[object], bodies: Sequence[object], model: IdModel
) -> tuple[Saw, ...]:
    """A captured session's evidence (see the module doc): per object it named at a list
    place, its latest use with the fields the session's answers showed before it.
    `requests` are PlannedRequests, with each one's captured status and answer body."""
    keys = evidence_keys(model)
    if not keys:
        return ()
    places: dict[str, tuple[Location, ...]] = {}
    uses: list[list[tuple[Location, str]]] = []
    for request in requests:
        at = places.get(request.endpoint)
        if at is None:
            at = places[request.endpoint] = list_places(model, request.endpoint)
        named = [(place, planned_value(request, place)) for place in at]
        uses.append([(place, value) for place, value in named if value])
    names = {value for used in uses for _, value in used}
    wanted = {value.encode() for value in names}
    if not wanted:
        return ()
    seen: dict[str, dict[str, FieldValue]] = {}
    last: dict[str, Saw] = {}
    for request, used, status, body in zip(requests, uses, statuses, bodies, strict=True):
        for place, value in used:
            if value in seen:
                last.pop(value, None)  # re-inserted: the latest use last
                shown = tuple(sorted(seen[value].items()))
                last[value] = Saw(request.endpoint, place, shown, value)
        if answered_ok(status) and isinstance(body, bytes | bytearray | memoryview):
            raw = bytes(body)
            if any(value in raw for value in wanted):  # parse only answers that show one
                for ident, fields in own_objects(parse_json(raw), keys, names).items():
                    if fields:
                        seen[ident] = seen.get(ident, {}) | fields
    return tuple(last.values())


def can_match(
    model: IdModel, pools: CredentialPools, saw: Sequence[Saw]
) -> Callable[[int], int] | None:
    """For a session with evidence: each account's (--credentials index) score, the number
    of telling fields its pool's objects share with the objects the real session used
    (see the module doc); None without evidence."""
    if not saw:
        return None
    needs: list[tuple[list[Key], dict[str, FieldValue]]] = []
    for s in saw:
        keys = [(p.endpoint, p.source) for p in model.producers(s.endpoint, s.place)]
        telling = telling_fields(pools, keys, s.fields)
        if telling:
            needs.append((keys, telling))
    if not needs:
        return None

    def score(credential: int) -> int:
        total = 0
        for keys, fields in needs:
            total += max(
                (_shared(pools.fields(v), fields) for v in pools.values(credential, keys)),
                default=0,
            )
        return total

    return score


def telling_fields(
    pools: CredentialPools, keys: Sequence[Key], fields: tuple[tuple[str, FieldValue], ...]
) -> dict[str, FieldValue]:
    """The captured fields that tell the live objects at `keys` apart (any account's);
    kept per process (`CredentialPools.memo`): the pools change little once discovered."""
    memo_key = ("telling", tuple(keys), fields)
    known = pools.memo.get(memo_key)
    if known is not None:
        return dict(known)
    wanted = dict(fields)
    values: dict[str, set[tuple[type, FieldValue]]] = {}
    for value in pools.values_of_all(keys):
        for name, held in (pools.fields(value) or {}).items():
            if name in wanted:
                values.setdefault(name, set()).add((type(held), held))
    telling = {
        name: v
        for name, v in wanted.items()
        if 2 <= len(values.get(name, ())) <= ENUM_MAX_VALUES and (type(v), v) in values[name]
    }
    pools.remember(memo_key, tuple(telling.items()))
    return telling


def meets(live: Mapping[str, object] | None, telling: Mapping[str, FieldValue]) -> bool:
    """Whether a live object's fields hold every telling captured value."""
    return bool(live) and _shared(live, telling) == len(telling)


def _shared(live: Mapping[str, object] | None, fields: Mapping[str, FieldValue]) -> int:
    if not live:
        return 0
    return sum(1 for name, v in fields.items() if name in live and _same(live[name], v))


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b
