"""The report's chart sections, one function each: (id, heading, inner HTML) from the
compare.json document and, where a chart needs samples, the sessionized frames."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from . import svg
from .html import badge as _badge
from .html import caption as _caption
from .html import empty as _empty
from .html import pct as _pct
from .html import table as _table
from .html import val as _val

SIDES = ("real", "other")
COLORS = {"real": "#2563eb", "other": "#ea580c"}
WIDTHS = {"real": 3.5, "other": 2.0}  # real is drawn first and wider: it shows under other
MAX_BARS = 40  # endpoints beyond this are lumped into one row, or a chart becomes a wall
MAX_TIME_BUCKETS = 120
MAX_STATUS_ROWS = 20  # endpoints in the status-per-endpoint chart and table
LOG_FLOOR = 1e-3  # log axes start no lower: shorter gaps are drawn at the left edge

Json = Mapping[str, Any]
Section = tuple[str, str, str]  # id, heading, inner HTML


def endpoint_section(doc: Json) -> Section:
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


def status_section(doc: Json) -> Section:
    mix = doc.get("status_mix") or {}
    real, other = mix.get("real") or {}, mix.get("other")
    labels = sorted(set(real) | set(other or {}))
    groups = _groups([real.get(k, 0.0) for k in labels], [(other or {}).get(k) for k in labels])
    if other is None:
        groups, text = groups[:1], f"REAL only: {escape(str(mix.get('reason')))}."
    else:
        text = f"{_goal(doc, 'status_mix.jsd', 'Jensen-Shannon divergence')}."
    chart = svg.hbar_chart("chart-status-mix", "Status codes", labels, groups,
                           x_label="share of requests", fmt=svg.pct)  # fmt: skip
    text = f'Share of requests per status code ("none": no response came). {text}'
    return "status-mix", "Status codes", _caption(text) + chart


def status_endpoint_section(doc: Json) -> Section:
    """Per endpoint, the share of requests that failed (status ≥ 400 or no response) on
    each side, and a table of the status mixes, the largest differences first."""
    sid, heading = "status-by-endpoint", "Status codes per endpoint"
    rows = [r for r in doc.get("status_by_endpoint") or [] if isinstance(r, Mapping)]
    if not rows or all(r.get("other") is None for r in rows):
        return sid, heading, _empty("No responses in OTHER: nothing to set beside REAL.")
    shown = rows[:MAX_STATUS_ROWS]
    rates = [[(r.get(s) or {}).get("error_rate") for r in shown] for s in SIDES]
    notes = {
        str(r["endpoint"]): f"{100 * float(r['difference']):.0f} pp at {r['worst_status']}"
        for r in shown[:3] if r.get("difference")
    }  # fmt: skip
    chart = svg.hbar_chart("chart-status-endpoint", "Failed requests per endpoint",
                           [str(r["endpoint"]) for r in shown], _groups(*rates),
                           x_label="share with status ≥ 400 or no response", fmt=svg.pct,
                           notes=notes)  # fmt: skip
    head = ["endpoint", '<span class="real">real</span>', '<span class="other">other</span>',
            "largest gap"]  # fmt: skip
    cells = (
        [f"<code>{escape(str(r['endpoint']))}</code>", _mix_cell(r.get("real")),
         _mix_cell(r.get("other")), _gap_cell(r)]
        for r in shown
    )  # fmt: skip
    more = len(rows) - len(shown)
    caption = (
        "Per endpoint, the share of requests that failed as a user counts it, REAL beside "
        "OTHER; the table gives each side's status codes (share, requests) and the largest "
        "difference of a code's share, largest first"
        + (f" ({more} endpoints with smaller differences not shown)" if more > 0 else "")
        + ". Few requests make large differences easily: read the counts."
    )
    return sid, heading, _caption(caption) + chart + _table(head, cells, numeric=(3,))


def _mix_cell(side: Any) -> str:
    if not isinstance(side, Mapping):
        return "–"
    shares = side.get("shares") or {}
    codes = ", ".join(f"{escape(str(k))} {_pct(v)}" for k, v in sorted(shares.items()))
    return f'{codes} <span class="muted">({_val(side.get("requests"))})</span>'


def _gap_cell(row: Mapping[str, Any]) -> str:
    if row.get("difference") is None:
        return "–"
    return f"{100 * float(row['difference']):.1f} pp ({escape(str(row.get('worst_status')))})"


def length_section(doc: Json, tables: Sequence[pd.DataFrame]) -> Section:
    names, shares = svg.int_histogram([t["length"].to_numpy(int) for t in tables])
    chart = svg.vbar_chart("chart-session-length", "Session length", names, _groups(*shares),
                           x_label="requests per session", y_label="share of sessions",
                           fmt=svg.pct)  # fmt: skip
    text = (
        f"Requests per session, as a share of each trace's sessions. {cut_note(doc)}"
        f"{_ks(doc, 'session_length')}"
    )
    return "session-length", "Session length", _caption(text) + chart


def cut_note(doc: Json) -> str:
    """Says which of OTHER's sessions the replay cut and that they are left out."""
    cut = doc.get("cut_sessions") or {}
    if not cut.get("count"):
        return ""
    return (
        f"The {_val(cut['count'])} sessions the replay cut at the end of its run are left out "
        f"of OTHER here and in the KS ({escape(str(cut.get('how')))}): they show how long the "
        "run lasted, not the sessions the model makes. "
    )


def ecdf_section(
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


def arrival_section(doc: Json) -> Section:
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
        f"should lie on each other. OTHER's session starts are the "
        f"<b>{escape(str(arrival.get('source') or 'first request of each session'))}</b>. "
        "A model's arrival curve has this same grid and a stratified plan gives each bucket "
        "its count, so what this measures is the sending: starts that ran late or never "
        f"happened. {_goal(doc, 'arrival_rate.mape', 'Mean absolute % error')}."
    )
    return "arrival-rate", "Arrival rate over time", _caption(caption) + chart


def burstiness_section(doc: Json) -> Section:
    burst = doc.get("burstiness") or {}
    windows = sorted((float(str(k).rstrip("s")), k) for k in burst)
    if not windows:
        return "burstiness", "Burstiness", _empty("the traces are too short for any window")
    scale = float(doc.get("scale") or 1.0)
    keys = {"real": ("real", "real"), "other": ("other_scaled", f"other ÷ {svg.num(scale)}")}
    series = [
        _series(s, keys[s][1], [_pt(w, (burst[k] or {}).get(keys[s][0])) for w, k in windows],
                markers=True)
        for s in SIDES
    ]  # fmt: skip
    highs = [p[1] for s in series for p in s.points if p is not None]
    x = svg.log_axis(windows[0][0], windows[-1][0], "window (s, log scale)")
    y = svg.linear_axis(0.0, max([*highs, 1.0]), "variance / mean of starts per window")
    chart = svg.line_chart("chart-burstiness", "Burstiness", series, x, y, hlines=[(1, "Poisson")])
    caption = (
        "Index of dispersion of session starts counted per window, D = var(c) / mean(c). 1 is "
        "a Poisson process; above 1 starts come in bursts, below 1 they are more even than "
        "chance. OTHER's counts are divided by N first, D(c / N) = D(c) / N, so a trace with "
        "N times the sessions in the same shape lies on REAL's line."
    )
    return "burstiness", "Burstiness", _caption(caption) + chart


def latency_section(doc: Json) -> Section:
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


def latency_time_section(doc: Json, real: pd.DataFrame, other: pd.DataFrame) -> Section:
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
        by_bin = bin_quantiles(frame["t_s"], frame["duration_ms"], bucket_s, (0.5, 0.95))
        for q, values in by_bin.items():
            # An empty bucket breaks the line rather than bridging it.
            points = [_pt((b + 0.5) * bucket_s / div, v) for b, v in enumerate(values)]
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


# --- per-request samples, reduced one side at a time ------------------------------------


def bin_quantiles(
    t_s: Any, values: Any, bucket_s: float, qs: Sequence[float]
) -> dict[float, list[float | None]]:
    """Per `bucket_s` bin of `t_s` (0 up to the last bin holding a value), each quantile of
    the non-NaN `values` in it (None: the bin holds none), each as pandas'
    `groupby(bins).quantile(q)` gives it (linear between the two order statistics around
    q·(n − 1), its arithmetic: not `np.quantile`'s, which rounds differently), from numpy:
    the bins of every request as small integers and one stable sort of them, not a frame
    of the timed requests and a groupby of each quantile (~0.5 GB at 10 M requests)."""
    values = np.asarray(values, dtype=float)
    t_s = np.asarray(t_s, dtype=float)
    bins = np.empty(len(t_s), np.int64)
    for start in range(0, len(t_s), _CHUNK):  # no float temporary of every request's
        part = slice(start, start + _CHUNK)
        bins[part] = np.floor(t_s[part] / bucket_s)
    timed = ~np.isnan(values)
    top = int(bins[timed].max()) if timed.any() else -1
    out: dict[float, list[float | None]] = {q: [None] * (top + 1) for q in qs}
    if top < 0:
        return out
    # Untimed requests and bins below 0 sort into one bin past the last, never read.
    np.putmask(bins, ~timed | (bins < 0), top + 1)
    del timed
    key = bins.astype(np.min_scalar_type(top + 1))
    del bins
    order = np.argsort(key, kind="stable")
    bounds = np.cumsum(np.bincount(key, minlength=top + 2))
    del key
    for b, group in enumerate(np.split(values[order], bounds[:-1])[: top + 1]):
        for q in qs:
            out[q][b] = _group_quantile(group, q) if group.size else None
    return out


_CHUNK = 1 << 20


def _group_quantile(group: np.ndarray, q: float) -> float:
    """pandas' linear group quantile (`group_quantile`): the order statistic at
    int(q·(n − 1)), plus the fraction of the way to the next one."""
    where = q * float(group.size - 1)
    idx, frac = int(where), where % 1
    if frac == 0.0:
        group.partition(idx)  # in place: the values stay, their order is the caller's copy's
        return float(group[idx])
    group.partition((idx, idx + 1))
    val, after = float(group[idx]), float(group[idx + 1])
    return val + (after - val) * frac


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
        return f"KS D = {_val(part['ks'])} (no goal; {means}; p = {_val(part.get('pvalue'))})."
    return f"{_goal(doc, f'{name}.ks', 'KS D')} ({means})."


def _goal(doc: Json, metric: str, what: str) -> str:
    """ "KS D = 0.09 (goal ≤ 0.05; noise floor 0.1, p = 0.4) NOISE"."""
    fidelity = doc.get("fidelity") or {}
    value, goal = (
        (fidelity.get("value") or {}).get(metric),
        (fidelity.get("goal") or {}).get(metric),
    )
    floor, p = (
        (fidelity.get("noise_floor") or {}).get(metric),
        (fidelity.get("pvalue") or {}).get(metric),
    )
    verdicts = fidelity.get("verdict") or {}
    verdict = (
        verdicts.get(metric) if metric in verdicts else (fidelity.get("passed") or {}).get(metric)
    )
    judged_by = f"goal ≤ {_val(goal)}; noise floor {_val(floor)}" + (
        f", p = {_val(p)}" if p is not None else ""
    )
    return f"{escape(what)} = {_val(value)} ({judged_by}) {_badge(verdict)}"
