"""Routes under /api/v1/auth: login (rate-limited), refresh (rotating), logout, me.

Tokens go out both as httpOnly cookies and in the body, so either client style works.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from tracereplay.demo.target.auth import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    Session,
    SignedIn,
    client_address,
    unauthorized,
)
from tracereplay.demo.target.envelope import ApiError, ok
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
        await state.times.sleep(RouteClass.LOGIN)
        user = state.store.users_by_email.get(body.email.lower())
        if user is None or not hmac.compare_digest(user.password.encode(), body.password.encode()):
            raise unauthorized("Incorrect email or password")
        pair = state.tokens.issue_pair(user.id, user.role)
        return with_cookies(ok({**pair.view(), "user": user.view()}), pair)

    @api.post("/api/v1/auth/refresh", tags=["auth"])
    async def refresh(
        request: Request, body: Annotated[RefreshBody | None, Body()] = None
    ) -> Response:
        token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise unauthorized("Refresh token missing")
        try:
            claims = state.tokens.check(token, "refresh")
        except TokenRejected as exc:
            raise unauthorized(str(exc)) from None
        if claims.sub not in state.store.users:
            raise unauthorized("Could not validate credentials")
        await state.times.sleep(RouteClass.WRITE)
        pair = state.tokens.rotate(claims)
        return with_cookies(ok(pair.view()), pair)

    @api.post("/api/v1/auth/logout", tags=["auth"])
    async def logout(
        session: Session,
    ) -> Response:
        await state.times.sleep(RouteClass.WRITE)
        state.tokens.revoke_session(session[1])
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
