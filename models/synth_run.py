"""Drawing a synthesis's chunks and writing each as a staged part (synth_parts.py): in this
process alone, or shared with a `Team` of worker processes.

A team is started as early as its options are known: the command forks it before the
model file is parsed and checked (after the imports, which the workers then share), so
the workers render the pools while this process checks the model. Each process, this one
included, takes the next pool block, then the next chunk, from counters they share:
whoever is free draws, and nobody waits on a worker still starting (a spawned one needs
its imports first). The blocks go to this process as rendered values; a block a worker
holds when this process has rendered all others is the one wait. This process then writes
the pools whole to one Arrow file that each worker reads once (a large run picks from
every block), and sends the go: the directory to write into and its metadata. Only row
counts come back; the caller lands the parts in chunk order.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from tracereplay.closing import Closing
from tracereplay.errors import TraceError
from tracereplay.trace import TraceMetadata

from .arrivals import ArrivalModel
from .synth_columns import POOL_BLOCK, POOL_SIZE
from .synth_parts import PartsOut, write_staged

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from .synthesize import Synthesizer

PARENT_DRAWS = True
"""Whether this process draws chunks beside its workers (tests turn it off: every chunk
then goes to a worker)."""


@dataclass(frozen=True)
class Plan:
    """A synthesis's options: with the model, all a worker needs to draw its share."""

    seed: int
    scale: float
    duration_s: float | None
    arrivals: str
    chunk_sessions: int
    blocks_first_rows: float
    """From this many expected rows, every pool block is rendered before the first chunk."""


@dataclass(frozen=True)
class Chunk:
    seq: int
    """Its part number (1 first): chunk order is row order."""
    first: int
    """Its first session's index."""
    starts_s: np.ndarray


class Job:
    """One process's view of a synthesis: its synthesizer, the pools' blocks, the chunks."""

    def __init__(self, model: dict[str, Any], plan: Plan) -> None:
        from .synthesize import Synthesizer  # synthesize.py imports this module

        self.plan = plan
        self.synth: Synthesizer = Synthesizer(model, plan.seed)
        behaviors = self.synth.behaviors
        shares = np.array([b.share for b in behaviors], dtype=float)
        mean_length = float(np.dot(shares, [b.mean_length for b in behaviors]) / shares.sum())
        sessions = _sessions_about(self.synth.arrivals, plan)
        self.blocks_first = sessions > plan.chunk_sessions and (
            sessions * mean_length >= plan.blocks_first_rows
        )
        self.pools = self.synth.columns.pools()
        per_pool = range(POOL_SIZE // POOL_BLOCK)
        self.blocks = [(p, b) for p in range(len(self.pools)) for b in per_pool]

    @functools.cached_property
    def chunks(self) -> list[Chunk]:
        """The sessions' start times, cut in chunks (a worker asks once the run may go:
        the options are checked by then)."""
        plan = self.plan
        starts = self.synth.session_starts(plan.scale, plan.duration_s, process=plan.arrivals)
        size = plan.chunk_sessions
        return [
            Chunk(seq, lo, starts[lo : lo + size])
            for seq, lo in enumerate(range(0, len(starts), size), start=1)
        ]

    @property
    def sessions(self) -> int:
        return sum(len(chunk.starts_s) for chunk in self.chunks)

    def write(self, chunk: Chunk, out: Path, meta: TraceMetadata) -> int:
        index = np.arange(chunk.first, chunk.first + len(chunk.starts_s))
        return write_staged(out, chunk.seq, self.synth.chunk(index, chunk.starts_s), meta)

    def render_blocks(self, counter: Counter) -> dict[int, list[Any]]:
        """The pool blocks this process takes from `counter`, rendered: block → values."""
        mine = {}
        while (unit := counter.take()) < len(self.blocks):
            p, block = self.blocks[unit]
            mine[unit] = self.pools[p].render_block(block)
        return mine

    def put_blocks(self, rendered: dict[int, list[Any]]) -> None:
        for unit, values in rendered.items():
            p, block = self.blocks[unit]
            self.pools[p].put_block(block, values)

    def write_pools(self, path: Path) -> None:
        """Every pool rendered whole, one column each, as an Arrow file."""
        arrays = [pool.whole() for pool in self.pools]
        batch = pa.RecordBatch.from_arrays(arrays, names=[str(i) for i in range(len(arrays))])
        with ipc.new_file(path, batch.schema) as writer:
            writer.write_batch(batch)

    def read_pools(self, path: Path) -> None:
        columns = ipc.open_file(path).get_batch(0).columns
        for pool, array in zip(self.pools, columns, strict=True):
            pool.adopt(array)


def _sessions_about(arrivals: ArrivalModel, plan: Plan) -> float:
    """About how many sessions `plan` draws (the span's mean rate over the length drawn):
    what decides, in every process alike and before any is drawn, whether the pools are
    rendered first."""
    span_s = arrivals.span_s
    edges = np.arange(len(arrivals.rates_per_s)) * arrivals.bucket_s
    widths = np.clip(span_s - edges, 0.0, arrivals.bucket_s)
    per_s = float(np.dot(arrivals.rates_per_s, widths)) / span_s if span_s > 0 else 0.0
    return plan.scale * per_s * (span_s if plan.duration_s is None else plan.duration_s)


class Counter:
    """A number shared by processes started from this one: each `take` gets the next."""

    def __init__(self, context: BaseContext) -> None:
        self._value = context.Value("q", 0)

    def take(self) -> int:
        with self._value.get_lock():
            taken = int(self._value.value)
            self._value.value = taken + 1
        return taken

    def end(self, at: int) -> None:
        """Nothing below `at` is taken any more."""
        with self._value.get_lock():
            self._value.value = max(int(self._value.value), at)


class Team(Closing):
    """`workers` processes drawing beside this one, started before the model they draw
    from is checked: by fork from the command (before any thread of its own, Python's or
    pyarrow's pools; numpy's OpenBLAS and pyarrow's jemalloc each hold an idle thread, and
    both prepare for a fork with `pthread_atfork`: the workers start with its imports and
    read `source`, the model file's bytes, from its memory), or by spawn (`source`: the
    model, pickled to a file of the team's).

    Used as a context manager: leaving it stops the workers that are still running.
    """

    def __init__(self, source: bytes | dict[str, Any], plan: Plan, workers: int, method: str):
        self.plan = plan
        self.workers = workers
        self._finished = False
        context = multiprocessing.get_context(method)
        self._tmp = tempfile.TemporaryDirectory(prefix="tracereplay-synth-")
        given: bytes | Path
        if method == "fork":
            if not isinstance(source, bytes):
                raise TypeError("a forked team reads the model file's bytes")
            given = source
        else:  # the model by file: a spawned worker reads its arguments only after its
            # imports, and a model (~0.4 MB) over the pipe's buffer held this process in
            # `start` until then (5 s under load).
            given = Path(self._tmp.name) / "model.pickle"
            given.write_bytes(pickle.dumps(source, protocol=pickle.HIGHEST_PROTOCOL))
        self.blocks, self.chunks = Counter(context), Counter(context)
        self.conns: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for n in range(workers):
            here, there = context.Pipe()
            self.conns.append(here)
            stale = list(self.conns) if method == "fork" else []
            process = context.Process(  # type: ignore[attr-defined]
                target=_serve,
                args=(there, given, plan, self.blocks, self.chunks, stale),
                name=f"tracereplay-synth-{n + 1}",
                daemon=True,
            )
            process.start()
            there.close()
            self.processes.append(process)

    def close(self) -> None:
        """Stop the workers: at once, unless the run ended well (they end by themselves)."""
        self.chunks.end(2**62)
        for process in self.processes:
            if not self._finished:
                process.terminate()
            process.join(timeout=10.0)
            if process.exitcode is None:
                process.terminate()
                process.join()
        for conn in self.conns:
            conn.close()
        self.processes, self.conns = [], []
        self._tmp.cleanup()

    def drawn(self, job: Job, parts: PartsOut) -> Iterator[tuple[Chunk, int]]:
        """Each chunk and its rows once its staged part is written, in chunk order."""
        if job.plan != self.plan:
            raise ValueError("the team was started for another synthesis")
        inbox = _Inbox(self, parts.directory)
        pools: Path | None = None
        if job.blocks_first:
            have = job.render_blocks(self.blocks)
            job.put_blocks(have)
            missing = set(range(len(job.blocks))) - set(have)
            while missing:  # rendered by a worker: its last block is the wait
                for rendered in inbox.next("blocks"):
                    job.put_blocks(rendered)
                    missing -= set(rendered)
            pools = Path(self._tmp.name) / "pools.arrow"
            job.write_pools(pools)
        for conn in self.conns:
            conn.send(("go", parts.directory, parts.metadata, pools))
        rows: dict[int, int] = {}
        landing = 0
        while landing < len(job.chunks):
            for seq, count in inbox.ready("part"):
                rows[seq] = count
            if PARENT_DRAWS and (taken := self.chunks.take()) < len(job.chunks):
                chunk = job.chunks[taken]
                rows[chunk.seq] = job.write(chunk, parts.directory, parts.metadata)
            elif landing < len(job.chunks) and job.chunks[landing].seq not in rows:
                for seq, count in inbox.next("part"):
                    rows[seq] = count
            while landing < len(job.chunks) and job.chunks[landing].seq in rows:
                yield job.chunks[landing], rows.pop(job.chunks[landing].seq)
                landing += 1
        self._finished = True


class _Inbox:
    """The workers' messages: ("blocks", rendered), ("part", seq, rows), ("end",) or
    ("error", exception), which is raised here."""

    def __init__(self, team: Team, directory: Path) -> None:
        self.team = team
        self.directory = directory
        self.ended: set[int] = set()

    def ready(self, kind: str) -> list[Any]:
        """What the workers have sent of `kind` so far, without waiting."""
        return self._read(kind, [c for c in self.team.conns if c.poll()])

    def next(self, kind: str) -> list[Any]:
        """What they have sent, after waiting for at least one message."""
        live = [c for n, c in enumerate(self.team.conns) if n not in self.ended]
        sentinels = [p.sentinel for n, p in enumerate(self.team.processes) if n not in self.ended]
        if not live:
            raise TraceError(f"{self.directory}: the synthesis workers ended with chunks left")
        woken = wait([*live, *sentinels])
        return self._read(kind, [c for c in live if c in woken or c.poll()])

    def _read(self, kind: str, conns: list[Connection]) -> list[Any]:
        out = []
        for conn in conns:
            n = self.team.conns.index(conn)
            while n not in self.ended and conn.poll():
                try:
                    message = conn.recv()
                except EOFError:
                    message = ("died",)
                if message[0] == "error":
                    raise message[1]
                if message[0] == "died":
                    raise TraceError(
                        f"{self.directory}: a synthesis worker process died (killed, out of "
                        "memory?)"
                    ) from None
                if message[0] == "end":
                    self.ended.add(n)
                elif message[0] == kind:
                    out.append(message[1] if kind == "blocks" else message[1:])
        return out


def _serve(
    conn: Connection,
    source: bytes | Path,
    plan: Plan,
    blocks: Counter,
    chunks: Counter,
    stale: list[Connection],
) -> None:
    """A worker: its share of the pool blocks, then of the chunks, after the go."""
    for other in stale:  # this process's copies of the parent's ends (fork)
        other.close()
    try:
        if isinstance(source, bytes):
            model = json.loads(source.decode("utf-8"))
        else:
            model = pickle.loads(source.read_bytes())  # noqa: S301 (the team's own file)
        job = Job(model, plan)
        if job.blocks_first:
            conn.send(("blocks", job.render_blocks(blocks)))
        go = conn.recv()
        _, out, meta, pools = go
        if pools is not None:
            job.read_pools(pools)
        while (taken := chunks.take()) < len(job.chunks):
            chunk = job.chunks[taken]
            conn.send(("part", chunk.seq, job.write(chunk, out, meta)))
        conn.send(("end",))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # the parent stopped the run (Ctrl-C) or is gone: nothing to tell
    except BaseException as exc:  # raised in the parent, as its own
        try:
            conn.send(("error", exc))
        except Exception:  # an exception that does not pickle
            conn.send(("error", TraceError(f"a synthesis worker failed: {exc!r}")))
