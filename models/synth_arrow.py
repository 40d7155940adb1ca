"""Arrow arrays for synthesis, built from their buffers: from numpy arrays and from lists
of Python strings.

`pa.array` first asks pyarrow's pandas shim whether its argument is a pandas object,
which imports pandas (~0.3 s of CPU) into a process that never uses it: a synthesis and
each of its workers would pay it before their first chunk. The columns are built here
instead (tests/models/test_synth_fixed_costs.py checks the synthesize path loads no pandas).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def numbers(
    values: np.ndarray, type_: pa.DataType | None = None, valid: np.ndarray | None = None
) -> pa.Array:
    """A numeric numpy array (not bool) as Arrow, of `type_` (its dtype's by default:
    a timestamp takes int64), null where `valid` is False."""
    values = np.ascontiguousarray(values)
    assert values.dtype != np.bool_, "Arrow booleans are bits: not built here"
    type_ = pa.from_numpy_dtype(values.dtype) if type_ is None else type_
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(type_, len(values), [bitmap, pa.py_buffer(values)])


def strings(values: Sequence[str | bytes | None], type_: pa.DataType | None = None) -> pa.Array:
    """Python strings (or bytes, for `pa.binary()`) as Arrow, None as null."""
    type_ = pa.string() if type_ is None else type_
    encoded = [v.encode() if isinstance(v, str) else v or b"" for v in values]
    lengths = np.fromiter((len(v) for v in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    data = pa.py_buffer(b"".join(encoded))
    large = pa.large_binary() if type_ == pa.binary() else pa.large_string()
    built = pa.Array.from_buffers(large, len(values), [bitmap, pa.py_buffer(offsets), data])
    return built.cast(type_)


def validity(array: pa.Array) -> np.ndarray:
    """Per row of `array`, whether it holds a value (not null)."""
    bitmap = array.buffers()[0]
    if bitmap is None:
        return np.ones(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(bool)


def scalar(value: str) -> pa.Scalar:
    """A string scalar (an argument of a compute function, as `pa.scalar` without the shim)."""
    return strings([value])[0]
