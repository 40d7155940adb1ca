"""`render_report`: the compare report, one self-contained HTML page (inline CSS and SVG,
nothing fetched) showing REAL beside OTHER chart by chart, verdicts on top; `write_report`."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracereplay.errors import TraceEmptyError, UsageError
from tracereplay.models.sessions import session_table

from . import report_sections as sections
from . import svg
from .compare import load_pair, sessionized_pair
from .html import CSS, slo_table
from .html import badge as _badge
from .html import pct as _pct
from .html import table as _table
from .html import val as _val
from .html import verdict as _verdict
from .report_sections import COLORS, SIDES
from .run_summary import LOAD_COUNTS, session_ids_of
from .verdicts import worst

__all__ = ["COLORS", "load_pair", "render_report", "sessionized_pair", "write_report"]

NEEDED_COLUMNS = ("endpoint", "session_id", "t_s", "think_s")
"""What the report reads of both frames; of OTHER's `session_key` too (the sessions a
replay cut, by key)."""
METRIC_MEANING = {
    "endpoint_mix.jsd": "how differently requests spread over endpoints",
    "status_mix.jsd": "how differently requests spread over status codes",
    "session_length.ks": "requests per session",
    "session_duration.ks": "first to last request of a session",
    "think_time.ks": "pauses between a session's requests",
    "interarrival.ks": "gaps between session starts (other × N)",
    "arrival_rate.mape": "session start rate over time (other ÷ N)",
}
ERROR_ROWS = (
    ("error_rate", "error rate: status ≥ 400 or no response (as users and Locust count)"),
    ("client_error_rate", "… of which client errors (4xx)"),
    ("server_error_rate", "… of which server errors (5xx, transport error, no response)"),
)

Json = Mapping[str, Any]


def render_report(doc: Json, real: pd.DataFrame, other: pd.DataFrame, *, title: str) -> str:
    """The report page for a compare.json document and the two sessionized frames."""
    for name, frame, keyed in (("real", real, ()), ("other", other, ("session_key",))):
        if frame.empty:
            raise TraceEmptyError(f"{name}: the trace holds no requests")
        if missing := [c for c in (*NEEDED_COLUMNS, *keyed) if c not in frame.columns]:
            raise UsageError(f"report: the {name} frame lacks {', '.join(missing)} (sessionize it)")
    scale = float(doc.get("scale") or 1.0)
    tables = [session_table(real), session_table(other)]
    cut = session_ids_of(other, (doc.get("cut_sessions") or {}).get("session_keys") or ())
    # Sessions the replay cut say how long the run was, not what the model does: they are
    # left out of the session shape, as compare left them out of its KS (with a note).
    shaped = [tables[0], tables[1][~tables[1].index.isin(sorted(cut))]]
    gaps = [np.diff(np.sort(t["start_s"].to_numpy(float))) for t in tables]
    durations = (shaped[0]["duration_s"], shaped[1]["duration_s"])
    cut_note = sections.cut_note(doc)
    duration_text = (
        "Time from a session's first request to its last (0 for a single request). " + cut_note
    )
    think_text = "Pauses within a session, from the end of the previous response to the next one."
    gap_text = (
        f"Gaps between consecutive session starts; OTHER's are multiplied by N = {svg.num(scale)}, "
        "since N times the sessions arrive N times closer together."
    )
    parts = [
        sections.endpoint_section(doc),
        sections.status_section(doc),
        sections.status_endpoint_section(doc),
        sections.length_section(doc, shaped),
        sections.ecdf_section(doc, "session-duration", "Session duration", durations,
                              "session duration (s, log scale)", duration_text),
        sections.ecdf_section(doc, "think-time", "Think time", (real["think_s"], other["think_s"]),
                              "pause before a request (s, log scale)", think_text),
        sections.ecdf_section(doc, "interarrival", "Session inter-arrival",
                              (gaps[0], gaps[1] * scale),
                              "gap between session starts (s, log scale)", gap_text),
        sections.arrival_section(doc),
        sections.burstiness_section(doc),
        sections.latency_section(doc),
        sections.latency_time_section(doc, real, other),
    ]  # fmt: skip
    nav = " ".join(f'<a href="#{sid}">{escape(heading)}</a>' for sid, heading, _ in parts)
    body = "\n".join(f'<section id="{i}"><h2>{escape(h)}</h2>\n{c}</section>' for i, h, c in parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        f"{_header(doc, title)}\n<nav>{nav}</nav>\n{body}\n</main></body></html>\n"
    )


def write_report(html: str, out_dir: Path) -> Path:
    """Write out_dir/report.html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


# --- header: verdicts and headline numbers --------------------------------------------


def _header(doc: Json, title: str) -> str:
    slo_ok, slos = slo_table(doc.get("slo"))
    fidelity = doc.get("fidelity") or {}
    overall = fidelity.get("overall")
    if overall is None and isinstance(fidelity.get("all_passed"), bool):  # older documents
        overall = "pass" if fidelity["all_passed"] else "fail"
    slo = None if slo_ok is None else ("pass" if slo_ok else "fail")
    cls, word = _verdict(worst([overall, slo]))
    synthetic = (doc.get("errors") or {}).get("reason") is not None
    meta = "REAL beside OTHER" + (" (synthetic: no responses)" if synthetic else "")
    meta += f" · scale N = {_val(doc.get('scale'))} ({escape(str(doc.get('scale_source')))})"
    return (
        f'<header><div class="verdict {cls}">{word}</div><h1>{escape(title)}</h1>'
        f'<p class="meta">{meta}</p>{_load(doc)}{_glance(doc)}<h2>Fidelity</h2>'
        f"{_fidelity_table(doc)}<h2>SLOs</h2>{slos}</header>"
    )


def _fidelity_table(doc: Json) -> str:
    """One row per metric: verdict, value, goal, noise floor, p-value, and what a NOISE
    would need."""
    fidelity = doc.get("fidelity") or {}
    goals, values = fidelity.get("goal") or {}, fidelity.get("value") or {}
    verdicts, floors = fidelity.get("verdict") or {}, fidelity.get("noise_floor") or {}
    pvalues, needed = fidelity.get("pvalue") or {}, fidelity.get("sessions_needed") or {}
    verdicts = verdicts or fidelity.get("passed") or {}  # older documents: booleans
    rows = []
    for m in sorted(set(goals) | set(verdicts)):
        verdict = verdicts.get(m)
        note = escape(METRIC_MEANING.get(m, ""))
        if verdict == "noise":
            note += (
                f' <span class="muted">— within noise; ≈ {_val(needed.get(m))} real sessions '
                "would tell</span>"
            )
        goal = f"≤ {_val(goals[m])}" if m in goals else "no goal"
        name = f'<code class="nw">{escape(m)}</code>'
        rows.append([_badge(verdict), name, _val(values.get(m)), goal, _val(floors.get(m)),
                     _val(pvalues.get(m)), note])  # fmt: skip
    head = ["", "metric", "value", "goal", "noise floor", "p", ""]
    caption = (
        '<p class="caption">PASS: within the goal. NOISE: above it, but two random halves of '
        "REAL differ as much (the noise floor, a seeded bootstrap rescaled to these sample "
        f"sizes) or p ≥ {_val(fidelity.get('alpha', 0.05))}: this sample cannot tell. FAIL: "
        "above the goal and distinguishable; only FAIL makes <code>compare</code> exit 1.</p>"
    )
    return _table(head, rows, numeric=(2, 3, 4, 5)) + caption


def _load(doc: Json) -> str:
    """Offered vs achieved N× and the sessions the run cut or skipped (replays only)."""
    load = doc.get("load")
    if not isinstance(load, Mapping):
        return ""
    text = (
        f"Load: offered N = {_val(load.get('offered_scale'))}, achieved "
        f"<b>{_val(load.get('achieved_scale'))}×</b> ({escape(str(load.get('source')))})"
    )
    planned, started = load.get("sessions_planned"), load.get("sessions_started")
    if planned is not None:
        text += f"; {_val(started)} of {_val(planned)} planned sessions started"
    for key, word in LOAD_COUNTS:
        if load.get(key):
            text += f", {_val(load[key])} {word}"
    return f'<p class="meta">{text}.</p>'


def _glance(doc: Json) -> str:
    """Requests, sessions, throughput and error rates, real beside other."""
    errors, rps = doc.get("errors") or {}, doc.get("throughput_rps") or {}
    other_rps, scale = rps.get("other"), float(doc.get("scale") or 1.0)
    scaled = other_rps / scale if isinstance(other_rps, int | float) and scale != 1 else None
    rows: list[tuple[str, Any, Any]] = [
        ("requests", doc.get("requests") or {}, _val),
        ("sessions", doc.get("sessions") or {}, _val),
        ("throughput, requests/s" + (f" (other ÷ N: {_val(scaled)})" if scaled else ""), rps, _val),
        *((label, errors.get(key) or {}, _pct) for key, label in ERROR_ROWS),
    ]
    cells = ([escape(name), *(fmt(pair.get(s)) for s in SIDES)] for name, pair, fmt in rows)
    return _table(["", *(f'<span class="{s}">{s}</span>' for s in SIDES)], cells, numeric=(1, 2))
