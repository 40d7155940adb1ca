"""`render_compare`: the short table `tracereplay compare` prints (metric, real, other,
value, goal, noise floor, p, verdict) and the lines under it, from a `CompareResult`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from .compare import CompareResult
from .run_summary import LOAD_COUNTS

VERDICT_MARKUP = {"pass": "pass", "noise": "[yellow]NOISE[/yellow]", "fail": "[red]FAIL[/red]"}


def render_compare(result: CompareResult, console: Console) -> None:
    """A short table: metric, real, other, value, goal, noise floor, p-value, verdict; then
    the load, the errors, why any value is missing and what a NOISE would need."""
    doc = result.to_json()
    table = Table(
        title=f"compare (scale {_fmt(result.scale)}, {doc['scale_source']})",
        caption="real/other: counts (endpoints, codes on jsd rows), means (ks), mean "
        "sessions/s (mape), shares; floor: what two halves of REAL differ by",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("metric", no_wrap=True)
    for column in ("real", "other", "value", "goal", "floor", "verdict"):
        table.add_column(column, justify="right")
    em, sm, ar = doc["endpoint_mix"], doc["status_mix"], doc["arrival_rate"]
    worst = em["worst_endpoint"]
    rows: list[tuple[str, Any, Any, Any]] = [
        ("requests", doc["requests"]["real"], doc["requests"]["other"], None),
        ("sessions", doc["sessions"]["real"], doc["sessions"]["other"], None),
        ("endpoint_mix.jsd", _count(em["real"]), _count(em["other"]), em["jsd"]),
        ("endpoint_mix.max_share_error", em["real"].get(worst), (em["other"] or {}).get(worst),
         em["max_share_error"]),
        ("status_mix.jsd", _count(sm["real"]), _count(sm["other"]), sm["jsd"]),
    ]  # fmt: skip
    for name in ("session_length", "session_duration", "think_time", "interarrival"):
        part = doc[name]
        rows.append((f"{name}.ks", part["real_mean"], part["other_mean"], part["ks"]))
    rows += [
        ("arrival_rate.mape", _mean(ar["real"]), _mean(ar["other_scaled"]), ar["mape"]),
        *(
            (f"errors.{k}", _pct(v["real"]), _pct(v["other"]), None)
            for k, v in _errors(doc).items()
        ),
        ("throughput_rps", doc["throughput_rps"]["real"], doc["throughput_rps"]["other"], None),
        ("slo.passed", None, None, _slo_verdict(doc["slo"])),
    ]
    fidelity = doc["fidelity"]
    for metric, real, other, value in rows:
        verdict = fidelity["verdict"].get(metric, "")
        judged = metric in fidelity["verdict"]
        table.add_row(
            metric, _fmt(real), _fmt(other), _fmt(value), _fmt(fidelity["goal"].get(metric)),
            _fmt(fidelity["noise_floor"].get(metric)),
            VERDICT_MARKUP.get(verdict or "", "-" if judged else ""),
        )  # fmt: skip
    console.print(table)
    for line in summary_lines(doc):
        console.print(line, highlight=False)


def summary_lines(doc: Mapping[str, Any]) -> list[str]:
    """The verdict, achieved load, what a NOISE needs, and every reason a value is missing."""
    fidelity = doc["fidelity"]
    lines = [f"verdict: {str(doc.get('verdict') or 'n/a').upper()}" + _verdict_note(doc)]
    if worst := doc["endpoint_mix"]["worst_endpoint"]:
        lines.append(f"[dim]endpoint_mix.max_share_error is at {worst}[/dim]")
    if load := doc.get("load"):
        lines.append(load_line(load, doc.get("cut_sessions") or {}))
    for metric, verdict in sorted(fidelity["verdict"].items()):
        if verdict == "noise":
            needed = fidelity["sessions_needed"].get(metric)
            p = fidelity["pvalue"].get(metric)
            lines.append(
                f"[yellow]{metric}: NOISE[/yellow] — {_fmt(fidelity['value'][metric])} is above "
                f"the goal {_fmt(fidelity['goal'][metric])}, but two halves of REAL differ "
                f"by up to {_fmt(fidelity['noise_floor'][metric])}"
                + (f" (p = {_fmt(p)})" if p is not None else "")
                + f": this sample cannot tell. Judging it needs ≈ {needed or '?'} real "
                f"sessions (now {doc['sessions']['real']})."
            )
    for name in ("session_length", "think_time", "interarrival", "arrival_rate", "status_mix"):
        if doc[name].get("reason"):
            lines.append(f"[dim]{name}: {doc[name]['reason']}[/dim]")
    if doc["latency_ms"]["reason"]:
        lines.append(f"[dim]latency_ms: {doc['latency_ms']['reason']}[/dim]")
    lines.append(
        f"[dim]arrival_rate: OTHER's session starts are the {doc['arrival_rate']['source']}[/dim]"
    )
    return lines


def load_line(load: Mapping[str, Any], cut: Mapping[str, Any]) -> str:
    """ "load: offered 5×, achieved 4.8× (source); 120 of 120 sessions started, 3 cut"."""
    text = f"load: offered {_fmt(load['offered_scale'])}×, achieved "
    text += f"{_fmt(load['achieved_scale'])}× ({load['source']})"
    planned, started = load.get("sessions_planned"), load.get("sessions_started")
    if planned is not None:
        text += f"; {started} of {planned} planned sessions started"
    parts = [f"{load[k]} {word}" for k, word in LOAD_COUNTS if load.get(k)]
    if parts:
        text += ", " + ", ".join(parts)
    if cut.get("count"):
        text += f" (cut sessions left out of session length and duration: {cut['how']})"
    return text


def _verdict_note(doc: Mapping[str, Any]) -> str:
    verdict = doc.get("verdict")
    if verdict == "noise":
        return " (no FAIL; some metrics are above their goal by less than this sample can tell)"
    if verdict == "fail":
        failed = [m for m, v in doc["fidelity"]["verdict"].items() if v == "fail"]
        failed += [f"slo.{n}" for n in (doc.get("slo") or {}).get("failed", [])]
        return f" ({', '.join(sorted(failed))})"
    return ""


def _errors(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    errors = doc["errors"]
    return {k: errors[k] for k in ("error_rate", "client_error_rate", "server_error_rate")}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _pct(value: Any) -> str | None:
    return None if value is None else f"{100 * value:.3g}%"


def _count(mapping: Mapping[str, Any] | None) -> int | None:
    return None if mapping is None else len(mapping)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _slo_verdict(slo: Mapping[str, Any]) -> str:
    if not slo.get("checked"):
        return "not checked"
    return {True: "passed", False: "FAILED", None: "not checkable"}[slo.get("passed")]
