"""What a replay did for safety, per worker and merged: requests ownership skipped (by
endpoint and reason), requests to objects the run did not create (only with
--allow-foreign-writes), role matching, planned login failures, the discovery phase, and
the record of the objects the run created (`created.json` in the run folder, which
`tracereplay cleanup` reads and updates).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CREATED_FILE = "created.json"
"""The run folder's record of the objects the replay created (cleanup reads it)."""
CREATED_EVENTS = "created.jsonl"
CREATED_FORMAT = "tracereplay.created/1"
CLEANUP_INFO = "cleanup-info.json"


@dataclass
class SafetyLog:
    """Per worker: what ownership skipped (endpoint → reason → count), what went to
    objects the run did not create (only with --allow-foreign-writes), role matching,
    logins that failed as planned, and the discovery phase."""

    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    foreign_sent: dict[str, int] = field(default_factory=dict)
    role_unmatched: int = 0
    logins_failed_planned: int = 0
    discovery: dict[str, Any] | None = None
    selection: dict[str, dict[str, int]] = field(default_factory=dict)
    """Endpoint → how its learned id selections went: met, switched, fallback."""
    stand_ins: dict[str, dict[str, int]] = field(default_factory=dict)
    """Protected endpoint → its stand-in creates: created, unused, failed
    (replay/standins.py)."""
    stand_in_creates: dict[str, int] = field(default_factory=dict)
    """Create endpoint → stand-in creates sent (requests the real traffic did not send)."""

    def skip(self, endpoint: str, reason: str) -> None:
        reasons = self.skipped.setdefault(endpoint, {})
        reasons[reason] = reasons.get(reason, 0) + 1

    def stand_in(self, endpoint: str, create: str, outcome: str) -> None:
        outcomes = self.stand_ins.setdefault(endpoint, {})
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        self.stand_in_creates[create] = self.stand_in_creates.get(create, 0) + 1

    def foreign(self, endpoint: str) -> None:
        self.foreign_sent[endpoint] = self.foreign_sent.get(endpoint, 0) + 1


def merge_safety(out: Path, workers: list[Path]) -> dict[str, Any]:
    """The workers' safety logs and created objects → summary keys and out/created.json."""
    skipped: dict[str, Counter[str]] = {}
    foreign: Counter[str] = Counter()
    selection: dict[str, Counter[str]] = {}
    stand_ins: dict[str, Counter[str]] = {}
    stand_in_creates: Counter[str] = Counter()
    unmatched = failed_planned = 0
    discovery: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    for directory in workers:
        path = directory / "safety.json"
        if path.exists():
            data = json.loads(path.read_text())
            for endpoint, reasons in data.get("skipped", {}).items():
                skipped.setdefault(endpoint, Counter()).update(reasons)
            foreign.update(data.get("foreign_sent", {}))
            for endpoint, outcomes in data.get("selection", {}).items():
                selection.setdefault(endpoint, Counter()).update(outcomes)
            for endpoint, outcomes in data.get("stand_ins", {}).items():
                stand_ins.setdefault(endpoint, Counter()).update(outcomes)
            stand_in_creates.update(data.get("stand_in_creates", {}))
            unmatched += int(data.get("role_unmatched", 0))
            failed_planned += int(data.get("logins_failed_planned", 0))
            if data.get("discovery"):
                discovery.append(data["discovery"])
        events += _read_events(directory / CREATED_EVENTS)
        if not info and (directory / CLEANUP_INFO).exists():
            info = json.loads((directory / CLEANUP_INFO).read_text())
    objects = created_objects(events)
    left = sum(1 for o in objects if not o["deleted"])
    if objects:
        doc = {"format": CREATED_FORMAT, **info, "objects": objects, "left": left}
        (out / CREATED_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return {
        "skipped": {
            "total": sum(sum(r.values()) for r in skipped.values()),
            "by_endpoint": {e: dict(sorted(r.items())) for e, r in sorted(skipped.items())},
        },
        "id_selection": {
            outcome: sum(c[outcome] for c in selection.values())
            for outcome in ("met", "switched", "fallback")
        }
        | {"by_endpoint": {e: dict(sorted(c.items())) for e, c in sorted(selection.items())}},
        # Extra creates the real traffic did not send (not in timing.parquet).
        "stand_ins": {
            "total": sum(stand_in_creates.values()),
            "by_endpoint": {e: dict(sorted(c.items())) for e, c in sorted(stand_ins.items())},
            "creates_by_endpoint": dict(sorted(stand_in_creates.items())),
        },
        "foreign_writes_sent": {"total": sum(foreign.values()), "by_endpoint": dict(foreign)},
        "sessions_role_unmatched": unmatched,
        "logins_failed_as_planned": failed_planned,
        "created_objects": {
            "created": len(objects),
            "deleted_by_sessions": len(objects) - left,
            "left": left,
            "file": CREATED_FILE if objects else None,
        },
        "discovery": _merge_discovery(discovery),
    }


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a torn last line of a killed worker
            continue
    return out


def created_objects(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per created object (in creation order), `deleted` when its session
    deleted it afterwards."""
    objects: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("event") == "created":
            entry = {k: v for k, v in event.items() if k != "event"}
            objects[str(event["id"])] = {**entry, "deleted": False, "deleted_by": None}
        elif event.get("event") == "deleted" and str(event.get("id")) in objects:
            objects[str(event["id"])].update(deleted=True, deleted_by="session")
    return list(objects.values())


def _merge_discovery(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not parts:
        return None
    total = {
        k: sum(int(p.get(k, 0)) for p in parts) for k in ("accounts", "requests", "failures", "ids")
    }
    return {
        **total,
        "seconds": max(float(p.get("seconds", 0.0)) for p in parts),
        "stopped": next((p["stopped"] for p in parts if p.get("stopped")), None),
        "endpoints": parts[0].get("endpoints", []),
    }
