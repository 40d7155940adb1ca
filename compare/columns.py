"""Both traces of a comparison read as light columns (issue 15): the columns compare
needs (`frame.LIGHT_COLUMNS` and `error`) batch by batch into numpy codes
(`frame.read_request_columns`), endpoints templated per distinct (method, path), and the
sessions numbered with numpy (`frame.sessionize_requests`), never a pandas frame of
every column nor pandas' sorts of string keys. Session keys first as the model's
`sessionize` has them: a key whose requests all failed auth joins its connection's next
key (`sessions.join_failed_credentials`, the same function; `conn` read only then).

The frames hold what the measures, verdicts, SLOs and the report read: `session_key`,
`t_s`, `duration_ms`, `status`, `status_label` (categorical, statuses.py), `error`,
`endpoint` (categorical), `think_s`, `session_id`, with the values `load_requests` +
`sessionized_pair` give (tested against them), in the same (session_id, seq) order.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tracereplay.models.frame import (
    LIGHT_COLUMNS,
    PLANNED_SOURCES,
    RequestColumns,
    connections_to_join,
    read_request_columns,
    sessionize_requests,
)
from tracereplay.models.sessions import (
    DEFAULT_SESSION_TIMEOUT_S,
    join_failed_credentials,
)
from tracereplay.models.source import ParquetSource
from tracereplay.models.templating import Templater, endpoint_names

from .run_summary import pauses_over_skips
from .statuses import STATUS_LABEL, code_statuses


class _Trace:
    """One trace's light columns, `error`, and its time origin."""

    def __init__(self, path: Path) -> None:
        source = ParquetSource.open(path)
        requests = read_request_columns(source.batches(LIGHT_COLUMNS), source=str(path))
        error = source.rows(requests.row, ["error"]).column("error")
        self.error = pd.Categorical(error.combine_chunks().dictionary_encode().to_pandas())
        meta = source.metadata
        first = requests.first_ts
        origin = meta.capture_start if meta.source in PLANNED_SOURCES else None
        shift_us = (
            int((first - pd.Timestamp(origin)) // pd.Timedelta(microseconds=1))
            if origin is not None and pd.Timestamp(origin) <= first
            else 0
        )
        # t_s from the origin, to the bit as `requests_frame` has it: pandas' seconds of a
        # microsecond timedelta are whole seconds + the rest / 1e6 (not µs / 1e6).
        since_us = np.rint(requests.t_s * 1_000_000).astype(np.int64) + shift_us
        seconds, rest = np.divmod(since_us, 1_000_000)
        shifted = replace(requests, t_s=seconds + rest / 1_000_000)
        del requests, since_us, seconds, rest
        self.requests = replace(shifted, key=_session_keys(source, shifted))
        codes, self.status_labels = code_statuses(shifted.status)
        self.status_codes = _small(codes)

    def pairs(self) -> tuple[np.ndarray, list[str], list[str]]:
        """Each request's code into the distinct (method, path) pairs, in order of first
        use (paths null read as "/", as `add_endpoints` does), and those pairs."""
        r = self.requests
        paths = ["/" if p is None else str(p) for p in r.paths.to_pylist()]
        path_codes, path_values = pd.factorize(pd.Series(paths, dtype=object))
        path = np.asarray(path_codes, dtype=np.int64)[r.path]
        width = max(len(path_values), 1)
        codes, pairs = pd.factorize(r.method.astype(np.int64) * width + path)
        methods = [r.methods[int(m)] for m in (pairs // width).tolist()]
        return (
            np.asarray(codes, dtype=np.int64),
            methods,
            [str(path_values[int(p)]) for p in (pairs % width).tolist()],
        )


def _session_keys(source: ParquetSource, requests: RequestColumns) -> np.ndarray:
    """Each request's session key code as the model's `sessionize` reads it: a key whose
    requests all failed auth joins the key its connection carries next
    (`join_failed_credentials`); `conn` is read only when some key failed throughout."""
    conn = connections_to_join(source, requests)
    if conn is None:
        return requests.key
    joined = join_failed_credentials(requests.key, requests.t_s, requests.status, conn)
    return np.asarray(joined, dtype=requests.key.dtype)


def fit_templater(real: _Trace) -> Templater:
    """The templater `sessionized_pair` fits on REAL: on its (method, path) counts."""
    codes, methods, paths = real.pairs()
    counts = np.bincount(codes, minlength=len(methods))
    return Templater.fit_counts(
        {(m, p): int(n) for m, p, n in zip(methods, paths, counts.tolist(), strict=True)}
    )


def _small(codes: np.ndarray) -> np.ndarray:
    """Codes in the smallest integer type that holds them (10 M int64 codes: 80 MB)."""
    top = int(codes.max()) if codes.size else 0
    return codes.astype(np.min_scalar_type(-max(top, 1)), copy=False)


def _sessionized(trace: _Trace, templater: Templater, timeout_s: float) -> pd.DataFrame:
    codes, methods, paths = trace.pairs()
    names = endpoint_names(templater, methods, paths)
    name_codes, distinct = pd.factorize(pd.Series(names, dtype=object))
    endpoint = _small(np.asarray(name_codes, dtype=np.int32))[codes]
    del codes
    # What sessionizing reads (key, t_s, duration_ms) and the rows gathered after it: the
    # scan positions, methods and paths (16 bytes a request) are not held through its sort;
    # statuses (the trace's int16, NaN without a response) are float32: exact.
    none = np.zeros(0, np.int32)
    r = trace.requests
    status = r.status.astype(np.float32)
    r = trace.requests = replace(r, row=none, method=none, path=none, status=status)
    frame = sessionize_requests(r, endpoint, [str(n) for n in distinct], timeout_s)
    del endpoint
    request = frame["request"].to_numpy()
    keys = pd.Categorical.from_codes(frame["session_key"].to_numpy(), categories=pd.Index(r.keys))
    return pd.DataFrame(
        {
            "session_key": keys,
            "t_s": frame["t_s"].to_numpy(),
            "duration_ms": frame["duration_ms"].to_numpy(),
            "status": r.status[request],
            STATUS_LABEL: pd.Categorical.from_codes(
                trace.status_codes[request], categories=pd.Index(trace.status_labels)
            ),
            "error": trace.error[request],
            "endpoint": frame["endpoint"],
            "think_s": frame["think_s"].to_numpy(),
            "session_id": frame["session_id"].to_numpy(),
        },
        copy=False,
    )


def read_pair(
    real_path: Path,
    other_path: Path,
    *,
    templater: Templater | None = None,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both traces sessionized, endpoints from a templater fitted on REAL unless given."""
    real_s, templater = read_sessionized(real_path, templater, session_timeout_s)
    return real_s, read_sessionized(other_path, templater, session_timeout_s)[0]


def read_sessionized(
    path: Path, templater: Templater | None, session_timeout_s: float
) -> tuple[pd.DataFrame, Templater]:
    """One trace sessionized, endpoints from `templater` or from one fitted on it (REAL),
    with that templater; its columns are let go before the next trace is read."""
    trace = _Trace(path)
    templater = templater or fit_templater(trace)
    frame = _sessionized(trace, templater, session_timeout_s)
    del trace
    spans = pauses_over_skips(path, frame)  # a replay's pauses over a held-back request
    if spans is not None and spans.any():
        frame["think_s"] = np.where(spans, np.nan, frame["think_s"].to_numpy())
    pa.default_memory_pool().release_unused()
    return frame, templater
