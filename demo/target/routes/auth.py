"""Routes under /api/v1/auth: login (rate-limited, a real KDF), refresh (rotating),
logout, me.

Tokens go out both as httpOnly cookies and in the body, so either client style works.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tracereplay.demo.target.auth import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    SignedIn,
    client_address,
    unauthorized,
)
from tracereplay.demo.target.envelope import ApiError, ok
from tracereplay.demo.target.passwords import verify_password
from tracereplay.demo.target.schemas import LoginBody, RefreshBody
from tracereplay.demo.target.service_time import RouteClass
from tracereplay.demo.target.state import TargetState
from tracereplay.demo.target.tokens import TokenPair, TokenRejected

REFRESH_COOKIE_PATH = "/api/v1/auth"


def add_routes(api: APIRouter, state: TargetState) -> None:
    settings = state.settings

    def with_cookies(response: Response, pair: TokenPair) -> Response:
        response.set_cookie(
            ACCESS_COOKIE,
            pair.access_token,
            max_age=settings.access_token_ttl_s,
            path="/",
            httponly=True,
            samesite="lax",
        )
        response.set_cookie(
            REFRESH_COOKIE,
            pair.refresh_token,
            max_age=settings.refresh_token_ttl_s,
            path=REFRESH_COOKIE_PATH,
            httponly=True,
            samesite="lax",
        )
        return response

    @api.post("/api/v1/auth/login", tags=["auth"])
    async def login(request: Request, body: LoginBody) -> Response:
        address = client_address(request, settings.trust_forwarded_for)
        retry_after = state.login_limiter.attempt(address, time.monotonic())
        if retry_after is not None:
            raise ApiError(
                429,
                "Too many login attempts, try again later",
                headers={"Retry-After": str(retry_after)},
            )
        await state.times.sleep(RouteClass.SIMPLE_GET)  # the user lookup
        user = state.store.users_by_email.get(body.email.lower())
        # As in most backends, an unknown email is refused at once and a known one pays
        # for the KDF, in the thread pool as a sync FastAPI route would (hashlib lets go
        # of the GIL, so other requests are served meanwhile).
        if user is None or not await run_in_threadpool(
            verify_password, body.password, user.password_hash
        ):
            raise unauthorized("Incorrect email or password")
        pair = state.tokens.issue_pair(user.id, user.role)
        return with_cookies(ok({**pair.view(), "user": user.view()}), pair)

    def refresh_token_of(request: Request, body: RefreshBody | None) -> str | None:
        return (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)

    @api.post("/api/v1/auth/refresh", tags=["auth"])
    async def refresh(
        request: Request, body: Annotated[RefreshBody | None, Body()] = None
    ) -> Response:
        token = refresh_token_of(request, body)
        if not token:
            raise unauthorized("Refresh token missing")
        try:
            claims = state.tokens.check(token, "refresh")
            if claims.sub not in state.store.users:
                raise TokenRejected("Could not validate credentials")
            await state.times.sleep(RouteClass.WRITE)
            pair = state.tokens.rotate(token)
        except TokenRejected as exc:
            raise unauthorized(str(exc)) from None
        return with_cookies(ok(pair.view()), pair)

    @api.post("/api/v1/auth/logout", tags=["auth"])
    async def logout(
        request: Request, user: SignedIn, body: Annotated[RefreshBody | None, Body()] = None
    ) -> Response:
        """Deletes the refresh token's row (cookie or body) and clears the cookies; the
        access token, a stateless JWT, stays valid until it expires."""
        await state.times.sleep(RouteClass.WRITE)
        token = refresh_token_of(request, body)
        if token:
            state.tokens.revoke_refresh(token, user.id)
        response = ok({"logged_out": True})
        response.delete_cookie(ACCESS_COOKIE, path="/", httponly=True, samesite="lax")
        response.delete_cookie(
            REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, httponly=True, samesite="lax"
        )
        return response

    @api.get("/api/v1/auth/me", tags=["auth"])
    async def me(user: SignedIn) -> Response:
        await state.times.sleep(RouteClass.SIMPLE_GET)
        return ok(user.view())
