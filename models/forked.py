"""One piece of work run in a forked child process while the caller goes on (the model's
behaviors beside its payload and correlation reads: the machine's second core).

The child is forked before the caller starts its own work (no thread of the caller's yet)
and imports what the work needs on its own core; the work's inputs follow when the caller
has made them, their arrays written once into a file only the two processes share (a
memfd: nothing pickled but their shapes), and the result, or the error, comes back
pickled through a pipe. Once its work is done, the child answers the questions the caller
asks (`Pending.ask`: a function of what the child imported, such as id_select's binomial
tests) until the caller says it will ask no more, so that the caller need not import
those modules itself. The child never outlives the `forked` block: left early (an error
in the caller, the inputs not sent, the result not asked for), it is killed and reaped.
Where `fork` is not offered, or with `child=False`, the work runs in the caller, at the
point its result is asked for, and so do the questions. When the model forks:
`free_processes`.
"""

from __future__ import annotations

import gc
import importlib
import mmap
import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from tracereplay.allocator import collector_paused
from tracereplay.errors import TraceReplayError

A = TypeVar("A")
T = TypeVar("T")
Q = TypeVar("Q")
R = TypeVar("R")

SCIPY_MODULES = ["scipy.stats", "scipy.ndimage"]
"""The arrivals' imports (scipy.stats: id_select's binomial tests too, which the caller
asks the child for: `Pending.ask`)."""
CLUSTERING_MODULES = ["sklearn.cluster", "sklearn.metrics", "threadpoolctl"]
"""The behaviors' own imports (sklearn.cluster imports scipy.stats)."""
CHILD_MODULES = [*CLUSTERING_MODULES, *SCIPY_MODULES]
"""What the model's child imports on its own core while the caller reads, before its
inputs come: the behaviors' and the arrivals' (it fits both), so the caller imports no
scipy of its own (real1M: 0.6-0.9 CPU s and ~60 MB less there; the ids' selections,
which need scipy.stats, are the child's to test: `Pending.ask`)."""
_ALIGN = 64
"""Each array of the inputs starts at a multiple of this in the shared file."""
_IN_CHILD = [False]
"""Set in a `forked` child (`in_forked_child`)."""


@dataclass
class Pending(Generic[A, T]):
    """The work's inputs, once `send` is called, and its result, once `result()` is asked
    for (it waits for the child)."""

    work: Callable[[A], T]
    process: Any = None
    """The child (a multiprocessing Process), or None: the work runs in `result()`."""
    answer: Any = None
    """The read end of the child's answer pipe."""
    inputs: Any = None
    """The write end of the child's inputs pipe (in the caller: the inputs themselves)."""
    shared: int | None = None
    """The file the inputs' arrays are written into (its descriptor, until sent)."""
    seconds: float | None = None
    """How long the work took, in the process that ran it (its inputs' unpacking too)."""
    sent: bool = False
    pid: int | None = None
    """The child's process id (None: no child)."""
    asking: bool = False
    """Whether the inputs pipe stays open for questions (`ask`): from `send` until
    `done_asking`."""
    received: tuple[bool, Any] | None = None
    """The work's answer (ok, result or error), once read from the child, or its result
    once run here (asked again: the same answer, not the work again)."""
    gone: TraceReplayError | None = None
    """How the child ended without an answer, once it did."""
    in_caller: bool = False
    """Whether the work runs here, when its result is first asked for (no child)."""

    def send(self, inputs: A) -> None:
        """Give the work its inputs (once): their arrays written into the shared file, the
        rest pickled with their places in it. A child already gone is said by `result()`.
        The pipe stays open for the questions `ask` sends (`done_asking` closes it)."""
        assert not self.sent, "sent twice"
        self.sent = True
        if self.process is None:
            self.inputs = inputs
            return
        assert self.shared is not None
        buffers: list[pickle.PickleBuffer] = []
        header = pickle.dumps(inputs, protocol=5, buffer_callback=buffers.append)
        places = _written(self.shared, [b.raw() for b in buffers])
        os.close(self.shared)
        self.shared = None
        try:
            self.inputs.send((header, places))
        except BrokenPipeError:  # (the child died: its exit code says how)
            self.inputs.close()
            return
        self.asking = True

    def ask(self, question: Callable[[Q], R], arg: Q) -> R:
        """`question(arg)`, asked of the child once its work is done (it has the work's
        imports: here they need not load), or run here when there is no child to ask (none
        forked, or `done_asking` said). `question` is a module's function (it is pickled
        by name); an error it raises is raised here, a child gone is a one-line error."""
        if not self.asking:
            return question(arg)
        self._received()  # (its answer to the work comes first on the pipe)
        try:
            self.inputs.send((question, arg))
            ok, value = self.answer.recv()
        except (BrokenPipeError, EOFError):
            raise self._gone() from None
        if not ok:
            raise value
        answer: R = value
        return answer

    def done_asking(self) -> None:
        """No more questions: the child ends once it has answered the work (reaped on
        leaving the block, `close`, so that its exit, the kernel unmapping its memory:
        real1M, ~15 ms, runs beside what the caller does next rather than before it)."""
        if self.asking:
            self.asking = False
            self.inputs.close()

    def result(self) -> T:
        assert self.sent, "the work's inputs were never sent"
        if self.in_caller and self.received is None:
            start = time.perf_counter()
            value = self.work(self.inputs)
            self.seconds = time.perf_counter() - start
            self.received, self.inputs = (True, value), None  # (what only the work read: let go)
        try:
            ok, value = self._received()
        finally:
            self.done_asking()
            if self.answer is not None:
                self.answer.close()
        if not ok:
            raise value
        result: T = value
        return result

    def _received(self) -> tuple[bool, Any]:
        """The child's answer to the work (read once, kept)."""
        if self.received is None:
            if self.gone is not None:
                raise self.gone
            try:
                ok, value, self.seconds = self.answer.recv()
            except EOFError:  # it died without a word: killed (out of memory?) or os._exit
                raise self._gone() from None
            self.received = (ok, value)
        return self.received

    def _gone(self) -> TraceReplayError:
        """The error that says how the child ended without an answer (once reaped)."""
        self.done_asking()
        if self.process is not None:
            self.process.join()
            code, self.process = self.process.exitcode, None
            self.gone = TraceReplayError(_ended(code))
        assert self.gone is not None
        return self.gone

    def close(self) -> None:
        """Reap the child (killed first if it has not answered); close what is left open."""
        self.done_asking()  # (before the join: a child waiting for questions ends)
        if self.process is not None:
            if self.received is None:
                self.process.kill()
            self.process.join()
            self.process = None
        if self.answer is not None:
            self.answer.close()
        if self.shared is not None:
            os.close(self.shared)
            self.shared = None
        if not self.sent and self.inputs is not None:
            self.inputs.close()


@contextmanager
def forked(
    work: Callable[[A], T],
    *,
    child: bool = True,
    imports: Sequence[str] = (),
) -> Iterator[Pending[A, T]]:
    """Fork a child now (when `child` and the platform has `fork`) that imports `imports`
    (a module that fails is left to the work, which raises the error where it imports
    it) and then runs `work` on what the block's `Pending.send` gives; the block's
    `Pending.result()` is its result, or raises its error, and `Pending.ask` has it
    answer questions after. On leaving the block the child is gone: reaped (after its
    answer and the last question it ends on its own; else it is killed). Fork before
    starting threads, or once they are done: the child has only the thread that forks."""
    if not child or "fork" not in multiprocessing.get_all_start_methods():
        yield Pending(work, in_caller=True)
        return
    context = multiprocessing.get_context("fork")
    answer, send = context.Pipe(duplex=False)
    receive, inputs = context.Pipe(duplex=False)
    shared = _shared_file()
    pending = Pending(work, answer=answer, inputs=inputs, shared=shared)
    try:
        process = context.Process(
            target=_serve, args=(work, list(imports), receive, inputs, shared, send), daemon=True
        )
        # The child's collections skip every object the caller made before the fork (its
        # modules: pandas, pyarrow, numpy): fewer passes and no page of them copied for one.
        # Ctrl-C is held back until the child ignores it (`_serve`): the caller's to handle.
        gc.freeze()
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            gc.unfreeze()
            send.close()  # the child's ends: the caller's reads see EOF if the child dies
            receive.close()
        pending.process, pending.pid = process, process.pid
        yield pending
    finally:
        pending.close()


def preload(modules: list[str]) -> threading.Thread:
    """Import `modules` in a thread while the caller goes on (join it before it needs
    them). A module that fails to import is left to whoever imports it next, which says
    why. Joined at once, it is also how this module imports at a depth that does not
    depend on its caller's: CPython 3.11 (and releases without the fix of
    python/cpython#142183, made in 2026 for 3.13 and 3.14) frees a chunk of its frame
    stack (16 KiB, mapped on its own) as soon as a call returns below it, and maps a new
    one at the next call that crosses it. Where the imports' calls sit on a chunk's edge,
    each crossing costs a map, a fresh page and an unmap (~6 us). At real1M from
    bench_model.py's depth (stop 45, when the caller still imported scipy.sparse before its
    fork), those imports and the child's of sklearn, made as deep as `build_model`'s caller
    was, did 2,980 and 3,550 of them; on a thread, whose frame stack starts empty, 2,510 and
    633, whoever calls."""
    thread = threading.Thread(target=_imported, args=(modules,), name="preload", daemon=True)
    thread.start()
    return thread


def free_processes(beside: int = 0) -> int:
    """2 when a core idles beside this process (the 1-minute load average, in which this
    process counts about 1, at most the cores it may use less a half), else 1. On a
    machine whose cores other work keeps busy, the forked child only shares this
    process's core: real10M, load 4.5-5.8 on 2 cores, one process took 23-33 s, two
    29-44 s; at load 0.7-1.1, two 16.2 s, one 21.0 s (bench/README.md, model8).
    `beside`: processes of this work already running, each on a core of its own (a forked
    child's caller: `in_forked_child`), whatever the load says yet (it lags their start)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    free = (cores or 1) - beside
    return 2 if free >= 2 and load <= free - 0.5 else 1


def in_forked_child() -> bool:
    """Whether this process is a `forked` child: its caller works on beside it."""
    return _IN_CHILD[0]


def _imported(modules: list[str]) -> None:
    """Import `modules`, no cyclic collection while they load: their new objects set off
    passes over everything (scipy.stats: ~10 % of its import's CPU)."""
    with collector_paused():
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S112 (imported again where it is needed, which says why)
                continue


def _shared_file() -> int:
    """A file of no name that the child inherits (a memfd: in memory, freed when the last
    process holding it closes it; elsewhere an unlinked temporary file)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("tracereplay-forked-inputs", os.MFD_CLOEXEC)
    with tempfile.TemporaryFile() as file:
        return os.dup(file.fileno())


def _written(fd: int, buffers: list[memoryview]) -> list[tuple[int, int]]:
    """Write `buffers` into the file `fd`, each at a multiple of _ALIGN; their places."""
    places, at = [], 0
    for buffer in buffers:
        view, done = buffer.cast("B"), 0
        while done < len(view):  # (pwrite may write less than asked)
            done += os.pwrite(fd, view[done:], at + done)
        places.append((at, len(view)))
        at += -(-len(view) // _ALIGN) * _ALIGN
    return places


def _read(fd: int, places: list[tuple[int, int]]) -> list[memoryview]:
    """The buffers `_written` put into the file `fd`: views of one mapping of it."""
    size = max((at + n for at, n in places), default=0)
    if not size:
        return [memoryview(b"") for _ in places]
    mapped = memoryview(mmap.mmap(fd, size))
    return [mapped[at : at + n] for at, n in places]


def _serve(
    work: Callable[[Any], Any],
    imports: list[str],
    receive: Any,
    inputs: Any,
    shared: int,
    send: Any,
) -> None:
    """In the child: import, wait for the inputs, run `work` on them, send (ok, result or
    error, seconds), then answer the caller's questions until it asks no more. No inputs
    (the caller left the block, or died): end."""
    inputs.close()  # the caller's end: its death is an EOF here
    _IN_CHILD[0] = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's, who kills this
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # The imports' objects (sklearn's and scipy's: ~120 k) frozen before the collector
    # resumes: its next pass would traverse every one of them, and then each older
    # generation's pass again, for nothing this short-lived process frees (real1M's child:
    # a 25-95 ms first collection, on its path).
    gc.disable()
    # On a thread of their own, whose frame stack starts empty: here they would run as
    # deep as the caller was when it forked, plus multiprocessing's frames (see
    # `preload`).
    preload(imports).join()
    gc.freeze()
    gc.enable()
    try:
        header, places = receive.recv()
    except EOFError:
        return
    start = time.perf_counter()

    def run() -> Any:
        arrays = _read(shared, places)
        os.close(shared)
        return work(pickle.loads(header, buffers=arrays))  # noqa: S301 (the caller's)

    ok, value = _outcome(run)
    _answered(send, (ok, value, time.perf_counter() - start))
    # Then each (question, arg) the caller sends, until it closes its end
    # (`Pending.done_asking`) or dies.
    while True:
        try:
            question, arg = receive.recv()
        except EOFError:
            break
        _answered(send, _outcome(partial(question, arg)))
    send.close()


def _outcome(run: Callable[[], Any]) -> tuple[bool, Any]:
    """(True, what `run` gives) or (False, its error), a bug's noted with where it was."""
    try:
        return True, run()
    except BaseException as error:
        if not isinstance(error, TraceReplayError):  # a bug: keep where it happened
            error.add_note("in the forked child:\n" + traceback.format_exc().rstrip())
        return False, error


def _answered(send: Any, message: tuple[Any, ...]) -> None:
    """Send (ok, value, ...) to the caller; a value that does not pickle is said as an
    error in its place."""
    try:
        send.send(message)
    except Exception as error:
        send.send((False, RuntimeError(f"the forked child's answer: {error!r}"), *message[2:]))


def _ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"a model stage's child process was ended by {name} (out of memory?)"
    return f"a model stage's child process ended without an answer (exit code {exitcode})"
