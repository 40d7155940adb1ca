"""Path-parameter kinds: what the values of one template parameter look like, and fresh
values of that kind for synthesis (a UUID stays a UUID, an integer id an integer)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import counters

# RE2 patterns, applied by Arrow to the distinct values of a parameter.
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_INT = r"^[0-9]+$"
_HEX = r"^[0-9a-fA-F]{8,}$"
MAX_EXAMPLES = 12


def param_kind(values: Iterable[str] | pa.Array) -> dict[str, Any]:
    """{"kind": uuid|int|hex|other, ...}: the shape every observed value has. The patterns
    and lengths are judged on the values as they come (what every value matches, every
    distinct one does); only "other" sorts the distinct ones, for its examples (real10M's
    0.74 M parameter values, all distinct: `unique` was 0.08 of the 0.17 s)."""
    array = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    present = array.drop_null()

    def every(pattern: str) -> bool:
        matched = pc.match_substring_regex(present, pattern)
        return bool(len(present)) and bool(pc.all(matched).as_py())

    if every(_UUID):
        return {"kind": "uuid"}
    lengths = pc.utf8_length(present)
    if every(_INT):
        low, high = pc.min_max(lengths).values()
        return {"kind": "int", "digits": [low.as_py(), high.as_py()]}
    if every(_HEX):
        return {"kind": "hex", "length": pc.max(lengths).as_py()}
    seen = pc.unique(present)
    examples = seen.take(pc.sort_indices(seen)[:MAX_EXAMPLES])
    return {"kind": "other", "examples": examples.to_pylist()}


def fresh_values(spec: dict[str, Any], keys: np.ndarray, first: int) -> pa.StringArray:
    """One new value of the kind `spec` describes per key (models/counters.py), from the
    key's numbers `first`, `first` + 1, ... (at most `counters.VALUE_WORDS` of them): a
    UUID (version 4), an integer of the observed number of digits, hex of the observed
    length, else one of the examples; built as one Arrow array."""
    keys = np.asarray(keys, dtype=np.uint64)
    kind = spec.get("kind")
    if kind == "uuid":
        raw = np.stack([counters.words(keys, first + j) for j in (0, 1)], axis=1)
        octets = raw.astype(">u8").view(np.uint8).reshape(len(keys), 16)
        octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40  # version 4, RFC 4122 variant
        octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80
        pairs = _HEX_PAIRS[octets].view(np.uint8)  # two characters per octet
        out = np.full((len(keys), 36), ord("-"), dtype=np.uint8)
        for a, b, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
            out[:, at : at + b - a] = pairs[:, a:b]  # 8-4-4-4-12, dashes between
        return _strings(out)
    if kind == "int":
        low, high = (int(v) for v in spec.get("digits", [1, 6]))
        low, high = max(low, 1), max(high, low, 1)
        u = counters.uniforms(keys[:, None], first + np.arange(high + 1, dtype=np.uint64))
        digits = low + (u[:, 0] * (high - low + 1)).astype(np.int64)
        chars = (u[:, 1:] * 10).astype(np.uint8) + ord("0")
        chars[:, 0] = (u[:, 1] * 9).astype(np.uint8) + ord("1")
        return _strings(chars, digits)
    if kind == "hex":
        length = max(int(spec.get("length", 16)), 1)
        count = min(-(-length // 16), counters.VALUE_WORDS)
        raw = counters.words(keys[:, None], first + np.arange(count, dtype=np.uint64))
        octets = raw.astype(">u8").view(np.uint8).reshape(len(keys), 8 * count)
        nibbles = np.stack([octets >> 4, octets & 0x0F], axis=2).reshape(len(keys), -1)
        return _strings(_HEX_DIGITS[nibbles[:, :length]])
    examples = [str(v) for v in spec.get("examples") or ["x"]]
    picks = (counters.uniforms(keys, first) * len(examples)).astype(np.int64)
    return pa.array(examples, pa.string()).take(pa.array(picks))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_PAIRS = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)


def _strings(chars: np.ndarray, lengths: np.ndarray | None = None) -> pa.StringArray:
    """Rows of ASCII codes as strings, each its first `lengths` characters (all when None)."""
    n, width = chars.shape
    if lengths is None:
        data = np.ascontiguousarray(chars).ravel()
        offsets = np.arange(n + 1, dtype=np.int64) * width
    else:
        data = chars[np.arange(width)[None, :] < lengths[:, None]]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
    buffers = [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data.tobytes())]
    return pa.Array.from_buffers(pa.large_string(), n, buffers).cast(pa.string())
