"""Stand-in objects (replay/standins.py): a protected request that names an object the run
did not create, where the model learned a create of that kind, goes to a stand-in the
session creates first, instead of being held back; the stand-in's create is counted apart
(summary `stand_ins`), never in timing.parquet, and cleanup deletes it. Nothing the run did
not create is modified (the sandbox's audit)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.factories import T0, write_trace
from tests.replay.trace_steps import Step, answer, session_rows
from tests.servers import SandboxTarget, sandbox_target
from tracereplay.cli import main
from tracereplay.demo.accounts import accounts_csv
from tracereplay.models.correlations import Location
from tracereplay.models.id_model import Creation, IdModel, IdTarget, Producer
from tracereplay.replay.idvalues import creates_for
from tracereplay.replay.plan import Plan, PlannedRequest, PlannedSession
from tracereplay.replay.safetylog import SafetyLog
from tracereplay.replay.standins import StandIns

CREATE, PUT = "POST /api/v1/clients/", "PUT /api/v1/clients/{client_id}"
DELETE = "DELETE /api/v1/clients/{client_id}"
SLOT = Location("path", "client_id")
MADE = Creation(CREATE, Location("json", "/data/id"), 3, DELETE, "client_id", "trace")


def test_the_create_of_an_object_kind_is_found_by_its_delete_s_path() -> None:
    listed = IdTarget(PUT, SLOT, (Producer("GET /api/v1/clients/", Location("json", "/x"),
                                           "list", 3),), 3, 3, 0)  # fmt: skip
    assert creates_for(IdModel((listed,), (MADE,)), PUT, SLOT) == {CREATE}
    assert creates_for(IdModel((listed,), (MADE,)), DELETE, SLOT) == {CREATE}
    # Another kind of object (no learned create of workflows): none, so it stays held back.
    patch = "PATCH /api/v1/workflows/{workflow_id}"
    assert creates_for(IdModel((), (MADE,)), patch, Location("path", "workflow_id")) == set()
    assert creates_for(IdModel(), PUT, SLOT) == set()


def test_templates_come_from_the_plan_and_a_refused_role_is_not_asked_again() -> None:
    create = PlannedRequest(CREATE, "POST", "/api/v1/clients/", body=b"{}", think_s=4.0,
                            yields=((Location("json", "/data/id"), ("cap-1",)),))  # fmt: skip
    plan = Plan((PlannedSession(0, 0.0, (create,)),), 10.0, "trace", 1.0, 1.0, 0)
    log = SafetyLog()
    stand_ins = StandIns.from_plan(plan, IdModel((), (MADE,)), log)
    made = stand_ins.template(CREATE, "admin", 5)
    assert made is not None and made.body == b"{}" and made.think_s == 0 and made.yields == ()
    assert stand_ins.template(None, "admin", 0) is None
    assert StandIns.from_plan(plan, IdModel(), log).template(CREATE, "admin", 0) is None
    stand_ins.answered(PUT, CREATE, "admin", 401, used=False)  # a session signed out
    assert stand_ins.template(CREATE, "admin", 0) is not None
    stand_ins.answered(PUT, CREATE, "client", 403, used=False)
    assert stand_ins.template(CREATE, "client", 0) is None  # refused for clients once
    assert stand_ins.template(CREATE, "admin", 0) is not None
    stand_ins.answered(PUT, CREATE, "admin", 201, used=True)
    assert log.stand_ins == {PUT: {"failed": 2, "created": 1}}
    assert log.stand_in_creates == {CREATE: 3}


# ---- against the sandbox ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def target() -> Iterator[SandboxTarget]:
    with sandbox_target("--service-time-scale", "0", "--login-rate-limit", "0") as started:
        yield started


def stand_in_trace(directory: Path, seeded: list[str]) -> Path:
    """Three admin sessions that create a client and delete it (so the model learns the
    create and its delete); then two admin sessions and one client session that each
    update a seeded client (captured ids: pseudonyms of the listed seeded ones)."""
    rows: list[Any] = []

    def session(i: int, role: str, steps: list[Step]) -> None:
        token = f"tok-{i}-" + "c" * 24
        body = json.dumps({"email": f"user{i}@anon.invalid", "password": "[removed]"}).encode()
        login = answer({"access_token": token, "user": {"role": role}})
        bye = ("POST", "/api/v1/auth/logout", 200, answer({"logged_out": True}), None)
        steps = [("POST", "/api/v1/auth/login", 200, login, body), *steps, bye]
        rows.extend(session_rows(f"s{i}", T0 + timedelta(seconds=6 * i), token, steps))

    for i in range(3):
        made = str(uuid.UUID(int=500 + i, version=4))
        new = json.dumps({"name": f"Anon Made {i}", "company": "Anon Co"}).encode()
        session(i, "admin", [
            ("POST", "/api/v1/clients/", 201, answer({"id": made, "name": f"Anon Made {i}"}), new),
            ("DELETE", f"/api/v1/clients/{made}", 200, answer({"deleted": True}), None),
        ])  # fmt: skip
    listing = answer({"items": [{"id": c} for c in seeded], "total": len(seeded)})
    for i, role in [(3, "admin"), (4, "admin"), (5, "client"), (6, "client")]:
        change = json.dumps({"notes": f"Anon note {i}"}).encode()
        session(i, role, [
            ("GET", "/api/v1/clients/", 200, listing, None),
            ("PUT", f"/api/v1/clients/{seeded[i % len(seeded)]}", 200, answer({}), change),
        ])  # fmt: skip
    return write_trace(directory, rows)


def test_a_change_of_a_seeded_object_goes_to_a_stand_in_and_cleanup_removes_it(
    target: SandboxTarget, tmp_path: Path
) -> None:
    before = target.admin_get("/api/v1/system/audit")
    seeded = [str(uuid.UUID(int=900 + i, version=4)) for i in range(3)]
    credentials = tmp_path / "accounts.csv"
    credentials.write_text(accounts_csv([target.account("admin"), target.account("client")]))
    out = tmp_path / "run"
    trace = stand_in_trace(tmp_path / "trace", seeded)
    code = main(["replay", str(trace), "--host", target.url, "--out", str(out),
                 "--credentials", str(credentials), "--grace", "5s"])  # fmt: skip
    assert code == 0
    timing = pq.read_table(out / "timing.parquet").to_pandas()
    puts = timing[timing["endpoint"] == PUT]
    summary = json.loads((out / "summary.json").read_text())
    # Old code: no PUT sent (2 admin + 2 client skipped not_owned), no stand_ins key.
    assert sorted(puts["status"].tolist()) == [200, 200], puts
    assert summary["stand_ins"]["by_endpoint"] == {PUT: {"created": 2, "failed": 1}}
    assert summary["stand_ins"]["creates_by_endpoint"] == {CREATE: 3}  # 2 admin, 1 client once
    assert summary["skipped"]["by_endpoint"] == {PUT: {"not_owned": 2}}  # the client sessions
    # The stand-in creates are not in timing: only the three captured creates are.
    assert (timing["endpoint"] == CREATE).sum() == 3
    during = target.admin_get("/api/v1/system/audit")
    foreign = during["foreign_writes"]["by_endpoint"]
    assert foreign.get(PUT, 0) == before["foreign_writes"]["by_endpoint"].get(PUT, 0)
    created = json.loads((out / "created.json").read_text())
    assert created["left"] == 2  # the stand-ins (the captured creates were deleted)
    assert main(["cleanup", str(out), "--host", target.url, "--credentials", str(credentials)]) == 0
    assert target.admin_get("/api/v1/system/audit")["objects"] == before["objects"]
