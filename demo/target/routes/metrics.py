"""Routes under /api/v1/metrics: cached overview/workflows/execution-stats, executions,
the slow historical query, data freshness and refresh-cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from tracereplay.demo.target import metrics
from tracereplay.demo.target.auth import SignedIn, visible_client
from tracereplay.demo.target.cache import ALL_CLIENTS
from tracereplay.demo.target.envelope import ApiError, ok
from tracereplay.demo.target.pagination import PageLimit, PageOffset, page
from tracereplay.demo.target.service_time import RouteClass
from tracereplay.demo.target.state import TargetState
from tracereplay.demo.target.store import Client, Execution, User, Workflow, iso

ClientIdQuery = Annotated[uuid.UUID | None, Query()]
StatusQuery = Literal["success", "error", "running", "waiting"]
DEFAULT_HISTORY_DAYS = 30


class _Queries:
    """What the metrics routes share: whose data a question is about, and the cache."""

    def __init__(self, state: TargetState) -> None:
        self.state = state

    def scope(self, user: User, client_id: uuid.UUID | None) -> str:
        """The client the question is about ("*" for an admin's all clients); 403/404."""
        if client_id is None:
            if user.role == "admin":
                return ALL_CLIENTS
            if user.client_id is None:
                raise ApiError(403, "Not allowed to access this client")
            return visible_client(self.state, user, user.client_id).id
        return visible_client(self.state, user, str(client_id)).id

    def records(self, key: str) -> tuple[list[Workflow], list[Execution]]:
        store = self.state.store
        if key == ALL_CLIENTS:
            runs = [r for client_runs in store.executions.values() for r in client_runs]
            runs.sort(key=lambda r: r.started_at, reverse=True)
            return list(store.workflows.values()), runs
        return store.client_workflows(key), store.executions.get(key, [])

    async def cached(self, kind: str, key: str, compute: Callable[[str], Any]) -> Response:
        """The cached answer (a quick hit) or a computed one (a slower miss, then kept)."""
        cache, times = self.state.cache, self.state.times
        data = cache.get(kind, key)
        if data is not None:
            await times.sleep(RouteClass.CACHE_HIT)
            return ok(data)
        await times.sleep(RouteClass.CACHE_MISS)
        if key != ALL_CLIENTS and key not in self.state.store.clients:
            raise ApiError(404, "Client not found")  # deleted while we were computing
        data = compute(key)
        cache.put(kind, key, data)
        return ok(data)


def _client_field(key: str) -> str | None:
    return None if key == ALL_CLIENTS else key


def add_routes(api: APIRouter, state: TargetState) -> None:
    store, times, cache = state.store, state.times, state.cache
    queries = _Queries(state)
    scope, records, cached = queries.scope, queries.records, queries.cached

    @api.get("/api/v1/metrics/overview", tags=["metrics"])
    async def overview(user: SignedIn, client_id: ClientIdQuery = None) -> Response:
        return await cached(
            "overview",
            scope(user, client_id),
            lambda key: metrics.overview(_client_field(key), *records(key)),
        )

    @api.get("/api/v1/metrics/workflows", tags=["metrics"])
    async def workflow_metrics(user: SignedIn, client_id: ClientIdQuery = None) -> Response:
        return await cached(
            "workflows",
            scope(user, client_id),
            lambda key: {"client_id": _client_field(key), **metrics.workflow_stats(*records(key))},
        )

    @api.get("/api/v1/metrics/execution-stats", tags=["metrics"])
    async def execution_stats(user: SignedIn, client_id: ClientIdQuery = None) -> Response:
        return await cached(
            "execution-stats",
            scope(user, client_id),
            lambda key: {
                "client_id": _client_field(key),
                **metrics.execution_stats(records(key)[1]),
            },
        )

    @api.get("/api/v1/metrics/executions", tags=["metrics"])
    async def executions(
        user: SignedIn,
        client_id: ClientIdQuery = None,
        limit: PageLimit = 20,
        offset: PageOffset = 0,
        status: StatusQuery | None = None,
    ) -> Response:
        key = scope(user, client_id)
        await times.sleep(RouteClass.LIST)
        return ok(metrics.filter_executions(records(key)[1], status, limit, offset))

    @api.get("/api/v1/metrics/historical", tags=["metrics"])
    async def historical(
        user: SignedIn,
        client_id: ClientIdQuery = None,
        period: metrics.Period = "day",
        start_date: date | None = None,
        end_date: date | None = None,
    ) -> Response:
        key = scope(user, client_id)
        end = end_date or datetime.now(UTC).date()
        start = start_date or end - timedelta(days=DEFAULT_HISTORY_DAYS - 1)
        problem = metrics.history_error(period, start, end)
        if problem is not None:
            raise ApiError(
                422,
                "Validation error",
                errors=[{"field": "query.end_date", "message": problem, "type": "value_error"}],
            )
        await times.sleep_historical(metrics.range_days(start, end))
        data = metrics.historical(key, period, start, end, state.settings.seed)
        return ok({"client_id": _client_field(key), **data})

    @api.get("/api/v1/metrics/data-freshness", tags=["metrics"])
    async def data_freshness(
        user: SignedIn, limit: PageLimit = 50, offset: PageOffset = 0
    ) -> Response:
        await times.sleep(RouteClass.SIMPLE_GET)
        now = datetime.now(UTC)
        if user.role == "admin":
            visible = list(store.clients.values())
        else:
            own = store.clients.get(user.client_id or "")
            visible = [own] if own else []

        def freshness(client: Client) -> dict[str, Any]:
            staleness = (now - client.last_sync_at).total_seconds() if client.last_sync_at else None
            return {
                "client_id": client.id,
                "name": client.name,
                "last_sync_at": iso(client.last_sync_at),
                "staleness_s": None if staleness is None else round(staleness, 1),
                "stale": staleness is None or staleness > state.settings.stale_after_s,
            }

        return ok({**page(visible, limit, offset, freshness), "checked_at": iso(now)})

    @api.post("/api/v1/metrics/refresh-cache", tags=["metrics"])
    async def refresh_cache(
        request: Request, user: SignedIn, client_id: ClientIdQuery = None
    ) -> Response:
        key = scope(user, client_id)
        await times.sleep(RouteClass.WRITE)
        if client_id is not None and (client := store.clients.get(key)) is not None:
            state.writes.write(request, user, client.created_by)  # an action on a named id
        cleared = cache.clear() if key == ALL_CLIENTS else cache.clear_client(key)
        return ok({"refreshed": True, "cleared": cleared})
