"""What a staging session sends: credentials per kind, ids from answers, prerequisites.

`SessionScript` runs against a small in-memory fake of the sandbox API (no locust).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from faker import Faker

from tracereplay.demo.traffic.actions import HISTORY_DAYS, Answer, SessionScript
from tracereplay.demo.traffic.behaviors import (
    ADMIN_API,
    ADMIN_BROWSER,
    CLIENT_API,
    CLIENT_BROWSER,
    Behavior,
)
from tracereplay.demo.traffic.settings import StagingAccount

OWN = "c-own"
ADMIN = StagingAccount("admin@example.org", "pw", "admin")
CLIENT = StagingAccount("user@example.org", "pw", "client")


@dataclass(frozen=True)
class Call:
    method: str
    route: str
    ids: dict[str, str]
    params: dict[str, str | int]
    json: Any
    headers: dict[str, str]


class FakeApi:
    """Answers like the sandbox target, just enough for the script's correlations."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.clients: dict[str, dict[str, Any]] = {
            f"c-{n}": {"id": f"c-{n}", "n8n_configured": n == 1} for n in range(1, 4)
        }
        self.clients[OWN] = {"id": OWN, "n8n_configured": False}
        self.workflows = {"w-1": True, "w-2": False}
        self.tokens = itertools.count(1)
        self.new_ids = itertools.count(1)

    def routes(self) -> list[str]:
        return [f"{c.method} {c.route}" for c in self.calls]

    def _pair(self) -> dict[str, Any]:
        n = next(self.tokens)
        return {"access_token": f"a{n}", "refresh_token": f"r{n}", "expires_in": 900}

    def __call__(
        self,
        method: str,
        route: str,
        *,
        ids: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        ids = dict(ids or {})
        self.calls.append(Call(method, route, ids, dict(params or {}), json, dict(headers or {})))
        client = self.clients.get(ids.get("client_id", ""))
        match method, route:
            case "POST", "/api/v1/auth/login":
                own = OWN if json["email"] == CLIENT.email else None
                return Answer(True, 200, {**self._pair(), "user": {"client_id": own}})
            case "POST", "/api/v1/auth/refresh":
                return Answer(True, 200, self._pair())
            case "GET", "/api/v1/clients/":
                return Answer(True, 200, {"items": list(self.clients.values()), "total": 4})
            case "POST", "/api/v1/clients/":
                new = {"id": f"new-{next(self.new_ids)}", "n8n_configured": False}
                self.clients[new["id"]] = new
                return Answer(True, 201, new)
            case "DELETE", "/api/v1/clients/{client_id}":
                assert self.clients.pop(ids["client_id"])
                return Answer(True, 200, {"deleted": True})
            case "POST", "/api/v1/clients/{client_id}/configure":
                assert client is not None
                client["n8n_configured"] = True
                return Answer(True, 200, client)
            case _, "/api/v1/clients/{client_id}" | "/api/v1/clients/{client_id}/sync":
                assert client is not None
                return Answer(True, 200, client)
            case "GET", "/api/v1/workflows/":
                items = [{"id": k, "active": v} for k, v in self.workflows.items()]
                return Answer(True, 200, {"items": items, "total": len(items)})
            case "PATCH", "/api/v1/workflows/{workflow_id}":
                self.workflows[ids["workflow_id"]] = json["active"]
                return Answer(True, 200, {"id": ids["workflow_id"], "active": json["active"]})
            case "GET", "/api/v1/metrics/executions":
                return Answer(True, 200, {"items": [], "total": 45})
        return Answer(True, 200, {})


def script_for(
    behavior: Behavior, api: FakeApi, seed: int = 1, shared: set[str] | None = None
) -> tuple[SessionScript, list[float]]:
    pauses: list[float] = []
    fake = Faker("en_US")
    fake.seed_instance(seed)
    script = SessionScript(
        behavior, api, random.Random(seed), fake, pauses.append, lambda: 0.0,
        set() if shared is None else shared,
    )  # fmt: skip
    account = ADMIN if behavior.role == "admin" else CLIENT
    assert script.login(account)
    return script, pauses


def test_api_sessions_send_the_bearer_token_and_use_the_rotated_one() -> None:
    api = FakeApi()
    script, _ = script_for(CLIENT_API, api)
    script.run("overview")
    script.run("refresh_token")
    script.run("overview")
    overview_1, refresh, overview_2 = api.calls[1:]
    assert overview_1.headers == {"Authorization": "Bearer a1"}
    assert refresh.json == {"refresh_token": "r1"}
    assert overview_2.headers == {"Authorization": "Bearer a2"}
    assert overview_1.params == {"client_id": OWN}


def test_browser_sessions_rely_on_cookies() -> None:
    api = FakeApi()
    script, _ = script_for(CLIENT_BROWSER, api)
    script.run("dashboard")
    script.run("refresh_token")
    assert all(c.headers == {} for c in api.calls)
    assert api.calls[-1].json is None  # the refresh_token cookie does it
    assert api.routes()[1:4] == [
        "GET /api/v1/metrics/overview",
        "GET /api/v1/metrics/execution-stats",
        "GET /api/v1/metrics/workflows",
    ]


def test_sync_first_learns_then_configures_the_client_it_syncs() -> None:
    api = FakeApi()
    script, pauses = script_for(CLIENT_API, api)
    assert script.run("sync") == ["client", "configure_n8n", "sync"]
    assert api.routes()[1:] == [
        "GET /api/v1/clients/{client_id}",
        "POST /api/v1/clients/{client_id}/configure",
        "POST /api/v1/clients/{client_id}/test-connection",
        "POST /api/v1/clients/{client_id}/sync",
    ]
    assert {c.ids["client_id"] for c in api.calls[1:]} == {OWN}
    configure = api.calls[2].json
    assert configure["n8n_url"].startswith("https://")
    assert configure["n8n_api_key"].startswith("n8n_api_") and len(configure["n8n_api_key"]) > 40
    assert len(pauses) == 3  # think times between the steps, a page gap inside configure
    assert script.run("sync") == ["sync"]  # now known to be configured


def test_workflow_toggle_uses_ids_from_the_list_and_flips_active() -> None:
    api = FakeApi()
    script, _ = script_for(ADMIN_BROWSER, api)
    assert script.run("toggle_workflow") == ["workflows", "toggle_workflow"]
    patch = api.calls[-1]
    assert patch.ids["workflow_id"] in {"w-1", "w-2"}
    assert patch.json == {"active": not FakeApi().workflows[patch.ids["workflow_id"]]}


def test_admins_delete_only_clients_they_created() -> None:
    api = FakeApi()
    shared: set[str] = set()
    script, _ = script_for(ADMIN_API, api, shared=shared)
    assert script.run("delete_client") == ["create_client", "delete_client"]
    created = api.calls[1]
    assert set(created.json) == {"name", "email", "phone", "company", "notes"}
    assert "@" in created.json["email"]
    assert api.calls[2].ids == {"client_id": "new-1"}
    assert shared == {"new-1"}
    assert script.run("delete_client") == ["create_client", "delete_client"]


def test_admins_never_touch_clients_other_seats_created() -> None:
    api = FakeApi()
    api.clients["theirs"] = {"id": "theirs", "n8n_configured": True}
    for seed in range(30):
        script, _ = script_for(ADMIN_BROWSER, api, seed=seed, shared={"theirs"})
        script.run("clients")
        for action in ("client", "update_client", "configure_n8n", "cache_clear"):
            script.visit.focus = None
            script.run(action)
    assert all(c.ids.get("client_id") != "theirs" for c in api.calls)


def test_executions_are_paged_with_the_offset_the_answer_allows() -> None:
    api = FakeApi()
    script, _ = script_for(CLIENT_API, api, seed=4)
    script.run("executions")
    first = api.calls[-1].params
    for _ in range(5):
        script.run("executions_more")
    offsets = [c.params["offset"] for c in api.calls[1:]]
    limit = int(first["limit"])
    assert offsets[:2] == [0, limit]
    assert all(int(o) < 45 for o in offsets)
    assert all(c.params.get("status") == first.get("status") for c in api.calls[1:])


def test_historical_ranges_fit_the_period() -> None:
    api = FakeApi()
    script, _ = script_for(CLIENT_BROWSER, api, seed=9)
    for _ in range(300):
        script.run("historical")
    periods = set()
    for call in api.calls[1:]:
        period = str(call.params["period"])
        periods.add(period)
        if "start_date" in call.params:
            start = date.fromisoformat(str(call.params["start_date"]))
            end = date.fromisoformat(str(call.params["end_date"]))
            low, high = HISTORY_DAYS[period]
            assert low <= (end - start).days + 1 <= high
    assert periods == set(HISTORY_DAYS)
    assert any("start_date" not in c.params for c in api.calls[1:])


@pytest.mark.parametrize("behavior", [ADMIN_BROWSER, ADMIN_API, CLIENT_BROWSER, CLIENT_API])
def test_every_action_of_a_behavior_runs_against_the_fake(behavior: Behavior) -> None:
    api = FakeApi()
    script, _ = script_for(behavior, api)
    for action in behavior.transitions:
        ran = script.run(action)
        # executions_more only runs when the first page said there is a next one
        assert ran[-1] == action or ran == ["executions"]
    assert all(c.route.startswith(("/api/v1/", "/health")) for c in api.calls)


def test_admins_browse_the_clients_a_list_showed() -> None:
    api = FakeApi()
    script, _ = script_for(ADMIN_BROWSER, api)
    script.run("clients")
    for _ in range(20):
        script.run("client")
    viewed = {c.ids["client_id"] for c in api.calls if c.route == "/api/v1/clients/{client_id}"}
    assert len(viewed) > 1
    assert viewed <= set(api.clients)


def test_logout_hands_the_refresh_token_back_only_from_api_clients() -> None:
    api = FakeApi()
    script, _ = script_for(CLIENT_API, api)
    script.logout()
    assert api.calls[-1].json == {"refresh_token": "r1"}
    assert api.calls[-1].headers == {"Authorization": "Bearer a1"}
    browser, _ = script_for(CLIENT_BROWSER, api)
    browser.logout()
    assert api.calls[-1].json is None and api.calls[-1].headers == {}  # the cookies do it


def test_exports_download_the_client_in_view() -> None:
    api = FakeApi()
    script, _ = script_for(CLIENT_BROWSER, api, seed=5)
    for _ in range(60):
        script.run("export")
    exports = api.calls[1:]
    assert {c.route for c in exports} == {"/api/v1/clients/{client_id}/export"}
    assert {c.ids["client_id"] for c in exports} == {OWN}
    assert {c.params["days"] for c in exports} == {"1", "7", "30"}
    assert {c.params.get("status") for c in exports} == {None, "success", "error"}
    admin, _ = script_for(ADMIN_BROWSER, FakeApi())
    assert admin.run("export") == ["clients", "export"]  # an admin first finds a client
