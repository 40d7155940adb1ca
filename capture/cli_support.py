"""What the `capture`, `import` and `scan` commands print: live status lines and summaries.

Kept apart from the typer wrappers in tracereplay/commands/traces.py so the wrappers stay thin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.text import Text

from .recorder import RecorderStats

# Without a terminal (CI logs, pipes) the live line becomes a plain line this often.
PLAIN_STATUS_EVERY_S = 10.0


def stats_line(stats: RecorderStats, elapsed_s: float) -> str:
    return (
        f"{elapsed_s:6.1f}s  flows {stats.flows}  rows written {stats.rows_flushed}"
        f"  transport errors {stats.transport_errors}  dropped {stats.dropped}"
        f"  dropped_backlog {stats.dropped_backlog}  backlog {stats.backlog}"
    )


def summary_line(stats: RecorderStats, out: object, stopped_by: str, elapsed_s: float) -> str:
    """The one line a capture ends with: what was seen, kept, left out and lost."""
    line = (
        f"stopped ({stopped_by}) after {elapsed_s:.1f}s: {stats.flows} flows, "
        f"{stats.rows_flushed} rows written to {out}, {stats.transport_errors} transport "
        f"errors, {stats.dropped} dropped, {stats.dropped_backlog} dropped_backlog "
        "(anonymizers behind)"
    )
    if stats.failure is not None:
        line += f"; {stats.rows_lost} rows lost: {stats.failure}"
    return line


@contextmanager
def live_status(console: Console) -> Iterator[Callable[[RecorderStats, float], None]]:
    """A callback that redraws one status line (or prints one now and then, off a tty)."""
    if console.is_terminal:
        with Live(Text(""), console=console, transient=True, refresh_per_second=4) as live:

            def redraw(stats: RecorderStats, elapsed_s: float) -> None:
                live.update(Text(stats_line(stats, elapsed_s)))

            yield redraw
        return
    last = [time.monotonic()]

    def print_now_and_then(stats: RecorderStats, elapsed_s: float) -> None:
        if time.monotonic() - last[0] >= PLAIN_STATUS_EVERY_S:
            last[0] = time.monotonic()
            console.print(stats_line(stats, elapsed_s), highlight=False)

    yield print_now_and_then
