"""Who is asking: the signed-in user from a bearer token or cookie, and what they may see.

FastAPI dependencies and access checks shared by every router.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from tracereplay.demo.target.envelope import ApiError
from tracereplay.demo.target.state import TargetState
from tracereplay.demo.target.store import Client, User
from tracereplay.demo.target.tokens import Claims, TokenRejected

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers=_UNAUTHORIZED_HEADERS)


def access_token_of(request: Request) -> str | None:
    """The bearer token if one is sent, else the access-token cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Malformed Authorization header")
        return token.strip()
    return request.cookies.get(ACCESS_COOKIE)


def target_state(request: Request) -> TargetState:
    """The state of the app serving `request` (set by `create_app`)."""
    return cast(TargetState, request.app.state.target)


def authenticate(request: Request) -> tuple[User, Claims]:
    """The signed-in user and their access token's claims; 401 when there are none."""
    token = access_token_of(request)
    if not token:
        raise unauthorized("Not authenticated")
    state = target_state(request)
    try:
        claims = state.tokens.check(token, "access")
    except TokenRejected as exc:
        raise unauthorized(str(exc)) from None
    user = state.store.users.get(claims.sub)
    if user is None:
        raise unauthorized("Could not validate credentials")
    return user, claims


async def _current_user(request: Request) -> User:
    return authenticate(request)[0]


# Route parameter: `user: SignedIn` is the caller (401 otherwise).
SignedIn = Annotated[User, Depends(_current_user)]


def require_admin(user: User) -> None:
    if user.role != "admin":
        raise ApiError(403, "Admin privileges required")


def require_client_access(user: User, client_id: str) -> None:
    """Admins see every client; a client user only their own (403 otherwise)."""
    if user.role != "admin" and user.client_id != client_id:
        raise ApiError(403, "Not allowed to access this client")


def visible_client(state: TargetState, user: User, client_id: str) -> Client:
    """The client if the user may see it: 403 before 404, so ids do not leak."""
    require_client_access(user, client_id)
    client = state.store.clients.get(client_id)
    if client is None:
        raise ApiError(404, "Client not found")
    return client


def client_address(request: Request, trust_forwarded_for: bool) -> str:
    """The first X-Forwarded-For address when trusted and present, else the peer."""
    if trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            first = forwarded.split(",", 1)[0].strip()
            if first:
                return first
    return request.client.host if request.client else "unknown"
