"""The sandbox target's clients and n8n routes over real HTTP: who sees what, CRUD with
201/403/404/422, and configure / test-connection / sync."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.demo.target_api import UNKNOWN_ID, Session, api_client, data, error
from tests.servers import SandboxTarget
from tracereplay.demo.accounts import CLIENT_COUNT, sandbox_client_ids


@pytest.fixture(scope="module")
def api(sandbox_target: SandboxTarget) -> Iterator[httpx.Client]:
    with api_client(sandbox_target, "/api/v1") as client:
        yield client


@pytest.fixture
def new_client(api: httpx.Client, admin: Session) -> Iterator[dict[str, Any]]:
    """A client created for one test (so the seeded ones stay as they are)."""
    created = data(
        api.post(
            "/clients/",
            json={"name": "Throwaway Ltd", "email": "ops@example.com"},
            headers=admin.headers,
        ),
        201,
    )
    yield created
    api.delete(f"/clients/{created['id']}", headers=admin.headers)


def other_client_id(session: Session) -> str:
    return next(c for c in sandbox_client_ids(7) if c != session.user["client_id"])


def test_admin_lists_every_seeded_client(api: httpx.Client, admin: Session) -> None:
    page = data(api.get("/clients/", params={"limit": 100}, headers=admin.headers))
    assert set(page) == {"items", "total", "limit", "offset", "next_offset"}
    ids = {c["id"] for c in page["items"]}
    assert set(sandbox_client_ids(7)) <= ids
    assert page["total"] >= CLIENT_COUNT
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_list_paginates_and_searches(api: httpx.Client, admin: Session) -> None:
    everything = data(api.get("/clients/", params={"limit": 100}, headers=admin.headers))
    second = data(api.get("/clients/", params={"limit": 2, "offset": 1}, headers=admin.headers))
    assert second["limit"] == 2 and second["offset"] == 1
    assert [c["id"] for c in second["items"]] == [c["id"] for c in everything["items"][1:3]]
    name = everything["items"][0]["name"]
    found = data(api.get("/clients/", params={"search": name.upper()}, headers=admin.headers))
    assert name in [c["name"] for c in found["items"]]
    none = data(api.get("/clients/", params={"search": "zz-no-such-zz"}, headers=admin.headers))
    assert none == {"items": [], "total": 0, "limit": 20, "offset": 0, "next_offset": None}


def test_client_user_lists_only_their_client(api: httpx.Client, client_user: Session) -> None:
    page = data(api.get("/clients/", headers=client_user.headers))
    assert [c["id"] for c in page["items"]] == [client_user.user["client_id"]]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "many"}]
)
def test_list_with_bad_query_is_422(
    api: httpx.Client, admin: Session, params: dict[str, Any]
) -> None:
    errors = error(api.get("/clients/", params=params, headers=admin.headers), 422)["errors"]
    assert [e["field"] for e in errors] == [f"query.{next(iter(params))}"]


def test_list_needs_a_session(api: httpx.Client) -> None:
    error(api.get("/clients/"), 401)


def test_create_answers_201_with_the_client(api: httpx.Client, admin: Session) -> None:
    body = {
        "name": "Acme Widgets",
        "email": "hello@example.org",
        "phone": "555-0100",
        "company": "Acme",
        "notes": "seeded by a test",
    }
    created = data(api.post("/clients/", json=body, headers=admin.headers), 201)
    try:
        assert {k: created[k] for k in body} == body
        assert uuid.UUID(created["id"]).version == 4
        assert created["n8n_configured"] is False
        assert data(api.get(f"/clients/{created['id']}", headers=admin.headers)) == created
    finally:
        data(api.delete(f"/clients/{created['id']}", headers=admin.headers))


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["body.name"]),
        ({"name": ""}, ["body.name"]),
        ({"name": "X", "email": "not-an-email"}, ["body.email"]),
        ({"name": "X" * 201}, ["body.name"]),
    ],
)
def test_create_with_bad_body_is_422(
    api: httpx.Client, admin: Session, body: dict[str, Any], fields: list[str]
) -> None:
    errors = error(api.post("/clients/", json=body, headers=admin.headers), 422)["errors"]
    assert [e["field"] for e in errors] == fields


def test_create_with_non_json_body_is_422(api: httpx.Client, admin: Session) -> None:
    response = api.post(
        "/clients/", content=b"{nope", headers={**admin.headers, "Content-Type": "application/json"}
    )
    error(response, 422)


def test_client_user_may_not_create_or_delete(
    api: httpx.Client, client_user: Session, new_client: dict[str, Any]
) -> None:
    error(api.post("/clients/", json={"name": "Mine"}, headers=client_user.headers), 403)
    own = client_user.user["client_id"]
    error(api.delete(f"/clients/{own}", headers=client_user.headers), 403)
    error(api.delete(f"/clients/{new_client['id']}", headers=client_user.headers), 403)


def test_get_own_client_but_not_another(api: httpx.Client, client_user: Session) -> None:
    own = client_user.user["client_id"]
    assert data(api.get(f"/clients/{own}", headers=client_user.headers))["id"] == own
    other = other_client_id(client_user)
    assert (
        "client" in error(api.get(f"/clients/{other}", headers=client_user.headers), 403)["message"]
    )


def test_client_user_gets_403_not_404_for_unknown_ids(
    api: httpx.Client, client_user: Session
) -> None:
    error(api.get(f"/clients/{UNKNOWN_ID}", headers=client_user.headers), 403)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_client_is_404_for_admins(api: httpx.Client, admin: Session, method: str) -> None:
    body = {"name": "x"} if method == "PUT" else None
    response = api.request(method, f"/clients/{UNKNOWN_ID}", json=body, headers=admin.headers)
    assert error(response, 404)["message"] == "Client not found"


def test_malformed_client_id_is_422(api: httpx.Client, admin: Session) -> None:
    errors = error(api.get("/clients/not-a-uuid", headers=admin.headers), 422)["errors"]
    assert [e["field"] for e in errors] == ["path.client_id"]


def test_update_changes_only_given_fields(
    api: httpx.Client, admin: Session, new_client: dict[str, Any]
) -> None:
    url = f"/clients/{new_client['id']}"
    updated = data(api.put(url, json={"notes": "VIP", "name": None}, headers=admin.headers))
    assert updated["notes"] == "VIP"
    assert updated["name"] == new_client["name"]
    assert updated["email"] == new_client["email"]
    assert updated["updated_at"] >= new_client["updated_at"]
    error(api.put(url, json={"email": "bad"}, headers=admin.headers), 422)


def test_client_user_updates_own_client_only(api: httpx.Client, client_user: Session) -> None:
    own = client_user.user["client_id"]
    notes = data(api.get(f"/clients/{own}", headers=client_user.headers))["notes"]
    try:
        changed = data(
            api.put(f"/clients/{own}", json={"notes": "ours"}, headers=client_user.headers)
        )
        assert changed["notes"] == "ours"
    finally:
        api.put(f"/clients/{own}", json={"notes": notes}, headers=client_user.headers)
    other = other_client_id(client_user)
    error(api.put(f"/clients/{other}", json={"notes": "x"}, headers=client_user.headers), 403)


def test_delete_removes_the_client(api: httpx.Client, admin: Session) -> None:
    created = data(api.post("/clients/", json={"name": "Short-lived"}, headers=admin.headers), 201)
    url = f"/clients/{created['id']}"
    assert data(api.delete(url, headers=admin.headers)) == {"deleted": True, "id": created["id"]}
    error(api.get(url, headers=admin.headers), 404)
    error(api.delete(url, headers=admin.headers), 404)


def test_configure_test_connection_and_sync(
    api: httpx.Client, admin: Session, new_client: dict[str, Any]
) -> None:
    base = f"/clients/{new_client['id']}"
    assert (
        "not configured"
        in error(api.post(f"{base}/test-connection", headers=admin.headers), 400)["message"]
    )
    error(api.post(f"{base}/sync", headers=admin.headers), 400)
    secret = "n8n-api-key-123456"
    response = api.post(
        f"{base}/configure",
        json={"n8n_url": "https://n8n.example.com/", "n8n_api_key": secret},
        headers=admin.headers,
    )
    configured = data(response)
    assert configured["n8n_configured"] is True
    assert configured["n8n_url"] == "https://n8n.example.com"
    assert secret not in response.text
    connection = data(api.post(f"{base}/test-connection", headers=admin.headers))
    assert connection["connected"] is True
    assert connection["latency_ms"] > 0
    assert connection["n8n_version"]
    synced = data(api.post(f"{base}/sync", headers=admin.headers))
    assert set(synced) == {"synced_workflows", "synced_executions", "last_sync_at"}
    assert 2 <= synced["synced_workflows"] <= 4  # the first sync finds the n8n workflows
    assert synced["synced_executions"] == 0
    after = data(api.get(base, headers=admin.headers))
    assert after["last_sync_at"] == synced["last_sync_at"]
    found = data(
        api.get("/workflows/", params={"client_id": new_client["id"]}, headers=admin.headers)
    )
    assert found["total"] == synced["synced_workflows"]
    again = data(api.post(f"{base}/sync", headers=admin.headers))
    assert again["synced_workflows"] == synced["synced_workflows"]  # only the first adds


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n8n_api_key": "long-enough-key"}, "body.n8n_url"),
        ({"n8n_url": "ftp://n8n.example.com", "n8n_api_key": "long-enough-key"}, "body.n8n_url"),
        ({"n8n_url": "https://n8n.example.com", "n8n_api_key": "short"}, "body.n8n_api_key"),
    ],
)
def test_configure_with_bad_body_is_422(
    api: httpx.Client, admin: Session, new_client: dict[str, Any], body: dict[str, str], field: str
) -> None:
    response = api.post(f"/clients/{new_client['id']}/configure", json=body, headers=admin.headers)
    assert [e["field"] for e in error(response, 422)["errors"]] == [field]


def test_client_user_uses_n8n_routes_on_own_client_only(
    api: httpx.Client, client_user: Session
) -> None:
    own = client_user.user["client_id"]
    # client 0 of seed 7 has n8n configured (two clients in three do)
    assert data(api.post(f"/clients/{own}/test-connection", headers=client_user.headers))[
        "connected"
    ]
    synced = data(api.post(f"/clients/{own}/sync", headers=client_user.headers))
    assert synced["synced_workflows"] > 0 and synced["synced_executions"] > 0
    other = other_client_id(client_user)
    for action in ("configure", "test-connection", "sync"):
        body = {"n8n_url": "https://x.example.com", "n8n_api_key": "long-enough-key"}
        response = api.post(f"/clients/{other}/{action}", json=body, headers=client_user.headers)
        error(response, 403)


def test_n8n_routes_on_unknown_client_are_404(api: httpx.Client, admin: Session) -> None:
    for action in ("test-connection", "sync"):
        error(api.post(f"/clients/{UNKNOWN_ID}/{action}", headers=admin.headers), 404)
