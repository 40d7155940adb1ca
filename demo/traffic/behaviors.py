"""The staging users' behaviors: who they are, what they do next, how long they think.

Pure tables and the seeded step function over them; `users.py` turns an action name into
requests. STAGING_USERS.md documents these numbers; change both together.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

Role = Literal["admin", "client"]
Kind = Literal["browser", "api"]

END = "end"
"""Pseudo-action: the session is over (it then logs out with `logout_probability`)."""

MAX_ACTIONS_PER_SESSION = 60
"""Hard cap on a session's actions, so no seat can loop for ever."""


@dataclass(frozen=True)
class Action:
    """One step of a session: a page view (browser) or one call sequence (API)."""

    requests: int
    admin_only: bool
    what: str


ACTIONS: Mapping[str, Action] = {
    "me": Action(1, False, "GET /auth/me"),
    "clients": Action(1, False, "GET /clients/ (admins page and search)"),
    "client": Action(1, False, "GET /clients/{client_id}"),
    "create_client": Action(1, True, "POST /clients/ with faker name, email, phone, company"),
    "update_client": Action(1, False, "PUT /clients/{client_id} with faker fields"),
    "delete_client": Action(1, True, "DELETE /clients/{client_id}, one the seat created"),
    "dashboard": Action(3, False, "GET metrics overview + workflows + execution-stats"),
    "overview": Action(1, False, "GET /metrics/overview"),
    "workflow_metrics": Action(1, False, "GET /metrics/workflows"),
    "execution_stats": Action(1, False, "GET /metrics/execution-stats"),
    "executions": Action(1, False, "GET /metrics/executions, first page, random status filter"),
    "executions_more": Action(1, False, "GET /metrics/executions, next page"),
    "export": Action(1, False, "GET /clients/{client_id}/export, an executions CSV"),
    "historical": Action(1, False, "GET /metrics/historical, random period and date range"),
    "freshness": Action(1, False, "GET /metrics/data-freshness"),
    "refresh_cache": Action(1, False, "POST /metrics/refresh-cache"),
    "workflows": Action(1, False, "GET /workflows/ (random active filter)"),
    "workflow": Action(1, False, "GET /workflows/{workflow_id}"),
    "toggle_workflow": Action(1, False, "PATCH /workflows/{workflow_id} {active: not active}"),
    "configure_n8n": Action(2, False, "POST configure (faker URL + key), then test-connection"),
    "test_connection": Action(1, False, "POST /clients/{client_id}/test-connection"),
    "sync": Action(1, False, "POST /clients/{client_id}/sync"),
    "health": Action(1, False, "GET /api/v1/system/health"),
    "health_detailed": Action(1, True, "GET /api/v1/system/health/detailed"),
    "cache_stats": Action(1, False, "GET /api/v1/cache/stats"),
    "cache_clear": Action(1, True, "DELETE /cache/clear, or /cache/client/{client_id}"),
    "refresh_token": Action(1, False, "POST /auth/refresh (cookie or body), rotated"),
}

PREREQUISITE: Mapping[str, str] = {
    "client": "clients",
    "export": "clients",
    "update_client": "clients",
    "configure_n8n": "clients",
    "delete_client": "create_client",
    "executions_more": "executions",
    "workflow": "workflows",
    "toggle_workflow": "workflows",
    "test_connection": "configure_n8n",
    "sync": "configure_n8n",
}
"""What a session does instead when the data an action needs is not known yet (no
client id from a list, no workflow id, no configured n8n, nothing created to delete)."""


@dataclass(frozen=True)
class LogNormal:
    """A lognormal duration in seconds, given by its median and log-sigma, capped."""

    median_s: float
    sigma: float
    max_s: float

    def sample(self, rng: random.Random) -> float:
        return min(self.max_s, rng.lognormvariate(math.log(self.median_s), self.sigma))

    @property
    def mean_s(self) -> float:
        """Mean of the uncapped distribution (the cap changes it by well under 1 %)."""
        return self.median_s * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True)
class Behavior:
    """One kind of staging user: a Locust user class and its session Markov chain."""

    name: str
    role: Role
    kind: Kind
    weight: int
    """Locust user-class weight: the share of seats with this behavior."""
    entry: Mapping[str, float]
    """First action after the login."""
    transitions: Mapping[str, Mapping[str, float]]
    """Next action (or END) after each action."""
    think: LogNormal
    """Between two actions of one session."""
    gap: LogNormal
    """Between two sessions of one seat."""
    logout_probability: float
    """Share of sessions that log out at END; the others just stop."""


BROWSER_THINK = LogNormal(median_s=2.0, sigma=0.7, max_s=20.0)
API_THINK = LogNormal(median_s=0.35, sigma=0.6, max_s=5.0)
BROWSER_GAP = LogNormal(median_s=4.0, sigma=0.8, max_s=60.0)
API_GAP = LogNormal(median_s=3.0, sigma=0.7, max_s=30.0)
PAGE_GAP = LogNormal(median_s=0.03, sigma=0.5, max_s=0.3)
"""Between the calls a browser page makes at once (dashboard, configure + test)."""

ADMIN_BROWSER = Behavior(
    name="admin_browser",
    role="admin",
    kind="browser",
    weight=3,
    entry={"me": 0.7, "clients": 0.3},
    transitions={
        "me": {"clients": 0.6, "dashboard": 0.2, "health_detailed": 0.1, "cache_stats": 0.1},
        "clients": {
            "client": 0.45, "create_client": 0.15, "clients": 0.1, "dashboard": 0.2, END: 0.1,
        },
        "client": {
            "dashboard": 0.25, "update_client": 0.15, "configure_n8n": 0.1, "workflows": 0.2,
            "export": 0.05, "clients": 0.15, END: 0.1,
        },
        "create_client": {
            "client": 0.3, "configure_n8n": 0.3, "clients": 0.15, "delete_client": 0.15, END: 0.1,
        },
        "update_client": {"client": 0.4, "clients": 0.3, "delete_client": 0.15, END: 0.15},
        "delete_client": {"clients": 0.8, END: 0.2},
        "dashboard": {
            "executions": 0.28, "historical": 0.22, "workflows": 0.15, "clients": 0.1,
            "refresh_token": 0.05, "freshness": 0.05, "refresh_cache": 0.05, END: 0.1,
        },
        "executions": {
            "executions_more": 0.3, "executions": 0.15, "export": 0.05, "historical": 0.2,
            "dashboard": 0.15, END: 0.15,
        },
        "executions_more": {
            "executions_more": 0.3, "executions": 0.3, "dashboard": 0.25, END: 0.15,
        },
        "export": {"executions": 0.3, "dashboard": 0.5, END: 0.2},
        "historical": {
            "historical": 0.35, "dashboard": 0.2, "executions": 0.15, "refresh_token": 0.05,
            "clients": 0.15, END: 0.1,
        },
        "freshness": {"sync": 0.3, "dashboard": 0.5, END: 0.2},
        "refresh_cache": {"dashboard": 0.8, END: 0.2},
        "workflows": {
            "workflow": 0.35, "toggle_workflow": 0.25, "dashboard": 0.2, "clients": 0.1,
            END: 0.1,
        },
        "workflow": {"toggle_workflow": 0.4, "workflows": 0.4, END: 0.2},
        "toggle_workflow": {"workflows": 0.5, "dashboard": 0.3, END: 0.2},
        "configure_n8n": {"test_connection": 0.15, "sync": 0.4, "client": 0.3, END: 0.15},
        "test_connection": {"sync": 0.6, "client": 0.3, END: 0.1},
        "sync": {"dashboard": 0.5, "executions": 0.2, "clients": 0.2, END: 0.1},
        "health_detailed": {"cache_stats": 0.5, "clients": 0.4, END: 0.1},
        "cache_stats": {"cache_clear": 0.25, "health_detailed": 0.15, "clients": 0.5, END: 0.1},
        "cache_clear": {"cache_stats": 0.4, "dashboard": 0.4, END: 0.2},
        "refresh_token": {"dashboard": 0.5, "clients": 0.4, END: 0.1},
    },
    think=BROWSER_THINK,
    gap=BROWSER_GAP,
    logout_probability=0.85,
)  # fmt: skip

ADMIN_API = Behavior(
    name="admin_api",
    role="admin",
    kind="api",
    weight=1,
    entry={"clients": 0.4, "health": 0.2, "health_detailed": 0.2, "freshness": 0.2},
    transitions={
        "clients": {
            "clients": 0.15, "client": 0.15, "overview": 0.15, "sync": 0.15,
            "executions": 0.1, "create_client": 0.15, "refresh_token": 0.05, END: 0.1,
        },
        "client": {"overview": 0.35, "sync": 0.3, "update_client": 0.2, END: 0.15},
        "create_client": {
            "configure_n8n": 0.45, "update_client": 0.2, "delete_client": 0.25, END: 0.1,
        },
        "update_client": {"delete_client": 0.4, "clients": 0.4, END: 0.2},
        "delete_client": {"clients": 0.7, END: 0.3},
        "overview": {
            "workflow_metrics": 0.3, "execution_stats": 0.3, "clients": 0.25, END: 0.15,
        },
        "workflow_metrics": {"execution_stats": 0.4, "workflows": 0.4, END: 0.2},
        "execution_stats": {"executions": 0.45, "historical": 0.35, END: 0.2},
        "executions": {"executions_more": 0.55, "overview": 0.25, END: 0.2},
        "executions_more": {"executions_more": 0.55, "execution_stats": 0.25, END: 0.2},
        "historical": {"historical": 0.5, "clients": 0.3, END: 0.2},
        "freshness": {"sync": 0.4, "clients": 0.4, "cache_stats": 0.1, END: 0.1},
        "sync": {"freshness": 0.3, "executions": 0.35, "clients": 0.2, END: 0.15},
        "configure_n8n": {"test_connection": 0.5, "sync": 0.4, END: 0.1},
        "test_connection": {"sync": 0.8, END: 0.2},
        "workflows": {"toggle_workflow": 0.3, "workflow": 0.3, "clients": 0.2, END: 0.2},
        "workflow": {"toggle_workflow": 0.6, END: 0.4},
        "toggle_workflow": {"workflows": 0.6, END: 0.4},
        "health": {"clients": 0.6, "health_detailed": 0.3, END: 0.1},
        "health_detailed": {"cache_stats": 0.4, "clients": 0.5, END: 0.1},
        "cache_stats": {"cache_clear": 0.3, "clients": 0.5, END: 0.2},
        "cache_clear": {"clients": 0.7, END: 0.3},
        "refresh_token": {"clients": 0.8, END: 0.2},
    },
    think=API_THINK,
    gap=API_GAP,
    logout_probability=0.6,
)  # fmt: skip

CLIENT_BROWSER = Behavior(
    name="client_browser",
    role="client",
    kind="browser",
    weight=9,
    entry={"me": 0.7, "dashboard": 0.3},
    transitions={
        "me": {
            "dashboard": 0.55, "client": 0.2, "workflows": 0.15, "health": 0.05,
            "cache_stats": 0.05,
        },
        "dashboard": {
            "executions": 0.28, "historical": 0.24, "workflows": 0.2, "client": 0.1,
            "refresh_token": 0.05, "freshness": 0.05, "refresh_cache": 0.03, END: 0.05,
        },
        "client": {
            "update_client": 0.2, "configure_n8n": 0.15, "test_connection": 0.1,
            "dashboard": 0.3, "export": 0.05, END: 0.2,
        },
        "update_client": {"client": 0.5, "dashboard": 0.3, END: 0.2},
        "executions": {
            "executions_more": 0.3, "executions": 0.15, "export": 0.05, "historical": 0.2,
            "dashboard": 0.15, END: 0.15,
        },
        "executions_more": {
            "executions_more": 0.3, "executions": 0.25, "dashboard": 0.3, END: 0.15,
        },
        "export": {"dashboard": 0.5, "executions": 0.3, END: 0.2},
        "historical": {"historical": 0.4, "dashboard": 0.25, "executions": 0.2, END: 0.15},
        "workflows": {
            "workflow": 0.35, "toggle_workflow": 0.25, "dashboard": 0.25, END: 0.15,
        },
        "workflow": {"toggle_workflow": 0.3, "workflows": 0.45, END: 0.25},
        "toggle_workflow": {"workflows": 0.5, "dashboard": 0.3, END: 0.2},
        "configure_n8n": {"test_connection": 0.2, "sync": 0.45, "client": 0.2, END: 0.15},
        "test_connection": {"sync": 0.6, "dashboard": 0.3, END: 0.1},
        "sync": {"dashboard": 0.6, "executions": 0.25, END: 0.15},
        "freshness": {"sync": 0.3, "dashboard": 0.5, END: 0.2},
        "refresh_cache": {"dashboard": 0.8, END: 0.2},
        "refresh_token": {"dashboard": 0.7, END: 0.3},
        "health": {"dashboard": 0.7, END: 0.3},
        "cache_stats": {"dashboard": 0.7, END: 0.3},
    },
    think=BROWSER_THINK,
    gap=BROWSER_GAP,
    logout_probability=0.85,
)  # fmt: skip

CLIENT_API = Behavior(
    name="client_api",
    role="client",
    kind="api",
    weight=7,
    entry={"overview": 0.35, "executions": 0.25, "freshness": 0.2, "health": 0.2},
    transitions={
        "overview": {
            "workflow_metrics": 0.3, "execution_stats": 0.3, "executions": 0.3, END: 0.1,
        },
        "workflow_metrics": {"workflows": 0.4, "execution_stats": 0.4, END: 0.2},
        "execution_stats": {"executions": 0.45, "historical": 0.4, END: 0.15},
        "executions": {
            "executions_more": 0.55, "executions": 0.15, "overview": 0.15, END: 0.15,
        },
        "executions_more": {
            "executions_more": 0.5, "historical": 0.2, "refresh_token": 0.05, END: 0.25,
        },
        "historical": {"historical": 0.5, "overview": 0.3, END: 0.2},
        "freshness": {"sync": 0.5, "overview": 0.4, END: 0.1},
        "sync": {"executions": 0.4, "overview": 0.3, "freshness": 0.15, END: 0.15},
        "configure_n8n": {"test_connection": 0.5, "sync": 0.4, END: 0.1},
        "test_connection": {"sync": 0.8, END: 0.2},
        "health": {
            "overview": 0.4, "freshness": 0.25, "client": 0.15, "cache_stats": 0.1, END: 0.1,
        },
        "client": {"update_client": 0.3, "overview": 0.6, END: 0.1},
        "update_client": {"overview": 0.7, END: 0.3},
        "cache_stats": {"overview": 0.7, END: 0.3},
        "workflows": {"toggle_workflow": 0.3, "workflow": 0.3, "overview": 0.3, END: 0.1},
        "workflow": {"toggle_workflow": 0.4, "workflows": 0.4, END: 0.2},
        "toggle_workflow": {"workflows": 0.5, "overview": 0.3, END: 0.2},
        "refresh_token": {"overview": 0.8, END: 0.2},
    },
    think=API_THINK,
    gap=API_GAP,
    logout_probability=0.6,
)  # fmt: skip

BEHAVIORS: tuple[Behavior, ...] = (ADMIN_BROWSER, ADMIN_API, CLIENT_BROWSER, CLIENT_API)


def choose(rng: random.Random, distribution: Mapping[str, float]) -> str:
    """One key of `distribution`, drawn with its probability (keys in table order)."""
    point = rng.random() * sum(distribution.values())
    for name, probability in distribution.items():
        point -= probability
        if point < 0:
            return name
    return list(distribution)[-1]  # rounding left `point` a hair above 0


def next_action(rng: random.Random, behavior: Behavior, current: str | None) -> str:
    """The action after `current` (None: right after the login), or END."""
    if current is None:
        return choose(rng, behavior.entry)
    return choose(rng, behavior.transitions[current])


def problems(behavior: Behavior) -> list[str]:
    """What is wrong with a behavior's tables (empty when they are valid)."""
    found: list[str] = []
    tables = {"entry": behavior.entry, **behavior.transitions}
    for source, distribution in tables.items():
        if source != "entry" and source not in ACTIONS:
            found.append(f"{behavior.name}: unknown action {source!r}")
        if not math.isclose(sum(distribution.values()), 1.0, abs_tol=1e-9):
            found.append(f"{behavior.name}: {source} sums to {sum(distribution.values())}")
        for target, probability in distribution.items():
            if probability <= 0:
                found.append(f"{behavior.name}: {source}->{target} has p={probability}")
            if target != END and target not in behavior.transitions:
                found.append(f"{behavior.name}: {source}->{target} leads nowhere")
            if target in ACTIONS and ACTIONS[target].admin_only and behavior.role != "admin":
                found.append(f"{behavior.name}: {source}->{target} is admin-only")
    return found


def expected_visits(behavior: Behavior) -> dict[str, float]:
    """Mean number of times a session runs each action (absorbing Markov chain).

    Ignores PREREQUISITE substitutions and MAX_ACTIONS_PER_SESSION, which shift little.
    """
    names = list(behavior.transitions)
    index = {name: i for i, name in enumerate(names)}
    transient = np.zeros((len(names), len(names)))
    for source, distribution in behavior.transitions.items():
        for target, probability in distribution.items():
            if target != END:
                transient[index[source], index[target]] = probability
    start = np.zeros(len(names))
    for target, probability in behavior.entry.items():
        start[index[target]] = probability
    visits = np.linalg.solve(np.eye(len(names)) - transient.T, start)
    return {name: float(visits[index[name]]) for name in names}


@dataclass(frozen=True)
class SessionEstimate:
    """What one session of a behavior costs on average."""

    actions: float
    requests: float
    duration_s: float
    cycle_s: float
    """Session plus the gap before the seat's next one."""

    @property
    def seat_rps(self) -> float:
        return self.requests / self.cycle_s


def estimate_session(behavior: Behavior) -> SessionEstimate:
    """Mean actions, requests (login and logout included) and durations of a session."""
    visits = expected_visits(behavior)
    actions = sum(visits.values())
    requests = 1.0 + behavior.logout_probability
    requests += sum(count * ACTIONS[name].requests for name, count in visits.items())
    duration_s = actions * behavior.think.mean_s
    return SessionEstimate(actions, requests, duration_s, duration_s + behavior.gap.mean_s)


def seat_shares() -> dict[str, float]:
    """Share of seats per behavior name, from the Locust weights."""
    total = sum(behavior.weight for behavior in BEHAVIORS)
    return {behavior.name: behavior.weight / total for behavior in BEHAVIORS}
