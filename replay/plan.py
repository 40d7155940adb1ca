"""The replay plan: which sessions start when, and what each one sends (no locust here).

A plan comes from a model (sessions synthesized, seeded per session) or from a trace
(captured sessions, copied N times). Every session has its own seed, so a worker that
builds only its shard (`index % workers == worker`) gets exactly the sessions a single
process would have run with those indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracereplay.models.correlations import Location

if TYPE_CHECKING:
    from .evidence import Saw


@dataclass(frozen=True)
class PlannedRequest:
    """One request of a session, before runtime correlation fills in live values."""

    endpoint: str
    """"METHOD /template": the name requests are reported under."""
    method: str
    path: str
    """Concrete path (captured or synthesized values; correlation may replace some)."""
    query: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    think_s: float = 0.0
    """Pause between the previous response (or the session start) and this request."""
    path_params: dict[str, str] = field(default_factory=dict)
    """Template parameter → value in `path`, so correlation can swap one by name."""
    yields: tuple[tuple[Location, tuple[str, ...]], ...] = ()
    """Trace replays: what the captured answer held at the places later requests read
    (all items of a list, in order), so captured ids map to the live ones."""
    login_refused: bool = False
    """Trace replays: a login whose captured answer refused it: sent with a wrong password."""


@dataclass(frozen=True)
class PlannedSession:
    index: int
    """0.. in order of start; shards are index % workers."""
    start_s: float
    """Planned start, seconds after the replay's time zero."""
    requests: tuple[PlannedRequest, ...]
    role: str | None = None
    """Behavior role when the model knows one (matched to --credentials roles)."""
    copy: int = 0
    """0 for a captured session, 1..N-1 for the copies that --scale N adds (trace source)."""
    login_fails: bool = False
    """The real session's login failed: the replayed one sends a wrong password."""
    address: str | None = None
    """Client address pseudonym (X-Forwarded-For with --spread-addresses)."""
    saw: tuple[Saw, ...] = ()
    """Trace replays: what the real session's answers showed of the objects it used, for
    the account choice (replay/evidence.py); a copy has its original's."""


@dataclass(frozen=True)
class Plan:
    sessions: tuple[PlannedSession, ...]
    duration_s: float
    source: str
    """"model" or "trace"."""
    scale: float
    speed: float
    seed: int

    def shard(self, worker: int, workers: int) -> Plan:
        """The sessions worker `worker` of `workers` runs (index % workers == worker)."""
        if workers < 1 or not 0 <= worker < workers:
            raise ValueError(f"worker {worker} of {workers}")
        mine = tuple(s for s in self.sessions if s.index % workers == worker)
        return Plan(mine, self.duration_s, self.source, self.scale, self.speed, self.seed)
