"""One piece of work run in a forked child process while the caller goes on (the model's
behaviors beside its payload and correlation reads: the machine's second core).

The child sees the caller's arrays as they were at the fork (copy-on-write: nothing is
pickled on the way in) and sends back its result, or its error, pickled through a pipe.
The child never outlives the `forked` block: left early (an error in the caller, the
result not asked for), it is killed and reaped. Where `fork` is not offered, or with
`child=False`, the work runs in the caller, at the point its result is asked for. When
the model forks (`free_processes`) and what it imports before (`preloaded_modules`).
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tracereplay.errors import TraceReplayError

from .source import ParquetSource, RequestSource

T = TypeVar("T")

SCIPY_MODULES = ["scipy.stats", "scipy.ndimage"]
"""Imported during the read when a child will fork: this process's arrivals need them, the
child's session shapes scipy.stats (inherited: imported once for both)."""
CLUSTERING_MODULES = ["sklearn.cluster", "sklearn.metrics", "threadpoolctl"]
"""The behaviors' own imports (the child's only): imported during the read too when the
trace has PRELOAD_CLUSTERING_ROWS rows or more, else by the child on its own core."""
PRELOAD_CLUSTERING_ROWS = 2_000_000
"""From here the read (~0.5 s a million rows, quiet) hides the clustering imports (~0.6 CPU
s) in its pauses of the GIL; below, importing them held back the read and templates of the
process that is the longer one at 1 M rows (real1M: its CPU 3.6-4.0 → 3.1-3.7 s, the
child's 1.1-1.2 → 1.3-1.5 s; real10M's child paid 0.6 s more: bench/README.md, orch16)."""


@dataclass
class Pending(Generic[T]):
    """The work's result, once `result()` is asked for (it waits for the child)."""

    work: Callable[[], T]
    process: Any = None
    """The child (a multiprocessing Process), or None: the work runs in `result()`."""
    answer: Any = None
    """The read end of the child's pipe."""
    seconds: float | None = None
    """How long the work took, in the process that ran it."""

    def result(self) -> T:
        if self.process is None:
            start = time.perf_counter()
            value = self.work()
            self.seconds = time.perf_counter() - start
            return value
        try:
            ok, value, self.seconds = self.answer.recv()
        except EOFError:  # it died without a word: killed (out of memory?) or os._exit
            self.process.join()
            code, self.process = self.process.exitcode, None
            raise TraceReplayError(_ended(code)) from None
        finally:
            self.answer.close()
        self.process.join()
        self.process = None
        if not ok:
            raise value
        result: T = value
        self.work = lambda: result  # asked again: the same result, not the work again
        return result


@contextmanager
def forked(work: Callable[[], T], *, child: bool = True) -> Iterator[Pending[T]]:
    """Start `work` in a forked child (when `child` and the platform has `fork`); the
    block's `Pending.result()` is its result, or raises its error. On leaving the block
    the child is gone: reaped after its answer, else killed."""
    if not child or "fork" not in multiprocessing.get_all_start_methods():
        yield Pending(work)
        return
    context = multiprocessing.get_context("fork")
    answer, send = context.Pipe(duplex=False)
    process = context.Process(target=_answer, args=(work, send), daemon=True)
    # The child's collections skip every object the caller made before the fork (its
    # modules: scipy, sklearn, pandas): fewer passes and no page of them copied for a pass.
    gc.freeze()
    try:
        process.start()
    finally:
        gc.unfreeze()
    send.close()  # the child's end: the parent's read sees EOF if the child dies
    pending = Pending(work, process, answer)
    try:
        yield pending
    finally:
        if pending.process is not None:
            process.kill()
            process.join()
            answer.close()


def preload(modules: list[str]) -> threading.Thread:
    """Import `modules` in a thread while the caller goes on (join it before `forked`): a
    child forked after inherits them instead of importing them on its own clock (sklearn's
    k-means and scipy.stats: 1.3-1.4 s). A module that fails to import is left to the
    child, which raises the error where it imports it."""

    def imports() -> None:
        # No collection while they load (the caller joins before it pauses it itself):
        # their new objects set off passes over everything (scipy.stats: ~10 % of its
        # import's CPU).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for name in modules:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: S112 (the child imports it again and says why)
                    continue
        finally:
            if collecting:
                gc.enable()

    thread = threading.Thread(target=imports, name="preload", daemon=True)
    thread.start()
    return thread


def free_processes() -> int:
    """2 when a core idles beside this process (the 1-minute load average, in which this
    process counts about 1, at most the cores it may use less a half), else 1. On a
    machine whose cores other work keeps busy, the forked child only shares this
    process's core: real10M, load 4.5-5.8 on 2 cores, one process took 23-33 s, two
    29-44 s; at load 0.7-1.1, two 16.2 s, one 21.0 s (bench/README.md, model8)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return 2 if (cores or 1) >= 2 and load <= (cores or 1) - 0.5 else 1


def preloaded_modules(trace: RequestSource) -> list[str]:
    """What `build_model` imports in a thread while it reads `trace` when the behaviors
    run in a child (`PRELOAD_CLUSTERING_ROWS`: a source that does not say its rows is
    taken as large)."""
    rows = trace.trace.num_rows if isinstance(trace, ParquetSource) else None
    small = rows is not None and rows < PRELOAD_CLUSTERING_ROWS
    return SCIPY_MODULES if small else [*SCIPY_MODULES, *CLUSTERING_MODULES]


def _answer(work: Callable[[], Any], send: Any) -> None:
    """In the child: run `work`, send (ok, result or error, seconds)."""
    start = time.perf_counter()
    try:
        message: tuple[bool, Any, float] = (True, work(), 0.0)
    except BaseException as error:
        if not isinstance(error, TraceReplayError):  # a bug: keep where it happened
            error.add_note("in the forked child:\n" + traceback.format_exc().rstrip())
        message = (False, error, 0.0)
    message = (message[0], message[1], time.perf_counter() - start)
    try:
        send.send(message)
    except Exception as error:
        send.send((False, RuntimeError(f"the forked child's answer: {error!r}"), message[2]))
    send.close()


def _ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"a model stage's child process was ended by {name} (out of memory?)"
    return f"a model stage's child process ended without an answer (exit code {exitcode})"
