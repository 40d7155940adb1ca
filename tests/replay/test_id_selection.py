"""The replay holds an id place to its learned selection (models/id_select.py): a sync takes
a client whose answers said `n8n_configured: true`, as the real users did, where it would
take any listed client; none that fits: the id it would take, counted as a fallback."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tracereplay.models.correlations import AuthInfo, Location
from tracereplay.models.id_model import IdModel, IdTarget, Producer
from tracereplay.models.id_select import Selection
from tracereplay.replay import liveids
from tracereplay.replay.correlate import SessionCorrelator
from tracereplay.replay.credentials import Credential, assign_account
from tracereplay.replay.idvalues import can_select
from tracereplay.replay.liveids import CredentialPools, RunObjects, SessionIds
from tracereplay.replay.plan import PlannedRequest
from tracereplay.replay.safetylog import merge_safety

LIST = ("GET /clients/", Location("json", "/data/items/*/id"))
READ = "GET /clients/{client_id}"
SYNC = "POST /clients/{client_id}/sync"
SLOT = Location("path", "client_id")
CONFIGURED = Selection("n8n_configured", True, 1.0, 0.6, 40)
AUTH = AuthInfo(None, None, (), None, None)
CLIENTS = [(f"live-{k}", k % 3 == 0) for k in range(9)]  # live-0, live-3, live-6 configured


def model(select: Selection | None) -> IdModel:
    producers = (Producer(*LIST, "list", 9),)
    return IdModel(
        targets=(
            IdTarget(SYNC, SLOT, producers, 9, 9, 0, select),
            IdTarget(READ, SLOT, producers, 9, 9, 0),
        )
    )


def listed(clients: list[tuple[str, bool]]) -> bytes:
    items = [{"id": i, "name": i.upper(), "n8n_configured": c} for i, c in clients]
    return json.dumps({"status": "success", "data": {"items": items}}).encode()


def synced(
    seed: int, select: Selection | None, clients: list[tuple[str, bool]] = CLIENTS
) -> tuple[str, RunObjects]:
    """The client a model replay's session syncs after listing `clients`."""
    run = RunObjects()
    ids = SessionIds(seed, random.Random(seed), run, CredentialPools(), 0)
    session = SessionCorrelator([], AUTH, None, ids=model(select), session_ids=ids)
    session.observe(PlannedRequest(LIST[0], "GET", "/clients/", None, (), None, 0.0, {}), 200,
                    [], listed(clients))  # fmt: skip
    sync = PlannedRequest(SYNC, "POST", "/clients/cap/sync", None, (), None, 0.0, {})
    return session.prepare(sync).path.split("/")[2], run


def test_a_sync_takes_a_configured_client_where_any_would_do_without_the_selection() -> None:
    configured = {i for i, c in CLIENTS if c}
    without = {synced(seed, None)[0] for seed in range(30)}
    assert without - configured  # the failing case: unconfigured clients get synced
    chosen = [synced(seed, CONFIGURED) for seed in range(30)]
    assert {c for c, _ in chosen} <= configured
    assert len({c for c, _ in chosen}) > 1  # still a seeded-random one of them
    counts = [run.selection[SYNC] for _, run in chosen]
    assert all(set(c) <= {"met", "switched"} and sum(c.values()) == 1 for c in counts)


def test_a_read_that_shows_the_client_unconfigured_moves_the_sync_to_a_configured_one() -> None:
    run = RunObjects()
    ids = SessionIds(1, random.Random(1), run, CredentialPools(), 0)
    session = SessionCorrelator([], AUTH, None, ids=model(CONFIGURED), session_ids=ids)
    session.observe(PlannedRequest(LIST[0], "GET", "/clients/", None, (), None, 0.0, {}), 200,
                    [], listed(CLIENTS))  # fmt: skip
    # The session's list said live-3 was configured; its read says it is not any more.
    body = json.dumps({"data": {"id": "live-3", "n8n_configured": False}}).encode()
    read = PlannedRequest(READ, "GET", "/clients/live-3", None, (), None, 0.0, {})
    session.observe(read, 200, [], body)
    sync = PlannedRequest(SYNC, "POST", "/clients/cap/sync", None, (), None, 0.0, {})
    for _ in range(10):
        assert session.prepare(sync).path.split("/")[2] in {"live-0", "live-6"}


def test_no_configured_client_keeps_the_id_and_counts_a_fallback(tmp_path: Path) -> None:
    none = [(i, False) for i, _ in CLIENTS]
    client, run = synced(3, CONFIGURED, none)
    assert client in {i for i, _ in none} and run.selection == {SYNC: {"fallback": 1}}
    # The worker's count reaches summary.json's `id_selection`.
    worker = tmp_path / "w"
    worker.mkdir()
    (worker / "safety.json").write_text(json.dumps({"selection": run.selection}))
    summary = merge_safety(tmp_path, [worker])
    assert summary["id_selection"] == {
        "met": 0, "switched": 0, "fallback": 1, "by_endpoint": {SYNC: {"fallback": 1}},
    }  # fmt: skip


def test_a_sync_whose_configure_was_withheld_keeps_its_client() -> None:
    """The action that follows a withheld change stays on that object, to be withheld too
    (`follows_withheld`), not moved to another configured client."""
    configure = "POST /clients/{client_id}/configure"
    base = model(CONFIGURED)
    follows = IdModel(base.targets, (), (configure,), ((SYNC, configure),))
    run = RunObjects()
    ids = SessionIds(2, random.Random(2), run, CredentialPools(), 0)
    session = SessionCorrelator([], AUTH, None, ids=follows, session_ids=ids)
    session.observe(PlannedRequest(LIST[0], "GET", "/clients/", None, (), None, 0.0, {}), 200,
                    [], listed([("live-1", False)]))  # fmt: skip
    # The account's pool knows a configured client the sync could be moved to.
    ids.pools.add(0, LIST, ["live-0"])
    ids.pools.describe({"live-0": {"n8n_configured": True}})
    run.withhold(configure, ["live-1"])
    sync = PlannedRequest(SYNC, "POST", "/clients/cap/sync", None, (), None, 0.0, {})
    assert session.prepare(sync).path == "/clients/live-1/sync"


def test_the_fields_kept_are_bounded_and_the_latest_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(liveids, "FIELDS_KEEP", 3)
    pools = CredentialPools()
    pools.describe({"a": {"ok": False, "name": "A"}, "b": {"ok": True}, "c": {"ok": True}})
    pools.describe({"a": {"ok": True}})  # a later answer: merged over the earlier
    pools.describe({"d": {"ok": True}})  # one past the bound: b, seen longest ago, goes
    assert pools.fields("a") == {"ok": True, "name": "A"}
    assert pools.fields("b") is None and pools.fields("d") == {"ok": True}


def test_a_session_that_syncs_gets_an_account_that_can_see_a_configured_client() -> None:
    """Accounts are matched by role, not the captured account: a client session whose real
    user synced their configured client gets a client account whose client is configured,
    by what the discovery phase saw, where one fits the role."""
    pools = CredentialPools()
    pools.add(0, LIST, ["live-1"])
    pools.add(1, LIST, ["live-3"])
    pools.add(2, LIST, ["live-4"])
    pools.describe({"live-1": {"n8n_configured": False}, "live-3": {"n8n_configured": True}})
    accounts = [Credential(f"c{i}@example.test", "pw", "client") for i in range(3)]
    accounts.append(Credential("a@example.test", "pw", "admin"))
    syncs = can_select(model(CONFIGURED), pools, ["GET /clients/", SYNC])
    assert syncs is not None and [syncs(i) for i in range(3)] == [False, True, False]
    picked = {assign_account(accounts, i, "client", prefer=syncs).index for i in range(6)}
    assert picked == {1}
    assert {assign_account(accounts, i, "client").index for i in range(6)} == {0, 1, 2}
    assert can_select(model(CONFIGURED), pools, ["GET /clients/"]) is None  # no sync
    assert can_select(model(None), pools, [SYNC]) is None  # no selection learned
    never = can_select(model(CONFIGURED), CredentialPools(), [SYNC])
    assert never is not None  # no account fits: round-robin as before
    assert {assign_account(accounts, i, "client", prefer=never).index for i in range(6)} == {
        0, 1, 2,
    }  # fmt: skip


def test_a_sync_of_a_client_that_meets_the_selection_goes_despite_a_withheld_configure() -> None:
    """A configure withheld on a client that is configured already (its key is anonymized,
    another session's) does not hold back the syncs of it: they would not fail."""
    from tracereplay.replay.ownership import Cleared, Protection, Skipped

    configure = "POST /clients/{client_id}/configure"
    base = model(CONFIGURED)
    follows = IdModel(base.targets, (), (configure,), ((SYNC, configure),))
    sync = PlannedRequest(SYNC, "POST", "/clients/cap/sync", None, (), None, 0.0, {})
    for configured, expected in [(False, Skipped), (True, Cleared)]:
        run = RunObjects()
        ids = SessionIds(2, random.Random(2), run, CredentialPools(), 0)
        session = SessionCorrelator([], AUTH, None, ids=follows, session_ids=ids)
        session.observe(PlannedRequest(LIST[0], "GET", "/clients/", None, (), None, 0.0, {}),
                        200, [], listed([("live-1", configured)]))  # fmt: skip
        ids.pools.describe({"live-1": {"n8n_configured": configured}})
        run.withhold(configure, ["live-1"])
        decision = session.clear(sync, Protection())
        assert isinstance(decision, expected), decision
        assert isinstance(decision, Skipped) or decision.request.path == "/clients/live-1/sync"
