"""The `tracereplay` command: thin typer wrappers over plain functions.

The wrappers live in tracereplay/commands/, one module per stage, registered on the app
of tracereplay/cli_app.py in the order `--help` lists them. Each stage is imported inside
its command, so `capture` and `model` never load gevent (only replay code imports
locust). `main` turns every `TraceReplayError`, usage error and `MemoryError` into one line
on stderr and exit code 2; Ctrl-C exits 130. The console script is `console`: `main`, then
the process ends without the interpreter's teardown after the commands that leave nothing
to it (`FAST_END_COMMANDS`, tracereplay/process_end.py); `model` starts with glibc's malloc
told to keep freed memory (`REUSE_MEMORY_COMMANDS`, tracereplay/allocator.py).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from tracereplay.allocator import reuse_freed_memory
from tracereplay.cli_app import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, app
from tracereplay.errors import TraceReplayError
from tracereplay.process_end import end_now, open_fds

__all__ = [
    "FAST_END_COMMANDS",
    "ONE_BLAS_THREAD_COMMANDS",
    "OUT_OF_MEMORY_HINT",
    "REUSE_MEMORY_COMMANDS",
    "app",
    "console",
    "main",
]

OUT_OF_MEMORY_HINT = (
    "the input is too large for the memory this process may use (free memory, raise its"
    " limit, or see docs/SCALE.md for what each command holds per million rows)"
)
"""The end of the one line a command that ran out of memory prints (exit 2, no traceback)."""

FAST_END_COMMANDS = frozenset({"model", "synthesize", "compare"})
"""Commands after which the process may end without the interpreter's teardown (~0.3 s of
module finalization after a model). Not `replay` nor what runs it (`demo`): Locust's
gevent patches threading, so the threads a check sees are not what runs, and its ~0.3 s
are nothing against a replay's duration; not the commands that run a proxy or a server."""
ONE_BLAS_THREAD_COMMANDS = frozenset({"model"})
"""Commands whose process (and the children it forks) starts BLAS with one thread, unless
OPENBLAS_NUM_THREADS is set: the model's matrix products run under a one-thread limit
anyway (models/behaviors.py), and each OpenBLAS library loaded with more threads (numpy's,
then scipy's in the behaviors' child) has its workers spin for ~0.1 CPU s when they start,
beside the stages (real1M: ~0.2 CPU s; bench/README.md, "Sparse k-means fits and BLAS on
one thread")."""
REUSE_MEMORY_COMMANDS = frozenset({"model"})
"""Commands whose process keeps freed big arrays for the next ones, on small pages
(tracereplay/allocator.py): numpy over millions of rows, where the kernel otherwise zeroed
fresh huge pages for every new array (real10M: system CPU 3.8 → 2.5 s, all CPU 5-12 %
less; real1M: no change resolved; bench/README.md, alloc18). Not measured for synthesize
and compare."""

# Importing a command module registers its commands; `--help` lists them in this order.
for _stage in ("traces", "models", "replay", "compare", "demo"):
    importlib.import_module(f"tracereplay.commands.{_stage}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        result = app(args=argv, prog_name="tracereplay", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except TraceReplayError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except MemoryError as exc:  # (Arrow's too) the input, not a bug: too large for the memory
        _fail(f"out of memory ({exc or 'an allocation failed'}): {OUT_OF_MEMORY_HINT}")
        return EXIT_USAGE
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "tracereplay"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # empty when no arguments were given and the help was printed
            _fail(f"{where}: {message} (see {where} --help)")
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    return result if isinstance(result, int) else EXIT_OK


def console() -> int:
    """The console script (and `python -m tracereplay.cli`): `main` on sys.argv; after a
    command of `FAST_END_COMMANDS` the process ends here when `end_now` shows nothing is
    left for the interpreter's teardown, else the exit code is returned to `sys.exit`."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in ONE_BLAS_THREAD_COMMANDS:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read when numpy loads it
    if command in REUSE_MEMORY_COMMANDS:
        reuse_freed_memory()
    if command in FAST_END_COMMANDS:
        inherited = open_fds()  # (only for these: the other commands never read it)
        code = main()
        end_now(code, inherited)
        return code
    return main()


def _fail(message: str) -> None:
    line = " ".join(message.split())
    sys.stderr.write(f"tracereplay: error: {line}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())
