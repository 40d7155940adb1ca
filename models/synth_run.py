"""Drawing a synthesis's chunks and writing each as a staged part (synth_parts.py): in this
process alone, or shared with `processes - 1` worker processes started beside it.

This process draws chunks too, from the start: a worker needs seconds to start (its
imports), and at 2 processes this one and one worker share the two cores. Each chunk goes
to whoever is free (a started worker holds at most two at a time); only its row count
comes back, and the caller lands the parts in chunk order. For a large run every block
of the pools of query strings and bodies is rendered here while the workers start, and
handed to them in one Arrow file that each reads once (a large run picks from every
block: each worker rendering them all would cost as much again).
"""

from __future__ import annotations

import multiprocessing
import pickle
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from tracereplay.errors import TraceError
from tracereplay.trace import TraceMetadata

from .synth_parts import PartsOut, write_staged

if TYPE_CHECKING:
    from .synthesize import Synthesizer

    Factory = Callable[[dict[str, Any], int], Synthesizer]

QUEUED_PER_WORKER = 2
"""Chunks handed to a worker at a time: one drawn, one waiting (no idle gap between)."""


@dataclass(frozen=True)
class Chunk:
    seq: int
    """Its part number (1 first): chunk order is row order."""
    first: int
    """Its first session's index."""
    starts_s: np.ndarray


def chunks_of(starts_s: np.ndarray, size: int) -> list[Chunk]:
    return [
        Chunk(seq, lo, starts_s[lo : lo + size])
        for seq, lo in enumerate(range(0, len(starts_s), size), start=1)
    ]


def drawn(
    synth: Synthesizer,
    chunks: list[Chunk],
    parts: PartsOut,
    *,
    processes: int,
    eager_pools: bool,
    factory: tuple[Factory, dict[str, Any], int],
) -> Iterator[tuple[Chunk, int]]:
    """Each chunk and its rows once its staged part is written, in chunk order.
    `factory` (a callable, its model and seed) makes a worker's synthesizer."""
    for chunk in chunks:
        parts.expect(chunk.seq)
    if processes == 1 or len(chunks) < 2:
        for chunk in chunks:
            yield chunk, _write(synth, chunk, parts.directory, parts.metadata)
        return
    # spawn, not fork: the parent holds threads (pyarrow's, a progress display).
    context = multiprocessing.get_context("spawn")
    workers = min(processes, len(chunks)) - 1
    make, model, seed = factory
    with tempfile.TemporaryDirectory(prefix="tracereplay-synth-") as tmp:
        # The model goes by file: a spawned worker reads its start-up arguments only after
        # its imports, and arguments past a pipe's buffer (a model is ~0.4 MB) held this
        # process in `submit` until then (5 s under load).
        model_file = Path(tmp) / "model.pickle"
        model_file.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        pool = ProcessPoolExecutor(workers, context, _start_worker, (make, model_file, seed))
        try:
            # The workers start (their imports) while the pools render; each takes chunks
            # only once started, so this process never waits on one still starting.
            started = [pool.submit(_ready) for _ in range(workers)]
            pools = Path(tmp) / "pools.arrow" if eager_pools else None
            if pools is not None:
                _write_pools(synth, pools)
            yield from _shared(synth, chunks, parts, pool, started, pools)
        except BrokenProcessPool:
            raise TraceError(
                f"{parts.directory}: a synthesis worker process died (killed, out of memory?)"
            ) from None
        finally:
            # Chunks not started are dropped; running ones end before their parts go.
            pool.shutdown(wait=True, cancel_futures=True)


def _shared(
    synth: Synthesizer,
    chunks: list[Chunk],
    parts: PartsOut,
    pool: ProcessPoolExecutor,
    started: list[Future[None]],
    pools: Path | None,
) -> Iterator[tuple[Chunk, int]]:
    todo = deque(chunks)
    running: dict[int, Future[int]] = {}
    rows: dict[int, int] = {}
    landing = 0
    while landing < len(chunks):
        ready = sum(future.done() for future in started)
        while todo and len(running) < QUEUED_PER_WORKER * ready:
            chunk = todo.popleft()
            job = (chunk, parts.directory, parts.metadata, pools)
            running[chunk.seq] = pool.submit(_work, job)
        if todo:
            chunk = todo.popleft()
            rows[chunk.seq] = _write(synth, chunk, parts.directory, parts.metadata)
        elif running:
            wait(running.values(), return_when=FIRST_COMPLETED)
        for seq in [seq for seq, future in running.items() if future.done()]:
            rows[seq] = running.pop(seq).result()  # a worker's error is raised here
        while landing < len(chunks) and chunks[landing].seq in rows:
            yield chunks[landing], rows.pop(chunks[landing].seq)
            landing += 1


def _write(synth: Synthesizer, chunk: Chunk, out: Path, meta: TraceMetadata) -> int:
    index = np.arange(chunk.first, chunk.first + len(chunk.starts_s))
    return write_staged(out, chunk.seq, synth.chunk(index, chunk.starts_s), meta)


def _write_pools(synth: Synthesizer, path: Path) -> None:
    """Every pool rendered whole, one column each, as an Arrow file."""
    arrays = [pool.whole() for pool in synth.columns.pools()]
    batch = pa.RecordBatch.from_arrays(arrays, names=[str(i) for i in range(len(arrays))])
    with ipc.new_file(path, batch.schema) as writer:
        writer.write_batch(batch)


_worker: Synthesizer | None = None
_adopted: Path | None = None


def _start_worker(factory: Factory, model: Path, seed: int) -> None:
    global _worker  # noqa: PLW0603 (one synthesizer per worker process)
    _worker = factory(pickle.loads(model.read_bytes()), seed)  # noqa: S301 (our own file)


def _ready() -> None:
    """Nothing: submitted to start a worker process early."""


def _work(job: tuple[Chunk, Path, TraceMetadata, Path | None]) -> int:
    """In a worker: draw a chunk and write its staged part; only the row count goes back."""
    global _adopted  # noqa: PLW0603 (the pools this worker has read)
    assert _worker is not None, "the pool's initializer makes the synthesizer"
    chunk, out, meta, pools = job
    if pools is not None and pools != _adopted:
        columns = ipc.open_file(pools).get_batch(0).columns
        for pool, array in zip(_worker.columns.pools(), columns, strict=True):
            pool.adopt(array)
        _adopted = pools
    return _write(_worker, chunk, out, meta)
