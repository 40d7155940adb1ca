"""The sandbox target's metrics, workflows, system and cache routes over real HTTP.

Checks answers' shapes, who may ask what, the cache's hit/miss counting and 404/422s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.demo.target_api import UNKNOWN_ID, Session, api_client, data, error
from tests.servers import SandboxTarget
from tracereplay.demo.accounts import sandbox_client_ids

CACHED = ["overview", "workflows", "execution-stats"]


@pytest.fixture(scope="module")
def api(sandbox_target: SandboxTarget) -> Iterator[httpx.Client]:
    with api_client(sandbox_target, "/api/v1") as client:
        yield client


def other_client_id(session: Session) -> str:
    return next(c for c in sandbox_client_ids(7) if c != session.user["client_id"])


def test_overview_for_one_client_and_for_all(api: httpx.Client, admin: Session) -> None:
    everyone = data(api.get("/metrics/overview", headers=admin.headers))
    assert everyone["client_id"] is None
    one_id = sandbox_client_ids(7)[0]
    one = data(api.get("/metrics/overview", params={"client_id": one_id}, headers=admin.headers))
    assert one["client_id"] == one_id
    assert 0 < one["total_executions"] < everyone["total_executions"]
    assert 0 <= one["success_rate"] <= 1
    assert one["avg_duration_ms"] > 0
    assert one["successful_executions"] + one["failed_executions"] <= one["total_executions"]


def test_workflow_metrics_and_execution_stats(api: httpx.Client, client_user: Session) -> None:
    stats = data(api.get("/metrics/workflows", headers=client_user.headers))
    assert stats["client_id"] == client_user.user["client_id"]
    assert stats["total"] == len(stats["items"]) > 0
    assert {i["client_id"] for i in stats["items"]} == {client_user.user["client_id"]}
    counts = data(api.get("/metrics/execution-stats", headers=client_user.headers))
    assert set(counts["by_status"]) == {"success", "error", "running", "waiting"}
    assert sum(counts["by_status"].values()) == counts["total"]
    assert sum(day["total"] for day in counts["by_day"]) == counts["total"]


def test_cached_metrics_count_hits_and_misses(api: httpx.Client, admin: Session) -> None:
    client_id = sandbox_client_ids(7)[1]
    cleared = data(
        api.post("/metrics/refresh-cache", params={"client_id": client_id}, headers=admin.headers)
    )
    assert cleared["refreshed"] is True and cleared["cleared"] >= 0
    before = data(api.get("/cache/stats", headers=admin.headers))
    for _ in range(2):
        for kind in CACHED:
            data(
                api.get(f"/metrics/{kind}", params={"client_id": client_id}, headers=admin.headers)
            )
    after = data(api.get("/cache/stats", headers=admin.headers))
    assert after["misses"] - before["misses"] == 3
    assert after["hits"] - before["hits"] == 3
    assert after["keys"] >= 3
    assert 0 < after["hit_rate"] < 1
    again = data(
        api.post("/metrics/refresh-cache", params={"client_id": client_id}, headers=admin.headers)
    )
    assert again["cleared"] >= 3


def test_client_user_metrics_are_limited_to_their_client(
    api: httpx.Client, client_user: Session
) -> None:
    other = other_client_id(client_user)
    for kind in [*CACHED, "executions", "historical"]:
        response = api.get(
            f"/metrics/{kind}", params={"client_id": other}, headers=client_user.headers
        )
        error(response, 403)
    error(
        api.post(
            "/metrics/refresh-cache", params={"client_id": other}, headers=client_user.headers
        ),
        403,
    )


@pytest.mark.parametrize("kind", [*CACHED, "executions", "historical"])
def test_metrics_of_unknown_client_are_404(api: httpx.Client, admin: Session, kind: str) -> None:
    response = api.get(f"/metrics/{kind}", params={"client_id": UNKNOWN_ID}, headers=admin.headers)
    error(response, 404)


@pytest.mark.parametrize("kind", [*CACHED, "executions", "historical", "data-freshness"])
def test_metrics_need_a_session(api: httpx.Client, kind: str) -> None:
    error(api.get(f"/metrics/{kind}"), 401)


def test_executions_page_and_status_filter(api: httpx.Client, admin: Session) -> None:
    params: dict[str, Any] = {"client_id": sandbox_client_ids(7)[0], "limit": 5}
    page = data(api.get("/metrics/executions", params=params, headers=admin.headers))
    assert len(page["items"]) == 5 and page["total"] > 5
    started = [e["started_at"] for e in page["items"]]
    assert started == sorted(started, reverse=True)
    errors = data(
        api.get("/metrics/executions", params={**params, "status": "error"}, headers=admin.headers)
    )
    assert {e["status"] for e in errors["items"]} == {"error"}
    assert errors["total"] < page["total"]


@pytest.mark.parametrize(
    "params",
    [{"status": "exploded"}, {"limit": 0}, {"limit": 1000}, {"offset": -3}, {"client_id": "nope"}],
)
def test_executions_with_bad_query_are_422(
    api: httpx.Client, admin: Session, params: dict[str, Any]
) -> None:
    errors = error(api.get("/metrics/executions", params=params, headers=admin.headers), 422)
    assert [e["field"] for e in errors["errors"]] == [f"query.{next(iter(params))}"]


@pytest.mark.parametrize(
    ("period", "start", "end", "points"),
    [
        ("day", "2026-01-01", "2026-01-07", 7),
        ("hour", "2026-01-01", "2026-01-02", 48),
        ("week", "2026-01-05", "2026-02-01", 4),
        ("month", "2025-01-15", "2025-12-31", 12),
    ],
)
def test_historical_series_per_period(
    api: httpx.Client, admin: Session, period: str, start: str, end: str, points: int
) -> None:
    params = {"period": period, "start_date": start, "end_date": end}
    series = data(api.get("/metrics/historical", params=params, headers=admin.headers))
    assert series["period"] == period
    assert len(series["points"]) == points
    assert series["total_executions"] == sum(p["executions"] for p in series["points"])
    again = data(api.get("/metrics/historical", params=params, headers=admin.headers))
    assert again == series  # seeded: the same question gets the same answer


def test_historical_defaults_to_the_last_30_days(api: httpx.Client, client_user: Session) -> None:
    series = data(api.get("/metrics/historical", headers=client_user.headers))
    assert series["client_id"] == client_user.user["client_id"]
    assert series["period"] == "day" and len(series["points"]) == 30


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "fortnight"}, "query.period"),
        ({"start_date": "yesterday"}, "query.start_date"),
        ({"start_date": "2026-02-01", "end_date": "2026-01-01"}, "query.end_date"),
        ({"start_date": "2020-01-01", "end_date": "2026-01-01"}, "query.end_date"),
        (
            {"period": "hour", "start_date": "2025-01-01", "end_date": "2025-12-31"},
            "query.end_date",
        ),
    ],
)
def test_historical_with_bad_query_is_422(
    api: httpx.Client, admin: Session, params: dict[str, str], field: str
) -> None:
    errors = error(api.get("/metrics/historical", params=params, headers=admin.headers), 422)
    assert [e["field"] for e in errors["errors"]] == [field]


def test_data_freshness_per_visible_client(
    api: httpx.Client, admin: Session, client_user: Session
) -> None:
    everyone = data(api.get("/metrics/data-freshness", headers=admin.headers))
    assert everyone["total"] >= 12
    mine = data(api.get("/metrics/data-freshness", headers=client_user.headers))
    assert [i["client_id"] for i in mine["items"]] == [client_user.user["client_id"]]
    item = mine["items"][0]
    assert set(item) == {"client_id", "name", "last_sync_at", "staleness_s", "stale"}


def test_workflows_visible_to_each_role(
    api: httpx.Client, admin: Session, client_user: Session
) -> None:
    every = data(api.get("/workflows/", headers=admin.headers))
    mine = data(api.get("/workflows/", headers=client_user.headers))
    own = client_user.user["client_id"]
    assert {w["client_id"] for w in mine["items"]} == {own}
    assert every["total"] > mine["total"] > 0
    active = data(
        api.get("/workflows/", params={"client_id": own, "active": "true"}, headers=admin.headers)
    )
    assert active["items"] and all(w["active"] for w in active["items"])
    error(
        api.get(
            "/workflows/",
            params={"client_id": other_client_id(client_user)},
            headers=client_user.headers,
        ),
        403,
    )
    error(api.get("/workflows/", params={"client_id": UNKNOWN_ID}, headers=admin.headers), 404)
    error(api.get("/workflows/", params={"active": "maybe"}, headers=admin.headers), 422)
    error(api.get("/workflows/"), 401)


def test_get_and_patch_a_workflow(api: httpx.Client, admin: Session, client_user: Session) -> None:
    mine = data(api.get("/workflows/", headers=client_user.headers))["items"][0]
    url = f"/workflows/{mine['id']}"
    assert data(api.get(url, headers=client_user.headers)) == mine
    patched = data(
        api.patch(
            url, json={"name": "Renamed", "active": not mine["active"]}, headers=client_user.headers
        )
    )
    assert patched["name"] == "Renamed" and patched["active"] is not mine["active"]
    restored = data(
        api.patch(url, json={"name": mine["name"], "active": mine["active"]}, headers=admin.headers)
    )
    assert restored["name"] == mine["name"]
    error(api.patch(url, json={"active": "sometimes"}, headers=admin.headers), 422)
    error(api.patch(url, json={"name": ""}, headers=admin.headers), 422)


def test_workflow_of_another_client_is_403_and_unknown_is_404(
    api: httpx.Client, admin: Session, client_user: Session
) -> None:
    other = other_client_id(client_user)
    theirs = data(api.get("/workflows/", params={"client_id": other}, headers=admin.headers))
    url = f"/workflows/{theirs['items'][0]['id']}"
    error(api.get(url, headers=client_user.headers), 403)
    error(api.patch(url, json={"name": "mine now"}, headers=client_user.headers), 403)
    error(api.get(f"/workflows/{UNKNOWN_ID}", headers=admin.headers), 404)
    error(api.get("/workflows/42", headers=admin.headers), 422)


def test_health_routes_are_open(http: httpx.Client) -> None:
    assert data(http.get("/health")) == {"status": "healthy"}
    system = data(http.get("/api/v1/system/health"))
    assert system["status"] == "healthy" and system["version"] and system["uptime_s"] > 0


def test_detailed_health_is_for_admins(
    api: httpx.Client, admin: Session, client_user: Session
) -> None:
    detailed = data(api.get("/system/health/detailed", headers=admin.headers))
    assert set(detailed["components"]) == {"database", "cache", "n8n"}
    assert all(c["latency_ms"] >= 0 for c in detailed["components"].values())
    assert detailed["requests"]["total"] > 0
    assert detailed["requests"]["by_status"]["2xx"] > 0
    error(api.get("/system/health/detailed", headers=client_user.headers), 403)
    error(api.get("/system/health/detailed"), 401)


def test_cache_management(api: httpx.Client, admin: Session, client_user: Session) -> None:
    client_id = client_user.user["client_id"]
    data(api.get("/metrics/overview", params={"client_id": client_id}, headers=admin.headers))
    stats = data(api.get("/cache/stats", headers=client_user.headers))
    assert set(stats) == {"hits", "misses", "keys", "hit_rate"} and stats["keys"] >= 1
    assert data(api.delete(f"/cache/client/{client_id}", headers=admin.headers))["cleared"] >= 1
    data(api.get("/metrics/overview", headers=admin.headers))
    assert data(api.delete("/cache/clear", headers=admin.headers))["cleared"] >= 1
    assert data(api.get("/cache/stats", headers=admin.headers))["keys"] == 0
    error(api.delete("/cache/clear", headers=client_user.headers), 403)
    error(api.delete(f"/cache/client/{client_id}", headers=client_user.headers), 403)
    error(api.delete(f"/cache/client/{UNKNOWN_ID}", headers=admin.headers), 404)
    error(api.get("/cache/stats"), 401)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/v1/nowhere", 404), ("PUT", "/health", 405), ("POST", "/api/v1/auth/me", 405)],
)
def test_routing_errors_use_the_envelope(
    http: httpx.Client, method: str, path: str, status: int
) -> None:
    error(http.request(method, path), status)
