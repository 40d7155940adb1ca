"""The Locust side of the staging users: one user class per behavior, one session a task.

Imports locust (so gevent). A Locust user is a *seat*: a person or an integration with a
stable account (shared with up to `users_per_account` other live seats), address and
User-Agent, and its own HTTP session object, so its connections are never another
seat's. Its one task is a whole session (login, the
behavior's Markov chain with think times slept inside the task, maybe logout); Locust's
`wait_time` is the gap before the seat's next session. Because think times are plain
gevent sleeps, a seat that Locust stops gracefully finishes its session first (see
STAGING_USERS.md, "Scale-down"), while an idle seat stops at once.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any, ClassVar

import gevent
from faker import Faker
from locust import HttpUser, task
from locust.env import Environment

from tracereplay.demo.traffic.actions import Answer, SessionScript
from tracereplay.demo.traffic.behaviors import (
    ADMIN_API,
    ADMIN_BROWSER,
    CLIENT_API,
    CLIENT_BROWSER,
    END,
    MAX_ACTIONS_PER_SESSION,
    Behavior,
    next_action,
)
from tracereplay.demo.traffic.identity import account_order, identity_headers, pick_account
from tracereplay.demo.traffic.settings import (
    DEFAULT_USERS_PER_ACCOUNT,
    LOGIN_RETRY_SHARE,
    LOGINS_PER_WINDOW,
    StagingAccount,
    login_pacing_delay_s,
    mistyped,
)
from tracereplay.demo.traffic.summary import Outcome, SessionLog

ARRIVAL_SPREAD_S = 1.0
"""A new seat starts its first session after U(0, this): the shape adds seats once a
second, and their logins should not all land in the same millisecond."""
REQUEST_TIMEOUT_S = (5.0, 30.0)  # connect, read: a stalled target cannot hold a seat for ever


@dataclass
class RunContext:
    """What every seat of one run shares: seed, accounts, the session log, created ids."""

    seed: int
    accounts: tuple[StagingAccount, ...]
    users_per_account: int = DEFAULT_USERS_PER_ACCOUNT
    log: SessionLog = field(default_factory=SessionLog)
    created_by_staging: set[str] = field(default_factory=set)
    failed_login_share: float = 0.0
    _indexes: dict[str, itertools.count[int]] = field(default_factory=dict)

    def next_index(self, behavior: str) -> int:
        """0, 1, 2, … per behavior in spawn order (Locust's dispatcher is deterministic)."""
        return next(self._indexes.setdefault(behavior, itertools.count()))

    def take_account(self, role: str) -> StagingAccount:
        """The account a starting seat of `role` shares (see `identity.pick_account`)."""
        ordered = account_order(self.accounts, role, self.seed)
        account = pick_account(ordered, self.log.live, self.users_per_account)
        self.log.join(account.email, account.role)
        return account


class StagingUser(HttpUser):
    """A seat playing one `Behavior`; subclasses only name theirs and its weight."""

    abstract = True
    behavior: ClassVar[Behavior]
    shared: ClassVar[RunContext | None] = None
    """Set by `configure_run` before the runner spawns anyone (`User.context` is Locust's)."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)  # type: ignore[no-untyped-call]  # locust: untyped
        context = StagingUser.shared
        assert context is not None, "call configure_run() first"
        self.run_context = context
        index = context.next_index(self.behavior.name)
        self.rng = random.Random(f"{context.seed}/{self.behavior.name}/{index}")
        self.fake = Faker("en_US")
        self.fake.seed_instance(self.rng.getrandbits(64))
        self.account: StagingAccount | None = None  # taken when the seat starts
        self.client.headers.update(identity_headers(self.behavior, self.rng, self.fake))
        if self.behavior.kind == "api":
            self.client.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.logins: deque[float] = deque(maxlen=LOGINS_PER_WINDOW)
        self.script: SessionScript | None = None

    def wait_time(self) -> float:
        """The gap before the next session, stretched if the login would come too soon."""
        gap = self.behavior.gap.sample(self.rng)
        return gap + login_pacing_delay_s(self.logins, time.monotonic() + gap)

    def on_start(self) -> None:
        self.account = self.run_context.take_account(self.behavior.role)
        gevent.sleep(self.rng.uniform(0.0, ARRIVAL_SPREAD_S))

    def on_stop(self) -> None:
        if self.script is not None:  # stopped in the middle of a session
            self._finish("cut")
        if self.account is not None:
            self.run_context.log.leave(self.account.email)
            self.account = None

    @task
    def session(self) -> None:
        behavior, account = self.behavior, self.account
        assert account is not None, "on_start takes the account"
        self.client.cookies.clear()
        self.script = SessionScript(
            behavior,
            self._call,
            self.rng,
            self.fake,
            gevent.sleep,
            time.monotonic,
            self.run_context.created_by_staging,
        )
        self.run_context.log.start(behavior.name, account.email)
        self.logins.append(time.monotonic())
        try:
            if not self._mistyped_login_retried(account):
                self._finish("failed")
                return
            if not self.script.login(account):
                self._finish("failed")
                return
            action: str | None = None
            for _ in range(MAX_ACTIONS_PER_SESSION):
                action = next_action(self.rng, behavior, action)
                if action == END:
                    break
                gevent.sleep(behavior.think.sample(self.rng))
                self.script.run(action)
            outcome: Outcome = "ended"
            if self.rng.random() < behavior.logout_probability:
                gevent.sleep(behavior.think.sample(self.rng))
                self.script.logout()
                outcome = "logged_out"
            self._finish(outcome)
        except Exception:
            self._finish("failed")  # a bug in the users' own code: Locust logs and counts it
            raise

    def _mistyped_login_retried(self, account: StagingAccount) -> bool:
        """With the run's failed-login share, a first login with a mistyped password (401);
        then, `LOGIN_RETRY_SHARE` of the time, a think time before the right one (True),
        else the person gives up (False). No draw at share 0: seeded runs stay as they were."""
        share = self.run_context.failed_login_share
        if share <= 0 or self.rng.random() >= share:
            return True
        assert self.script is not None
        self.script.login(mistyped(account, self.rng))
        if self.rng.random() >= LOGIN_RETRY_SHARE:
            return False
        gevent.sleep(self.behavior.think.sample(self.rng))
        self.logins.append(time.monotonic())
        return True

    def _finish(self, outcome: Outcome) -> None:
        self.run_context.log.finish(self.behavior.name, outcome)
        self.script = None

    def _call(
        self,
        method: str,
        route: str,
        *,
        ids: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request, named after its route template so Locust's stats group by route."""
        response = self.client.request(
            method,
            route.format(**ids) if ids else route,
            name=f"{method} {route}",
            params=dict(params) if params else None,
            json=json,
            headers=dict(headers) if headers else None,
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
        )
        if not response.ok:
            return Answer(False, response.status_code or 0, None)
        try:
            body = response.json()
        except ValueError:
            return Answer(True, response.status_code, None)
        return Answer(
            True, response.status_code, body.get("data") if isinstance(body, dict) else None
        )


class AdminBrowserUser(StagingUser):
    behavior = ADMIN_BROWSER
    weight = ADMIN_BROWSER.weight


class AdminApiUser(StagingUser):
    behavior = ADMIN_API
    weight = ADMIN_API.weight


class ClientBrowserUser(StagingUser):
    behavior = CLIENT_BROWSER
    weight = CLIENT_BROWSER.weight


class ClientApiUser(StagingUser):
    behavior = CLIENT_API
    weight = CLIENT_API.weight


USER_CLASSES: tuple[type[StagingUser], ...] = (
    AdminBrowserUser,
    AdminApiUser,
    ClientBrowserUser,
    ClientApiUser,
)


def configure_run(context: RunContext) -> None:
    """Hand the run's shared context to every seat spawned from now on."""
    StagingUser.shared = context
