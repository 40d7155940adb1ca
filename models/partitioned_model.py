"""`build_model`'s model made one key partition at a time (issue 15, docs/SCALE.md item 4):
no array of every request is held, so what the model holds grows with its sessions and
endpoints, not with its requests.

One scan spills every request to the partition of its session key (key_partitions.py),
the endpoints' parameter kinds taken from its batches (partition_endpoints.ParamFacts).
Then one pass makes each partition's sessions (partition_sessions.py: its pauses spilled
for their exact quantiles), counts its endpoints (EndpointTally: durations spilled) and
spills what later stages read of each request: its local session, place in it, pause,
endpoint and scan position (`_Handed`). The merge numbers the sessions as the model does;
the behaviors pass over the handed spills (partition_behaviors.py), the samples choose
their rows from them (partition_samples.py) and their heavy columns are read as the
model reads them (partition_reads.py). Each stage is tested equal to the bit to the one
it replaces; the model file equals the in-memory path's byte for byte.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import ipc

from tracereplay import __version__
from tracereplay.closing import Closing

from .arrivals import fit_arrivals, fitted_bucket_s
from .behaviors import sig
from .correlations import auth_to_json, correlations_to_json
from .ids import ids_to_json
from .key_partitions import KeyPartitions, scan_key_partitions
from .model_file import MODEL_FORMAT
from .outcomes import NO_OUTCOMES, outcomes_to_json, place_outcomes
from .partition_behaviors import PartitionRequests, partition_behaviors
from .partition_endpoints import EndpointTally, ParamFacts
from .partition_reads import first_request_keys, partition_learned
from .partition_samples import correlation_sample, payload_sample
from .partition_sessions import PartitionSessions, merged_sessions, partition_sessions
from .partitioned_sessions import PartitionedSessions, SpilledPauses, _given_back, _request_curve
from .source import RequestSource
from .spilled_quantiles import SpilledValues

if TYPE_CHECKING:
    from .model import _Asked, _Clock

ROWS_PER_PARTITION = 1 << 16
"""Requests per key partition the model aims at (`partitions_for`)."""


def partitions_for(rows: int) -> int:
    """The partitions a trace of `rows` requests is split into: ~`ROWS_PER_PARTITION` each."""
    return max(1, -(-rows // ROWS_PER_PARTITION))


class _Handed(Closing):
    """Each partition's requests' local session id, place in its session, pause before it,
    endpoint and scan position (what `partition_sessions` hands out, with the partition's
    own columns), session by session in id order (as `partition_behaviors` reads them
    without a sort), spilled to a file a partition under `directory` (removed on `close`)."""

    def __init__(self, parent: Path) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="handed-", dir=parent))

    def close(self) -> None:
        import shutil

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
class _BehaviorRequests(Sequence[PartitionRequests]):
    """The handed spills as `partition_behaviors` reads them, a partition at a time:
    each request's global session id (its local one mapped by the merge's ids)."""

    handed: _Handed
    ids: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, p: int) -> PartitionRequests:  # type: ignore[override]
        if not 0 <= p < len(self.ids):
            raise IndexError(p)
        local, endpoint, think = self.handed.read(p, "local", "endpoint", "think_s")
        return PartitionRequests(self.ids[p][local], endpoint, think)

    def __iter__(self) -> Iterator[PartitionRequests]:
        for p in range(len(self.ids)):
            yield self[p]


@dataclass
class _SessionFirsts:
    """Each session's key and first request's scan position, by local id per partition
    (sessions-sized), put in global order once the merge has numbered them."""

    keys: list[pa.Array] = field(default_factory=list)
    first_rows: list[np.ndarray] = field(default_factory=list)

    def add(self, made: PartitionSessions, local: np.ndarray, seq: np.ndarray, row: np.ndarray) -> None:
        self.keys.append(made.keys.take(pa.array(made.key)))
        first = np.zeros(len(made.key), np.int64)
        starts = seq == 0
        first[local[starts]] = row[starts]
        self.first_rows.append(first)

    def by_id(self, ids: list[np.ndarray]) -> tuple[pa.Array, np.ndarray]:
        every = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        order = np.argsort(every, kind="stable")
        keys = pa.concat_arrays([k.cast(pa.large_string()) for k in self.keys])
        rows = np.concatenate(self.first_rows)
        return keys.take(pa.array(order)).cast(pa.string()), rows[order]


def partitioned_model(
    trace_path: Path,
    trace: RequestSource,
    *,
    partitions: int,
    clock: _Clock,
    asked: _Asked,
    session_timeout_s: float,
    behavior_sample: int,
    correlations: bool,
    censor_edges: bool,
    directory: Path | None = None,
) -> dict[str, Any]:
    """`build_model`'s model of `trace` (its options as given), made in `partitions`
    partitions of session keys spilled under `directory` (default: the system's temp
    directory), every spill removed on return or error."""
    from .model import SENSITIVITY_TIMEOUTS_S  # (the model's: it imports this module)

    seed = asked.seed
    params = ParamFacts()
    with clock("read"):
        parts = scan_key_partitions(trace, partitions, directory, join_failed_auth=True, params=params)
        clock.rows = parts.rows
    with (
        parts,
        SpilledValues(parts.directory) as spilled,
        EndpointTally(len(parts.names), parts.directory) as tally,
        _Handed(parts.directory) as handed,
    ):
        _given_back()
        with clock("sessions"):
            sink = SpilledPauses(spilled, SENSITIVITY_TIMEOUTS_S, session_timeout_s)
            made: list[PartitionSessions] = []
            firsts = _SessionFirsts()
            span_s = 0.0
            for p in range(parts.count):
                part = parts.partition(p)
                got: list[tuple[np.ndarray, ...]] = []
                rows = part.key_partition(parts.first_ts_us)
                sessions = partition_sessions(
                    rows, session_timeout_s, SENSITIVITY_TIMEOUTS_S, sink,
                    lambda *handed_out: got.append(handed_out),
                )  # fmt: skip
                made.append(sessions)
                if len(rows):
                    span_s = max(span_s, float(rows.t_s.max()))
                del rows
                ((at, local, seq, think),) = got
                tally.add_partition(part)
                row = part.row[at]
                handed.write(
                    p, local=local, seq=seq, think_s=think, endpoint=part.endpoint[at], row=row
                )
                firsts.add(sessions, local, seq, row)
                del part, got, at, local, seq, think, row
                _given_back()
            pauses = sink.statistics()
            merged = merged_sessions(made, pauses, censor_edges=censor_edges)
            del made
            session_key, first_row = firsts.by_id(merged.ids)
            del firsts
            start_s = merged.table["start_s"].to_numpy()
            bucket_s = fitted_bucket_s(start_s, span_s)
            curve = _request_curve(parts, bucket_s, span_s)
            section = PartitionedSessions(
                merged, pauses, curve, span_s, parts.rows, session_timeout_s, {}
            ).section()
        with clock("templates"):
            kinds = params.endpoint_kinds(parts.names, parts.endpoint_of)
            stats = tally.stats(parts.names, kinds)
        with clock("behaviors"):
            behaviors = partition_behaviors(
                _BehaviorRequests(handed, merged.ids), parts.names, seed=seed,
                sample=behavior_sample, censored=merged.censored, directory=parts.directory,
            )  # fmt: skip
        with clock("arrivals"):
            arrivals = fit_arrivals(np.asarray(start_s, dtype=float), span_s)
        assert arrivals.bucket_s == bucket_s, "the request curve's bucket is not the arrivals'"
        part_rows = getattr(trace, "part_rows", lambda: None)()
        with clock("samples"):
            chosen = payload_sample(parts, part_rows, asked.payload_sample, seed)
            rows_read = correlation_sample(
                parts, merged.ids, part_rows, session_timeout_s,
                per_sample=asked.correlation_sample, per_endpoint=asked.correlation_per_endpoint,
                seed=seed, requests=asked.correlation_requests,
                handed=lambda p: handed.read(p, "local", "seq", "row", "endpoint"),
            )  # fmt: skip
        if parts.join is not None:  # (the first requests' own keys: not the joined ones)
            session_key = first_request_keys(trace, first_row)
        endpoints, payload_note, found, _sample = partition_learned(
            trace, chosen, rows_read, parts.names, session_key, first_row, asked,
            correlations, stats, parts.rows, clock,
        )  # fmt: skip
        with clock("outcomes"):
            facts = found.outcome_facts()
        first_ts = pd.Timestamp(parts.first_ts_us, unit="us", tz="UTC")
        templater = parts.templater
        assert templater is not None
        n_sessions = len(merged.table)
    with clock("placement"):
        outcomes = NO_OUTCOMES if facts is None else place_outcomes(facts, behaviors)
    return {
        "format": MODEL_FORMAT,
        "provenance": {
            "trace": str(trace_path),
            "source": trace.metadata.source,
            "policy_hash": trace.metadata.policy_hash,
            "rows": clock.rows,
            "sessions": n_sessions,
            "first_ts": first_ts.isoformat(),
            "span_s": sig(span_s),
            "tool_version": __version__,
            "sampling": {
                "payloads": payload_note,
                "behaviors": {
                    "sample_sessions": behavior_sample,
                    "clustered_sessions": min(n_sessions, behavior_sample),
                    "seed": seed,
                },
                "correlations": found.note,
            },
        },
        "sessions": section,
        "templates": templater.to_json(),
        "endpoints": endpoints,
        "behaviors": [b.to_json() for b in behaviors],
        "arrivals": arrivals.to_json(),
        "correlations": correlations_to_json(found.rules),
        "auth": auth_to_json(found.auth),
        "ids": ids_to_json(found.ids),
        "outcomes": outcomes_to_json(outcomes),
    }
