"""Routes for a client's n8n integration: configure, test-connection, sync.

They live under /api/v1/clients/{client_id}/; admins or the client's own users may call them.
All three are writes to the client (audit.py). A client's first sync finds its n8n
workflows and adds them, created by the user who synced.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from tracereplay.demo.target.auth import SignedIn, visible_client
from tracereplay.demo.target.envelope import ApiError, ok
from tracereplay.demo.target.schemas import N8nConfig
from tracereplay.demo.target.service_time import RouteClass
from tracereplay.demo.target.state import TargetState
from tracereplay.demo.target.store import N8N_VERSION, Client, iso, synced_workflows


def add_routes(api: APIRouter, state: TargetState) -> None:
    store, times = state.store, state.times

    @api.post("/api/v1/clients/{client_id}/configure", tags=["n8n"])
    async def configure(
        request: Request, client_id: uuid.UUID, user: SignedIn, body: N8nConfig
    ) -> Response:
        visible_client(state, user, str(client_id))
        await times.sleep(RouteClass.WRITE)
        client = visible_client(state, user, str(client_id))
        state.writes.write(request, user, client.created_by)
        client.n8n_url, client.n8n_api_key = body.n8n_url.rstrip("/"), body.n8n_api_key
        client.updated_at = datetime.now(UTC)
        return ok(client.view())

    @api.post("/api/v1/clients/{client_id}/test-connection", tags=["n8n"])
    async def test_connection(request: Request, client_id: uuid.UUID, user: SignedIn) -> Response:
        client = _configured(visible_client(state, user, str(client_id)))
        state.writes.write(request, user, client.created_by)
        latency_s = times.sample_s(RouteClass.TEST_CONNECTION)
        await times.pause(latency_s)
        return ok(
            {
                "connected": True,
                "latency_ms": round(latency_s * 1000, 1),
                "n8n_version": N8N_VERSION,
                "n8n_url": client.n8n_url,
            }
        )

    @api.post("/api/v1/clients/{client_id}/sync", tags=["n8n"])
    async def sync(request: Request, client_id: uuid.UUID, user: SignedIn) -> Response:
        _configured(visible_client(state, user, str(client_id)))
        await times.sleep(RouteClass.SYNC)
        client = _configured(visible_client(state, user, str(client_id)))
        state.writes.write(request, user, client.created_by)
        client.last_sync_at = datetime.now(UTC)
        state.cache.clear_client(client.id)
        workflows = store.client_workflows(client.id)
        if not workflows:
            workflows = synced_workflows(state.settings.seed, client, user.id, client.last_sync_at)
            store.workflows.update((w.id, w) for w in workflows)
        return ok(
            {
                "synced_workflows": len(workflows),
                "synced_executions": len(store.executions.get(client.id, [])),
                "last_sync_at": iso(client.last_sync_at),
            }
        )


def _configured(client: Client) -> Client:
    if not client.n8n_configured:
        raise ApiError(400, "n8n is not configured for this client")
    return client
