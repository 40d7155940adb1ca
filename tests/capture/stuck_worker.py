"""A worker spec whose anonymizer never returns: a worker stuck in user code (as one was
on an endless pseudonym redraw), for test_worker_guard.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracereplay.capture.exchange import Exchange
from tracereplay.capture.workers import Anonymized


@dataclass(frozen=True)
class StuckSpec:
    started: str
    """A file the worker creates as it starts to spin."""

    def build(self) -> Callable[[int, Exchange], Anonymized]:
        def spin(seq: int, exchange: Exchange) -> Anonymized:
            Path(self.started).touch()
            while True:  # pure Python, the GIL switching as in the real hang
                seq += 1

        return spin
