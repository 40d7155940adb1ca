"""Who wrote to whose objects: the ledger behind `GET /api/v1/system/audit`.

Every record carries `created_by` (a user id, or "seed" for the seeded data). A write is
any request that changes or acts on one existing object named by id (PUT, PATCH, DELETE,
and POST actions such as configure, test-connection, sync, refresh-cache); it is counted
once it is allowed and reaches the object, as *own* when the caller's account created the
object and *foreign* otherwise. Refused writes (401/403/404/422) touch nothing and are
not counted. Tests read the counts to check that a replay wrote only to what it created
and that cleanup left the object counts as they were.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from tracereplay.demo.target.store import SEED_CREATOR, Store, User


def endpoint_of(request: Request) -> str:
    """`METHOD /route/template` of the route serving `request`."""
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


@dataclass
class WriteLedger:
    """Writes per endpoint, split by whether the writer's account created the object."""

    own: Counter[str] = field(default_factory=Counter)
    foreign: Counter[str] = field(default_factory=Counter)
    foreign_to_seeded: int = 0
    foreign_to_other_accounts: int = 0

    def record(self, endpoint: str, writer: User, created_by: str) -> None:
        if created_by == writer.id:
            self.own[endpoint] += 1
            return
        self.foreign[endpoint] += 1
        if created_by == SEED_CREATOR:
            self.foreign_to_seeded += 1
        else:
            self.foreign_to_other_accounts += 1

    def write(self, request: Request, writer: User, created_by: str) -> None:
        """Count one write by `writer` to an object `created_by` someone."""
        self.record(endpoint_of(request), writer, created_by)


def object_counts(store: Store) -> dict[str, int]:
    """How many objects of each kind the target holds now."""
    return {
        "clients": len(store.clients),
        "workflows": len(store.workflows),
        "n8n_configs": sum(1 for c in store.clients.values() if c.n8n_configured),
        "executions": sum(len(runs) for runs in store.executions.values()),
    }


def objects_by_creator(store: Store) -> dict[str, dict[str, int]]:
    """Per kind of created object, how many each creator ("seed" or a user id) made."""
    return {
        "clients": dict(Counter(c.created_by for c in store.clients.values())),
        "workflows": dict(Counter(w.created_by for w in store.workflows.values())),
    }


def audit_view(ledger: WriteLedger, store: Store) -> dict[str, Any]:
    """The `data` of `GET /api/v1/system/audit`."""
    return {
        "foreign_writes": {
            "total": sum(ledger.foreign.values()),
            "to_seeded": ledger.foreign_to_seeded,
            "to_other_accounts": ledger.foreign_to_other_accounts,
            "by_endpoint": dict(sorted(ledger.foreign.items())),
        },
        "own_writes": {
            "total": sum(ledger.own.values()),
            "by_endpoint": dict(sorted(ledger.own.items())),
        },
        "objects": object_counts(store),
        "objects_by_creator": objects_by_creator(store),
    }
