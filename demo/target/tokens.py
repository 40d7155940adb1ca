"""JWT access and refresh tokens (HS256) as most real backends make them.

The claims are `sub, role, type, iat, exp` with `iat` in whole seconds and no random
`jti`, so one account signing in twice within a second gets the very same tokens.
Access tokens are stateless: valid until they expire (logout cannot recall them).
Refresh tokens are also kept server-side as rows, one per issue (login or refresh): a
refresh spends one row of its token and adds the new pair's, logout deletes one row,
and a token with no row left is refused. Two logins in one second hold one token with
two rows, so neither user's refresh or logout breaks the other's.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt

TokenType = Literal["access", "refresh"]
ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "role", "type", "iat", "exp"]
_PRUNE_AT = 10_000  # refresh rows kept before expired ones are dropped
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
    iat: int
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


class RefreshRows:
    """The refresh-token table: how many live rows each token has, and until when.

    Keyed by a digest of the token, as a backend that stores token hashes would."""

    def __init__(self) -> None:
        self._rows: dict[bytes, list[int]] = {}  # digest -> [rows, exp]
        self._prune_at = _PRUNE_AT

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.blake2b(token.encode(), digest_size=16).digest()

    def add(self, token: str, exp: int, now: float) -> None:
        if len(self._rows) >= self._prune_at:  # drop expired rows, at amortized O(1)
            self._rows = {k: v for k, v in self._rows.items() if v[1] > now}
            self._prune_at = max(_PRUNE_AT, 2 * len(self._rows))
        row = self._rows.setdefault(self._key(token), [0, exp])
        row[0] += 1

    def live(self, token: str) -> bool:
        return self._key(token) in self._rows

    def take(self, token: str) -> bool:
        """Delete one row of `token`; False when it had none."""
        key = self._key(token)
        row = self._rows.get(key)
        if row is None:
            return False
        row[0] -= 1
        if row[0] <= 0:
            del self._rows[key]
        return True

    def __len__(self) -> int:
        return sum(row[0] for row in self._rows.values())


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
        self.refresh_rows = RefreshRows()
        self._verified: dict[str, Claims] = {}

    def issue_pair(self, user_id: str, role: str) -> TokenPair:
        """The pair for `user_id` at the current whole second (and a refresh row)."""
        now = int(self._clock())
        refresh = self._encode(user_id, role, "refresh", now, self.refresh_ttl_s)
        self.refresh_rows.add(refresh, now + self.refresh_ttl_s, now)
        return TokenPair(
            access_token=self._encode(user_id, role, "access", now, self.access_ttl_s),
            refresh_token=refresh,
            expires_in=self.access_ttl_s,
        )

    def check(self, token: str, expected: TokenType) -> Claims:
        """The claims of a valid token of the expected type (a refresh token must still
        have a row), else TokenRejected."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
        elif claims.exp <= self._clock():
            raise TokenRejected("Token has expired")
        if claims.type != expected:
            raise TokenRejected(f"Wrong token type (expected {expected})")
        if expected == "refresh" and not self.refresh_rows.live(token):
            raise TokenRejected("Refresh token has been used or revoked")
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
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
        )
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()  # cheap and rare: the next requests re-verify
        self._verified[token] = claims
        return claims

    def rotate(self, refresh_token: str) -> TokenPair:
        """Spend one row of a refresh token and issue the next pair (TokenRejected when a
        concurrent refresh or logout spent the last row meanwhile)."""
        claims = self.check(refresh_token, "refresh")
        if not self.refresh_rows.take(refresh_token):
            raise TokenRejected("Refresh token has been used or revoked")
        return self.issue_pair(claims.sub, claims.role)

    def revoke_refresh(self, refresh_token: str, user_id: str) -> bool:
        """Logout: delete one row of the user's refresh token; False if there was none."""
        try:
            claims = self.check(refresh_token, "refresh")
        except TokenRejected:
            return False
        return claims.sub == user_id and self.refresh_rows.take(refresh_token)

    def _encode(self, user_id: str, role: str, kind: TokenType, now: int, ttl_s: int) -> str:
        claims = {"sub": user_id, "role": role, "type": kind, "iat": now, "exp": now + ttl_s}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)
