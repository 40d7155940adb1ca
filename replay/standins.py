"""Stand-in objects: where ownership holds back a protected request because it names an
object the run did not create (`not_owned`), and the model learned a create for objects of
that kind, the replayed session first creates its own stand-in through that create, then
sends the protected request to it (the ownership rules put it there: the session now owns
an object of that kind), and the stand-in is recorded for cleanup like every created
object. Nothing the run did not create is ever modified.

The stand-in's create is an extra request the real traffic did not send: it goes out
through the same ownership check and sender, but is kept out of timing.parquet (so out of
every comparison's endpoint mix and statuses) and counted apart in summary.json
`stand_ins` (by the protected endpoint: created / failed / unused; by create endpoint: how
many were sent). Its body is a planned create of the same endpoint from this plan (a model
plan's are rendered from the model's payloads; a trace plan's are the captured, anonymized
ones the trace replay sends for its own creates), chosen by the session's index.

A create answered 403 for an account role is not tried again for that role in this worker
(a client user may not create what only admins create): one refused request per role, not
one per protected request. A 401 says the session has no live credential (its login was
refused as the real one was), not what the role may do: counted, not remembered.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tracereplay.models.id_model import IdModel

from .plan import Plan, PlannedRequest
from .safetylog import SafetyLog

TEMPLATES_PER_CREATE = 64
"""Planned creates kept per create endpoint to draw stand-in bodies from."""


@dataclass
class StandIns:
    """One worker's stand-in bookkeeping (the driver sends; this chooses and counts)."""

    templates: dict[str, list[PlannedRequest]]
    log: SafetyLog
    refused: set[tuple[str | None, str]] = field(default_factory=set)

    @classmethod
    def from_plan(cls, plan: Plan, ids: IdModel, log: SafetyLog) -> StandIns:
        """Up to TEMPLATES_PER_CREATE planned requests of each learned create endpoint."""
        creates = {c.endpoint for c in ids.creations}
        templates: dict[str, list[PlannedRequest]] = {}
        if creates:
            for session in plan.sessions:
                for request in session.requests:
                    if request.endpoint in creates:
                        kept = templates.setdefault(request.endpoint, [])
                        if len(kept) < TEMPLATES_PER_CREATE:
                            kept.append(request)
        return cls(templates, log)

    def template(self, create: str | None, role: str | None, index: int) -> PlannedRequest | None:
        """The create request a session (`index`, signed in with `role`) sends to make a
        stand-in at `create`; None when there is none to send or the role was refused."""
        pool = self.templates.get(create or "")
        if create is None or not pool or (role, create) in self.refused:
            return None
        # No pause before it, and no captured answer: it maps no captured id to its object.
        return replace(pool[index % len(pool)], think_s=0.0, yields=())

    def answered(
        self, endpoint: str, create: str, role: str | None, status: int | None, used: bool
    ) -> None:
        """Count a stand-in create for the protected `endpoint`: "created" when it made an
        object the request then went to, "unused" when it made one the request still could
        not go to (left for cleanup), "failed" when the create did not answer 2xx."""
        ok = status is not None and 200 <= status < 300
        if status == 403:
            self.refused.add((role, create))
        outcome = ("created" if used else "unused") if ok else "failed"
        self.log.stand_in(endpoint, create, outcome)
