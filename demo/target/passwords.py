"""Password hashing as a real backend does it: a salted KDF (PBKDF2-HMAC-SHA256).

The target stores only the encoded hash (`pbkdf2_sha256$iterations$salt$hash`, the
layout Django uses) and checks a login by deriving the key again, which costs real CPU
(~20-50 ms at `KDF_ITERATIONS`; demo/README.md gives the measured figure).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

ALGORITHM = "pbkdf2_sha256"
KDF_ITERATIONS = 80_000
"""Modest next to today's advice for PBKDF2 (600,000+), like a backend tuned for latency."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


@lru_cache(maxsize=256)
def hash_password(password: str, salt: bytes, iterations: int = KDF_ITERATIONS) -> str:
    """The encoded hash of `password` (cached: the seeded accounts are hashed once per
    process, not once per store built)."""
    key = _derive(password, salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded`; derives the key (slow by design)."""
    algorithm, iterations, salt, key = encoded.split("$")
    if algorithm != ALGORITHM:
        return False
    candidate = _derive(password, _unb64(salt), int(iterations))
    return hmac.compare_digest(candidate, _unb64(key))


def kdf_iterations(encoded: str) -> int:
    """The iteration count an encoded hash was made with."""
    return int(encoded.split("$")[1])
