"""Metrics over the seeded executions: overview, per-workflow, per-status/day, history.

Pure functions from store records to the `data` the metrics routes answer with.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from tracereplay.demo.target.pagination import page
from tracereplay.demo.target.store import EXECUTION_STATUSES, Execution, Workflow, iso

Period = Literal["hour", "day", "week", "month"]
MAX_HISTORY_DAYS = 731  # two years of any period
MAX_HOURLY_DAYS = 62  # hour buckets beyond two months are refused (too many points)


def overview(
    client_id: str | None, workflows: Sequence[Workflow], runs: Sequence[Execution]
) -> dict[str, Any]:
    """Totals, success rate and mean duration over the kept history."""
    finished = [r for r in runs if r.duration_ms is not None]
    successes = sum(1 for r in finished if r.status == "success")
    return {
        "client_id": client_id,
        "period_days": 30,
        "total_workflows": len(workflows),
        "active_workflows": sum(1 for w in workflows if w.active),
        "total_executions": len(runs),
        "successful_executions": successes,
        "failed_executions": len(finished) - successes,
        "success_rate": _ratio(successes, len(finished)),
        "avg_duration_ms": _mean(r.duration_ms for r in finished),
        "last_execution_at": iso(max((r.started_at for r in runs), default=None)),
    }


def workflow_stats(workflows: Sequence[Workflow], runs: Sequence[Execution]) -> dict[str, Any]:
    """One row per workflow: counts, success rate, mean duration, last run."""
    by_workflow: dict[str, list[Execution]] = {w.id: [] for w in workflows}
    for run in runs:
        by_workflow.setdefault(run.workflow_id, []).append(run)
    items: list[dict[str, Any]] = []
    for workflow in workflows:
        own = by_workflow[workflow.id]
        finished = [r for r in own if r.duration_ms is not None]
        successes = sum(1 for r in finished if r.status == "success")
        items.append(
            {
                "workflow_id": workflow.id,
                "client_id": workflow.client_id,
                "name": workflow.name,
                "active": workflow.active,
                "executions": len(own),
                "successful": successes,
                "failed": len(finished) - successes,
                "success_rate": _ratio(successes, len(finished)),
                "avg_duration_ms": _mean(r.duration_ms for r in finished),
                "last_execution_at": iso(max((r.started_at for r in own), default=None)),
            }
        )
    items.sort(key=lambda item: (-item["executions"], item["name"]))
    return {"items": items, "total": len(items)}


def execution_stats(runs: Sequence[Execution]) -> dict[str, Any]:
    """Counts by status and, per day, totals with successes and errors."""
    by_status = Counter(r.status for r in runs)
    per_day: dict[date, Counter[str]] = {}
    for run in runs:
        per_day.setdefault(run.started_at.date(), Counter())[run.status] += 1
    return {
        "total": len(runs),
        "by_status": {status: by_status.get(status, 0) for status in EXECUTION_STATUSES},
        "by_day": [
            {
                "date": day.isoformat(),
                "total": sum(counts.values()),
                "success": counts["success"],
                "error": counts["error"],
            }
            for day, counts in sorted(per_day.items())
        ],
    }


def filter_executions(
    runs: Sequence[Execution], status: str | None, limit: int, offset: int
) -> dict[str, Any]:
    """A page of executions (newest first), optionally of one status."""
    chosen = runs if status is None else [r for r in runs if r.status == status]
    return page(chosen, limit, offset, Execution.view)


def history_error(period: Period, start: date, end: date) -> str | None:
    """Why a historical range cannot be answered, or None when it can."""
    if end < start:
        return "end_date must not be before start_date"
    days = (end - start).days + 1
    if days > MAX_HISTORY_DAYS:
        return f"the range may span at most {MAX_HISTORY_DAYS} days"
    if period == "hour" and days > MAX_HOURLY_DAYS:
        return f"hourly history may span at most {MAX_HOURLY_DAYS} days"
    return None


def historical(
    client_key: str, period: Period, start: date, end: date, seed: int
) -> dict[str, Any]:
    """A synthetic but stable series per bucket: the same query always answers the same."""
    points = []
    for bucket_start, hours in _buckets(period, start, end):
        noise = _unit_noise(f"{seed}|{client_key}|{period}|{bucket_start.isoformat()}")
        executions = round(hours * (2 + 6 * noise))
        errors = round(executions * (0.02 + 0.1 * noise * noise))
        points.append(
            {
                "ts": iso(bucket_start),
                "executions": executions,
                "success": executions - errors,
                "error": errors,
                "avg_duration_ms": round(800 + 4000 * noise, 1),
            }
        )
    return {
        "period": period,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "points": points,
        "total_executions": sum(p["executions"] for p in points),
    }


def range_days(start: date, end: date) -> int:
    """Days covered by an inclusive date range."""
    return (end - start).days + 1


def _buckets(period: Period, start: date, end: date) -> Iterable[tuple[datetime, float]]:
    """(bucket start, bucket length in hours) covering start..end inclusive."""
    first = datetime.combine(start, time(), tzinfo=UTC)
    stop = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    if period == "month":
        moment = first.replace(day=1)
        while moment < stop:
            following = (moment + timedelta(days=32)).replace(day=1)
            yield moment, (following - moment).total_seconds() / 3600
            moment = following
        return
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
    moment = first - timedelta(days=first.weekday()) if period == "week" else first
    while moment < stop:
        yield moment, step[period].total_seconds() / 3600
        moment += step[period]


def _unit_noise(key: str) -> float:
    """A number in [0, 1) fixed by `key`."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _mean(values: Iterable[int | None]) -> float:
    total = count = 0
    for value in values:
        if value is not None:
            total += value
            count += 1
    return round(total / count, 1) if count else 0.0
