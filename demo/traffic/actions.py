"""What each action of a staging session sends, and which answers it remembers.

No locust here: requests go through a `Caller` (the Locust user's HTTP client in a run, a
fake in tests). Ids always come from the server's answers, so correlations are real.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from faker import Faker

from tracereplay.demo.traffic.behaviors import ACTIONS, PAGE_GAP, PREREQUISITE, Behavior, choose
from tracereplay.demo.traffic.settings import StagingAccount

EXPORT_DAYS = {"1": 0.3, "7": 0.6, "30": 0.1}
EXECUTION_STATUS = {"": 0.5, "success": 0.2, "error": 0.15, "running": 0.1, "waiting": 0.05}
HISTORY_PERIOD = {"day": 0.45, "hour": 0.2, "week": 0.2, "month": 0.15}
HISTORY_DAYS = {"hour": (1, 7), "day": (7, 90), "week": (28, 182), "month": (90, 730)}
WORKFLOW_ACTIVE = {"": 0.6, "true": 0.3, "false": 0.1}
REFRESH_MARGIN_S = 60.0  # refresh the access token this long before it expires


@dataclass(frozen=True)
class Answer:
    """What the caller got back: success, HTTP status and the envelope's `data`."""

    ok: bool
    status: int
    data: Any


class Caller(Protocol):
    def __call__(
        self,
        method: str,
        route: str,
        *,
        ids: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send `method` to `route` (a path template) with `ids` filled in."""


@dataclass
class Visit:
    """One session's state: its tokens and the ids the server has shown it."""

    behavior: Behavior
    own_client_id: str | None = None
    access_token: str = ""
    refresh_token: str = ""
    token_expires_at: float = 0.0
    focus: str | None = None
    clients: list[str] = field(default_factory=list)
    configured: dict[str, bool] = field(default_factory=dict)
    workflows: dict[str, bool] = field(default_factory=dict)
    next_executions: dict[str, str | int] | None = None
    created: list[str] = field(default_factory=list)


class SessionScript:
    """Plays one session's actions through `call`; `pause` sleeps (gevent in a run)."""

    def __init__(
        self,
        behavior: Behavior,
        call: Caller,
        rng: random.Random,
        fake: Faker,
        pause: Callable[[float], None],
        clock: Callable[[], float],
        created_by_staging: set[str],
    ) -> None:
        self.visit = Visit(behavior)
        self.call, self.rng, self.fake, self.pause, self.clock = call, rng, fake, pause, clock
        # Every client any seat created in this run (shared): see `_foreign`.
        self.created_by_staging = created_by_staging

    @property
    def is_admin(self) -> bool:
        return self.visit.behavior.role == "admin"

    @property
    def headers(self) -> dict[str, str]:
        if self.visit.behavior.kind == "api" and self.visit.access_token:
            return {"Authorization": f"Bearer {self.visit.access_token}"}
        return {}  # browsers send the cookies the login set

    def send(self, method: str, route: str, **kwargs: Any) -> Answer:
        return self.call(method, route, headers=self.headers, **kwargs)

    # -- session frame -----------------------------------------------------------------

    def login(self, account: StagingAccount) -> bool:
        body = {"email": account.email, "password": account.password}
        answer = self.call("POST", "/api/v1/auth/login", json=body)
        if not answer.ok or not isinstance(answer.data, dict):
            return False
        self._take_tokens(answer.data)
        user = answer.data.get("user") or {}
        self.visit.own_client_id = user.get("client_id")
        if not self.is_admin:
            self.visit.focus = self.visit.own_client_id
        return True

    def logout(self) -> None:
        """Browsers send the refresh cookie along (its path is /api/v1/auth); API clients
        hand their refresh token back in the body, so the target can revoke it."""
        body = None
        if self.visit.behavior.kind == "api" and self.visit.refresh_token:
            body = {"refresh_token": self.visit.refresh_token}
        self.send("POST", "/api/v1/auth/logout", json=body)

    def run(self, action: str) -> list[str]:
        """Run `action`, first what it needs (a think time apart); returns what ran.

        A prerequisite whose answer did not bring the missing data is not retried: the
        action is then skipped, so a failing target cannot make a session spin.
        """
        if self.clock() > self.visit.token_expires_at - REFRESH_MARGIN_S:
            self.refresh_token()
        done: list[str] = []
        while True:
            step = action
            while (needed := self._missing(step)) is not None:
                step = needed
            if step in done:
                return done
            if done:
                self.pause(self.visit.behavior.think.sample(self.rng))
            getattr(self, step)()
            done.append(step)
            if step == action:
                return done

    def _missing(self, action: str) -> str | None:
        """What to run before `action` because data it needs is not known (None: nothing)."""
        v = self.visit
        if action in ("test_connection", "sync") and v.configured.get(v.focus or "") is None:
            return "client"  # learn whether n8n is configured first
        ready = {
            "client": self._has_client_target(),
            "export": self._has_client_target(),
            "update_client": self._has_client_target(),
            "configure_n8n": self._has_client_target(),
            "test_connection": bool(v.configured.get(v.focus or "")),
            "sync": bool(v.configured.get(v.focus or "")),
            "delete_client": bool(v.created),
            "executions_more": v.next_executions is not None,
            "workflow": bool(v.workflows),
            "toggle_workflow": bool(v.workflows),
        }
        return None if ready.get(action, True) else PREREQUISITE[action]

    def _foreign(self, client_id: str) -> bool:
        """Created by another seat (or an earlier session), which may delete it any time."""
        return client_id in self.created_by_staging and client_id not in self.visit.created

    def _take_tokens(self, data: Mapping[str, Any]) -> None:
        self.visit.access_token = str(data.get("access_token", ""))
        self.visit.refresh_token = str(data.get("refresh_token", ""))
        self.visit.token_expires_at = self.clock() + float(data.get("expires_in", 900))

    def _page_gap(self) -> None:
        self.pause(PAGE_GAP.sample(self.rng))

    def _client_target(self, *, browse: bool = False) -> str | None:
        """The client a client-level action is about: a client user's own; an admin's
        focus, else (or when `browse`-ing to another) one seen in a list."""
        v = self.visit
        if not self.is_admin:
            return v.own_client_id
        seen = [c for c in v.clients if not self._foreign(c)]
        if v.focus is not None and not (browse and seen):
            return v.focus
        return self.rng.choice(seen) if seen else None

    def _has_client_target(self) -> bool:
        v = self.visit
        if not self.is_admin:
            return v.own_client_id is not None
        return v.focus is not None or any(not self._foreign(c) for c in v.clients)

    def _scope(self) -> dict[str, str | int]:
        """client_id for metrics: a client user's own; an admin's focus, or all clients."""
        v = self.visit
        if not self.is_admin:
            return {"client_id": v.own_client_id} if v.own_client_id else {}
        if v.focus is not None and self.rng.random() < 0.75:
            return {"client_id": v.focus}
        return {}

    def _remember_clients(self, items: Any) -> None:
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict) and "id" in item:
                client_id = str(item["id"])
                if client_id not in self.visit.clients:
                    self.visit.clients.append(client_id)
                self.visit.configured[client_id] = bool(item.get("n8n_configured"))

    # -- actions (names as in behaviors.ACTIONS) -----------------------------------------

    def me(self) -> None:
        self.send("GET", "/api/v1/auth/me")

    def clients(self) -> None:
        params: dict[str, str | int] = {}
        if self.is_admin:
            params["limit"] = self.rng.choice((10, 20, 50))
            roll = self.rng.random()
            if roll < 0.2 and self.visit.clients:
                params["offset"] = self.rng.choice((10, 20))
            elif roll < 0.4:
                params["search"] = self.fake.last_name()[:4].lower()
        answer = self.send("GET", "/api/v1/clients/", params=params)
        if answer.ok and isinstance(answer.data, dict):
            self._remember_clients(answer.data.get("items", []))

    def client(self) -> None:
        target = self._client_target(browse=True)
        assert target is not None
        answer = self.send("GET", "/api/v1/clients/{client_id}", ids={"client_id": target})
        self.visit.focus = target
        if answer.ok:
            self._remember_clients(answer.data)

    def create_client(self) -> None:
        fake = self.fake
        body = {
            "name": fake.name(),
            "email": fake.email(),
            "phone": fake.phone_number(),
            "company": fake.company(),
            "notes": f"Contact {fake.name()} ({fake.phone_number()}); {fake.sentence()}",
        }
        answer = self.send("POST", "/api/v1/clients/", json=body)
        if answer.ok and isinstance(answer.data, dict):
            client_id = str(answer.data["id"])
            self.visit.created.append(client_id)
            self.created_by_staging.add(client_id)
            self._remember_clients(answer.data)
            self.visit.focus = client_id

    def _own_or_target(self) -> str:
        v = self.visit
        if v.created and self.rng.random() < 0.6:
            return self.rng.choice(v.created)
        target = self._client_target()
        assert target is not None
        return target

    def update_client(self) -> None:
        target = self._own_or_target()
        fields = {
            "name": self.fake.name,
            "email": self.fake.email,
            "phone": self.fake.phone_number,
            "company": self.fake.company,
            "notes": self.fake.sentence,
        }
        chosen = self.rng.sample(sorted(fields), self.rng.randint(1, 3))
        body = {name: fields[name]() for name in chosen}
        ids = {"client_id": target}
        answer = self.send("PUT", "/api/v1/clients/{client_id}", ids=ids, json=body)
        if answer.ok:
            self._remember_clients(answer.data)

    def delete_client(self) -> None:
        v = self.visit
        target = v.created.pop(self.rng.randrange(len(v.created)))
        self.send("DELETE", "/api/v1/clients/{client_id}", ids={"client_id": target})
        v.clients = [c for c in v.clients if c != target]
        v.focus = None if v.focus == target else v.focus

    def dashboard(self) -> None:
        scope = self._scope()
        self.send("GET", "/api/v1/metrics/overview", params=scope)
        self._page_gap()
        self.send("GET", "/api/v1/metrics/execution-stats", params=scope)
        self._page_gap()
        self.send("GET", "/api/v1/metrics/workflows", params=scope)

    def overview(self) -> None:
        self.send("GET", "/api/v1/metrics/overview", params=self._scope())

    def workflow_metrics(self) -> None:
        self.send("GET", "/api/v1/metrics/workflows", params=self._scope())

    def execution_stats(self) -> None:
        self.send("GET", "/api/v1/metrics/execution-stats", params=self._scope())

    def executions(self) -> None:
        params = {**self._scope(), "limit": self.rng.choice((10, 20, 25, 50)), "offset": 0}
        status = choose(self.rng, EXECUTION_STATUS)
        if status:
            params["status"] = status
        self._read_executions(params)

    def executions_more(self) -> None:
        assert self.visit.next_executions is not None
        self._read_executions(self.visit.next_executions)

    def _read_executions(self, params: dict[str, str | int]) -> None:
        answer = self.send("GET", "/api/v1/metrics/executions", params=params)
        self.visit.next_executions = None
        if answer.ok and isinstance(answer.data, dict):
            offset = int(params["offset"]) + int(params["limit"])
            if offset < int(answer.data.get("total", 0)):
                self.visit.next_executions = {**params, "offset": offset}

    def export(self) -> None:
        """The executions CSV of the client in view (its filename header is Latin-1)."""
        target = self._client_target()
        assert target is not None
        params: dict[str, str | int] = {"days": choose(self.rng, EXPORT_DAYS)}
        if self.rng.random() < 0.3:
            params["status"] = self.rng.choice(("success", "error"))
        ids = {"client_id": target}
        self.send("GET", "/api/v1/clients/{client_id}/export", ids=ids, params=params)

    def historical(self) -> None:
        period = choose(self.rng, HISTORY_PERIOD)
        params: dict[str, str | int] = {**self._scope(), "period": period}
        if self.rng.random() < 0.85:
            low, high = HISTORY_DAYS[period]
            end = datetime.now(UTC).date()
            if self.rng.random() < 0.3:
                end -= timedelta(days=self.rng.randint(1, 30))
            start = end - timedelta(days=self.rng.randint(low, high) - 1)
            params["start_date"], params["end_date"] = start.isoformat(), end.isoformat()
        self.send("GET", "/api/v1/metrics/historical", params=params)

    def freshness(self) -> None:
        self.send("GET", "/api/v1/metrics/data-freshness")

    def refresh_cache(self) -> None:
        self.send("POST", "/api/v1/metrics/refresh-cache", params=self._scope())

    def workflows(self) -> None:
        params: dict[str, str | int] = {}
        target = self.visit.focus if self.is_admin else self.visit.own_client_id
        if target is not None and (not self.is_admin or self.rng.random() < 0.7):
            params["client_id"] = target
        active = choose(self.rng, WORKFLOW_ACTIVE)
        if active:
            params["active"] = active
        answer = self.send("GET", "/api/v1/workflows/", params=params)
        if answer.ok and isinstance(answer.data, dict):
            items = [i for i in answer.data.get("items", []) if isinstance(i, dict)]
            self.visit.workflows = {str(i["id"]): bool(i.get("active")) for i in items}

    def _pick_workflow(self) -> str:
        return self.rng.choice(sorted(self.visit.workflows))

    def workflow(self) -> None:
        ids = {"workflow_id": self._pick_workflow()}
        answer = self.send("GET", "/api/v1/workflows/{workflow_id}", ids=ids)
        if answer.ok and isinstance(answer.data, dict):
            self.visit.workflows[ids["workflow_id"]] = bool(answer.data.get("active"))

    def toggle_workflow(self) -> None:
        workflow_id = self._pick_workflow()
        body = {"active": not self.visit.workflows[workflow_id]}
        ids = {"workflow_id": workflow_id}
        answer = self.send("PATCH", "/api/v1/workflows/{workflow_id}", ids=ids, json=body)
        if answer.ok and isinstance(answer.data, dict):
            self.visit.workflows[workflow_id] = bool(answer.data.get("active"))

    def configure_n8n(self) -> None:
        target = self._own_or_target()
        host = self.rng.choice(("n8n", "automation", "workflows", "flows"))
        body = {
            "n8n_url": f"https://{host}.{self.fake.domain_name()}",
            "n8n_api_key": f"n8n_api_{self.fake.sha256()[:40]}",
        }
        ids = {"client_id": target}
        answer = self.send("POST", "/api/v1/clients/{client_id}/configure", ids=ids, json=body)
        self.visit.focus = target
        if answer.ok:
            self._remember_clients(answer.data)
            self._page_gap()
            self.test_connection()

    def test_connection(self) -> None:
        ids = {"client_id": self.visit.focus or ""}
        self.send("POST", "/api/v1/clients/{client_id}/test-connection", ids=ids)

    def sync(self) -> None:
        ids = {"client_id": self.visit.focus or ""}
        self.send("POST", "/api/v1/clients/{client_id}/sync", ids=ids)

    def health(self) -> None:
        if self.visit.behavior.kind == "api" and self.rng.random() < 0.5:
            self.send("GET", "/health")
        else:
            self.send("GET", "/api/v1/system/health")

    def health_detailed(self) -> None:
        self.send("GET", "/api/v1/system/health/detailed")

    def cache_stats(self) -> None:
        self.send("GET", "/api/v1/cache/stats")

    def cache_clear(self) -> None:
        target = self.visit.focus
        if target is not None and self.rng.random() < 0.6:
            self.send("DELETE", "/api/v1/cache/client/{client_id}", ids={"client_id": target})
        else:
            self.send("DELETE", "/api/v1/cache/clear")

    def refresh_token(self) -> None:
        if self.visit.behavior.kind == "api":
            body: dict[str, str] | None = {"refresh_token": self.visit.refresh_token}
        else:
            body = None  # the browser's refresh_token cookie (path /api/v1/auth) goes along
        answer = self.send("POST", "/api/v1/auth/refresh", json=body)
        if answer.ok and isinstance(answer.data, dict):
            self._take_tokens(answer.data)


assert all(callable(getattr(SessionScript, name, None)) for name in ACTIONS)
