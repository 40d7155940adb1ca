"""Path-parameter kinds: what the values of one template parameter look like, and fresh
values of that kind for synthesis (a UUID stays a UUID, an integer id an integer)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# RE2 patterns, applied by Arrow to the distinct values of a parameter.
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_INT = r"^[0-9]+$"
_HEX = r"^[0-9a-fA-F]{8,}$"
MAX_EXAMPLES = 12


def param_kind(values: Iterable[str] | pa.Array) -> dict[str, Any]:
    """{"kind": uuid|int|hex|other, ...}: the shape every observed value has."""
    array = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    seen = pc.unique(array.drop_null())

    def every(pattern: str) -> bool:
        return bool(len(seen)) and bool(pc.all(pc.match_substring_regex(seen, pattern)).as_py())

    if every(_UUID):
        return {"kind": "uuid"}
    lengths = pc.utf8_length(seen)
    if every(_INT):
        low, high = pc.min_max(lengths).values()
        return {"kind": "int", "digits": [low.as_py(), high.as_py()]}
    if every(_HEX):
        return {"kind": "hex", "length": pc.max(lengths).as_py()}
    examples = seen.take(pc.sort_indices(seen)[:MAX_EXAMPLES])
    return {"kind": "other", "examples": examples.to_pylist()}


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
