"""A batch's numbers written straight into their slice of the read's arrays are what an
Arrow cast to floats reads (nulls NaN), and a batch whose every request has a named
session keys its requests by the sessions alone as the full rule does
(models/light_columns.py, models/string_codes.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tracereplay.models.light_columns import numbers_into
from tracereplay.models.string_codes import NO_SESSION, session_key

_COLUMNS = {
    "no null": ([200, 404, -3, 32767, -32768], pa.int16()),
    "some null": ([200, None, 500, None, 0], pa.int16()),
    "all null": ([None, None, None, None, None], pa.int16()),
    "floats": ([1.5, None, -0.0, 1e30, 7.25], pa.float64()),
    "floats, no null": ([1.5, 2.0, -0.0, 1e-300, 7.25], pa.float64()),
    "int64": ([1, None, 2**40, -5, 3], pa.int64()),
    "uint8": ([1, 255, None, 0, 3], pa.uint8()),
}


@pytest.mark.parametrize("case", sorted(_COLUMNS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("offset", "length"), [(0, 5), (1, 3), (4, 1), (2, 0)])
def test_numbers_written_into_a_slice_are_the_arrow_cast(
    case: str, dtype: type[np.floating], offset: int, length: int
) -> None:
    values, kind = _COLUMNS[case]
    column = pa.array(values, kind).slice(offset, length)  # a slice: its buffers' offset
    room = np.full(length + 4, 99.0, dtype)
    try:
        want = np.asarray(column.cast(pa.from_numpy_dtype(dtype)))  # as the read was made
    except pa.ArrowInvalid:  # a value the floats do not hold: the same error
        with pytest.raises(pa.ArrowInvalid):
            numbers_into(room[2 : 2 + length], column)
        return
    numbers_into(room[2 : 2 + length], column)
    assert np.array_equal(room[2 : 2 + length], want, equal_nan=True)
    assert (room[:2] == 99).all() and (room[2 + length :] == 99).all()  # only its slice


def test_a_dictionary_column_of_numbers_is_cast() -> None:
    column = pa.DictionaryArray.from_arrays(pa.array([1, 0, None, 1]), pa.array([2.5, 4.0]))
    room = np.empty(4)
    numbers_into(room, column)
    assert np.array_equal(room, [4.0, 2.5, np.nan, 4.0], equal_nan=True)


def _keys(batch: pa.RecordBatch) -> list[str]:
    indices, values = session_key(batch)
    return [values[int(i)].as_py() for i in indices]


def _want(sessions: list[str | None], clients: list[str | None]) -> list[str]:
    return [s if s else (c if c else NO_SESSION) for s, c in zip(sessions, clients, strict=True)]


def _batch(sessions: list[str | None], values: list[str] | None) -> pa.RecordBatch:
    """Sessions plain, or as indices into `values` (which may hold values no row uses, as
    a Parquet file's dictionary may), and clients with a null."""
    session: pa.Array = pa.array(sessions, pa.string())
    if values is not None:
        indices = [None if v is None else values.index(v) for v in sessions]
        session = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(values))
    clients = pa.array(["c1", None, "c2", "c1"][: len(sessions)], pa.string())
    return pa.RecordBatch.from_arrays([session, clients], names=["session", "client"])


@pytest.mark.parametrize(
    ("sessions", "values"),
    [
        (["s1", "s2", "s1", "é"], None),  # every request named: keyed by the sessions alone
        (["s1", "s2", "s1", "é"], ["x", "s1", "s2", "é"]),
        (["s1", "s2", "s1", "é"], ["", "s1", "s2", "é"]),  # an unused empty one: full rule
        (["s1", None, "s1", "é"], None),
        (["s1", None, "s1", "é"], ["s1", "é"]),
        (["s1", "", "s1", "é"], None),
        (["s1", "", "s1", "é"], ["", "s1", "é"]),
        (["", "", "", ""], None),
        ([], None),
    ],
)
def test_the_session_key_is_the_session_else_the_client(
    sessions: list[str | None], values: list[str] | None
) -> None:
    batch = _batch(sessions, values)
    indices, dictionary = session_key(batch)
    clients = batch.column("client").to_pylist()
    want = [s if s else (c if c else NO_SESSION) for s, c in zip(sessions, clients, strict=True)]
    assert indices.dtype == np.int32
    assert [dictionary[int(i)].as_py() for i in indices] == want
    sessions_alone = batch.column("session").null_count == 0 and "" not in (values or sessions)
    # The sessions' dictionary alone, else sessions, clients and NO_SESSION.
    assert (NO_SESSION not in dictionary.to_pylist()) == sessions_alone
