"""Each session's first request's own session key read from the trace: what
`partition_reads.moved_first_keys` gives without a read (the tests' reference)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tracereplay.models.source import RequestSource
from tracereplay.models.string_codes import session_key as batch_session_keys


def first_request_keys(trace: RequestSource, first_row: np.ndarray) -> pa.Array:
    """Each session's first request's own session key (`string_codes.session_key` of its
    row: the session, else the client, else NO_SESSION), by global session id, read from
    the trace (`session`, `client`: sessions-sized)."""
    positions = np.asarray(first_row, np.int64)
    order = np.argsort(positions, kind="stable")
    table = trace.rows(positions[order], ["session", "client"])
    columns = [table.column(c).combine_chunks() for c in ("session", "client")]
    code, values = batch_session_keys(pa.RecordBatch.from_arrays(columns, ["session", "client"]))
    back = np.empty(len(order), np.int64)
    back[order] = np.arange(len(order))
    keys: pa.Array = values.take(pa.array(code[back]))
    return keys
