"""The payloads and correlations stages' work over every request — every session's address,
the endpoints' statistics — on one thread beside the Python that learns from the samples.

That work is numpy and Arrow kernels and Parquet scans, which let go of the GIL; the
samples' reads, payload inference and the correlation walk are Python holding it. On one
thread, real10M's two stages took ~2.4 s of which ~1.1 s was this work (model.py)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from .endpoints import EndpointRows, Payloads
from .frame import RequestColumns
from .sample_reads import _endpoint_stats, _every_address, _merged
from .source import RequestSource


class WholeTrace:
    """`with WholeTrace(...) as beside:` starts every session's address (when `addresses`);
    `stats(groups)` queues the endpoints' statistics behind it; `endpoints` and
    `addresses` wait for them. Leaving the block waits for the thread (an error in it is
    raised where its result is taken)."""

    def __init__(
        self,
        trace: RequestSource,
        requests: RequestColumns,
        sessions: pd.DataFrame,
        *,
        addresses: bool,
    ) -> None:
        self._requests = requests
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="whole-trace")
        self._addresses: Future[tuple[int, str | None]] | None = None
        self._stats: Future[list[dict[str, Any]]] | None = None
        if addresses:
            self._addresses = self._pool.submit(_every_address, trace, requests, sessions)

    def __enter__(self) -> WholeTrace:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def stats(self, groups: EndpointRows) -> None:
        self._stats = self._pool.submit(_endpoint_stats, self._requests, groups)

    def endpoints(self, groups: EndpointRows, payloads: list[Payloads]) -> dict[str, Any]:
        """The model's `endpoints`: the statistics (`stats(groups)` first) with `payloads`."""
        assert self._stats is not None, "stats(groups) first"
        return _merged(groups, payloads, self._stats.result())

    def addresses(self) -> tuple[int, str | None]:
        """`_every_address` of the trace (only when started with `addresses`)."""
        assert self._addresses is not None, "not started with addresses=True"
        return self._addresses.result()


def sampled_whole(sessions: pd.DataFrame, per_sample: int) -> bool:
    """True when the correlation sample is sure to be every session (so no address is
    counted over the rest): as `session_sample.sample_sessions` decides, no more sessions
    than `per_sample`. (False may still give a whole sample: the per-endpoint quota.)"""
    ids = sessions["session_id"].to_numpy()
    return not len(ids) or int(np.max(ids)) + 1 <= per_sample
