"""Every error tracereplay raises on purpose, in one hierarchy.

Library code raises these; only the CLI prints them, as one line, and exits 2.

    TraceReplayError                 base: bad input or an environment problem, never a bug
    ├── UsageError                   an option or argument value that cannot work
    ├── ConfigError                  a settings or policy file that cannot be used
    ├── TraceError                   a trace directory that cannot be read or written
    │   ├── TraceNotFoundError       no such directory
    │   ├── TraceEmptyError          a directory with no trace rows in it
    │   ├── TraceSchemaError         a file written with another schema
    │   ├── TraceCorruptError        a file that is not readable Parquet / Arrow
    │   ├── TraceExistsError         refusing to write over rows already captured
    │   └── TraceLockedError         another writer holds the trace directory
    ├── TargetError                  a target server that cannot be started or reached
    ├── ReplayFailedError            a replay stopped by a failure (a worker's, --max-rss)
    └── OutOfMemoryError             an input too large for the memory the process may use

Bugs stay ordinary Python exceptions (with a traceback) so that they get reported.
"""

from __future__ import annotations


class TraceReplayError(Exception):
    """Base of every error tracereplay raises on purpose."""


class UsageError(TraceReplayError):
    """An option or argument value that cannot work."""


class ConfigError(TraceReplayError):
    """A settings or policy file that cannot be used."""


class TraceError(TraceReplayError):
    """A trace directory that cannot be read or written."""


class TraceNotFoundError(TraceError):
    """The trace directory does not exist."""


class TraceEmptyError(TraceError):
    """The trace directory holds no rows."""


class TraceSchemaError(TraceError):
    """A file in the trace was written with another schema."""


class TraceCorruptError(TraceError):
    """A file in the trace is not readable."""


class TraceExistsError(TraceError):
    """Writing would mix new rows into a trace that already has some."""


class TraceLockedError(TraceError):
    """Another process (or writer) is writing the same trace directory."""


class TargetError(TraceReplayError):
    """A target server that cannot be started or reached."""


class ReplayFailedError(TraceReplayError):
    """A replay that stopped because a load-generating process failed or went over a
    bound (--max-rss); what it gathered is written first."""


class OutOfMemoryError(TraceReplayError):
    """An input too large for the memory this process may use (the machine's, or a limit
    on it: `ulimit -v`, a container's): where it ran out and how large the input was. The
    CLI turns a bare `MemoryError` of any command into one line too (tracereplay/cli.py)."""


class SpillSpaceError(TraceReplayError):
    """No room left on the disk a command spills to (the model in key partitions): where,
    and about how much it needs."""
