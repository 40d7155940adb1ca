"""`synthesize`: sessions drawn from a model, written as a trace (request side only).

Arrivals follow the model's rate curve × N; each session picks a behavior by share and
walks its Markov chain with the modeled think times, so per-session statistics are the
same at every N. One seed decides everything: same model + seed → same rows. Session i
draws from its own generators, seeded by (seed, i), so any subset of sessions (a replay
worker's shard) can be built alone and comes out as in the full run.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from faker import Faker

from tracereplay.errors import UsageError
from tracereplay.trace import TraceMetadata, TraceRecord, open_writer, records_to_batch

from .arrivals import ArrivalModel, sample_arrivals
from .behaviors import END, Behavior
from .params import fresh_value
from .payloads import BodyModel, QueryModel
from .session_shape import ConditionedChain
from .strata import JointShapes, stratified_uniform

MAX_SESSION_LENGTH = 1000
PAUSE_CANDIDATES = 4
"""Sets of pauses drawn per session; the one whose sum is nearest the drawn total is kept."""
_CDF_CACHE = 100_000
CHUNK_SESSIONS = 2_000
_PARAM = "{"


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


@dataclass(frozen=True)
class _Endpoint:
    method: str
    template: str
    params: dict[str, dict[str, Any]]
    body: BodyModel | None
    query: QueryModel | None


class Synthesizer:
    """Draws sessions from one model with one seed."""

    def __init__(self, model: dict[str, Any], seed: int = 0) -> None:
        self.model = model
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.py_rng = random.Random(seed)
        self.fake = Faker()
        self.fake.seed_instance(seed)
        self.behaviors = [Behavior.from_json(b) for b in model["behaviors"]]
        shares = np.array([b.share for b in self.behaviors], dtype=float)
        self.behavior_p = shares / shares.sum()
        self.chains = [
            ConditionedChain(b.entry, b.transitions) if b.shape is not None else None
            for b in self.behaviors
        ]
        self.joint = JointShapes(self.behaviors, self.behavior_p)
        self.arrivals = ArrivalModel.from_json(model["arrivals"])
        self.endpoints = {
            name: _Endpoint(
                method=spec["method"],
                template=spec["template"],
                params=spec.get("params", {}),
                body=BodyModel.from_json(spec["body"]) if spec.get("body") else None,
                query=QueryModel.from_json(spec["query"]) if spec.get("query") else None,
            )
            for name, spec in model["endpoints"].items()
        }
        self.start = datetime.fromisoformat(model["provenance"]["first_ts"])

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

    def session(self, index: int, start_s: float) -> Iterator[TraceRecord]:
        """One synthetic session starting at `start_s` seconds after the model's start."""
        for request in self.session_requests(index, start_s):
            yield request.record

    def session_requests(self, index: int, start_s: float) -> list[SyntheticRequest]:
        """Session `index`, drawn from generators seeded by (seed, index) alone; its
        behavior and shape row stratified with its block's (models/strata.py)."""
        self._reseed(index)
        pick, row = self.joint.pick(stratified_uniform(self.seed, index, self.rng))
        behavior, chain = self.behaviors[pick], self.chains[pick]
        total: float | None = None
        if behavior.shape is not None and chain is not None and row is not None:
            length, tempo, total = behavior.shape.row(row)
            path = chain.walk(_feasible(chain, length), self.rng)
            if total is not None and len(path) != length:  # the nearest feasible length
                total = total * (len(path) - 1) / (length - 1) if length > 1 else None
        else:  # an older model: the chain's own END, the tempo drawn alone
            tempo = float(behavior.tempo.sample(self.rng))
            path = _walk(behavior, self.rng)
        pauses = _pauses(behavior, path, tempo, total, self.rng)
        values: dict[str, str] = {}  # one value per parameter name per session
        key = f"synth:{index:08d}"
        out: list[SyntheticRequest] = []
        t = start_s
        for current, think_s in zip(path, pauses, strict=True):
            t += think_s
            record, params = self._request(current, t, key, values)
            out.append(SyntheticRequest(current, record, think_s, params))
        return out

    def _reseed(self, index: int) -> None:
        sequence = np.random.SeedSequence([self.seed, index])
        self.rng = np.random.default_rng(sequence)
        # random.Random and Faker take an int; derive one without consuming `self.rng`.
        py_seed = int(sequence.generate_state(1, np.uint64)[0])
        self.py_rng = random.Random(py_seed)
        self.fake.seed_instance(py_seed)

    def _request(
        self, name: str, t_s: float, key: str, values: dict[str, str]
    ) -> tuple[TraceRecord, dict[str, str]]:
        endpoint = self.endpoints[name]
        path = endpoint.template
        params: dict[str, str] = {}
        if _PARAM in path:
            for param, spec in endpoint.params.items():
                if param not in values:
                    values[param] = fresh_value(spec, self.rng)
                placeholder = "{" + param + "}"
                if placeholder in path:
                    params[param] = values[param]
                path = path.replace(placeholder, values[param])
        query = endpoint.query.render(self.py_rng, self.fake) if endpoint.query else None
        body = endpoint.body.render(self.py_rng, self.fake) if endpoint.body else None
        headers: tuple[tuple[str, str], ...] = ()
        if body is not None and endpoint.body is not None:
            headers = (("content-type", endpoint.body.media_type),)
        record = TraceRecord(
            ts=self.start + timedelta(seconds=t_s),
            method=endpoint.method,
            path=path,
            session=key,
            client=key,
            query=query or None,
            req_headers=headers,
            req_body=body,
            req_body_size=len(body) if body else 0,
        )
        return record, params


def _pauses(
    behavior: Behavior,
    path: list[str],
    tempo: float,
    total: float | None,
    rng: np.random.Generator,
) -> list[float]:
    """The pause before each request of `path` (0 before the first): each transition's
    think time × `tempo`. Given `total` (the drawn session's sum of pauses), PAUSE_CANDIDATES
    sets of pauses are drawn, the one whose sum is nearest `total` (in ratio) is kept and
    scaled to it: duration follows length as in the trace, and the scale applied stays
    near 1, so each pause keeps its transition's distribution."""
    size = PAUSE_CANDIDATES if total is not None else 1
    drawn = np.zeros((len(path), size))
    for i, (previous, current) in enumerate(itertools.pairwise(path), start=1):
        think = behavior.think.get(previous, {}).get(current)
        if think is not None:
            drawn[i] = tempo * think.sample(rng, size)
    if total is None:
        return [float(v) for v in drawn[:, 0]]
    sums = drawn.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.abs(np.log(sums / total))
    best = drawn[:, int(np.argmin(np.nan_to_num(off, nan=np.inf)))]
    kept = float(best.sum())
    if kept > 0:
        return [float(v) for v in best * (total / kept)]
    steps = len(path) - 1
    return [0.0] + [total / steps] * steps if steps else [0.0]


def _walk(behavior: Behavior, rng: np.random.Generator) -> list[str]:
    """The chain walked until END (or MAX_SESSION_LENGTH requests)."""
    path = [_draw(rng, behavior.entry)]
    while len(path) < MAX_SESSION_LENGTH:
        following = behavior.transitions.get(path[-1])
        nxt = _draw(rng, following) if following else END
        if nxt == END:
            break
        path.append(nxt)
    return path


def _feasible(chain: ConditionedChain, length: int) -> int:
    """`length` (at most MAX_SESSION_LENGTH) when the chain can end after exactly that
    many requests, else the nearest length it can (shorter first); 1 when none can."""
    length = min(length, MAX_SESSION_LENGTH)
    for step in range(MAX_SESSION_LENGTH):
        for candidate in (length - step, length + step):
            if 1 <= candidate <= MAX_SESSION_LENGTH and chain.feasible(candidate):
                return candidate
    return 1


def _draw(rng: np.random.Generator, probabilities: dict[str, float]) -> str:
    """One name drawn by its probability: `rng.choice(len(names), p=p / p.sum())` (same
    random number consumed, same answer) with the cumulative sums made once per table."""
    names, cdf = _cdf(probabilities)
    return names[int(cdf.searchsorted(rng.random(), side="right"))]


_CDFS: dict[int, tuple[dict[str, float], list[str], np.ndarray]] = {}


def _cdf(probabilities: dict[str, float]) -> tuple[list[str], np.ndarray]:
    # Keyed by identity (the tables of a loaded model are read, never changed); the table
    # itself is kept in the entry so that its id cannot be reused by another one.
    cached = _CDFS.get(id(probabilities))
    if cached is None or cached[0] is not probabilities:
        if len(_CDFS) > _CDF_CACHE:
            _CDFS.clear()
        names = list(probabilities)
        p = np.array([probabilities[n] for n in names], dtype=float)
        cdf = (p / p.sum()).cumsum()
        cdf /= cdf[-1]
        cached = _CDFS[id(probabilities)] = (probabilities, names, cdf)
    return cached[1], cached[2]


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
) -> SynthesisResult:
    """Write synthetic sessions of `model` at `scale` × its arrival rate into trace `out`,
    drawing chunks of sessions in `processes` worker processes (the same rows, in the same
    order, whatever the number: each session is drawn from its own seed)."""
    if processes < 1:
        raise UsageError("--processes must be ≥ 1")
    if scale <= 0:
        raise UsageError("--scale must be > 0")
    if duration_s is not None and duration_s <= 0:
        raise UsageError("--duration must be > 0")
    synth = Synthesizer(model, seed)
    starts = synth.session_starts(scale, duration_s, process=arrivals)
    meta = TraceMetadata(
        source="synthesize",
        capture_start=synth.start,
        policy_hash=str(model["provenance"].get("policy_hash", "")),
    )
    requests = sessions = 0
    # Columnar batches written from this thread: no per-row handoff to the flusher.
    with open_writer(out, meta) as writer:
        for drawn, batch in _batches(synth, model, seed, starts, processes):
            writer.write_batch(batch)
            requests, sessions = requests + batch.num_rows, sessions + drawn
            if progress is not None:
                progress(sessions, len(starts))
    if progress is not None:
        progress(len(starts), len(starts))
    span = duration_s if duration_s is not None else synth.arrivals.span_s
    return SynthesisResult(out, len(starts), requests, scale, float(span))


def _batches(
    synth: Synthesizer, model: dict[str, Any], seed: int, starts: np.ndarray, processes: int
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(sessions, their rows) per chunk of CHUNK_SESSIONS sessions, in session order."""
    chunks = [
        (lo, starts[lo : lo + CHUNK_SESSIONS]) for lo in range(0, len(starts), CHUNK_SESSIONS)
    ]
    if processes == 1 or len(chunks) < 2:
        for lo, part in chunks:
            yield len(part), _chunk(synth, lo, part)
        return
    # spawn, not fork: the parent may hold threads (a trace writer) whose locks a fork copies.
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_start_worker, initargs=(model, seed)) as pool:
        for (_, part), batch in zip(chunks, pool.imap(_work, chunks), strict=True):
            yield len(part), batch


def _chunk(synth: Synthesizer, first: int, starts: np.ndarray) -> pa.RecordBatch:
    records = [
        record
        for i, start_s in enumerate(starts.tolist())
        for record in synth.session(first + i, float(start_s))
    ]
    return records_to_batch(records)


_worker: Synthesizer | None = None


def _start_worker(model: dict[str, Any], seed: int) -> None:
    global _worker  # noqa: PLW0603 (one synthesizer per worker process)
    _worker = Synthesizer(model, seed)


def _work(chunk: tuple[int, np.ndarray]) -> pa.RecordBatch:
    assert _worker is not None, "the pool's initializer makes the synthesizer"
    return _chunk(_worker, *chunk)
