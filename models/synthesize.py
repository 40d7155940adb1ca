"""`synthesize`: sessions drawn from a model, written as a trace (request side only).

Arrivals follow the model's rate curve × N; each session picks a behavior by share and
walks its Markov chain with the modeled think times, so per-session statistics are the
same at every N. One seed decides everything: same model + seed → same rows. Session i's
numbers are counter-based (models/counters.py: a hash of (seed, i, k)), so any subset of
sessions (a replay worker's shard, one session) comes out as in the full run, and a chunk
of sessions is drawn as numpy arrays (synth_walk.py), built as Arrow columns
(synth_columns.py) and written as one Parquet part of the trace (synth_parts.py,
synth_run.py). Query strings and bodies are picked from per-endpoint pools of POOL_SIZE
rendered values: an endpoint's distinct query strings and bodies in one synthesis are at
most POOL_SIZE each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from tracereplay.errors import UsageError
from tracereplay.trace import TraceMetadata, TraceRecord
from tracereplay.trace.schema import row_to_record

from .arrivals import ArrivalModel, sample_arrivals
from .behaviors import Behavior
from .payloads import BodyModel, QueryModel
from .synth_columns import POOL_SIZE, Columns, Endpoint
from .synth_parts import PartsOut, failed, parts_out
from .synth_run import Chunk, Job, Plan, Team
from .synth_walk import MAX_SESSION_LENGTH, PAUSE_CANDIDATES, WalkTables

__all__ = ["MAX_SESSION_LENGTH", "PAUSE_CANDIDATES", "POOL_SIZE", "Synthesizer", "synthesize"]

CHUNK_SESSIONS = 8_192
"""Sessions drawn and written together: memory follows the chunk, not the run."""
EAGER_POOL_ROWS = 100_000
"""From about this many rows, with `processes` > 1, every block of the pools is rendered
first, shared between the processes (synth_run.py): a large run picks from every block."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))  # as pyarrow gives it


@dataclass(frozen=True)
class SynthesisResult:
    out: Path
    sessions: int
    requests: int
    scale: float
    duration_s: float


@dataclass(frozen=True)
class SyntheticRequest:
    """One synthesized request with what the trace record does not keep."""

    endpoint: str
    """The model's endpoint name, "METHOD /template"."""
    record: TraceRecord
    think_s: float
    """Pause before this request (0 for a session's first)."""
    path_params: dict[str, str]


class Synthesizer:
    """Draws sessions from one model with one seed."""

    def __init__(self, model: dict[str, Any], seed: int = 0) -> None:
        self.model = model
        self.seed = seed
        self.behaviors = [Behavior.from_json(b) for b in model["behaviors"]]
        shares = np.array([b.share for b in self.behaviors], dtype=float)
        self.behavior_p = shares / shares.sum()
        names = list(model["endpoints"])
        self.tables = WalkTables(
            self.behaviors, self.behavior_p, {n: i for i, n in enumerate(names)}
        )
        self.arrivals = ArrivalModel.from_json(model["arrivals"])
        endpoints = [
            Endpoint(
                method=spec["method"],
                template=spec["template"],
                params=spec.get("params", {}),
                body=BodyModel.from_json(spec["body"]) if spec.get("body") else None,
                query=QueryModel.from_json(spec["query"]) if spec.get("query") else None,
            )
            for spec in model["endpoints"].values()
        ]
        self.names = names
        self.columns = Columns(names, endpoints, seed)
        self.start = datetime.fromisoformat(model["provenance"]["first_ts"])
        self.start_us = (self.start - _EPOCH) // timedelta(microseconds=1)

    def session_starts(
        self,
        scale: float,
        duration_s: float | None,
        speed: float = 1.0,
        process: str = "stratified",
        arrivals: ArrivalModel | None = None,
    ) -> np.ndarray:
        """Session start times (s) from the model's arrival curve, or from `arrivals` (a
        reshaped curve, as replay profiles make)."""
        # A generator of its own, so start times do not depend on sessions drawn before.
        return np.asarray(
            sample_arrivals(
                self.arrivals if arrivals is None else arrivals,
                np.random.default_rng(self.seed),
                scale=scale,
                speed=speed,
                duration_s=duration_s,
                process=process,
            )
        )

    def chunk(self, index: np.ndarray, starts_s: np.ndarray) -> pa.RecordBatch:
        """Sessions `index` starting at `starts_s` (s after the model's start), their rows
        in the trace schema, session after session."""
        index = np.asarray(index, dtype=np.int64)
        walked = self.tables.draw(self.seed, index, np.asarray(starts_s, dtype=float))
        return self.columns.batch(index, walked, self.start_us)

    def sessions_requests(
        self, index: np.ndarray, starts_s: np.ndarray
    ) -> list[list[SyntheticRequest]]:
        """Sessions `index`, each as `session_requests` draws it alone (drawn together)."""
        index = np.asarray(index, dtype=np.int64)
        walked = self.tables.draw(self.seed, index, np.asarray(starts_s, dtype=float))
        batch = self.columns.batch(index, walked, self.start_us)
        values = self.columns.values(index, walked)
        per_row: list[dict[str, str]] = [{} for _ in range(len(walked.endpoint))]
        for name, (rows, found) in values.items():
            for row, value in zip(rows.tolist(), found.to_pylist(), strict=True):
                per_row[row][name] = value
        out: list[list[SyntheticRequest]] = [[] for _ in range(len(index))]
        codes, sessions = walked.endpoint.tolist(), walked.session.tolist()
        # The times by hand: pyarrow converts a zoned timestamp through pandas (~0.3 s to
        # import, in a process that has no other use for it); the same datetimes.
        ts_us = batch.column("ts").cast(pa.int64()).to_pylist()
        records = batch.drop_columns(["ts"]).to_pylist()
        for row, (record, think) in enumerate(zip(records, walked.think_s.tolist(), strict=True)):
            record["ts"] = _EPOCH_UTC + timedelta(microseconds=ts_us[row])
            code = codes[row]
            params = {p: per_row[row][p] for p in self.columns.slots[code]}
            request = SyntheticRequest(self.names[code], row_to_record(record), think, params)
            out[sessions[row]].append(request)
        return out

    def session(self, index: int, start_s: float) -> Iterator[TraceRecord]:
        """One synthetic session starting at `start_s` seconds after the model's start."""
        for request in self.session_requests(index, start_s):
            yield request.record

    def session_requests(self, index: int, start_s: float) -> list[SyntheticRequest]:
        """Session `index`, drawn from numbers of (seed, index) alone; its behavior and
        shape row stratified with its block's (models/strata.py)."""
        return self.sessions_requests(np.array([index]), np.array([start_s]))[0]


def plan_of(*, scale: float, duration_s: float | None, seed: int, arrivals: str) -> Plan:
    """The options of a synthesis as its workers get them (with the chunking of now)."""
    return Plan(seed, scale, duration_s, arrivals, CHUNK_SESSIONS, EAGER_POOL_ROWS)


def start_team(source: bytes, plan: Plan, processes: int) -> Team | None:
    """The `processes - 1` workers of a synthesis by `plan` of the model file whose bytes
    are `source`, forked now, before the model is parsed or checked (None for one process).
    Call it before this process starts a thread (the command does, after its imports)."""
    return Team(source, plan, processes - 1, "fork") if processes > 1 else None


def synthesize(
    model: dict[str, Any],
    out: Path,
    *,
    scale: float = 1.0,
    duration_s: float | None = None,
    seed: int = 0,
    arrivals: str = "stratified",
    progress: Callable[[int, int], None] | None = None,
    processes: int = 1,
    team: Team | None = None,
) -> SynthesisResult:
    """Write synthetic sessions of `model` at `scale` × its arrival rate into trace `out`,
    one Parquet part per chunk of sessions (synth_parts.py), drawn in `processes`
    processes: this one and `processes - 1` workers (the same rows, in the same order,
    whatever the number: each session is drawn from its own numbers). `team`: those
    workers, started already (`start_team`, for this very model and options); else they
    are spawned here."""
    if processes < 1:
        raise UsageError("--processes must be ≥ 1")
    if scale <= 0:
        raise UsageError("--scale must be > 0")
    if duration_s is not None and duration_s <= 0:
        raise UsageError("--duration must be > 0")
    plan = plan_of(scale=scale, duration_s=duration_s, seed=seed, arrivals=arrivals)
    job = Job(model, plan)
    synth = job.synth
    meta = TraceMetadata(
        source="synthesize",
        capture_start=synth.start,
        policy_hash=str(model["provenance"].get("policy_hash", "")),
    )
    if team is None and processes > 1 and len(job.chunks) > 1:
        team = Team(model, plan, processes - 1, "spawn")  # threads may run here: no fork
    elif team is not None and team.workers != processes - 1:
        raise ValueError(f"a team of {team.workers} workers for {processes} processes")
    done = requests = 0
    with parts_out(out, meta) as parts:
        try:
            for chunk in job.chunks:
                parts.expect(chunk.seq)
            for chunk, rows in _drawn(job, parts, team):
                parts.land(chunk.seq)
                done, requests = done + len(chunk.starts_s), requests + rows
                if progress is not None:
                    progress(done, job.sessions)
        except OSError as exc:  # a full disk (in a worker or here): its part is not there
            raise failed(exc, out) from None
        finally:  # the workers stop before what they wrote may be removed
            if team is not None:
                team.close()
    if progress is not None:
        progress(job.sessions, job.sessions)
    span = duration_s if duration_s is not None else synth.arrivals.span_s
    return SynthesisResult(out, job.sessions, requests, scale, float(span))


def _drawn(job: Job, parts: PartsOut, team: Team | None) -> Iterator[tuple[Chunk, int]]:
    if team is not None:
        yield from team.drawn(job, parts)
        return
    for chunk in job.chunks:
        yield chunk, job.write(chunk, parts.directory, parts.metadata)
