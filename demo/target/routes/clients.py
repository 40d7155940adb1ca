"""Routes under /api/v1/clients: list, create, read, update, delete.

Admins manage every client; a client user reads and edits only their own.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from tracereplay.demo.accounts import seeded_uuid
from tracereplay.demo.target.auth import SignedIn, require_admin, visible_client
from tracereplay.demo.target.envelope import ok
from tracereplay.demo.target.pagination import PageLimit, PageOffset, page
from tracereplay.demo.target.schemas import ClientCreate, ClientUpdate
from tracereplay.demo.target.service_time import RouteClass
from tracereplay.demo.target.state import TargetState
from tracereplay.demo.target.store import Client


def add_routes(api: APIRouter, state: TargetState) -> None:
    store, times = state.store, state.times
    new_ids = random.Random(state.settings.seed + 1)  # created clients get seeded ids too

    @api.get("/api/v1/clients/", tags=["clients"])
    async def list_clients(
        user: SignedIn,
        limit: PageLimit = 20,
        offset: PageOffset = 0,
        search: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        await times.sleep(RouteClass.LIST)
        if user.role == "admin":
            chosen = list(store.clients.values())
        else:
            own = store.clients.get(user.client_id or "")
            chosen = [own] if own else []
        if search:
            needle = search.lower()
            chosen = [c for c in chosen if needle in _haystack(c)]
        chosen.sort(key=lambda c: (c.name.lower(), c.id))
        return ok(page(chosen, limit, offset, Client.view))

    @api.post("/api/v1/clients/", status_code=201, tags=["clients"])
    async def create_client(user: SignedIn, body: ClientCreate) -> Response:
        require_admin(user)
        await times.sleep(RouteClass.WRITE)
        now = datetime.now(UTC)
        client = Client(
            id=seeded_uuid(new_ids),
            created_at=now,
            updated_at=now,
            created_by=user.id,
            **body.model_dump(),
        )
        store.clients[client.id] = client
        store.executions[client.id] = []
        return ok(client.view(), status_code=201)

    @api.get("/api/v1/clients/{client_id}", tags=["clients"])
    async def get_client(client_id: uuid.UUID, user: SignedIn) -> Response:
        client = visible_client(state, user, str(client_id))
        await times.sleep(RouteClass.SIMPLE_GET)
        return ok(client.view())

    @api.put("/api/v1/clients/{client_id}", tags=["clients"])
    async def update_client(
        request: Request, client_id: uuid.UUID, user: SignedIn, body: ClientUpdate
    ) -> Response:
        visible_client(state, user, str(client_id))
        await times.sleep(RouteClass.WRITE)
        client = visible_client(state, user, str(client_id))  # it may be gone meanwhile
        state.writes.write(request, user, client.created_by)
        for name, value in body.model_dump(exclude_unset=True).items():
            if name == "name" and value is None:
                continue  # a client always has a name; null means "leave it"
            setattr(client, name, value)
        client.updated_at = datetime.now(UTC)
        state.cache.clear_client(client.id)
        return ok(client.view())

    @api.delete("/api/v1/clients/{client_id}", tags=["clients"])
    async def delete_client(request: Request, client_id: uuid.UUID, user: SignedIn) -> Response:
        require_admin(user)
        visible_client(state, user, str(client_id))
        await times.sleep(RouteClass.WRITE)
        client = visible_client(state, user, str(client_id))
        state.writes.write(request, user, client.created_by)
        store.delete_client(str(client_id))
        state.cache.clear_client(str(client_id))
        return ok({"deleted": True, "id": str(client_id)})


def _haystack(client: Client) -> str:
    return " ".join(filter(None, (client.name, client.email, client.company))).lower()
