"""Routes under /api/v1/workflows: the workflows a user may see, one workflow, and edits.

Admins see every client's workflows; a client user those of their own client.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from tracereplay.demo.target.auth import SignedIn, require_client_access
from tracereplay.demo.target.envelope import ApiError, ok
from tracereplay.demo.target.pagination import PageLimit, PageOffset, page
from tracereplay.demo.target.schemas import WorkflowPatch
from tracereplay.demo.target.service_time import RouteClass
from tracereplay.demo.target.state import TargetState
from tracereplay.demo.target.store import User, Workflow


def add_routes(api: APIRouter, state: TargetState) -> None:
    store, times = state.store, state.times

    def owned_workflow(user: User, workflow_id: uuid.UUID) -> Workflow:
        workflow = store.workflows.get(str(workflow_id))
        if workflow is None:
            raise ApiError(404, "Workflow not found")
        require_client_access(user, workflow.client_id)
        return workflow

    @api.get("/api/v1/workflows/", tags=["workflows"])
    async def list_workflows(
        user: SignedIn,
        client_id: uuid.UUID | None = None,
        active: bool | None = None,
        limit: PageLimit = 50,
        offset: PageOffset = 0,
    ) -> Response:
        if client_id is not None:
            require_client_access(user, str(client_id))
            if str(client_id) not in store.clients:
                raise ApiError(404, "Client not found")
        await times.sleep(RouteClass.LIST)
        wanted = str(client_id) if client_id else (None if user.role == "admin" else user.client_id)
        chosen = [
            w
            for w in store.workflows.values()
            if (wanted is None or w.client_id == wanted) and (active is None or w.active == active)
        ]
        return ok(page(chosen, limit, offset, Workflow.view))

    @api.get("/api/v1/workflows/{workflow_id}", tags=["workflows"])
    async def get_workflow(workflow_id: uuid.UUID, user: SignedIn) -> Response:
        workflow = owned_workflow(user, workflow_id)
        await times.sleep(RouteClass.SIMPLE_GET)
        return ok(workflow.view())

    @api.patch("/api/v1/workflows/{workflow_id}", tags=["workflows"])
    async def patch_workflow(
        request: Request, workflow_id: uuid.UUID, user: SignedIn, body: WorkflowPatch
    ) -> Response:
        owned_workflow(user, workflow_id)
        await times.sleep(RouteClass.WRITE)
        workflow = owned_workflow(user, workflow_id)
        state.writes.write(request, user, workflow.created_by)
        if body.name is not None:
            workflow.name = body.name
        if body.active is not None:
            workflow.active = body.active
        workflow.updated_at = datetime.now(UTC)
        state.cache.clear_client(workflow.client_id)
        return ok(workflow.view())
