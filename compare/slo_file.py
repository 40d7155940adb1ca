"""An SLO file (TOML; default_slo.toml documents the format) read into `Slo` records,
checked strictly: every mistake is a one-line ConfigError naming the key."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracereplay.config import parse_toml, read_config_text
from tracereplay.errors import ConfigError

from .bindings import CLASSES

DEFAULT_SLO_NAME = "default_slo.toml"
LATENCY_METRICS = {"latency_p50_ms": 0.50, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}
RATE_METRICS = ("error_rate", "client_error_rate", "server_error_rate", "success_rate")
METRICS = (*LATENCY_METRICS, *RATE_METRICS, "throughput_rps")
OPS = ("<", "<=", ">", ">=")

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_KEYS = {"metric", "op", "threshold", "endpoints", "enabled", "binds"}


@dataclass(frozen=True)
class Slo:
    """One threshold: `metric op threshold` over the requests `endpoints` select, or,
    with no endpoints, over those of the class it `binds` to (login, crud, complex)."""

    name: str
    metric: str
    op: str
    threshold: float
    endpoints: tuple[str, ...] = ("*",)
    """Glob patterns over "METHOD /template"; "*" selects every request."""
    binds: str | None = None
    """An SLO class: the endpoints come from what was learned (bindings.py) when the
    file names none."""
    enabled: bool = True

    def describe(self) -> str:
        """The threshold as people write it: "< 500 ms", ">= 99 %", ">= 1000 req/s"."""
        if self.metric in RATE_METRICS:
            return f"{self.op} {self.threshold * 100:g} %"
        unit = "req/s" if self.metric == "throughput_rps" else "ms"
        return f"{self.op} {self.threshold:g} {unit}"

    @property
    def needs_binding(self) -> bool:
        return self.binds is not None and not self.endpoints


def load_slos(path: Path | None = None) -> list[Slo]:
    """The SLOs in `path`, or the default ones; ConfigError on anything unusable."""
    text, source = read_config_text(
        path, label="SLO file", package=__package__ or "", default_name=DEFAULT_SLO_NAME
    )
    return parse_slos(text, source=source)


def parse_slos(text: str, *, source: str = "<string>") -> list[Slo]:
    """SLOs from TOML text, in file order; checked strictly (unknown keys are errors)."""
    where = f"SLO file {source}"
    raw = parse_toml(text, where)
    extra = sorted(set(raw) - {"version", "slo"})
    if extra:
        raise ConfigError(f"{where}: unknown key {extra[0]!r} (want version and [slo.NAME])")
    if raw.get("version", 1) != 1:
        raise ConfigError(f"{where}: version {raw['version']!r} not supported (want 1)")
    tables = raw.get("slo")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{where}: no [slo.NAME] tables")
    return [_slo(name, table, where) for name, table in tables.items()]


def _slo(name: str, table: Any, where: str) -> Slo:
    key = f"slo.{name}"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: SLO name {name!r} must be letters, digits, _ or -")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {key} must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {key}.{unknown[0]}")
    for required in ("metric", "op", "threshold"):
        if required not in table:
            raise ConfigError(f"{where}: missing {key}.{required}")
    metric, op, threshold = table["metric"], table["op"], table["threshold"]
    if metric not in METRICS:
        raise ConfigError(f"{where}: {key}.metric {metric!r} unknown (known: {', '.join(METRICS)})")
    if op not in OPS:
        raise ConfigError(f"{where}: {key}.op {op!r} unknown (known: {', '.join(OPS)})")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ConfigError(f"{where}: {key}.threshold must be a number")
    threshold = float(threshold)
    if metric in RATE_METRICS and not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"{where}: {key}.threshold must be a fraction in [0, 1] (0.01 = 1 %)")
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ConfigError(f"{where}: {key}.threshold must be a finite number >= 0")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: {key}.enabled must be true or false")
    return Slo(name, metric, op, threshold, *_selector(table, f"{where}: {key}"), enabled=enabled)


def _selector(table: dict[str, Any], where: str) -> tuple[tuple[str, ...], str | None]:
    """(endpoint patterns, class): a class without endpoints binds to what was learned."""
    binds = table.get("binds")
    if binds is not None and binds not in CLASSES:
        raise ConfigError(f"{where}.binds {binds!r} unknown (known: {', '.join(CLASSES)})")
    endpoints = table.get("endpoints", [] if binds else ["*"])
    if not isinstance(endpoints, list) or not (endpoints or binds):
        raise ConfigError(f"{where}.endpoints must be a non-empty list of patterns")
    return tuple(_pattern(p, f"{where}.endpoints") for p in endpoints), binds


def _pattern(pattern: Any, where: str) -> str:
    """A "*" or a "METHOD /path" glob, its method upper-cased as endpoint names have it."""
    if pattern == "*":
        return "*"
    method, _, path = pattern.partition(" ") if isinstance(pattern, str) else ("", "", "")
    if not method or not path.startswith(("/", "*")) or " " in path:
        raise ConfigError(
            f'{where}: {pattern!r} must be "*" or look like "METHOD /path" (e.g. "POST */login")'
        )
    return f"{method.upper()} {path}"
