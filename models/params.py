"""Path-parameter kinds: what the values of one template parameter look like, and fresh
values of that kind for synthesis (a UUID stays a UUID, an integer id an integer)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INT = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]{8,}")
MAX_EXAMPLES = 12


def param_kind(values: Iterable[str]) -> dict[str, Any]:
    """{"kind": uuid|int|hex|other, ...}: the shape every observed value has."""
    seen = sorted(set(values))
    if seen and all(_UUID.fullmatch(v) for v in seen):
        return {"kind": "uuid"}
    if seen and all(_INT.fullmatch(v) for v in seen):
        digits = sorted(len(v) for v in seen)
        return {"kind": "int", "digits": [digits[0], digits[-1]]}
    if seen and all(_HEX.fullmatch(v) for v in seen):
        return {"kind": "hex", "length": max(len(v) for v in seen)}
    return {"kind": "other", "examples": seen[:MAX_EXAMPLES]}


def fresh_value(spec: dict[str, Any], rng: np.random.Generator) -> str:
    """A new value of the kind `spec` describes, drawn from `rng`."""
    kind = spec.get("kind")
    if kind == "uuid":
        return str(uuid.UUID(bytes=rng.bytes(16), version=4))
    if kind == "int":
        low, high = spec.get("digits", [1, 6])
        digits = int(rng.integers(low, high + 1))
        first = str(int(rng.integers(1, 10)))
        return first + "".join(str(d) for d in rng.integers(0, 10, digits - 1))
    if kind == "hex":
        return rng.bytes((int(spec.get("length", 16)) + 1) // 2).hex()[: spec.get("length", 16)]
    examples = spec.get("examples") or ["x"]
    return str(examples[int(rng.integers(0, len(examples)))])
