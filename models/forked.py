"""One piece of work run in a forked child process while the caller goes on (the model's
behaviors beside its payload and correlation reads: the machine's second core).

The child sees the caller's arrays as they were at the fork (copy-on-write: nothing is
pickled on the way in) and sends back its result, or its error, pickled through a pipe.
The child never outlives the `forked` block: left early (an error in the caller, the
result not asked for), it is killed and reaped. Where `fork` is not offered, or with
`child=False`, the work runs in the caller, at the point its result is asked for.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tracereplay.errors import TraceReplayError

T = TypeVar("T")


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
    process.start()
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
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S112 (the child imports it again and says why)
                continue

    thread = threading.Thread(target=imports, name="preload", daemon=True)
    thread.start()
    return thread


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
