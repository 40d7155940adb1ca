"""The id model (the model file's `ids`): for every request place that sends an object's
id, the answers that hand it out; what each create makes and which DELETE removes it;
which POSTs to an object store their body on it; which actions follow a state change of
their object. Learned by models/ids.py; read by the replay's ownership rules
(replay/ownership.py), its discovery phase and its cleanup.

Producers of a value, by the answer that handed it out:

- *create*: a POST (not the login or the refresh) whose answer holds an id-like value the
  request did not send (`POST /clients/` → `/data/id`);
- *list*: a GET whose answer holds it in an array (`/data/items/*/id`);
- *read*: a GET whose answer holds it once (`GET /auth/me` → `/data/client_id`);
- *login*: the login's or the refresh's answer; *other*: anything else.

A use counts as *own* when the first answer of its session that handed out the value was
a create: the real session changed an object it had made itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tracereplay.errors import ConfigError

from .correlations import Location
from .id_select import Selection, id_key
from .templating import path_template

PRODUCER_KINDS = ("create", "list", "read", "login", "other")


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
    select: Selection | None = field(default=None, compare=False)
    """Which item of a list the sessions chose (models/id_select.py); None: any."""


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
            template = path_template(endpoint)
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

    def selection(self, endpoint: str, target: Location) -> Selection | None:
        """The condition the object requests of `endpoint` name at `target` met."""
        return self.selections.get((endpoint, target))

    @cached_property
    def selections(self) -> dict[tuple[str, Location], Selection]:
        """(endpoint, place) → its learned selection, for the places that have one."""
        return {(t.endpoint, t.target): t.select for t in self.targets if t.select is not None}

    @cached_property
    def describers(self) -> frozenset[str]:
        """Endpoints whose answers show the fields of the objects a selection is about
        (empty without a selection): as models/id_select.py learned them, the producers
        of the places with a selection, the body-storing POSTs, and the PUT, PATCH and
        GET endpoints that name an object in their path."""
        chosen = [t for t in self.targets if t.select is not None]
        if not chosen:
            return frozenset()
        found = {p.endpoint for t in chosen for p in t.producers} | set(self.stores_body)
        found |= {
            t.endpoint
            for t in self.targets
            if t.endpoint.startswith(("PUT ", "PATCH "))
            or (t.endpoint.startswith("GET ") and t.target.where == "path")
        }
        return frozenset(found)

    @cached_property
    def id_keys(self) -> tuple[str, ...]:
        """The fields objects hold their ids in, by the selected places' list sources."""
        return tuple(sorted({
            id_key(p.source) for t in self.targets if t.select is not None
            for p in t.producers if p.kind == "list"
        }))  # fmt: skip

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


def ids_to_json(model: IdModel) -> dict[str, Any]:
    return {
        "targets": [
            {
                "endpoint": t.endpoint,
                **t.target.to_json(),
                "requests": t.requests,
                "explained": t.explained,
                "own": t.own,
                **({"select": t.select.to_json()} if t.select is not None else {}),
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
                None if t.get("select") is None else Selection.from_json(t["select"]),
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
