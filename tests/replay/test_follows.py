"""An action that followed a state change of the same object (a `sync` after a `configure`)
is withheld with it: learned from the sessions, skipped (`follows_withheld`), never sent
to fail; a query id with no source of its own takes a live id of the same name."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from tracereplay.models.correlations import AuthInfo, Location, Walk
from tracereplay.models.ids import (
    Creation,
    IdModel,
    IdTarget,
    Producer,
    _follows,
    ids_from_json,
    ids_to_json,
)
from tracereplay.replay.correlate import SessionCorrelator
from tracereplay.replay.credentials import Credential
from tracereplay.replay.liveids import CredentialPools, RunObjects, SessionIds
from tracereplay.replay.ownership import (
    FOLLOWS_WITHHELD,
    PLACEHOLDER_CREDENTIAL,
    Cleared,
    Protection,
    Skipped,
)
from tracereplay.replay.plan import PlannedRequest

LOGIN = "POST /auth/login"
CONFIGURE = "POST /clients/{client_id}/configure"
SYNC = "POST /clients/{client_id}/sync"
TEST = "POST /clients/{client_id}/test-connection"
PUT = "PUT /clients/{client_id}"
REFRESH_CACHE = "POST /metrics/refresh-cache"
AUTH = AuthInfo(
    LOGIN, Location("json", "/data/token"), (Location("header", "authorization"),), None, None
)
ADMIN = Credential("admin@example.test", "pw-admin-1", "admin")
JSON = ("Content-Type", "application/json")


def row(session: int, endpoint: str, obj: str, status: int = 200) -> dict[str, Any]:
    return {
        "session_id": session,
        "endpoint": endpoint,
        "path": endpoint.partition(" ")[2].replace("{client_id}", obj),
        "status": status,
    }


def walk(rows: list[dict[str, Any]]) -> Walk:
    return Walk([], Counter(), Counter(), rows)


def test_follows_is_learned_from_the_latest_change_of_the_same_object_in_a_session() -> None:
    rows = [
        # Two sessions configure a client, test it and sync it; one of them edited it first.
        row(1, PUT, "c1"), row(1, CONFIGURE, "c1"), row(1, TEST, "c1"), row(1, SYNC, "c1"),
        row(2, CONFIGURE, "c2"), row(2, TEST, "c2"), row(2, SYNC, "c2"),
        # A sync of another object, a refused configure, and one session alone prove nothing.
        row(3, CONFIGURE, "c3"), row(3, SYNC, "c4"),
        row(4, CONFIGURE, "c5", 422), row(4, SYNC, "c5"),
        row(5, PUT, "c6"), row(5, TEST, "c6"),
    ]  # fmt: skip
    follows = _follows(walk(rows), AUTH, [CONFIGURE])
    assert follows == ((SYNC, CONFIGURE), (TEST, CONFIGURE))
    model = IdModel(stores_body=(CONFIGURE,), follows=follows)
    assert ids_from_json(json.loads(json.dumps(ids_to_json(model)))) == model
    assert model.changes_before(SYNC) == {CONFIGURE} and model.changes_before(PUT) == set()


def planned(endpoint: str, obj: str = "", body: Any = None, query: str | None = None) -> Any:
    method, _, template = endpoint.partition(" ")
    raw = None if body is None else json.dumps(body).encode()
    path = template.replace("{client_id}", obj)
    params = {"client_id": obj} if obj else {}
    return PlannedRequest(endpoint, method, path, query, (JSON,), raw, 0.0, params)


def session(run: RunObjects, model: IdModel, index: int = 0) -> SessionCorrelator:
    ids = SessionIds(index, random.Random(index), run, CredentialPools(), 0)
    return SessionCorrelator([], AUTH, ADMIN, ids=model, session_ids=ids)


KEY = {"n8n_url": "https://n8n.example.test", "n8n_api_key": "[removed]"}
MODEL = IdModel(stores_body=(CONFIGURE,), follows=((SYNC, CONFIGURE), (TEST, CONFIGURE)))


def test_an_action_after_a_withheld_change_of_its_object_is_skipped_in_every_session() -> None:
    run = RunObjects()
    first, second = session(run, MODEL, 0), session(run, MODEL, 1)
    protection = first.protection
    configure = first.clear(planned(CONFIGURE, "c1", KEY), protection)
    assert isinstance(configure, Skipped) and configure.reason == PLACEHOLDER_CREDENTIAL
    for who in (first, second):
        sync = who.clear(planned(SYNC, "c1"), protection)
        assert isinstance(sync, Skipped) and sync.reason == FOLLOWS_WITHHELD
    # Another object's sync goes, and so does a read of the same object.
    assert isinstance(first.clear(planned(SYNC, "c2"), protection), Cleared)
    assert isinstance(first.clear(planned("GET /clients/{client_id}", "c1"), protection), Cleared)
    # A configure of c1 that does go through (a live key) lets its sync go again.
    live = planned(CONFIGURE, "c1", {**KEY, "n8n_api_key": "live-key-0123"})
    sent = second.clear(live, protection)
    assert isinstance(sent, Cleared)
    second.observe(live, 200, [JSON], b'{"data": {}}', sent.request)
    assert isinstance(first.clear(planned(SYNC, "c1"), protection), Cleared)


def test_without_a_learned_sequel_the_action_goes() -> None:
    """What the rule prevents: the same run without `follows` sends the sync (to fail)."""
    run = RunObjects()
    plain = session(run, IdModel(stores_body=(CONFIGURE,)))
    assert isinstance(plain.clear(planned(CONFIGURE, "c1", KEY), plain.protection), Skipped)
    assert isinstance(plain.clear(planned(SYNC, "c1"), plain.protection), Cleared)


def test_a_query_id_without_its_own_source_takes_a_live_id_of_the_same_name() -> None:
    clients = ("GET /clients/", Location("json", "/data/items/*/id"))
    read = IdTarget(
        "GET /clients/{client_id}", Location("path", "client_id"),
        (Producer(clients[0], clients[1], "list", 3),), 3, 3, 0,
    )  # fmt: skip
    me = Producer("GET /auth/me", Location("json", "/data/client_id"), "read", 2)
    refresh = IdTarget(REFRESH_CACHE, Location("query", "client_id"), (me,), 2, 2, 0)
    model = IdModel(targets=(read, refresh))
    pools = CredentialPools()
    pools.add(0, clients, ["live-client-7"])
    ids = SessionIds(0, random.Random(0), RunObjects(), pools, 0)
    correlator = SessionCorrelator([], AUTH, ADMIN, ids=model, session_ids=ids)
    prepared = correlator.prepare(planned(REFRESH_CACHE, query="client_id=made-up-uuid"))
    assert prepared.query == "client_id=live-client-7"
    # Its own source first: the account's /auth/me client id when there is one.
    pools.add(0, (me.endpoint, me.source), ["own-client-1"])
    prepared = correlator.prepare(planned(REFRESH_CACHE, query="client_id=made-up-uuid"))
    assert prepared.query == "client_id=own-client-1"


def test_a_change_moved_to_the_sessions_own_object_withholds_the_one_it_named() -> None:
    """A session that created a client, then configured a seeded one: the protected
    configure goes to its own client (or nowhere); the sync of the seeded one follows it."""
    create = "POST /clients/"
    made = Location("json", "/data/id")
    slot = Location("path", "client_id")
    model = IdModel(
        targets=(IdTarget(CONFIGURE, slot, (Producer(create, made, "create", 3),), 3, 3, 3),),
        creations=(Creation(create, made, 3, None, None, None),),
        stores_body=(CONFIGURE,), follows=((SYNC, CONFIGURE),),
    )  # fmt: skip
    ids = SessionIds(0, random.Random(0), RunObjects(), CredentialPools(), 0)
    protection = Protection(stores_body=frozenset({CONFIGURE}))
    correlator = SessionCorrelator(
        [], AUTH, ADMIN, ids=model, session_ids=ids, protection=protection
    )
    new = planned(create, body={"name": "x"})
    correlator.observe(new, 201, [JSON], b'{"data": {"id": "own-1"}}', correlator.prepare(new))
    assert correlator.owned == {"own-1": create}
    correlator.ids.mapped["seeded-7"] = "live-seeded-7"  # a list answer mapped it (trace)
    assert correlator.prepare(planned(CONFIGURE, "seeded-7", KEY)).path.endswith("/own-1/configure")
    configure = correlator.clear(planned(CONFIGURE, "seeded-7", KEY), correlator.protection)
    assert isinstance(configure, Skipped) and configure.reason == PLACEHOLDER_CREDENTIAL
    for obj in ("live-seeded-7", "own-1"):
        assert obj in correlator.prepare(planned(SYNC, obj.removeprefix("live-"))).path
        sync = correlator.clear(planned(SYNC, obj.removeprefix("live-")), correlator.protection)
        assert isinstance(sync, Skipped) and sync.reason == FOLLOWS_WITHHELD, obj
