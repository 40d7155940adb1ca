"""The target's in-memory data: users, clients, workflows, executions, seeded from one seed.

Plain records and pure functions that build, find and render them; no web code here.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from faker import Faker

from tracereplay.demo.accounts import Role, sandbox_accounts, sandbox_client_ids, seeded_uuid
from tracereplay.demo.target.passwords import hash_password

ExecutionStatus = Literal["success", "error", "running", "waiting"]
EXECUTION_STATUSES: tuple[ExecutionStatus, ...] = ("success", "error", "running", "waiting")
HISTORY_DAYS = 30  # executions are kept for the last 30 days
N8N_VERSION = "1.64.3"
SEED_CREATOR = "seed"
"""`created_by` of the seeded records: no account created them."""
_USER_NAMESPACE = uuid.UUID("5f0c1c8e-3a53-4c52-9d3e-6a1bc1b0e7a1")
_WORKFLOW_KINDS = (
    "Lead intake",
    "Invoice sync",
    "Slack alerts",
    "CRM enrichment",
    "Daily report",
    "Order fulfilment",
    "Support triage",
    "Newsletter",
    "Backup export",
    "Calendar sync",
)
_TAGS = ("sales", "ops", "finance", "support", "ai")


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, as the API writes every timestamp."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str  # PBKDF2 (passwords.py); the plaintext is never kept
    name: str
    role: Role
    client_id: str | None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "client_id": self.client_id,
        }


@dataclass
class Client:
    id: str
    name: str
    email: str | None
    phone: str | None
    company: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime
    n8n_url: str | None = None
    n8n_api_key: str | None = None  # stored, never rendered
    last_sync_at: datetime | None = None
    is_active: bool = True
    created_by: str = SEED_CREATOR  # the user id that created it (not rendered)

    @property
    def n8n_configured(self) -> bool:
        return self.n8n_url is not None and self.n8n_api_key is not None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "company": self.company,
            "notes": self.notes,
            "is_active": self.is_active,
            "n8n_url": self.n8n_url,
            "n8n_configured": self.n8n_configured,
            "last_sync_at": iso(self.last_sync_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass
class Workflow:
    id: str
    client_id: str
    n8n_workflow_id: str
    name: str
    active: bool
    node_count: int
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    created_by: str = SEED_CREATOR  # the user id whose sync created it (not rendered)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "n8n_workflow_id": self.n8n_workflow_id,
            "name": self.name,
            "active": self.active,
            "node_count": self.node_count,
            "tags": list(self.tags),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    workflow_id: str
    client_id: str
    status: ExecutionStatus
    mode: str
    started_at: datetime
    duration_ms: int | None  # None while running or waiting

    def view(self) -> dict[str, Any]:
        finished = None
        if self.duration_ms is not None:
            finished = self.started_at + timedelta(milliseconds=self.duration_ms)
        return {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "client_id": self.client_id,
            "status": self.status,
            "mode": self.mode,
            "started_at": iso(self.started_at),
            "finished_at": iso(finished),
            "duration_ms": self.duration_ms,
        }


@dataclass
class Store:
    """Everything the target knows; mutated only by the route handlers."""

    users: dict[str, User]
    clients: dict[str, Client]
    workflows: dict[str, Workflow]
    executions: dict[str, list[Execution]]  # per client, newest first
    seeded_at: datetime
    users_by_email: dict[str, User] = field(init=False)

    def __post_init__(self) -> None:
        self.users_by_email = {u.email.lower(): u for u in self.users.values()}

    def client_workflows(self, client_id: str) -> list[Workflow]:
        return [w for w in self.workflows.values() if w.client_id == client_id]

    def delete_client(self, client_id: str) -> None:
        del self.clients[client_id]
        for workflow in self.client_workflows(client_id):
            del self.workflows[workflow.id]
        self.executions.pop(client_id, None)


def user_id(email: str) -> str:
    """A user's id: stable for an email, so tokens and traces agree across restarts."""
    return str(uuid.uuid5(_USER_NAMESPACE, email.lower()))


def build_store(seed: int, now: datetime) -> Store:
    """The seeded sandbox data as of `now`: same seed, same data (times relative to now)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    users = {}
    for account in sandbox_accounts(seed):
        uid = user_id(account.email)
        user = User(
            id=uid,
            email=account.email,
            password_hash=hash_password(account.password, uuid.UUID(uid).bytes),
            name=account.name,
            role=account.role,
            client_id=account.client_id,
        )
        users[user.id] = user
    clients: dict[str, Client] = {}
    workflows: dict[str, Workflow] = {}
    executions: dict[str, list[Execution]] = {}
    for index, client_id in enumerate(sandbox_client_ids(seed)):
        created = now - timedelta(days=rng.randint(60, 720), seconds=rng.randint(0, 86_399))
        company = fake.company()
        configured = index % 3 != 2  # two clients in three have n8n set up
        client = Client(
            id=client_id,
            name=company,
            email=fake.company_email(),
            phone=fake.phone_number(),
            company=company,
            notes=fake.sentence(nb_words=8) if rng.random() < 0.5 else None,
            created_at=created,
            updated_at=created + timedelta(days=rng.randint(0, 50)),
            n8n_url=f"https://n8n.{fake.domain_word()}.example.com" if configured else None,
            n8n_api_key=fake.sha1() if configured else None,
            last_sync_at=now - timedelta(minutes=rng.randint(5, 3000)) if configured else None,
        )
        clients[client.id] = client
        client_runs: list[Execution] = []
        for workflow in _seed_workflows(rng, client, now):
            workflows[workflow.id] = workflow
            client_runs.extend(_seed_executions(rng, workflow, now))
        client_runs.sort(key=lambda e: e.started_at, reverse=True)
        executions[client.id] = client_runs
    return Store(users, clients, workflows, executions, seeded_at=now)


def _workflow(
    rng: random.Random, client: Client, kind: str, created: datetime, creator: str
) -> Workflow:
    """One n8n workflow of `client`, its details drawn from `rng`."""
    return Workflow(
        id=seeded_uuid(rng),
        client_id=client.id,
        n8n_workflow_id=f"{rng.getrandbits(48):012x}",
        name=kind,
        active=rng.random() < 0.8,
        node_count=rng.randint(3, 24),
        tags=sorted(rng.sample(_TAGS, 2)),
        created_at=created,
        updated_at=created,
        created_by=creator,
    )


def _seed_workflows(rng: random.Random, client: Client, now: datetime) -> list[Workflow]:
    kinds = rng.sample(_WORKFLOW_KINDS, rng.randint(3, 7))
    result = []
    for kind in kinds:
        created = client.created_at + timedelta(days=rng.randint(0, 40))
        workflow = _workflow(rng, client, kind, created, SEED_CREATOR)
        workflow.updated_at = min(now, created + timedelta(days=rng.randint(0, 200)))
        result.append(workflow)
    return result


def synced_workflows(seed: int, client: Client, creator: str, now: datetime) -> list[Workflow]:
    """What a client's first n8n sync finds: 2-4 workflows (the same for the same client),
    created by the user who ran the sync."""
    rng = random.Random(f"{seed}/sync/{client.id}")
    kinds = rng.sample(_WORKFLOW_KINDS, rng.randint(2, 4))
    return [_workflow(rng, client, kind, now, creator) for kind in kinds]


def _seed_executions(rng: random.Random, workflow: Workflow, now: datetime) -> list[Execution]:
    if not workflow.active:
        return []
    per_day = rng.randint(2, 24)
    success_rate = rng.uniform(0.82, 0.99)
    mean_duration_ms = rng.uniform(300, 9000)
    mode = rng.choice(["trigger", "webhook", "manual"])
    runs = []
    for _ in range(per_day * HISTORY_DAYS):
        started = now - timedelta(seconds=rng.uniform(0, HISTORY_DAYS * 86_400))
        status: ExecutionStatus = "success" if rng.random() < success_rate else "error"
        duration: int | None = max(20, int(rng.lognormvariate(0, 0.6) * mean_duration_ms))
        if now - started < timedelta(minutes=10) and rng.random() < 0.5:
            status, duration = rng.choice(("running", "waiting")), None
        runs.append(
            Execution(
                seeded_uuid(rng), workflow.id, workflow.client_id, status, mode, started, duration
            )
        )
    return runs
