"""The model's sessions the pandas way (`sessions.sessionize` over a frame): what the model
computed for traces with keys that failed auth throughout until 2026-12-05 (92.7 s and
5.46 GB at 10 M requests), kept as the tests' reference for the numpy path
(`sessionized.joined_keys`, `sessions.joined_key_codes`) and the partitioned one."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tracereplay.models.light_columns import RequestColumns
from tracereplay.models.sessionized import _Later
from tracereplay.models.sessions import SessionStats, session_stats, sessionize


def session_frame(
    requests: RequestColumns,
    conn: np.ndarray | None = None,
    endpoint: np.ndarray | None = None,
    names: list[str] | None = None,
) -> pd.DataFrame:
    """What `sessionize` reads, with session keys as codes sorted like the keys (so ids
    and ties come out as with the strings) and endpoints as a categorical; `conn` and
    `status` when some key failed auth throughout."""
    frame = pd.DataFrame(
        {
            "session_key": requests.key,
            "t_s": requests.t_s,
            "duration_ms": requests.duration_ms,
            "request": np.arange(len(requests)),
        }
    )
    if conn is not None:
        frame["status"], frame["conn"] = requests.status, conn
    if endpoint is not None and names is not None:
        frame["endpoint"] = pd.Categorical.from_codes(endpoint, categories=pd.Index(names))
    return frame


def joined_sessions(
    requests: RequestColumns,
    conn: np.ndarray,
    endpoint: np.ndarray | None,
    names: list[str],
    timeout_s: float,
    timeouts: Mapping[str, float],
) -> tuple[pd.DataFrame, _Later]:
    """`_sessionized` of requests some of whose keys failed auth throughout (`conn`: each
    request's connection, `frame.connections_to_join`) the pandas way: `sessionize`, which
    joins them to their connection's next key."""

    def by_timeout() -> dict[str, SessionStats]:
        # A failed credential joins its connection's next key: sessionize per timeout.
        return {
            name: session_stats(sessionize(session_frame(requests, conn), t))
            for name, t in timeouts.items()
        }

    sessions = sessionize(session_frame(requests, conn, endpoint, names), timeout_s)
    return sessions, _Later(by_timeout, requests.t_s)
