"""The sandbox target as an ASGI app: `create_app(settings)` wires state, routes, errors.

A tiny pure-ASGI middleware counts answers by status class for the detailed health route.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracereplay import __version__
from tracereplay.demo.target.envelope import install_error_handlers
from tracereplay.demo.target.routes import (
    auth,
    clients,
    exports,
    metrics,
    n8n,
    system,
    workflows,
)
from tracereplay.demo.target.settings import TargetSettings
from tracereplay.demo.target.state import RequestCounters, TargetState


class CountRequests:
    """Counts every HTTP answer by status class without touching the body."""

    def __init__(self, app: ASGIApp, counters: RequestCounters) -> None:
        self.app = app
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counters = self.counters
        counters.total += 1

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                counters.by_status[f"{message['status'] // 100}xx"] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


def create_app(settings: TargetSettings, *, now: datetime | None = None) -> FastAPI:
    """The target app with its own freshly seeded state (`now` pins the data's clock)."""
    state = TargetState.from_settings(settings, now)
    app = FastAPI(
        title="FlowMastery sandbox",
        version=__version__,
        description="A FlowMastery-like n8n platform API with seeded in-memory data.",
        # The sandbox exports no telemetry: skip FastAPI's per-request OpenTelemetry checks.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.target = state
    # Routes go straight onto the app's router: FastAPI matches an included router as a
    # second, nested pass on every request (measured here: ~10-40 µs more per request).
    for module in (system, auth, clients, n8n, exports, metrics, workflows):
        module.add_routes(app.router, state)
    install_error_handlers(app)
    app.add_middleware(CountRequests, counters=state.counters)
    return app
