"""Health, audit and cache routes: /health, /api/v1/system/health[/detailed],
/api/v1/system/audit, /api/v1/cache/*.

The detailed health, the audit and cache management are admin-only; the rest is open or
signed-in.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from tracereplay import __version__
from tracereplay.demo.target.audit import audit_view
from tracereplay.demo.target.auth import SignedIn, require_admin, visible_client
from tracereplay.demo.target.envelope import ok
from tracereplay.demo.target.service_time import RouteClass
from tracereplay.demo.target.state import TargetState

_HEALTHY = ok({"status": "healthy"}).body  # the hot path answers pre-rendered bytes


def add_routes(api: APIRouter, state: TargetState) -> None:
    store, times, cache = state.store, state.times, state.cache

    @api.get("/health", tags=["system"])
    async def health() -> Response:
        await times.sleep(RouteClass.SIMPLE_GET)
        return Response(_HEALTHY, media_type="application/json")

    @api.get("/api/v1/system/health", tags=["system"])
    async def system_health() -> Response:
        await times.sleep(RouteClass.SIMPLE_GET)
        return ok({"status": "healthy", "version": __version__, "uptime_s": state.uptime_s()})

    @api.get("/api/v1/system/health/detailed", tags=["system"])
    async def system_health_detailed(user: SignedIn) -> Response:
        require_admin(user)
        await times.sleep(RouteClass.HEALTH_CHECK)
        configured = sum(1 for c in store.clients.values() if c.n8n_configured)
        counters = state.counters
        return ok(
            {
                "status": "healthy",
                "version": __version__,
                "uptime_s": state.uptime_s(),
                "components": {
                    "database": {
                        "status": "healthy",
                        "latency_ms": _ms(times.sample_s(RouteClass.SIMPLE_GET)),
                        "clients": len(store.clients),
                        "workflows": len(store.workflows),
                        "executions": sum(len(runs) for runs in store.executions.values()),
                    },
                    "cache": {
                        "status": "healthy",
                        "latency_ms": _ms(times.sample_s(RouteClass.CACHE_HIT)),
                        **cache.stats(),
                    },
                    "n8n": {
                        "status": "healthy" if configured else "unconfigured",
                        "latency_ms": _ms(times.sample_s(RouteClass.TEST_CONNECTION)),
                        "configured_clients": configured,
                    },
                },
                "requests": {"total": counters.total, "by_status": dict(counters.by_status)},
            }
        )

    @api.get("/api/v1/system/audit", tags=["system"])
    async def system_audit(user: SignedIn) -> Response:
        """Writes to objects another account (or the seed) created, and object counts."""
        require_admin(user)
        return ok(audit_view(state.writes, store))

    @api.get("/api/v1/cache/stats", tags=["cache"])
    async def cache_stats(user: SignedIn) -> Response:
        await times.sleep(RouteClass.CACHE_HIT)
        return ok(cache.stats())

    @api.delete("/api/v1/cache/clear", tags=["cache"])
    async def cache_clear(user: SignedIn) -> Response:
        require_admin(user)
        await times.sleep(RouteClass.WRITE)
        return ok({"cleared": cache.clear()})

    @api.delete("/api/v1/cache/client/{client_id}", tags=["cache"])
    async def cache_clear_client(
        request: Request, client_id: uuid.UUID, user: SignedIn
    ) -> Response:
        require_admin(user)
        client = visible_client(state, user, str(client_id))
        await times.sleep(RouteClass.WRITE)
        state.writes.write(request, user, client.created_by)
        return ok({"cleared": cache.clear_client(client.id)})


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
