"""JWT access and refresh tokens (HS256): issuing, checking, rotation and revocation.

A login opens a session (`sid` claim) shared by its token pair and every rotated pair;
logout revokes the session, refresh consumes the refresh token's `jti` (single use).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt

TokenType = Literal["access", "refresh"]
ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "role", "type", "jti", "sid", "iat", "exp"]
_PRUNE_AT = 10_000  # revocation entries kept before expired ones are dropped
# PyJWT spends ~150 µs checking one HS256 token, more than the rest of a simple GET; a
# session sends the same token many times, so verified tokens are remembered (bounded).
_VERIFIED_CACHE_SIZE = 4096


class TokenRejected(Exception):
    """A token that does not authenticate; the message says why (safe to show)."""


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    type: TokenType
    jti: str
    sid: str
    exp: int


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives

    def view(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


class _ExpiringSet:
    """Ids remembered until their token would have expired anyway."""

    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    def add(self, key: str, exp: int, now: float) -> None:
        self._until[key] = max(exp, self._until.get(key, 0))
        if len(self._until) > _PRUNE_AT:
            self._until = {k: v for k, v in self._until.items() if v > now}

    def __contains__(self, key: object) -> bool:
        return key in self._until


class TokenService:
    """Issues and checks the target's tokens with one secret (random when none given)."""

    def __init__(
        self,
        secret: str,
        access_ttl_s: int,
        refresh_ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret or secrets.token_urlsafe(48)
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self._clock = clock
        self._revoked_sessions = _ExpiringSet()
        self._used_refresh = _ExpiringSet()
        self._verified: dict[str, Claims] = {}

    def issue_pair(self, user_id: str, role: str, sid: str | None = None) -> TokenPair:
        """A new access + refresh pair; `sid` continues a session (rotation)."""
        now = int(self._clock())
        sid = sid or str(uuid.uuid4())
        return TokenPair(
            access_token=self._encode(user_id, role, "access", sid, now, self.access_ttl_s),
            refresh_token=self._encode(user_id, role, "refresh", sid, now, self.refresh_ttl_s),
            expires_in=self.access_ttl_s,
        )

    def check(self, token: str, expected: TokenType) -> Claims:
        """The claims of a valid, unrevoked token of the expected type, else TokenRejected."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
        elif claims.exp <= self._clock():
            raise TokenRejected("Token has expired")
        if claims.type != expected:
            raise TokenRejected(f"Wrong token type (expected {expected})")
        if claims.sid in self._revoked_sessions:
            raise TokenRejected("Token has been revoked")
        if expected == "refresh" and claims.jti in self._used_refresh:
            raise TokenRejected("Refresh token has already been used")
        return claims

    def _verify(self, token: str) -> Claims:
        """Signature, expiry and claims checked by PyJWT; the result is remembered."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("Token has expired") from None
        except jwt.InvalidTokenError:
            raise TokenRejected("Could not validate credentials") from None
        kind = payload["type"]
        if kind not in ("access", "refresh"):
            raise TokenRejected("Could not validate credentials")
        claims = Claims(
            sub=str(payload["sub"]),
            role=str(payload["role"]),
            type=kind,
            jti=str(payload["jti"]),
            sid=str(payload["sid"]),
            exp=int(payload["exp"]),
        )
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()  # cheap and rare: the next requests re-verify
        self._verified[token] = claims
        return claims

    def rotate(self, refresh: Claims) -> TokenPair:
        """Spend a checked refresh token and issue the session's next pair."""
        self._used_refresh.add(refresh.jti, refresh.exp, self._clock())
        return self.issue_pair(refresh.sub, refresh.role, sid=refresh.sid)

    def revoke_session(self, claims: Claims) -> None:
        """Every token of the session stops working (logout)."""
        longest = int(self._clock()) + max(self.access_ttl_s, self.refresh_ttl_s)
        self._revoked_sessions.add(claims.sid, longest, self._clock())

    def _encode(
        self, user_id: str, role: str, kind: TokenType, sid: str, now: int, ttl_s: int
    ) -> str:
        claims = {
            "sub": user_id,
            "role": role,
            "type": kind,
            "jti": uuid.uuid4().hex,
            "sid": sid,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)
