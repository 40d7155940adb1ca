"""Settings of the sandbox target: one frozen dataclass, checked when it is built.

`load_settings` layers defaults < TOML `[target]` < `TRACEREPLAY_TARGET_*` env < flags.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracereplay.config import resolve_settings
from tracereplay.errors import ConfigError

MIN_JWT_SECRET_CHARS = 32  # HS256 wants a key at least as long as its hash
# A TOML file can hold any type; the annotations are strings (postponed evaluation).
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
}


@dataclass(frozen=True)
class TargetSettings:
    """How the sandbox target runs; every field can come from file, env or flag."""

    host: str = "127.0.0.1"
    port: int = 8000
    seed: int = 7
    service_time_scale: float = 1.0  # multiplies every simulated service time; 0 = none
    login_rate_limit: int = 30  # login attempts per client address per window; 0 = off
    login_rate_window_s: float = 60.0
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 604_800
    trust_forwarded_for: bool = True  # rate-limit by the first X-Forwarded-For address
    jwt_secret: str = ""  # empty: a random secret per process (tokens die with it)
    cache_ttl_s: float = 300.0  # how long a cached metrics answer is served
    stale_after_s: float = 3600.0  # data-freshness: a client's data is stale past this

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            expected = _FIELD_TYPES[str(field.type)]
            if isinstance(value, bool) and field.type != "bool":
                expected = ()  # bool is an int subclass; `port = true` is still wrong
            if not isinstance(value, expected):
                raise ConfigError(f"target setting {field.name}={value!r}: expected a {field.type}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"target setting port={self.port}: must be 0..65535")
        numbers = {
            "service_time_scale": self.service_time_scale,
            "login_rate_limit": self.login_rate_limit,
        }
        for name, number in numbers.items():
            if not math.isfinite(number) or number < 0:
                raise ConfigError(f"target setting {name}={number}: must be >= 0")
        positive = {
            "login_rate_window_s": self.login_rate_window_s,
            "access_token_ttl_s": self.access_token_ttl_s,
            "refresh_token_ttl_s": self.refresh_token_ttl_s,
            "cache_ttl_s": self.cache_ttl_s,
            "stale_after_s": self.stale_after_s,
        }
        for name, number in positive.items():
            if not math.isfinite(number) or number <= 0:
                raise ConfigError(f"target setting {name}={number}: must be > 0")
        if self.jwt_secret and len(self.jwt_secret) < MIN_JWT_SECRET_CHARS:
            raise ConfigError(
                f"target setting jwt_secret: use at least {MIN_JWT_SECRET_CHARS} characters"
            )


def load_settings(config: Path | None, flags: Mapping[str, Any]) -> TargetSettings:
    """The target's settings from defaults, the TOML file, the environment and flags."""
    return resolve_settings(
        TargetSettings,
        file=config,
        section="target",
        env_prefix="TRACEREPLAY_TARGET_",
        flags=flags,
    )
