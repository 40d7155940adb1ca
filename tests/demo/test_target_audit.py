"""The sandbox target's audit over real HTTP: who created what, writes to objects another
account (or the seed) created, and object counts that return to where they were.

A target of its own (module scope), so every count here is this module's doing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.demo.target_api import Session, api_client, data, error, sign_in
from tests.servers import SandboxTarget, sandbox_target
from tracereplay.demo.accounts import sandbox_client_ids

AUDIT = "/api/v1/system/audit"
DELETE_CLIENT = "DELETE /api/v1/clients/{client_id}"
PUT_CLIENT = "PUT /api/v1/clients/{client_id}"


@pytest.fixture(scope="module")
def target() -> Iterator[SandboxTarget]:
    with sandbox_target("--service-time-scale", "0", "--login-rate-limit", "0") as started:
        yield started


@pytest.fixture(scope="module")
def http(target: SandboxTarget) -> Iterator[httpx.Client]:
    with api_client(target) as client:
        yield client


@pytest.fixture(scope="module")
def alice(target: SandboxTarget, http: httpx.Client) -> Session:
    return sign_in(http, target.account("admin", 0))


@pytest.fixture(scope="module")
def bob(target: SandboxTarget, http: httpx.Client) -> Session:
    return sign_in(http, target.account("admin", 1))


@pytest.fixture(scope="module")
def carol(target: SandboxTarget, http: httpx.Client) -> Session:
    """A client user (her own client is a seeded one)."""
    return sign_in(http, target.account("client", 0))


def audit(http: httpx.Client, admin: Session) -> dict[str, Any]:
    return dict(data(http.get(AUDIT, headers=admin.headers)))


def foreign(report: dict[str, Any], endpoint: str) -> int:
    return int(report["foreign_writes"]["by_endpoint"].get(endpoint, 0))


def own(report: dict[str, Any], endpoint: str) -> int:
    return int(report["own_writes"]["by_endpoint"].get(endpoint, 0))


def create_client(http: httpx.Client, admin: Session, name: str) -> str:
    body = {"name": name, "email": "ops@example.com"}
    return str(data(http.post("/api/v1/clients/", json=body, headers=admin.headers), 201)["id"])


def test_audit_is_for_admins_only(http: httpx.Client, carol: Session) -> None:
    error(http.get(AUDIT), 401)
    error(http.get(AUDIT, headers=carol.headers), 403)


def test_a_fresh_target_counts_its_seed_and_no_writes(http: httpx.Client, alice: Session) -> None:
    report = audit(http, alice)
    assert report["foreign_writes"] == {
        "total": 0, "to_seeded": 0, "to_other_accounts": 0, "by_endpoint": {},
    }  # fmt: skip
    objects = report["objects"]
    assert objects["clients"] == len(sandbox_client_ids(7))
    assert objects["workflows"] > objects["clients"] and objects["n8n_configs"] == 8
    assert report["objects_by_creator"]["clients"] == {"seed": objects["clients"]}


def test_a_foreign_delete_is_counted_and_an_own_delete_is_not(
    http: httpx.Client, alice: Session, bob: Session
) -> None:
    before = audit(http, alice)
    mine, theirs = create_client(http, alice, "Alice Own"), create_client(http, alice, "Alice 2")
    data(http.delete(f"/api/v1/clients/{mine}", headers=alice.headers))
    middle = audit(http, alice)
    assert foreign(middle, DELETE_CLIENT) == foreign(before, DELETE_CLIENT)
    assert own(middle, DELETE_CLIENT) == own(before, DELETE_CLIENT) + 1
    data(http.delete(f"/api/v1/clients/{theirs}", headers=bob.headers))
    after = audit(http, alice)
    assert foreign(after, DELETE_CLIENT) == foreign(before, DELETE_CLIENT) + 1
    delta = after["foreign_writes"]["to_other_accounts"]
    assert delta == before["foreign_writes"]["to_other_accounts"] + 1
    assert after["foreign_writes"]["to_seeded"] == before["foreign_writes"]["to_seeded"]


def test_every_write_on_a_seeded_object_counts_as_foreign(
    http: httpx.Client, alice: Session, carol: Session
) -> None:
    """Carol's own client was seeded, not created by her account: her writes to it are
    foreign, one per request, by route template."""
    own_client = carol.user["client_id"]
    workflow = data(http.get("/api/v1/workflows/", headers=carol.headers))["items"][0]
    base = f"/api/v1/clients/{own_client}"
    before = audit(http, alice)
    writes = {
        PUT_CLIENT: lambda: http.put(base, json={"notes": "n"}, headers=carol.headers),
        "POST /api/v1/clients/{client_id}/test-connection": lambda: http.post(
            f"{base}/test-connection", headers=carol.headers
        ),
        "POST /api/v1/clients/{client_id}/sync": lambda: http.post(
            f"{base}/sync", headers=carol.headers
        ),
        "POST /api/v1/metrics/refresh-cache": lambda: http.post(
            "/api/v1/metrics/refresh-cache", params={"client_id": own_client},
            headers=carol.headers,
        ),
        "PATCH /api/v1/workflows/{workflow_id}": lambda: http.patch(
            f"/api/v1/workflows/{workflow['id']}", json={"active": workflow["active"]},
            headers=carol.headers,
        ),
        "DELETE /api/v1/cache/client/{client_id}": lambda: http.delete(
            f"/api/v1/cache/client/{own_client}", headers=alice.headers
        ),
    }  # fmt: skip
    for send in writes.values():
        data(send())
    after = audit(http, alice)
    for endpoint in writes:
        assert foreign(after, endpoint) == foreign(before, endpoint) + 1, endpoint
    seeded = after["foreign_writes"]["to_seeded"] - before["foreign_writes"]["to_seeded"]
    assert seeded == len(writes)
    assert after["objects"] == before["objects"]  # no object was created or removed


def test_refused_writes_reads_and_id_less_actions_are_not_counted(
    http: httpx.Client, alice: Session, carol: Session
) -> None:
    other = next(c for c in sandbox_client_ids(7) if c != carol.user["client_id"])
    before = audit(http, alice)
    error(http.put(f"/api/v1/clients/{other}", json={"notes": "x"}, headers=carol.headers), 403)
    error(http.delete(f"/api/v1/clients/{other}", headers=carol.headers), 403)
    unknown = "00000000-0000-4000-8000-000000000000"
    error(http.delete(f"/api/v1/clients/{unknown}", headers=alice.headers), 404)
    data(http.get(f"/api/v1/clients/{other}", headers=alice.headers))
    data(http.post("/api/v1/metrics/refresh-cache", headers=carol.headers))  # no id named
    assert http.get(f"/api/v1/clients/{other}/export", headers=alice.headers).status_code == 200
    after = audit(http, alice)
    assert after["foreign_writes"] == before["foreign_writes"]
    assert after["own_writes"] == before["own_writes"]


def test_object_counts_grow_with_creates_and_return_after_cleanup(
    http: httpx.Client, alice: Session
) -> None:
    before = audit(http, alice)
    created = create_client(http, alice, "Growing Ltd")
    key = {"n8n_url": "https://n8n.example.com", "n8n_api_key": "n8n-key-0123456789"}
    data(http.post(f"/api/v1/clients/{created}/configure", json=key, headers=alice.headers))
    synced = data(http.post(f"/api/v1/clients/{created}/sync", headers=alice.headers))
    grown = audit(http, alice)
    objects, was = grown["objects"], before["objects"]
    assert objects["clients"] == was["clients"] + 1
    assert objects["n8n_configs"] == was["n8n_configs"] + 1
    assert objects["workflows"] == was["workflows"] + synced["synced_workflows"] > was["workflows"]
    mine = alice.user["id"]
    assert grown["objects_by_creator"]["clients"][mine] == 1
    assert grown["objects_by_creator"]["workflows"][mine] == synced["synced_workflows"]
    assert own(grown, "POST /api/v1/clients/{client_id}/sync") >= 1
    data(http.delete(f"/api/v1/clients/{created}", headers=alice.headers))
    after = audit(http, alice)
    assert after["objects"] == before["objects"]
    assert after["objects_by_creator"] == before["objects_by_creator"]


def test_list_pages_are_bounded_walk_every_item_once_and_grow(
    http: httpx.Client, alice: Session
) -> None:
    first = data(http.get("/api/v1/clients/", params={"limit": 5}, headers=alice.headers))
    created = [create_client(http, alice, f"Paged {i:02d}") for i in range(10)]
    try:
        seen: list[str] = []
        offset: int | None = 0
        pages = 0
        while offset is not None:
            params = {"limit": 5, "offset": offset}
            got = data(http.get("/api/v1/clients/", params=params, headers=alice.headers))
            assert len(got["items"]) <= 5 and got["limit"] == 5 and got["offset"] == offset
            assert got["total"] == first["total"] + len(created)
            seen += [c["id"] for c in got["items"]]
            offset, pages = got["next_offset"], pages + 1
        assert len(seen) == len(set(seen)) == first["total"] + len(created)
        assert set(created) <= set(seen)
        assert pages == -(-len(seen) // 5)
        default = data(http.get("/api/v1/clients/", headers=alice.headers))
        assert len(default["items"]) == 20 and default["next_offset"] == 20
    finally:
        for client_id in created:
            data(http.delete(f"/api/v1/clients/{client_id}", headers=alice.headers))


@pytest.mark.parametrize(
    ("path", "default_limit"),
    [
        ("/api/v1/workflows/", 50),
        ("/api/v1/metrics/executions", 20),
        ("/api/v1/metrics/data-freshness", 50),
        ("/api/v1/clients/", 20),
    ],
)
def test_every_list_pages_with_a_bounded_limit(
    http: httpx.Client, alice: Session, path: str, default_limit: int
) -> None:
    page = data(http.get(path, params={"limit": 3}, headers=alice.headers))
    assert len(page["items"]) == 3 < page["total"]
    assert (page["limit"], page["offset"], page["next_offset"]) == (3, 0, 3)
    last = data(http.get(path, params={"limit": 3, "offset": page["total"] - 1},
                         headers=alice.headers))  # fmt: skip
    assert len(last["items"]) == 1 and last["next_offset"] is None
    assert data(http.get(path, headers=alice.headers))["limit"] == default_limit
    error(http.get(path, params={"limit": 101}, headers=alice.headers), 422)
