"""Talking to the sandbox target in tests: sign in, check the envelope, craft tokens.

Plain helpers over httpx, shared by the tests/demo/test_target_*.py modules.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import jwt

from tests.servers import SandboxTarget
from tracereplay.demo.accounts import Account

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def data(response: httpx.Response, status: int = 200) -> Any:
    """The `data` of a success envelope, after checking status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "success", body
    assert set(body) == {"status", "data"}
    return body["data"]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The body of an error envelope, after checking status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error", body
    assert body["data"] is None
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"status", "message", "data", "errors"}
    return dict(body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Session:
    """A signed-in API client's tokens and user."""

    access_token: str
    refresh_token: str
    user: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def api_client(
    target: SandboxTarget, prefix: str = "", *, keep_cookies: bool = False
) -> httpx.Client:
    """An httpx client for `target`, URLs relative to its root + `prefix`.

    Unless `keep_cookies`, it behaves like an API client: cookies the target sets are
    dropped, so only what a test sends (bearer header, cookies=...) authenticates. Reuse
    one: a fresh httpx client loads the CA bundle each time, which is slow.
    """
    jar = None if keep_cookies else CookieJar(DefaultCookiePolicy(allowed_domains=[]))
    return httpx.Client(base_url=target.url + prefix, cookies=jar)


def login(http: httpx.Client, account: Account, **kwargs: Any) -> httpx.Response:
    return http.post(
        "/api/v1/auth/login",
        json={"email": account.email, "password": account.password},
        **kwargs,
    )


def sign_in(http: httpx.Client, account: Account) -> Session:
    """Log in as `account` (bearer style) and keep the tokens."""
    body = data(login(http, account))
    return Session(body["access_token"], body["refresh_token"], body["user"])


def craft_token(
    target: SandboxTarget, user_id: str, *, secret: str | None = None, **claims: Any
) -> str:
    """A token signed with the target's secret (or `secret`); `claims` override defaults."""
    now = int(time.time())
    payload = {
        "sub": user_id,
        "role": "admin",
        "type": "access",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(payload, secret or target.jwt_secret, algorithm="HS256")


def next_second() -> None:
    """Sleep into the next whole second: the target's tokens differ only across seconds."""
    now = time.time()
    time.sleep(math.floor(now) + 1.02 - now)


def same_second(*calls: Any) -> list[Any]:
    """Run `calls` (thunks) within one whole second of the clock, retrying at the start
    of the next second when a boundary fell in between; their results in order."""
    for _ in range(5):
        start = time.time()
        results = [call() for call in calls]
        if math.floor(time.time()) == math.floor(start):
            return results
        next_second()
    raise AssertionError("could not fit the calls into one second")
