"""Parsing of human-written quantities: durations and listen addresses.

Every CLI option with a unit goes through here, so they all accept the same forms.
"""

from __future__ import annotations

import math
import re

from tracereplay.errors import UsageError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(text: str) -> float:
    """Seconds in "90", "90s", "1.5m", "1h30m", "250ms"; a bare number is seconds.

    >>> parse_duration_s("1h30m")
    5400.0
    """
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(value):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
            pos = match.end()
        if pos != len(value) or not value:
            raise UsageError(
                f"not a duration: {text!r} (use seconds or forms like 90s, 5m, 1h30m)"
            ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"not a duration: {text!r} (must be a finite number >= 0)")
    return seconds


def parse_host_port(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """("127.0.0.1", 8080) from "127.0.0.1:8080", ":8080" or "8080"."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"not a HOST:PORT address: {text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"port out of range in {text!r}")
    return host, port


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?")
_SIZE_UNITS = {
    None: 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}  # fmt: skip


def parse_size_bytes(text: str) -> int:
    """Bytes in "8MiB", "512k", "2GB", "1024"; a bare number is bytes (K, M, G alone are
    binary, as in `ulimit`).

    >>> parse_size_bytes("8MiB")
    8388608
    """
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(f"not a size: {text!r} (use bytes or forms like 512KiB, 8MiB, 2GB)")
    size = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if not math.isfinite(size) or size >= 2**63:
        raise UsageError(f"not a size: {text!r} (too large)")
    return int(size)


def session_timeout_s(text: str) -> float:
    """The inactivity that ends a session (`--session-timeout`): a duration > 0."""
    timeout_s = parse_duration_s(text)
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise UsageError(f"--session-timeout must be > 0, not {text!r}")
    return timeout_s
