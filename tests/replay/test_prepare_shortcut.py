"""`SessionCorrelator.prepare` sends a request that nothing of the session touches as planned
without its steps (`_sent_as_planned`): it must give exactly what the steps give, in every
state a session goes through (before and after its login, with tokens handed out, after a
logout), for requests that do and do not carry what the steps change."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from tests.replay.test_correlate import ALICE, AUTH, JSON, LOGIN, LOGOUT, RULES, data, req
from tests.replay.test_liveids import LIST, SYNC, created, ids
from tracereplay.capture.anonymize.values import REMOVED
from tracereplay.models.correlations import AuthInfo, CorrelationRule, Location
from tracereplay.models.id_model import IdModel, IdTarget, Producer
from tracereplay.replay.correlate import SessionCorrelator
from tracereplay.replay.credentials import Credential
from tracereplay.replay.liveids import RunObjects
from tracereplay.replay.plan import PlannedRequest

COOKIE_AUTH = AuthInfo(LOGIN, AUTH.credential, (Location("cookie", "at"),), None, None)
FORM = ("Content-Type", "application/x-www-form-urlencoded")

PLANNED = [
    req("GET /rare"),
    req("GET /rare", query="page=2&sort=name"),
    req("GET /rare", query=f"page=2&_token={REMOVED}"),
    req("GET /rare", headers=[("Accept", "application/json"), ("User-Agent", "x/1")]),
    req("GET /rare", headers=[("Cookie", "at=anon_1; theme=dark")]),
    req("GET /rare", headers=[("Authorization", f"Basic {REMOVED}")]),
    req("GET /rare", headers=[("authorization", "Bearer anon_tok")]),
    req("POST /notes", body={"text": "anon_t", "refresh_token": "anon_r"}, headers=[JSON]),
    req("POST /notes", body=b"refresh_token=anon_r&x=1", headers=[FORM]),
    req("POST /notes", body={"text": "plain"}, headers=[JSON, ("Content-Length", "17")]),
    req("GET /me"),
    req("GET /items/{id}", "/items/41", params={"id": "41"}),
    req("POST /auth/refresh", body={"refresh_token": "anon_r"}, headers=[JSON]),
]
TOKENS = data({"token": "live-tok-1", "refresh": "live-ref-1", "refresh_token": "live-ref-1"})
ANSWER = data({"id": 7, "next": "/rare?page=3&_token=live-cursor"})  # a cursor handed out


def steps(
    rules: Sequence[CorrelationRule], auth: AuthInfo, credential: Credential | None
) -> list[tuple[PlannedRequest | None, PlannedRequest, int, bytes | None]]:
    """(request to prepare or None, request answered, status, body): a session's life."""
    login = req(LOGIN, body={"email": "x@anon.invalid", "password": REMOVED}, headers=[JSON])
    out: list[tuple[PlannedRequest | None, PlannedRequest, int, bytes | None]] = []
    for phase in ("before", "in", "out"):
        for planned in PLANNED:
            out.append((planned, planned, 200, ANSWER))
        if phase == "before":
            out.append((login, login, 200, TOKENS))  # and a cookie for the jar (below)
        elif phase == "in":
            out.append((None, req(LOGOUT), 200, None))
    return out


@pytest.mark.parametrize(
    ("rules", "auth", "credential", "address"),
    [
        (RULES, AUTH, ALICE, None),
        ([], AUTH, ALICE, None),
        ([], AUTH, None, None),
        ([], COOKIE_AUTH, ALICE, None),
        (RULES, AUTH, ALICE, "198.51.100.7"),
        ([], AuthInfo(None, None, (), None, None), None, None),
    ],
)
def test_a_request_sent_as_planned_is_what_the_steps_would_send(
    rules: Sequence[CorrelationRule],
    auth: AuthInfo,
    credential: Credential | None,
    address: str | None,
) -> None:
    quick = SessionCorrelator(rules, auth, credential, address=address)
    full = SessionCorrelator(rules, auth, credential, address=address)
    full._sent_as_planned = lambda request: False  # type: ignore[method-assign]
    shortcuts = 0
    for to_prepare, answered, status, body in steps(rules, auth, credential):
        if to_prepare is not None:
            shortcuts += quick._sent_as_planned(to_prepare)
            assert quick.prepare(to_prepare) == full.prepare(to_prepare), to_prepare
            decided = quick.clear(to_prepare, quick.protection)
            assert type(decided) is type(full.clear(to_prepare, full.protection))
        headers = [JSON, ("Set-Cookie", "sid=live-sid; Path=/")]
        for session in (quick, full):
            session.observe(answered, status, headers, body)
    # The shortcut was taken (a run's plain requests; never with an address to add) and
    # not taken (the rest).
    assert (shortcuts > 0) is (address is None)
    assert shortcuts < 3 * len(PLANNED)


def test_a_token_handed_out_goes_into_a_body_field_of_its_name() -> None:
    # The case the shortcut must leave to the steps: logged in, tokens held, a body.
    session = SessionCorrelator([], AUTH, ALICE)
    session.observe(req(LOGIN), 200, [JSON], TOKENS)
    planned = req("POST /notes", body={"refresh_token": "anon_r"}, headers=[JSON])
    assert not session._sent_as_planned(planned)
    assert json.loads(session.prepare(planned).body or b"") == {"refresh_token": "live-ref-1"}


def test_a_request_with_an_id_place_is_left_to_the_steps() -> None:
    slot = Location("path", "client_id")
    model = IdModel(targets=(IdTarget(SYNC, slot, (Producer(*LIST, "list", 3),), 3, 3, 0),))
    no_auth = AuthInfo(None, None, (), None, None)
    run = RunObjects()
    created(run, "live-x", "cap-x")
    lister = SessionCorrelator([], no_auth, None, ids=model, session_ids=ids(run, 1))
    listing = PlannedRequest(LIST[0], "GET", "/clients/", None, (), None, 0.0, {},
                             ((LIST[1], ("cap-a", "cap-x", "cap-b")),))  # fmt: skip
    body = {"data": {"items": [{"id": i} for i in ("live-a", "live-b", "live-x")]}}
    lister.observe(listing, 200, [], json.dumps(body).encode())
    sync = PlannedRequest(
        SYNC, "POST", "/clients/cap-b/sync", None, (), None, 0.0, {"client_id": "cap-b"}
    )
    assert lister._sent_as_planned(listing)
    assert not lister._sent_as_planned(sync)
    assert lister.prepare(sync).path == "/clients/live-b/sync"


def test_a_path_parameter_without_a_learned_place_is_left_to_the_steps() -> None:
    # No rule and no learned id place: only the template's parameter says it is an id,
    # and the run mapped the captured object to the one it created.
    run = RunObjects()
    created(run, "live-x", "cap-x")
    session = SessionCorrelator(
        [], AuthInfo(None, None, (), None, None), None, ids=IdModel(targets=()),
        session_ids=ids(run, 1),
    )  # fmt: skip
    session.ids.answered(LIST, ["live-a", "live-x"], ["cap-a", "cap-x"])
    read = PlannedRequest(
        "GET /items/{id}", "GET", "/items/cap-x", None, (), None, 0.0, {"id": "cap-x"}
    )
    assert not session._sent_as_planned(read)
    assert session.prepare(read).path == "/items/live-x"
