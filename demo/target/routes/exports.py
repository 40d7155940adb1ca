"""`GET /api/v1/clients/{client_id}/export`: a client's executions as a CSV download.

Its Content-Disposition names the file in German, like the backend this sandbox imitates:
`filename="Ausführungsbericht-<client>-<date>.csv"` goes out as ISO-8859-1 bytes (what
Starlette, like most servers, writes header values as), with the RFC 6266 `filename*`
UTF-8 form beside it, so a capture meets non-ASCII header bytes.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from starlette.responses import Response

from tracereplay.demo.target.auth import SignedIn, visible_client
from tracereplay.demo.target.routes.metrics import StatusQuery
from tracereplay.demo.target.service_time import RouteClass
from tracereplay.demo.target.state import TargetState
from tracereplay.demo.target.store import Execution

EXPORT_MAX_DAYS = 30
REPORT_NAME = "Ausführungsbericht"
_COLUMNS = ("id", "workflow_id", "status", "mode", "started_at", "finished_at", "duration_ms")
_UNSAFE = re.compile(r'[\s"\\/;,]+')


def export_filename(client_name: str, day: str) -> str:
    """`Ausführungsbericht-<name>-<day>.csv`, with what the quoted form cannot hold
    (quotes, separators, characters beyond Latin-1) replaced."""
    name = _UNSAFE.sub("-", client_name).strip("-")
    name = name.encode("latin-1", "replace").decode("latin-1").replace("?", "_")
    return f"{REPORT_NAME}-{name or 'client'}-{day}.csv"


def content_disposition(filename: str) -> str:
    """An attachment header value: the Latin-1 `filename` and the UTF-8 `filename*`."""
    return f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"


def executions_csv(runs: list[Execution]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_COLUMNS)
    for run in runs:
        view = run.view()
        writer.writerow(["" if view[c] is None else view[c] for c in _COLUMNS])
    return out.getvalue().encode("utf-8")


def add_routes(api: APIRouter, state: TargetState) -> None:
    store, times = state.store, state.times

    @api.get("/api/v1/clients/{client_id}/export", tags=["clients"])
    async def export_executions(
        client_id: uuid.UUID,
        user: SignedIn,
        days: Annotated[int, Query(ge=1, le=EXPORT_MAX_DAYS)] = 7,
        status: StatusQuery | None = None,
    ) -> Response:
        client = visible_client(state, user, str(client_id))
        await times.sleep(RouteClass.EXPORT)
        now = datetime.now(UTC)
        since = now - timedelta(days=days)
        runs = [
            r
            for r in store.executions.get(client.id, [])
            if r.started_at >= since and (status is None or r.status == status)
        ]
        filename = export_filename(client.name, now.date().isoformat())
        return Response(
            executions_csv(runs),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": content_disposition(filename)},
        )
