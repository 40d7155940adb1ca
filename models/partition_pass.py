"""The partitioned model's one pass over its key partitions (issue 15): each partition's
sessions made (`partition_sessions`, on threads ahead of what follows), its endpoints
counted, and each request's session, place in it and pause handed out and spilled in
session order (`Handed`: what the behaviors and the correlation sample read instead of
sessionizing again), then the sessions merged as the model numbers them. What is given to
the pauses' sink and the endpoints' tally is given in partition order: the same spills
whatever the threads did. models/partitioned_model.py composes it with the other stages.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from tracereplay.closing import Closing

from .arrivals import fitted_bucket_s
from .in_order import in_order
from .key_partitions import KeyPartitions, Partition
from .partition_behavior_inputs import PartitionRequests
from .partition_endpoints import EndpointTally
from .partition_sessions import (
    MergedSessions,
    PartitionSessions,
    TracePauses,
    merged_sessions,
    numbered,
    partition_sessions,
)
from .partitioned_sessions import (
    PartitionedSessions,
    SpilledPauses,
    given_back,
    partitions_request_curve,
)
from .spilled_quantiles import Chunk

__all__ = ["BehaviorRequests", "Handed", "Handout", "PassedSessions", "sessions_pass"]


class Handed(Closing):
    """Each partition's requests' local session id, place in its session, pause before it,
    endpoint and scan position (what `partition_sessions` hands out, with the partition's
    own columns), session by session in id order (as `partition_behaviors` reads them
    without a sort), spilled to a file a partition under `directory` (removed on `close`)."""

    def __init__(self, parent: Path, *, made: bool = False) -> None:
        self.owned = not made
        self.directory = parent if made else Path(tempfile.mkdtemp(prefix="handed-", dir=parent))

    @classmethod
    def at(cls, directory: Path) -> Handed:
        """The spills already under `directory` (another process's: read, not removed)."""
        return cls(directory, made=True)

    def close(self) -> None:
        """The spills removed (not another process's: `at`)."""
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _path(self, p: int) -> str:
        return str(self.directory / f"handed-{p}.arrow")

    def write(self, p: int, **columns: np.ndarray) -> None:
        table = pa.table(columns)
        with ipc.new_file(self._path(p), table.schema) as writer:
            writer.write_table(table)

    def read(self, p: int, *names: str) -> tuple[np.ndarray, ...]:
        with pa.memory_map(self._path(p)) as file:
            table = ipc.open_file(file).read_all()
            return tuple(table.column(c).to_numpy().copy() for c in names)


@dataclass(frozen=True)
class BehaviorRequests(Sequence[PartitionRequests]):
    """The handed spills as `partition_behaviors` reads them, a partition at a time:
    each request's global session id (its local one mapped by the merge's ids)."""

    handed: Handed
    ids: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, p: int) -> PartitionRequests:  # type: ignore[override]
        if not 0 <= p < len(self.ids):
            raise IndexError(p)
        local, endpoint, think = self.handed.read(p, "local", "endpoint", "think_s")
        return PartitionRequests(self.ids[p][local], endpoint, think)


@dataclass
class _SessionFirsts:
    """Each session's key and first request's scan position, by local id per partition
    (sessions-sized), put in global order once the merge has numbered them."""

    keys: list[pa.Array] = field(default_factory=list)
    first_rows: list[np.ndarray] = field(default_factory=list)

    def add(
        self, made: PartitionSessions, local: np.ndarray, seq: np.ndarray, row: np.ndarray
    ) -> None:
        self.keys.append(made.keys.take(pa.array(made.key)))
        first = np.zeros(len(made.key), np.int64)
        starts = seq == 0
        first[local[starts]] = row[starts]
        self.first_rows.append(first)

    def by_id(self, ids: list[np.ndarray]) -> tuple[pa.Array, np.ndarray]:
        every = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        order = np.empty(len(every), np.int64)  # (the ids are 0..n-1: their inverse)
        order[every] = np.arange(len(every))
        keys = pa.concat_arrays([k.cast(pa.large_string()) for k in self.keys])
        rows = np.concatenate(self.first_rows)
        return keys.take(pa.array(order)).cast(pa.string()), rows[order]


@dataclass
class PassedSessions:
    """The sessions pass's results: the merged sessions, the trace's span and the arrivals'
    bucket (what the behaviors' child is sent); then, asked once it has them (not on its
    path), each session's key and first request's scan position and the model's "sessions"
    section (its request curve a read of every partition's times: ~0.2 s at real10M)."""

    merged: MergedSessions
    span_s: float
    bucket_s: float
    pauses: TracePauses
    parts: KeyPartitions
    timeout_s: float
    firsts: _SessionFirsts | None

    def keys_and_firsts(self) -> tuple[pa.Array, np.ndarray]:
        """Each session's key and its first request's scan position, by id (asked once:
        the partitions' pieces let go)."""
        firsts, self.firsts = self.firsts, None
        assert firsts is not None, "asked twice"
        return firsts.by_id(self.merged.ids)

    def section(self) -> dict[str, Any]:
        """The model's "sessions" section."""
        merged, span_s = self.merged, self.span_s
        curve = partitions_request_curve(self.parts, self.bucket_s, span_s)
        made = PartitionedSessions(
            merged, self.pauses, curve, span_s, self.parts.rows, self.timeout_s, {}
        )
        return made.section()


class Handout:
    """`partition_sessions`' `requests` sink: keeps the one handout it is given."""

    def __init__(self) -> None:
        self.got: tuple[np.ndarray, ...] = ()

    def __call__(self, *handed_out: np.ndarray) -> None:
        self.got = handed_out


@dataclass(frozen=True)
class _Made:
    """One partition's sessions and what they hand on: its requests, its sessions, their
    handout and pauses (made ready to spill, held until put into the pauses' sink, in
    partition order)."""

    part: Partition
    sessions: PartitionSessions
    handout: tuple[np.ndarray, ...]
    pauses: list[Chunk]
    last_s: float | None
    """Its latest request's `t_s` (None: no request)."""


def _made(parts: KeyPartitions, p: int, timeout_s: float, sink: SpilledPauses) -> _Made:
    """Partition `p` read, its sessions made and its pauses made ready for `sink` (on a
    worker thread: nothing shared is written here)."""
    from .model import SENSITIVITY_TIMEOUTS_S  # (the model's: it imports this module)

    part, handout = parts.partition(p), Handout()
    rows = part.key_partition(parts.first_ts_us)
    pauses: list[Chunk] = []
    sessions = partition_sessions(
        rows, timeout_s, SENSITIVITY_TIMEOUTS_S,
        lambda name, v: pauses.extend(sink.chunks(name, v)), handout,
    )  # fmt: skip
    last_s = float(rows.t_s.max()) if len(rows) else None  # (the model's span: the last t_s)
    return _Made(part, sessions, handout.got, pauses, last_s)


AHEAD = 2
"""Partitions whose sessions are made on threads ahead of the one being handed on: numpy's
sorts and Arrow's reads let go of the GIL, so they share the cores with the spills here."""


def _in_order(parts: KeyPartitions, timeout_s: float, sink: SpilledPauses) -> Iterator[_Made]:
    """Every partition's `_made`, in order, at most `AHEAD` made beside the one given."""
    return in_order(
        lambda p: _made(parts, p, timeout_s, sink), range(parts.count), AHEAD, "partition"
    )


def sessions_pass(
    parts: KeyPartitions,
    sink: SpilledPauses,
    tally: EndpointTally,
    handed: Handed,
    timeout_s: float,
    censor_edges: bool,
) -> PassedSessions:
    """Each partition read once: its sessions made (pauses to `sink`), its endpoints
    counted (`tally`), its requests' handout spilled (`handed`); then the merge. What is
    given to `sink` and `tally` is given in partition order (the same spills)."""
    made: list[PartitionSessions] = []
    firsts = _SessionFirsts()
    span_s = 0.0
    for p, one in enumerate(_in_order(parts, timeout_s, sink)):
        sink.put(one.pauses)
        made.append(one.sessions)
        if one.last_s is not None:
            span_s = max(span_s, one.last_s)
        part, (at, local, seq, think) = one.part, one.handout
        tally.add_partition(part)
        row = part.row[at]
        handed.write(p, local=local, seq=seq, think_s=think, endpoint=part.endpoint[at], row=row)
        firsts.add(one.sessions, local, seq, row)
        del one, part, at, local, seq, think, row
        given_back()
    # The pauses' statistics (passes over their spill) on a thread while the sessions are
    # numbered here (an Arrow sort of every key: both let go of the GIL for most of it).
    with ThreadPoolExecutor(1, thread_name_prefix="pauses") as thread:
        answered = thread.submit(sink.statistics)
        numbers = numbered(made)
        pauses = answered.result()
    merged = merged_sessions(made, pauses, censor_edges=censor_edges, numbers=numbers)
    del made, numbers
    bucket_s = fitted_bucket_s(merged.table["start_s"].to_numpy(), span_s)
    return PassedSessions(merged, span_s, bucket_s, pauses, parts, timeout_s, firsts)
