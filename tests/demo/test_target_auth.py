"""The sandbox target's authentication over real HTTP: login, cookies and bearer tokens,
tokens that repeat within a second, refresh rotation, logout, and every way a token is
refused."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.demo.target_api import (
    Session,
    api_client,
    bearer,
    craft_token,
    data,
    error,
    login,
    next_second,
    same_second,
    sign_in,
)
from tests.servers import SandboxTarget
from tracereplay.demo.accounts import Account

ME = "/api/v1/auth/me"


def test_login_returns_tokens_user_and_httponly_cookies(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    account = sandbox_target.account("client", 2)
    response = login(http, account)
    body = data(response)
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["user"]["email"] == account.email
    assert body["user"]["role"] == "client"
    assert body["user"]["client_id"] == account.client_id
    assert body["access_token"].count(".") == 2
    cookies = response.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("access_token="))
    refresh = next(c for c in cookies if c.startswith("refresh_token="))
    assert "HttpOnly" in access and "Path=/;" in access
    assert "HttpOnly" in refresh and "Path=/api/v1/auth" in refresh
    assert response.cookies["access_token"] == body["access_token"]


def test_login_is_case_insensitive_on_email(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    account = sandbox_target.account("admin", 1)
    response = http.post(
        "/api/v1/auth/login",
        json={"email": account.email.upper(), "password": account.password},
    )
    assert data(response)["user"]["role"] == "admin"


def test_a_known_email_pays_for_the_kdf_and_an_unknown_one_does_not(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    """As in most backends: a wrong password is checked by the KDF (tens of ms of CPU),
    an unknown email is refused at once. Fastest of five, so load only adds."""

    def fastest_s(email: str) -> float:
        times = []
        for _ in range(5):
            body = {"email": email, "password": "not-the-password"}
            start = time.perf_counter()
            assert http.post("/api/v1/auth/login", json=body).status_code == 401
            times.append(time.perf_counter() - start)
        return min(times)

    known = fastest_s(sandbox_target.account("client", 9).email)
    unknown = fastest_s("nobody-at-all@example.com")
    assert known - unknown >= 0.010, (known, unknown)


@pytest.mark.parametrize("field", ["email", "password"])
def test_login_with_bad_credentials_is_401(
    http: httpx.Client, sandbox_target: SandboxTarget, field: str
) -> None:
    account = sandbox_target.account("admin")
    body = {"email": account.email, "password": account.password, field: "nobody@example.com"}
    response = http.post("/api/v1/auth/login", json=body)
    assert error(response, 401)["message"] == "Incorrect email or password"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body.email", "body.password"}),
        ({"email": "a@example.com"}, {"body.password"}),
        ({"email": "a@example.com", "password": ""}, {"body.password"}),
    ],
)
def test_login_with_invalid_body_is_422_per_field(
    http: httpx.Client, sandbox_target: SandboxTarget, body: dict[str, str], fields: set[str]
) -> None:
    response = http.post("/api/v1/auth/login", json=body)
    errors = error(response, 422)["errors"]
    assert {e["field"] for e in errors} == fields
    assert all(e["message"] and e["type"] for e in errors)


def test_me_with_bearer_token(
    http: httpx.Client, sandbox_target: SandboxTarget, admin: Session
) -> None:
    me = data(http.get(ME, headers=admin.headers))
    assert me == admin.user
    assert set(me) == {"id", "email", "name", "role", "client_id"}


def test_me_with_cookie_only(sandbox_target: SandboxTarget) -> None:
    with api_client(sandbox_target, keep_cookies=True) as browser:
        account = sandbox_target.account("client", 1)
        data(browser.post("/api/v1/auth/login", json=_credentials(account)))
        assert "Authorization" not in browser.headers
        assert data(browser.get(ME))["email"] == account.email


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Cookie": "access_token=garbage"},
    ],
    ids=["none", "malformed", "basic", "empty-bearer", "bad-cookie"],
)
def test_missing_or_malformed_token_is_401(
    http: httpx.Client, sandbox_target: SandboxTarget, headers: dict[str, str]
) -> None:
    response = http.get(ME, headers=headers)
    error(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_expired_token_is_401(
    http: httpx.Client, sandbox_target: SandboxTarget, admin: Session
) -> None:
    past = int(time.time()) - 120
    token = craft_token(sandbox_target, admin.user["id"], iat=past - 900, exp=past)
    response = http.get(ME, headers=bearer(token))
    assert error(response, 401)["message"] == "Token has expired"


def test_token_signed_with_another_secret_is_401(
    http: httpx.Client, sandbox_target: SandboxTarget, admin: Session
) -> None:
    token = craft_token(
        sandbox_target, admin.user["id"], secret="another-secret-0123456789abcdef-0123456789"
    )
    error(http.get(ME, headers=bearer(token)), 401)


def test_a_well_signed_token_is_accepted(
    http: httpx.Client, sandbox_target: SandboxTarget, admin: Session
) -> None:
    token = craft_token(sandbox_target, admin.user["id"])
    assert data(http.get(ME, headers=bearer(token)))["role"] == "admin"


def test_refresh_token_is_not_an_access_token(
    http: httpx.Client, sandbox_target: SandboxTarget, admin: Session
) -> None:
    response = http.get(ME, headers=bearer(admin.refresh_token))
    assert "expected access" in error(response, 401)["message"]


def test_token_of_unknown_user_is_401(http: httpx.Client, sandbox_target: SandboxTarget) -> None:
    token = craft_token(sandbox_target, "00000000-0000-4000-8000-000000000000")
    error(http.get(ME, headers=bearer(token)), 401)


def test_one_account_signing_in_twice_in_a_second_gets_the_same_tokens(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    account = sandbox_target.account("admin", 3)
    first, second = same_second(lambda: sign_in(http, account), lambda: sign_in(http, account))
    assert first.access_token == second.access_token
    assert first.refresh_token == second.refresh_token
    claims = jwt.decode(first.access_token, options={"verify_signature": False})
    assert set(claims) == {"sub", "role", "type", "iat", "exp"}  # no jti, no session id
    assert isinstance(claims["iat"], int) and claims["exp"] == claims["iat"] + 900
    next_second()
    assert sign_in(http, account).access_token != first.access_token
    other = sandbox_target.account("admin", 2)
    mine, theirs = same_second(lambda: sign_in(http, account), lambda: sign_in(http, other))
    assert mine.access_token != theirs.access_token


def test_refresh_with_body_rotates_the_refresh_token(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    session = sign_in(http, sandbox_target.account("client", 3))
    url = "/api/v1/auth/refresh"
    next_second()
    pair = data(http.post(url, json={"refresh_token": session.refresh_token}))
    assert pair["token_type"] == "bearer"
    assert pair["refresh_token"] != session.refresh_token
    assert data(http.get(ME, headers=bearer(pair["access_token"])))
    reused = http.post(url, json={"refresh_token": session.refresh_token})
    assert "used or revoked" in error(reused, 401)["message"]
    next_second()
    again = data(http.post(url, json={"refresh_token": pair["refresh_token"]}))
    assert again["refresh_token"] != pair["refresh_token"]


def test_a_token_two_users_hold_refreshes_once_for_each(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    """Two same-second logins hold one refresh token with two rows: each user refreshes
    it once, a third use is refused."""
    account = sandbox_target.account("client", 7)
    first, second = same_second(lambda: sign_in(http, account), lambda: sign_in(http, account))
    assert first.refresh_token == second.refresh_token
    url, body = "/api/v1/auth/refresh", {"refresh_token": first.refresh_token}
    next_second()  # a refresh in the login's second would hand out the same token again
    data(http.post(url, json=body))
    data(http.post(url, json=body))
    error(http.post(url, json=body), 401)


def test_refresh_with_cookie_sets_cookies_again(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    account = sandbox_target.account("client", 4)
    with api_client(sandbox_target, keep_cookies=True) as browser:
        first = data(browser.post("/api/v1/auth/login", json=_credentials(account)))
        next_second()
        response = browser.post("/api/v1/auth/refresh")
        pair = data(response)
        assert response.cookies["refresh_token"] == pair["refresh_token"]
        assert browser.cookies.get("access_token", path="/") == pair["access_token"]
        assert pair["access_token"] != first["access_token"]
        assert data(browser.get(ME))["email"] == account.email
    stale = http.post(
        "/api/v1/auth/refresh",
        headers={"Cookie": f"refresh_token={first['refresh_token']}"},
    )
    error(stale, 401)


@pytest.mark.parametrize("body", [None, {}, {"refresh_token": "nope"}])
def test_refresh_without_a_valid_refresh_token_is_401(
    http: httpx.Client, sandbox_target: SandboxTarget, body: dict[str, str] | None
) -> None:
    response = http.post("/api/v1/auth/refresh", json=body)
    error(response, 401)


def test_refresh_rejects_an_access_token(
    http: httpx.Client, sandbox_target: SandboxTarget, admin: Session
) -> None:
    response = http.post("/api/v1/auth/refresh", json={"refresh_token": admin.access_token})
    error(response, 401)


def test_logout_revokes_the_refresh_token_and_clears_cookies(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    session = sign_in(http, sandbox_target.account("client", 5))
    body = {"refresh_token": session.refresh_token}
    response = http.post("/api/v1/auth/logout", headers=session.headers, json=body)
    assert data(response) == {"logged_out": True}
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith('access_token="";') or "access_token=;" in c for c in cleared)
    assert any("refresh_token=" in c and "Max-Age=0" in c for c in cleared)
    refresh = http.post("/api/v1/auth/refresh", json=body)
    assert "used or revoked" in error(refresh, 401)["message"]
    # The access token is a stateless JWT: it works until it expires, as in most backends.
    assert data(http.get(ME, headers=session.headers))["role"] == "client"


def test_logout_with_cookies(http: httpx.Client, sandbox_target: SandboxTarget) -> None:
    account = sandbox_target.account("admin", 2)
    with api_client(sandbox_target, keep_cookies=True) as browser:
        token = data(browser.post("/api/v1/auth/login", json=_credentials(account)))
        data(browser.post("/api/v1/auth/logout"))  # the refresh cookie goes along
        assert "access_token" not in browser.cookies
        error(browser.get(ME), 401)
    stale = http.post("/api/v1/auth/refresh", json={"refresh_token": token["refresh_token"]})
    error(stale, 401)


def test_one_users_logout_leaves_another_holding_the_same_token_signed_in(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    account = sandbox_target.account("client", 8)
    first, second = same_second(lambda: sign_in(http, account), lambda: sign_in(http, account))
    assert first.access_token == second.access_token
    body = {"refresh_token": first.refresh_token}
    data(http.post("/api/v1/auth/logout", headers=first.headers, json=body))
    assert data(http.get(ME, headers=second.headers))["email"] == account.email
    next_second()
    data(http.post("/api/v1/auth/refresh", json=body))  # the second user's row is left
    error(http.post("/api/v1/auth/refresh", json=body), 401)


def test_logout_needs_a_session(http: httpx.Client, sandbox_target: SandboxTarget) -> None:
    error(http.post("/api/v1/auth/logout"), 401)


def _credentials(account: Account) -> dict[str, str]:
    return {"email": account.email, "password": account.password}
