"""A trace replay maps captured ids to live ones (replay/liveids.py): objects the capture
created to what their replayed creates made, the others in order where both answers hold
as many, and what one session's answers mapped serves every session of its account."""

from __future__ import annotations

import json
import random

from tracereplay.models.correlations import AuthInfo, Location
from tracereplay.models.id_model import Creation, IdModel, IdTarget, Producer
from tracereplay.replay.correlate import SessionCorrelator
from tracereplay.replay.liveids import CreatedObject, CredentialPools, RunObjects, SessionIds
from tracereplay.replay.plan import PlannedRequest

LIST = ("GET /clients/", Location("json", "/data/items/*/id"))
CREATE = "POST /clients/"
SYNC = "POST /clients/{client_id}/sync"


def ids(run: RunObjects, index: int, credential: int = 0) -> SessionIds:
    return SessionIds(index, random.Random(index), run, CredentialPools(), credential)


def created(run: RunObjects, live: str, captured: str) -> None:
    ids(run, 99).created(CreatedObject(live, CREATE, 99, 0, None, None), captured)


def test_created_objects_map_to_their_creates_and_the_others_in_order() -> None:
    run = RunObjects()
    created(run, "live-x", "cap-x")
    reader = ids(run, 1)
    # The target sorts by a name the capture anonymized: the created client sits elsewhere.
    reader.answered(
        LIST, ["live-a", "live-b", "live-x", "live-c"], ["cap-a", "cap-x", "cap-b", "cap-c"]
    )
    assert reader.mapped == {"cap-x": "live-x", "cap-a": "live-a", "cap-b": "live-b",
                             "cap-c": "live-c"}  # fmt: skip
    # A session of the same account that never listed takes what it mapped: the same
    # object; another account's session does not (it may not see it: a 403).
    other = ids(run, 2)
    assert other.counterpart("cap-b") == "live-b" and other.counterpart("cap-z") is None
    assert ids(run, 3, credential=1).counterpart("cap-b") is None


def test_an_answer_with_another_number_of_old_objects_maps_nothing() -> None:
    run = RunObjects()
    filtered = ids(run, 1)  # a search by an anonymized word finds other clients live
    filtered.answered(LIST, ["live-a", "live-b", "live-c"], ["cap-b", "cap-c"])
    assert filtered.mapped == {} and filtered.counterpart("cap-b") is None
    created(run, "live-x", "cap-x")  # ... but a created object still maps to its create's
    filtered.answered(LIST, ["live-x", "live-a"], ["cap-x", "cap-b", "cap-c"])
    assert filtered.mapped == {"cap-x": "live-x"}


def test_the_run_takes_the_counterpart_most_answers_gave() -> None:
    run = RunObjects()
    for index in (1, 2):
        ids(run, index).answered(LIST, ["live-a", "live-b"], ["cap-a", "cap-b"])
    odd = ids(run, 3)
    odd.answered(LIST, ["live-b"], ["cap-a"])  # one filtered answer of the same length
    assert odd.counterpart("cap-a") == "live-b"  # its own answer first, for itself
    assert ids(run, 4).counterpart("cap-a") == "live-a"  # the run's: two against one


def test_a_captured_path_id_gets_its_live_counterpart_in_a_session_that_never_listed() -> None:
    slot = Location("path", "client_id")
    model = IdModel(targets=(IdTarget(SYNC, slot, (Producer(*LIST, "list", 3),), 3, 3, 0),))
    auth = AuthInfo(None, None, (), None, None)
    run = RunObjects()
    created(run, "live-x", "cap-x")
    lister = SessionCorrelator([], auth, None, ids=model, session_ids=ids(run, 1))
    listing = PlannedRequest(LIST[0], "GET", "/clients/", None, (), None, 0.0, {},
                             ((LIST[1], ("cap-a", "cap-x", "cap-b")),))  # fmt: skip
    body = {"data": {"items": [{"id": i} for i in ("live-a", "live-b", "live-x")]}}
    lister.observe(listing, 200, [], json.dumps(body).encode())
    syncer = SessionCorrelator([], auth, None, ids=model, session_ids=ids(run, 2))
    sync = PlannedRequest(
        SYNC, "POST", "/clients/cap-b/sync", None, (), None, 0.0, {"client_id": "cap-b"}
    )
    assert syncer.prepare(sync).path == "/clients/live-b/sync"
    assert lister.prepare(sync).path == "/clients/live-b/sync"


def test_an_object_the_session_deleted_is_no_live_id_any_more() -> None:
    """A session creates a client, deletes it, then reads metrics by `?client_id=`: its
    create's answer is that place's latest source, but the id goes to nothing (a 404)."""
    made = Location("json", "/data/id")
    query = Location("query", "client_id")
    producers = (Producer(CREATE, made, "create", 3), Producer(*LIST, "list", 3))
    model = IdModel(
        targets=(IdTarget("GET /metrics", query, producers, 3, 3, 3),),
        creations=(Creation(CREATE, made, 3, "DELETE /clients/{client_id}", "client_id", None),),
    )
    auth = AuthInfo(None, None, (), None, None)
    session = SessionCorrelator([], auth, None, ids=model, session_ids=ids(RunObjects(), 1))
    listing = PlannedRequest(LIST[0], "GET", "/clients/", None, (), None, 0.0, {})
    session.observe(listing, 200, [], b'{"data": {"items": [{"id": "live-a"}]}}')
    create = PlannedRequest(CREATE, "POST", "/clients/", None, (), b"{}", 0.0, {})
    session.observe(create, 201, [], b'{"data": {"id": "live-x"}}')
    metrics = PlannedRequest("GET /metrics", "GET", "/metrics", "client_id=cap", (), None, 0.0, {})
    assert session.prepare(metrics).query == "client_id=live-x"
    delete = PlannedRequest("DELETE /clients/{client_id}", "DELETE", "/clients/live-x", None,
                            (), None, 0.0, {"client_id": "live-x"})  # fmt: skip
    session.observe(delete, 200, [], b"{}", session.prepare(delete))
    assert session.owned == {}
    assert session.prepare(metrics).query == "client_id=live-a"
