"""How the `tracereplay` process ends: `os._exit` once nothing is left for the
interpreter's teardown to do, else the interpreter's own end.

After `tracereplay model` the interpreter spent ~0.3 s finalizing ~1,500 modules (numpy,
pandas, pyarrow, scipy, sklearn) that write nothing (real1M: 2.97 s wall, the model
written at 2.69). `end_now` skips that only when it can show the teardown has nothing
to deliver: no thread but daemons beside this one (a non-daemon thread's work must
finish, the interpreter would wait for it), the `atexit` functions run (logging's
flush, multiprocessing's reaping of its daemonic children, `weakref.finalize`'s), no
child process left (running or unreaped), no file this process opened for writing still
open (a buffered writer's last bytes would be lost; a deleted file's do not count),
stdout and stderr flushed. Any doubt (no /proc, a
flush that fails, gevent's patched threads): it returns and the interpreter ends as it
always did. Only for a process's end (the console script), never in code that tests call
in-process.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path

PROC = Path("/proc")


def open_fds() -> frozenset[int] | None:
    """This process's open file descriptors (None where /proc does not say)."""
    try:
        listed = [int(entry.name) for entry in (PROC / "self" / "fd").iterdir()]
    except OSError:
        return None
    return frozenset(fd for fd in listed if _is_open(fd))  # not the listing's own


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def end_now(code: int, inherited: frozenset[int] | None) -> None:
    """`os._exit(code)` when the interpreter's teardown has nothing left to deliver (see
    the module's docstring); else returns, and the interpreter ends as it would have (the
    `atexit` functions may have run: it does not run them again). `inherited`:
    `open_fds()` when the process started (the descriptors it was given, not its own)."""
    if inherited is None or "gevent" in sys.modules or _other_threads():
        return
    atexit._run_exitfuncs()  # what the interpreter runs next; it clears them (run once)
    if _other_threads() or _children() != [] or _own_writable_fds(inherited) != []:
        return
    try:
        for stream in {
            id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
        }.values():
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # a closed pipe: the interpreter reports it as it does
        return
    os._exit(code)


def _other_threads() -> bool:
    """Whether a thread the interpreter would wait for runs beside this one (or this is
    not the main thread)."""
    this = threading.current_thread()
    if this is not threading.main_thread():
        return True
    return any(t is not this and not t.daemon and t.is_alive() for t in threading.enumerate())


def _children() -> list[int] | None:
    """Pids of this process's children, running or not yet reaped (None: unknown).
    /proc/PID/stat of every process: /proc/self/task/*/children is not in every kernel."""
    me, found = os.getpid(), []
    try:
        entries = [entry.name for entry in PROC.iterdir()]
    except OSError:
        return None
    for name in entries:
        if not name.isdigit():
            continue
        try:
            stat = (PROC / name / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(name))
    return found


def _own_writable_fds(inherited: frozenset[int]) -> list[int] | None:
    """Descriptors this process opened for writing, on a file not yet deleted (None:
    unknown). What is written to a deleted file (multiprocessing's shared-memory arenas in
    /dev/shm) no one reads after the process, whose children are gone."""
    now = open_fds()
    if now is None:
        return None
    found = []
    for fd in sorted(now - inherited - {0, 1, 2}):
        try:
            info = (PROC / "self" / "fdinfo" / str(fd)).read_text()
            target = str((PROC / "self" / "fd" / str(fd)).readlink())
        except OSError:  # closed since
            continue
        flags = next(
            (line.split()[1] for line in info.splitlines() if line.startswith("flags:")), "0"
        )
        if int(flags, 8) & os.O_ACCMODE != os.O_RDONLY and not target.endswith(" (deleted)"):
            found.append(fd)
    return found
