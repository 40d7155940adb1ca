"""`render_compare`: the short table `tracereplay compare` prints (metric, real, other,
value, goal, verdict), from a `CompareResult`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .compare import FIDELITY_GOALS, CompareResult


def render_compare(result: CompareResult, console: Console) -> None:
    """A short table: metric, real, other, value, goal, pass/fail; then why any value is
    missing."""
    doc = result.to_json()
    table = Table(
        title=f"compare (scale {_fmt(result.scale)}, {doc['scale_source']})",
        caption="real/other: counts, means (KS rows), mean sessions/s (MAPE), shares",
    )
    for column in ("metric", "real", "other", "value", "goal", "pass"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    em, sm, ar = doc["endpoint_mix"], doc["status_mix"], doc["arrival_rate"]
    worst = em["worst_endpoint"]
    rows: list[tuple[str, Any, Any, Any]] = [
        ("requests", doc["requests"]["real"], doc["requests"]["other"], None),
        ("sessions", doc["sessions"]["real"], doc["sessions"]["other"], None),
        (
            "endpoint_mix.jsd",
            _count(em["real"], "endpoints"),
            _count(em["other"], "endpoints"),
            em["jsd"],
        ),
        (
            "endpoint_mix.max_share_error" + (f" ({worst})" if worst else ""),
            em["real"].get(worst),
            (em["other"] or {}).get(worst),
            em["max_share_error"],
        ),
    ]
    for name in ("session_length", "session_duration", "think_time", "interarrival"):
        part = doc[name]
        rows.append((f"{name}.ks", part["real_mean"], part["other_mean"], part["ks"]))
    rows += [
        ("arrival_rate.mape", _mean(ar["real"]), _mean(ar["other_scaled"]), ar["mape"]),
        ("status_mix.jsd", _count(sm["real"], "codes"), _count(sm["other"], "codes"), sm["jsd"]),
        ("errors.rate", doc["errors"]["real_rate"], doc["errors"]["other_rate"], None),
        ("throughput_rps", doc["throughput_rps"]["real"], doc["throughput_rps"]["other"], None),
        ("slo.passed", None, None, _slo_verdict(doc["slo"])),
    ]
    passed = result.fidelity()
    for metric, real, other, value in rows:
        verdict = (
            {True: "pass", False: "FAIL", None: "n/a"}[passed[metric]] if (metric in passed) else ""
        )
        goal = FIDELITY_GOALS.get(metric)
        table.add_row(metric, _fmt(real), _fmt(other), _fmt(value), _fmt(goal), verdict)
    console.print(table)
    for name in ("session_length", "think_time", "interarrival", "arrival_rate", "status_mix"):
        if doc[name].get("reason"):
            console.print(f"[dim]{name}: {doc[name]['reason']}[/dim]")
    if doc["latency_ms"]["reason"]:
        console.print(f"[dim]latency_ms: {doc['latency_ms']['reason']}[/dim]")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _count(mapping: Mapping[str, Any] | None, unit: str) -> str | None:
    return None if mapping is None else f"{len(mapping)} {unit}"


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _slo_verdict(slo: Mapping[str, Any]) -> str:
    if not slo.get("checked"):
        return "not checked"
    return {True: "passed", False: "FAILED", None: "not checkable"}[slo.get("passed")]
