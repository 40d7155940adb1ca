"""A trace replay prefers, among the accounts of a session's role, one whose discovered
objects look like the ones its real session used (replay/evidence.py): a client session
whose real user read their client as configured and synced it gets an account whose own
client is configured, where the model learned no selection to go by."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.factories import T0, write_trace
from tests.replay.trace_steps import session_rows
from tests.servers import SandboxTarget, sandbox_target
from tracereplay.cli import main
from tracereplay.demo.accounts import accounts_csv
from tracereplay.models.correlations import AuthInfo, Location
from tracereplay.models.id_model import IdModel, IdTarget, Producer
from tracereplay.replay.correlate import SessionCorrelator
from tracereplay.replay.credentials import Credential, assign_account
from tracereplay.replay.evidence import Saw, can_match, own_objects, session_saw
from tracereplay.replay.idvalues import account_preference
from tracereplay.replay.liveids import CredentialPools, RunObjects, SessionIds
from tracereplay.replay.ownership import Cleared, Protection, Skipped
from tracereplay.replay.plan import PlannedRequest, PlannedSession

LIST = ("GET /clients/", Location("json", "/data/items/*/id"))
LOGIN = ("POST /auth/login", Location("json", "/data/user/client_id"))
READ = "GET /clients/{client_id}"
SYNC = "POST /clients/{client_id}/sync"
SLOT = Location("path", "client_id")
MODEL = IdModel(
    targets=(
        IdTarget(SYNC, SLOT, (Producer(*LIST, "list", 9), Producer(*LOGIN, "login", 9)), 9, 9, 0),
        IdTarget(READ, SLOT, (Producer(*LIST, "list", 9),), 9, 9, 0),
    )
)
AUTH = AuthInfo(None, None, (), None, None)
ACCOUNTS = [Credential(f"c{i}@example.test", "pw", "client") for i in range(3)]


def request(endpoint: str, path: str, **params: str) -> PlannedRequest:
    return PlannedRequest(endpoint, endpoint.split(" ", maxsplit=1)[0], path, path_params=params)


def answer(data: object) -> bytes:
    return json.dumps({"status": "success", "data": data}).encode()


def test_own_objects_describes_an_object_by_its_own_id_only() -> None:
    doc = {
        "data": {
            "items": [
                {"id": "w1", "client_id": "c1", "active": False},  # a workflow, not c1
                {"client_id": "c2", "stale": True},  # a freshness row: c2's
                {"workflow_id": "w2", "client_id": "c3", "active": True},  # two ids: none
            ]
        }
    }
    assert own_objects(doc, ("client_id", "id")) == {
        "w1": {"active": False},
        "c2": {"stale": True},
    }
    assert own_objects(doc, ("client_id",)) == {"c2": {"stale": True}}


def test_a_session_saw_its_client_configured_before_it_synced() -> None:
    requests = [
        request("GET /clients/", "/clients/"),
        request(READ, "/clients/cap-1", client_id="cap-1"),
        request(SYNC, "/clients/cap-1/sync", client_id="cap-1"),
    ]
    listed = answer({"items": [{"id": "cap-1", "name": "Anon", "n8n_configured": False}]})
    read = answer({"id": "cap-1", "name": "Anon", "n8n_configured": True})
    saw = session_saw(requests, [200, 200, 200], [listed, read, answer({})], MODEL)
    # Its latest use: the sync, with what the read (the latest answer) showed.
    assert saw == (Saw(SYNC, SLOT, (("n8n_configured", True), ("name", "Anon")), "cap-1"),)
    # A failed read shows nothing; a session that names no listed object has no evidence.
    assert session_saw(requests, [200, 500, 200], [listed, read, answer({})], MODEL)[0] == Saw(
        SYNC, SLOT, (("n8n_configured", False), ("name", "Anon")), "cap-1"
    )
    assert session_saw(requests[:1], [200], [listed], MODEL) == ()


def pools() -> CredentialPools:
    """Three client accounts; only account 1's client is configured. Names differ (the
    capture's are anonymized: no live value), `active` is the same for all."""
    found = CredentialPools()
    for i in range(3):
        found.add(i, LIST, [f"live-{i}"])
        found.describe(
            {f"live-{i}": {"n8n_configured": i == 1, "name": f"Live {i}", "active": True}}
        )
    return found


def test_the_account_whose_client_looks_like_the_real_one_is_preferred() -> None:
    saw = (Saw(SYNC, SLOT, (("active", True), ("n8n_configured", True), ("name", "Anon"))),)
    score = can_match(MODEL, pools(), saw)
    assert score is not None and [score(i) for i in range(3)] == [0, 1, 0]
    session = PlannedSession(0, 0.0, (request(SYNC, "/clients/cap-1/sync", client_id="cap-1"),),
                             "client", saw=saw)  # fmt: skip
    prefer = account_preference(MODEL, pools(), session)
    assert {assign_account(ACCOUNTS, i, "client", prefer=prefer).index for i in range(6)} == {1}
    # Without the evidence (the old choice, and a model replay's): round-robin by role.
    plain = PlannedSession(0, 0.0, session.requests, "client")
    assert account_preference(MODEL, pools(), plain) is None
    assert {assign_account(ACCOUNTS, i, "client").index for i in range(6)} == {0, 1, 2}


def test_fields_that_tell_no_account_apart_prefer_none() -> None:
    # Only fields every live object shares, or values no live object has: no score.
    saw = (Saw(SYNC, SLOT, (("active", True), ("name", "Anon"))),)
    assert can_match(MODEL, pools(), saw) is None
    # A configured client no account can see: every score 0, round-robin as before.
    unconfigured = CredentialPools()
    for i in range(3):
        unconfigured.add(i, LIST, [f"live-{i}"])
        unconfigured.describe({f"live-{i}": {"n8n_configured": i == 0 and False}})
    assert can_match(MODEL, unconfigured, (Saw(SYNC, SLOT, (("n8n_configured", True),)),)) is None
    prefer = can_match(MODEL, pools(), (Saw(SYNC, SLOT, (("n8n_configured", False),)),))
    assert prefer is not None
    assert {assign_account(ACCOUNTS, i, "client", prefer=prefer).index for i in range(6)} == {0, 2}


def admin_session(evidence: tuple[Saw, ...]) -> tuple[SessionCorrelator, RunObjects]:
    """A session that listed three clients (captured cap-k, live live-k, in that order:
    cap-0 maps to live-0), of which only live-2 is configured live."""
    run, pools = RunObjects(), CredentialPools()
    pools.describe({f"live-{k}": {"n8n_configured": k == 2} for k in range(3)})
    ids = SessionIds(0, random.Random(0), run, pools, 0)
    session = SessionCorrelator([], AUTH, None, ids=MODEL, session_ids=ids, evidence=evidence)
    captured = ((LIST[1], ("cap-0", "cap-1", "cap-2")),)
    listing = PlannedRequest(LIST[0], "GET", "/clients/", yields=captured)
    items = [{"id": f"live-{k}", "n8n_configured": k == 2} for k in range(3)]
    session.observe(listing, 200, [], answer({"items": items}))
    return session, run


def test_a_live_counterpart_that_does_not_look_like_the_real_object_is_moved() -> None:
    """The admin's sync of a client its real session saw configured: the counterpart by
    list position is unconfigured live (a 400), so it takes the configured one, and keeps
    it for the session's later uses of the same captured id."""
    sync = request(SYNC, "/clients/cap-0/sync", client_id="cap-0")
    read = request(READ, "/clients/cap-0", client_id="cap-0")
    plain, _ = admin_session(())
    assert plain.prepare(sync).path == "/clients/live-0/sync"  # the old choice
    saw = (Saw(SYNC, SLOT, (("n8n_configured", True),), "cap-0"),)
    session, run = admin_session(saw)
    assert session.prepare(sync).path == "/clients/live-2/sync"
    assert session.prepare(read).path == "/clients/live-2"
    assert run.selection[SYNC] == {"switched": 1}
    # Its configure withheld on live-0: the sync stays there, to be withheld too.
    held, run = admin_session(saw)
    run.withhold("POST /clients/{client_id}/configure", ["live-0"])
    follows = IdModel(MODEL.targets, (), (), ((SYNC, "POST /clients/{client_id}/configure"),))
    held._idv.model = follows
    assert held.prepare(sync).path == "/clients/live-0/sync"


def test_an_action_on_an_object_that_already_looks_as_seen_needs_no_withheld_change() -> None:
    """Another session's configure of live-2 was withheld (its key is anonymized), so its
    syncs are withheld as `follows_withheld`; but this session's real user saw the client
    configured and live-2 already is: the sync goes, as the real one did."""
    configure = "POST /clients/{client_id}/configure"
    follows = IdModel(MODEL.targets, (), (), ((SYNC, configure),))
    sync = request(SYNC, "/clients/cap-2/sync", client_id="cap-2")
    protection = Protection()
    for evidence, expected in [
        ((), Skipped),
        ((Saw(SYNC, SLOT, (("n8n_configured", True),), "cap-2"),), Cleared),
    ]:
        session, run = admin_session(evidence)
        session.id_model = session._idv.model = follows
        session._changes = {configure}
        run.withhold(configure, ["live-2"])
        decision = session.clear(sync, protection)
        assert isinstance(decision, expected), decision
    assert isinstance(decision, Cleared) and decision.request.path == "/clients/live-2/sync"
    # The withheld change still holds back a sync of an object that does not look so.
    session, run = admin_session((Saw(SYNC, SLOT, (("n8n_configured", True),), "cap-0"),))
    session.id_model = session._idv.model = follows
    run.withhold(configure, ["live-0"])
    assert session.clear(
        request(SYNC, "/clients/cap-0/sync", client_id="cap-0"), protection
    ) == Skipped(SYNC, "follows_withheld")


# ---- against the sandbox ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def target() -> Iterator[SandboxTarget]:
    with sandbox_target("--service-time-scale", "0", "--login-rate-limit", "0") as started:
        yield started


def configured_clients(target: SandboxTarget) -> dict[str, bool]:
    items = target.admin_get("/api/v1/clients/", {"limit": 100})["items"]
    return {c["id"]: c["n8n_configured"] for c in items}


def client_trace(directory: Path, sessions: int) -> Path:
    """Client users who sign in, list their clients (one), read it (configured) and sync
    it: captured ids are pseudonyms, names anonymized."""
    rows = []
    for i in range(sessions):
        t, key = T0 + timedelta(seconds=5 * i), f"s{i}"
        token, client = f"tok-{i}-" + "b" * 24, str(uuid.UUID(int=1000 + i, version=4))
        body = json.dumps({"email": f"user{i}@anon.invalid", "password": "[removed]"}).encode()
        login = {"access_token": token, "user": {"role": "client", "client_id": client}}
        view = {"id": client, "name": f"Anon {i}", "n8n_configured": True}
        rows += session_rows(key, t, token, [
            ("POST", "/api/v1/auth/login", 200, answer(login), body),
            ("GET", "/api/v1/clients/", 200, answer({"items": [view], "total": 1}), None),
            ("GET", f"/api/v1/clients/{client}", 200, answer(view), None),
            ("POST", f"/api/v1/clients/{client}/sync", 200, answer({"synced": 3}), None),
        ], gap_s=0.3)  # fmt: skip
    return write_trace(directory, rows)


@pytest.mark.slow
def test_a_trace_replay_syncs_as_the_real_sessions_did(
    target: SandboxTarget, tmp_path: Path
) -> None:
    """Two client accounts, the first one's client unconfigured: round-robin by role gave
    half the sessions that one, and their syncs answered 400 (the real ones 200)."""
    configured = configured_clients(target)
    clients = [a for a in target.accounts if a.role == "client"]
    off = next(a for a in clients if not configured[a.client_id])
    on = next(a for a in clients if configured[a.client_id])
    credentials = tmp_path / "accounts.csv"
    credentials.write_text(accounts_csv([off, on]))
    out = tmp_path / "run"
    trace = client_trace(tmp_path / "trace", sessions=6)
    code = main(["replay", str(trace), "--host", target.url, "--out", str(out),
                 "--credentials", str(credentials), "--grace", "5s"])  # fmt: skip
    assert code == 0
    timing = pq.read_table(out / "timing.parquet").to_pandas()
    syncs = timing[timing["endpoint"].str.endswith("/sync")]
    assert len(syncs) == 6 and (syncs["status"] == 200).all(), syncs["status"].tolist()
