"""`render_report`: the compare report, one self-contained HTML page (inline CSS and SVG,
nothing fetched) showing REAL beside OTHER chart by chart, verdicts on top; `write_report`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracereplay.errors import TraceEmptyError, UsageError
from tracereplay.models.sessions import session_table

from . import svg
from .compare import load_pair, sessionized_pair
from .html import CSS, slo_table
from .html import badge as _badge
from .html import caption as _caption
from .html import empty as _empty
from .html import pct as _pct
from .html import table as _table
from .html import val as _val
from .html import verdict as _verdict

__all__ = ["load_pair", "render_report", "sessionized_pair", "write_report"]

SIDES = ("real", "other")
COLORS = {"real": "#2563eb", "other": "#ea580c"}
WIDTHS = {"real": 3.5, "other": 2.0}  # real is drawn first and wider: it shows under other
MAX_BARS = 40  # endpoints beyond this are lumped into one row, or a chart becomes a wall
MAX_TIME_BUCKETS = 120
LOG_FLOOR = 1e-3  # log axes start no lower: shorter gaps are drawn at the left edge
NEEDED_COLUMNS = ("endpoint", "session_id", "t_s", "think_s")
METRIC_MEANING = {
    "endpoint_mix.jsd": "how differently requests spread over endpoints",
    "session_length.ks": "requests per session",
    "think_time.ks": "pauses between a session's requests",
    "interarrival.ks": "gaps between session starts (other × N)",
    "arrival_rate.mape": "session start rate over time (other ÷ N)",
}

Json = Mapping[str, Any]
Section = tuple[str, str, str]  # id, heading, inner HTML


def render_report(doc: Json, real: pd.DataFrame, other: pd.DataFrame, *, title: str) -> str:
    """The report page for a compare.json document and the two sessionized frames."""
    for name, frame in (("real", real), ("other", other)):
        if frame.empty:
            raise TraceEmptyError(f"{name}: the trace holds no requests")
        if missing := [c for c in NEEDED_COLUMNS if c not in frame.columns]:
            raise UsageError(f"report: the {name} frame lacks {', '.join(missing)} (sessionize it)")
    scale = float(doc.get("scale") or 1.0)
    tables = [session_table(real), session_table(other)]
    gaps = [np.diff(np.sort(t["start_s"].to_numpy(float))) for t in tables]
    durations = (tables[0]["duration_s"], tables[1]["duration_s"])
    duration_text = "Time from a session's first request to its last (0 for a single request)."
    think_text = "Pauses within a session, from the end of the previous response to the next one."
    gap_text = (
        f"Gaps between consecutive session starts; OTHER's are multiplied by N = {svg.num(scale)}, "
        "since N times the sessions arrive N times closer together."
    )
    sections = [
        _endpoint_section(doc),
        _status_section(doc),
        _length_section(doc, tables),
        _ecdf_section(doc, "session-duration", "Session duration", durations,
                      "session duration (s, log scale)", duration_text),
        _ecdf_section(doc, "think-time", "Think time", (real["think_s"], other["think_s"]),
                      "pause before a request (s, log scale)", think_text),
        _ecdf_section(doc, "interarrival", "Session inter-arrival", (gaps[0], gaps[1] * scale),
                      "gap between session starts (s, log scale)", gap_text),
        _arrival_section(doc),
        _burstiness_section(doc),
        _latency_section(doc),
        _latency_time_section(doc, real, other),
    ]  # fmt: skip
    nav = " ".join(f'<a href="#{sid}">{escape(heading)}</a>' for sid, heading, _ in sections)
    body = "\n".join(
        f'<section id="{i}"><h2>{escape(h)}</h2>\n{c}</section>' for i, h, c in sections
    )
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
    fidelity = doc.get("fidelity") or {}
    goals, values = fidelity.get("goal") or {}, fidelity.get("value") or {}
    passed = fidelity.get("passed") or {}
    rows = (
        [_badge(passed.get(m)), f"<code>{escape(m)}</code>", _val(values.get(m)),
         f"≤ {_val(goals.get(m))}", escape(METRIC_MEANING.get(m, ""))]
        for m in sorted(set(goals) | set(passed))
    )  # fmt: skip
    fidelity_table = _table(["", "metric", "value", "goal", ""], rows, numeric=(2, 3))
    slo_ok, slos = slo_table(doc.get("slo"))
    verdicts = [v for v in (fidelity.get("all_passed"), slo_ok) if isinstance(v, bool)]
    cls, word = _verdict(all(verdicts) if verdicts else None)
    synthetic = (doc.get("errors") or {}).get("other_rate") is None
    meta = "REAL beside OTHER" + (" (synthetic: no responses)" if synthetic else "")
    meta += f" · scale N = {_val(doc.get('scale'))} ({escape(str(doc.get('scale_source')))})"
    return (
        f'<header><div class="verdict {cls}">{word}</div><h1>{escape(title)}</h1>'
        f'<p class="meta">{meta}</p>{_glance(doc)}<h2>Fidelity</h2>{fidelity_table}'
        f"<h2>SLOs</h2>{slos}</header>"
    )


def _glance(doc: Json) -> str:
    """Requests, sessions, throughput and error rate, real beside other."""
    errors, rps = doc.get("errors") or {}, doc.get("throughput_rps") or {}
    other_rps, scale = rps.get("other"), float(doc.get("scale") or 1.0)
    scaled = other_rps / scale if isinstance(other_rps, int | float) and scale != 1 else None
    rows = [
        ("requests", doc.get("requests") or {}, _val),
        ("sessions", doc.get("sessions") or {}, _val),
        ("throughput, requests/s" + (f" (other ÷ N: {_val(scaled)})" if scaled else ""), rps, _val),
        ("error rate (no response, transport error or status ≥ 500)",
         {"real": errors.get("real_rate"), "other": errors.get("other_rate")}, _pct),
    ]  # fmt: skip
    cells = ([escape(name), *(fmt(pair.get(s)) for s in SIDES)] for name, pair, fmt in rows)
    return _table(["", *(f'<span class="{s}">{s}</span>' for s in SIDES)], cells, numeric=(1, 2))


# --- sections -------------------------------------------------------------------------


def _endpoint_section(doc: Json) -> Section:
    mix = doc.get("endpoint_mix") or {}
    real, other = mix.get("real") or {}, mix.get("other") or {}
    labels = sorted(set(real) | set(other), key=lambda k: (-real.get(k, 0.0), k))
    gaps = sorted(((other.get(k, 0.0) - real.get(k, 0.0), k) for k in labels), key=_by_size)
    worst = [(gap, k) for gap, k in gaps[:3] if abs(gap) >= 5e-4]
    shown = set(labels[: MAX_BARS - 1] if len(labels) > MAX_BARS else labels)
    shown |= {k for _, k in worst}  # the worst gaps are shown even when small
    rows = [(k, real.get(k, 0.0), other.get(k, 0.0)) for k in labels if k in shown]
    if rest := [k for k in labels if k not in shown]:
        lumped = (sum(real.get(k, 0.0) for k in rest), sum(other.get(k, 0.0) for k in rest))
        rows.append((f"({len(rest)} more endpoints)", *lumped))
    groups = _groups([r[1] for r in rows], [r[2] for r in rows])
    notes = {k: f"{100 * gap:+.1f} pp" for gap, k in worst}
    chart = svg.hbar_chart("chart-endpoint-mix", "Endpoint mix", [r[0] for r in rows], groups,
                           x_label="share of requests", fmt=svg.pct, notes=notes)  # fmt: skip
    called = "; ".join(f"<code>{escape(k)}</code> {100 * gap:+.2f} pp" for gap, k in worst)
    caption = (
        "Share of requests per endpoint (method + path template learned from REAL), largest "
        f"first. {_goal(doc, 'endpoint_mix.jsd', 'Jensen-Shannon divergence')}. "
        + (f"Largest gaps, other − real in percentage points (red): {called}." if worst else "")
    )
    return "endpoint-mix", "Endpoint mix", _caption(caption) + chart


def _status_section(doc: Json) -> Section:
    mix = doc.get("status_mix") or {}
    real, other = mix.get("real") or {}, mix.get("other")
    labels = sorted(set(real) | set(other or {}))
    groups = _groups([real.get(k, 0.0) for k in labels], [(other or {}).get(k) for k in labels])
    if other is None:
        groups, text = groups[:1], f"REAL only: {escape(str(mix.get('reason')))}."
    else:
        text = f"Jensen-Shannon divergence = {_val(mix.get('jsd'))}."
    chart = svg.hbar_chart("chart-status-mix", "Status codes", labels, groups,
                           x_label="share of requests", fmt=svg.pct)  # fmt: skip
    text = f'Share of requests per status code ("none": no response came). {text}'
    return "status-mix", "Status codes", _caption(text) + chart


def _length_section(doc: Json, tables: Sequence[pd.DataFrame]) -> Section:
    names, shares = svg.int_histogram([t["length"].to_numpy(int) for t in tables])
    chart = svg.vbar_chart("chart-session-length", "Session length", names, _groups(*shares),
                           x_label="requests per session", y_label="share of sessions",
                           fmt=svg.pct)  # fmt: skip
    text = (
        f"Requests per session, as a share of each trace's sessions. {_ks(doc, 'session_length')}"
    )
    return "session-length", "Session length", _caption(text) + chart


def _ecdf_section(
    doc: Json, sid: str, heading: str, samples: tuple[Any, Any], x_label: str, text: str
) -> Section:
    pairs = [(side, COLORS[side], v) for side, v in zip(SIDES, samples, strict=True)]
    chart = svg.ecdf_chart(f"chart-{sid}", f"{heading} (ECDF)", pairs, x_label, log_floor=LOG_FLOOR)
    caption = (
        f"{escape(text)} An ECDF: the height at x is the share of values ≤ x, so where the "
        "curves run apart the distributions differ. The time axis is logarithmic (short and "
        f"long values both show; 0 and values under {svg.num(LOG_FLOOR)} s sit at the left edge). "
        + _ks(doc, sid.replace("-", "_"))
    )
    return sid, heading, _caption(caption) + (chart or _empty("no samples in either trace"))


def _arrival_section(doc: Json) -> Section:
    arrival = doc.get("arrival_rate") or {}
    curves = {"real": arrival.get("real") or [], "other": arrival.get("other_scaled") or []}
    bucket_s, n = float(arrival.get("bucket_s") or 0.0), len(curves["real"])
    if not n or not bucket_s:
        return "arrival-rate", "Arrival rate", _empty(str(arrival.get("reason") or "no curve"))
    div, unit = svg.time_unit(n * bucket_s)
    names = {"real": "real", "other": f"other ÷ {svg.num(float(arrival.get('scale') or 1.0))}"}
    # A last point at the end holds the last bucket's value up to it.
    steps = {
        s: [(i * bucket_s / div, r) for i, r in enumerate([*c, c[-1]])]
        for s, c in curves.items()
        if c
    }
    series = [_series(s, names[s], points, step=True) for s, points in steps.items()]
    x = svg.linear_axis(0.0, n * bucket_s / div, f"time since trace start ({unit})")
    y = svg.linear_axis(0.0, max([*curves["real"], *curves["other"], 0.0]) or 1.0, "sessions/s")
    chart = svg.line_chart("chart-arrival-rate", "Session arrival rate", series, x, y)
    caption = (
        f"Sessions started per second in {svg.num(bucket_s)} s buckets (REAL's arrival grid) "
        "over the time both traces cover; OTHER's rate is divided by N, so the two curves "
        f"should lie on each other. {_goal(doc, 'arrival_rate.mape', 'Mean absolute % error')}."
    )
    return "arrival-rate", "Arrival rate over time", _caption(caption) + chart


def _burstiness_section(doc: Json) -> Section:
    burst = doc.get("burstiness") or {}
    windows = sorted((float(str(k).rstrip("s")), k) for k in burst)
    if not windows:
        return "burstiness", "Burstiness", _empty("the traces are too short for any window")
    series = [
        _series(s, s, [_pt(w, (burst[k] or {}).get(s)) for w, k in windows], markers=True)
        for s in SIDES
    ]
    highs = [p[1] for s in series for p in s.points if p is not None]
    x = svg.log_axis(windows[0][0], windows[-1][0], "window (s, log scale)")
    y = svg.linear_axis(0.0, max([*highs, 1.0]), "variance / mean of starts per window")
    chart = svg.line_chart("chart-burstiness", "Burstiness", series, x, y, hlines=[(1, "Poisson")])
    caption = (
        "Index of dispersion (variance over mean) of session starts counted per window. 1 is a "
        "Poisson process; above 1 starts come in bursts, below 1 they are more even than chance."
    )
    return "burstiness", "Burstiness", _caption(caption) + chart


def _latency_section(doc: Json) -> Section:
    latency = doc.get("latency_ms") or {}
    if latency.get("other") is None:
        reason = latency.get("reason") or "other trace has no durations"
        return "latency", "Latency per endpoint", _empty(f"No responses in OTHER: {reason}.")
    by_endpoint = sorted((latency.get("by_endpoint") or {}).items(), key=_slowest)
    cols = [(s, q) for s in SIDES for q in ("p50", "p95", "p99")]
    head = ["endpoint", *(f'<span class="{s}">{s} {q}</span>' for s, q in cols)]
    everything = ("(all requests)", {s: latency.get(s) for s in SIDES})
    cells = ([f"<code>{escape(name)}</code>", *(_val(_q(sides, s, q)) for s, q in cols)]
             for name, sides in [everything, *by_endpoint])  # fmt: skip
    table = _table(head, cells, numeric=range(1, 7))
    shown = by_endpoint[:MAX_BARS]
    p50, p95 = ([[_q(sides, s, q) for _, sides in shown] for s in SIDES] for q in ("p50", "p95"))
    chart = svg.hbar_chart("chart-latency-endpoint", "Latency per endpoint: p50 to p95",
                           [name for name, _ in shown], _groups(*p50, *p95),
                           x_label="latency (ms)", fmt=svg.num)  # fmt: skip
    caption = (
        "Response time per endpoint, slowest first: the solid bar reaches the median (p50), "
        "the pale extension the 95th percentile; the table adds p99 (all in ms)."
    )
    return "latency", "Latency per endpoint", _caption(caption) + chart + table


def _latency_time_section(doc: Json, real: pd.DataFrame, other: pd.DataFrame) -> Section:
    if not _has_durations(other):
        reason = (doc.get("latency_ms") or {}).get("reason") or "other trace has no durations"
        return "latency-time", "Latency over time", _empty(f"No responses in OTHER: {reason}.")
    span = max(float(real["t_s"].max()), float(other["t_s"].max()), 1e-9)
    bucket_s = float((doc.get("arrival_rate") or {}).get("bucket_s") or span / 40)
    bucket_s = max(bucket_s, span / MAX_TIME_BUCKETS)
    div, unit = svg.time_unit(span)
    series = []
    for side, frame in zip(SIDES, (real, other), strict=True):
        if not _has_durations(frame):
            continue
        timed = frame.loc[frame["duration_ms"].notna(), ["t_s", "duration_ms"]]
        bins = np.floor(timed["t_s"].to_numpy(float) / bucket_s).astype(int)
        for q in (0.5, 0.95):
            by_bin = timed["duration_ms"].groupby(bins, sort=True).quantile(q)
            # An empty bucket breaks the line rather than bridging it.
            points = [_pt((b + 0.5) * bucket_s / div, by_bin.get(b)) for b in range(bins.max() + 1)]
            series.append(_series(side, f"{side} p{round(q * 100)}", points, dashed=q > 0.5))
    highs = [p[1] for s in series for p in s.points if p is not None]
    x = svg.linear_axis(0.0, span / div, f"time since trace start ({unit})")
    y = svg.linear_axis(0.0, max(highs, default=1.0), "latency (ms)")
    chart = svg.line_chart("chart-latency-time", "Latency over time", series, x, y)
    caption = (
        f"Median (solid) and 95th percentile (dashed) response time per {svg.num(bucket_s)} s "
        "bucket; a gap is a bucket without responses. OTHER rising while REAL stays flat "
        "means the target slowed down under the load."
    )
    return "latency-time", "Latency over time", _caption(caption) + chart


# --- small helpers --------------------------------------------------------------------


def _series(side: str, name: str, points: Sequence[svg.Point], **kw: Any) -> svg.Series:
    return svg.Series(name, COLORS[side], points, width=WIDTHS[side], **kw)


def _groups(real: Sequence[Any], other: Sequence[Any], *upper: Sequence[Any]) -> list[svg.BarGroup]:
    """A real and an other bar group (with their upper ends, when given)."""
    ends = upper or (None, None)
    pairs = zip(SIDES, (real, other), ends, strict=True)
    return [svg.BarGroup(side, COLORS[side], values, up) for side, values, up in pairs]


def _pt(x: float, y: Any) -> svg.Point:
    return None if y is None or not math.isfinite(float(y)) else (x, float(y))


def _q(sides: Mapping[str, Any], side: str, quantile: str) -> Any:
    return (sides.get(side) or {}).get(quantile)


def _has_durations(frame: pd.DataFrame) -> bool:
    return "duration_ms" in frame.columns and bool(frame["duration_ms"].notna().any())


def _by_size(gap: tuple[float, str]) -> tuple[float, str]:
    return -abs(gap[0]), gap[1]


def _slowest(item: tuple[str, Any]) -> tuple[float, str]:
    """Sort key: slowest p95 (of either side) first, then by name."""
    return -max(float(_q(item[1], s, "p95") or 0.0) for s in SIDES), item[0]


def _ks(doc: Json, name: str) -> str:
    part = doc.get(name) or {}
    if part.get("ks") is None:
        return f"KS not computed: {escape(str(part.get('reason') or 'no samples'))}."
    means = f"means: real {_val(part.get('real_mean'))}, other {_val(part.get('other_mean'))}"
    if f"{name}.ks" not in ((doc.get("fidelity") or {}).get("goal") or {}):
        return f"KS D = {_val(part['ks'])} (no goal; {means})."
    return f"{_goal(doc, f'{name}.ks', 'KS D')} ({means})."


def _goal(doc: Json, metric: str, what: str) -> str:
    fidelity = doc.get("fidelity") or {}
    value, goal = (
        (fidelity.get("value") or {}).get(metric),
        (fidelity.get("goal") or {}).get(metric),
    )
    verdict = _badge((fidelity.get("passed") or {}).get(metric))
    return f"{escape(what)} = {_val(value)} (goal ≤ {_val(goal)}) {verdict}"
