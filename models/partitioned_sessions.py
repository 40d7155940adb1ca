"""The model's "sessions" section made one key partition at a time (issue 15): the trace
scanned into partitions of session keys, each one's sessions made, their pauses spilled.

The three pieces composed (models/key_partitions.py, partition_sessions.py,
spilled_quantiles.py): one scan spills every request to its key's partition; each
partition is read back, its sessions made (`partition_sessions`, sessions-sized) and its
pauses handed to a `SpilledValues` (a group per timeout); the pauses' medians and the
censoring's quantile come from one `answer`, the merge numbers the sessions as the model
does; a second pass over the partitions' times counts the requests per arrivals' bucket.
What is held across partitions is sessions-sized; one partition's requests at a time.
Keys whose every request failed auth are joined as the model joins them (the scan's
`join_failed_auth`: each such key's rows partitioned by the key it joins).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tracereplay.allocator import give_back_freed

from .arrivals import fitted_bucket_s
from .key_partitions import KeyPartitions, scan_key_partitions
from .partition_sessions import (
    MergedSessions,
    PartitionSessions,
    TracePauses,
    merged_sessions,
    partition_sessions,
)
from .session_shape import CENSOR_QUANTILE
from .sessions import request_curve
from .source import RequestSource
from .spilled_quantiles import Ask, Chunk, SpilledValues

__all__ = ["PartitionedSessions", "SpilledPauses", "partitioned_sessions"]

OWN, OWN_FINITE, OWN_INFINITE = 0, 1, 2
"""The groups of the model's timeout's pauses: all of them (the median's: `nan_median`
reads infinities), the finite ones (the censoring's quantile leaves the others out) and
the infinite ones (spilled once: each also in OWN). Other timeouts' pauses: 3 on."""


class SpilledPauses:
    """A `PauseSink` spilling what each partition gives to a `SpilledValues`, a group per
    timeout: `statistics()` is `HeldPauses.statistics()` to the bit, from one `answer`.
    A timeout equal to the model's (`own_timeout_s`: "30m" at the default 1800 s) or to
    one before it cuts at the same rows, so is given the same pauses: not spilled again
    (real10M: 10 M pauses, 0.2 CPU s and 145 MiB less), its group the one it equals."""

    def __init__(
        self, values: SpilledValues, timeouts_s: Mapping[str, float], own_timeout_s: float
    ) -> None:
        self.values = values
        first: dict[float, int] = {float(own_timeout_s): OWN}
        self.group = {
            name: first.setdefault(float(t), OWN_INFINITE + 1 + i)
            for i, (name, t) in enumerate(timeouts_s.items())
        }
        self.spilled: dict[str, int] = {}
        """The timeouts whose pauses are spilled, each its group (the first of a value)."""
        for name, group in self.group.items():
            if group != OWN and group not in self.spilled.values():
                self.spilled[name] = group

    def __call__(self, name: str | None, values: np.ndarray) -> None:
        self.put(self.chunks(name, values))

    def chunks(self, name: str | None, values: np.ndarray) -> list[Chunk]:
        """What `__call__` spills of a timeout's pauses `values` (`name`: None, the
        model's own), made ready without the spill: on a partition's thread, to be `put`
        in partition order."""
        if name is not None and name not in self.spilled:
            return []  # (the pauses of a timeout before it, or of the model's: spilled)
        values = values[~np.isnan(values)]  # (none come: a pause inside a session is known)
        if name is not None:
            return [Chunk.of(values, np.full(len(values), self.group[name], np.int32))]
        finite = np.isfinite(values)
        if finite.all():
            return [Chunk.of(values, np.full(len(values), OWN_FINITE, np.int32), also=OWN)]
        return [
            Chunk.of(values[kept], np.full(int(kept.sum()), group, np.int32), also=OWN)
            for kept, group in ((finite, OWN_FINITE), (~finite, OWN_INFINITE))
        ]

    def put(self, chunks: list[Chunk]) -> None:
        """`chunks` spilled, in their order."""
        for chunk in chunks:
            self.values.put(chunk)

    def statistics(self) -> TracePauses:
        """The medians and the censoring's quantile (NaN for a group with no pause)."""
        medians, censor = self.values.answer(
            Ask.median([OWN, *self.spilled.values()]),
            Ask.quantiles([CENSOR_QUANTILE], [OWN_FINITE]),
        )
        found = medians.as_dict()

        def median(group: int) -> float:
            return float(found[group]) if group in found else math.nan

        quantile = censor.as_dict().get(OWN_FINITE)
        return TracePauses(
            median(OWN),
            math.nan if quantile is None else float(quantile[0]),
            {name: median(group) for name, group in self.group.items()},
        )


@dataclass(frozen=True)
class PartitionedSessions:
    """The whole trace's sessions, made partition by partition: the merge's (table, stats,
    censoring, statistics at other timeouts, each partition's local→global session ids),
    the pauses' statistics it took, the request curve and the trace's span and rows."""

    merged: MergedSessions
    pauses: TracePauses
    requests: dict[str, Any]
    """`request_curve` over every request at the arrivals' bucket (`fitted_bucket_s`)."""
    span_s: float
    rows: int
    timeout_s: float
    counts: dict[str, int]
    """What the scan and the spill wrote (for benchmarks)."""

    def section(self, *, shape: bool = True) -> dict[str, Any]:
        """`build_model`'s "sessions" section: with `shape` its whole (the sessions'
        length and duration quantiles too, Kaplan-Meier over the table: the model's own
        function), else the parts made here."""
        merged = self.merged
        made = {
            "censored": merged.censored.to_json(),
            "stats": merged.stats.to_json(),
            "requests": self.requests,
            "timeout_sensitivity": {name: at.to_json() for name, at in merged.by_timeout.items()},
        }
        if not shape:
            return made
        from .model import censored_quantiles  # (the model's: not imported with this)

        censored = merged.censored.any
        return {
            "timeout_s": self.timeout_s,
            **made,
            "length": censored_quantiles(merged.table["length"].to_numpy(float), censored),
            "duration_s": censored_quantiles(merged.table["duration_s"].to_numpy(float), censored),
        }


def partitioned_sessions(
    source: RequestSource,
    *,
    session_timeout_s: float,
    partitions: int,
    directory: Path | None = None,
    censor_edges: bool = True,
    timeouts_s: Mapping[str, float] | None = None,
    gather_limit: int = 1 << 20,
) -> PartitionedSessions:
    """The sessions of `source` as `build_model` makes them (`session_timeout_s`,
    `censor_edges` as its; `timeouts_s`: its SENSITIVITY_TIMEOUTS_S by default), made in
    `partitions` partitions of session keys spilled under `directory` (default: the
    system's temp directory), every spill removed on return or error. A key whose every
    request failed auth is joined to its connection's next key, as the model joins it."""
    if timeouts_s is None:
        from .model import SENSITIVITY_TIMEOUTS_S  # (the model's: not imported with this)

        timeouts_s = SENSITIVITY_TIMEOUTS_S
    with (
        scan_key_partitions(source, partitions, directory, join_failed_auth=True) as parts,
        SpilledValues(directory, gather_limit=gather_limit) as spilled,
    ):
        given_back()  # (what the scan freed: the partitions' arrays come on top)
        sink = SpilledPauses(spilled, timeouts_s, session_timeout_s)
        made: list[PartitionSessions] = []
        span_s = 0.0
        for p in range(parts.count):  # (kept on disk: the curve reads their times again)
            rows = parts.partition(p).key_partition(parts.first_ts_us)
            made.append(partition_sessions(rows, session_timeout_s, timeouts_s, sink))
            if len(rows):
                span_s = max(span_s, float(rows.t_s.max()))  # (the model's: the last t_s)
            del rows
            given_back()
        pauses = sink.statistics()
        given_back()
        merged = merged_sessions(made, pauses, censor_edges=censor_edges)
        del made
        bucket_s = fitted_bucket_s(merged.table["start_s"].to_numpy(), span_s)
        curve = partitions_request_curve(parts, bucket_s, span_s)
        counts = {**parts.counts, "pause_spill_bytes": spilled.spill_bytes()}
    return PartitionedSessions(merged, pauses, curve, span_s, parts.rows, session_timeout_s, counts)


def given_back() -> None:
    """The memory freed given back to the system (glibc's and Arrow's pools): what the
    next step allocates comes on top of what is held, not of what was."""
    pa.default_memory_pool().release_unused()
    give_back_freed()


def partitions_request_curve(
    parts: KeyPartitions, bucket_s: float, span_s: float
) -> dict[str, Any]:
    """`request_curve` of every request, summed over the partitions: a request's bucket is
    its own time's (its `t_s` computed as the model's), in whatever order. Only the times'
    column read back (memory-mapped), one partition at a time."""
    counts: np.ndarray | None = None
    for p in range(parts.count):
        t_s = parts.times(p)
        found = np.asarray(request_curve(t_s, bucket_s, span_s)["counts"], np.int64)
        counts = found if counts is None else counts + found
    assert counts is not None  # (a scan holds at least one partition)
    return {"bucket_s": float(bucket_s), "counts": [int(c) for c in counts]}
