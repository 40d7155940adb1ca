"""Chart primitives for the HTML report: line, step and ECDF charts, grouped bar charts, axes
and legends, as strings of inline SVG 1.1 drawn by attributes alone (no script, no CSS).

Every data mark has class "mark" and a <title> (the browser's tooltip). Coordinates are
printed to 0.1 px and numbers with fixed precision: the same input gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

WIDTH = 720
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
GRID, INK, MUTED, ALERT = "#e5e7eb", "#374151", "#6b7280", "#b91c1c"
CHAR_W = 6.6  # mean width of a 12 px sans-serif character, to size label columns
ECDF_POINTS = 400  # an ECDF of more samples is drawn through this many of its steps
LABEL_CHARS = 44  # longer bar labels are clipped (the full one is in the tooltip)

Point = tuple[float, float] | None  # None breaks a line
Fmt = Callable[[float], str]
Box = tuple[float, float, float, float]  # left, right, top, bottom


@dataclass(frozen=True)
class Axis:
    label: str
    lo: float
    hi: float
    ticks: tuple[float, ...]
    log: bool = False

    def pos(self, value: float, start: float, end: float) -> float:
        """Pixel position of `value` between `start` (at lo) and `end` (at hi), clamped."""
        if self.log:
            lo, hi, value = math.log10(self.lo), math.log10(self.hi), max(value, self.lo)
            value = math.log10(value)
        else:
            lo, hi = self.lo, self.hi
        frac = 0.0 if hi == lo else (value - lo) / (hi - lo)
        return start + min(max(frac, 0.0), 1.0) * (end - start)


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: Sequence[Point]
    dashed: bool = False
    step: bool = False  # hold each value until the next point (rate curves, ECDFs)
    markers: bool = False
    width: float = 2.0  # a wider first series stays visible under one drawn on top of it


@dataclass(frozen=True)
class BarGroup:
    """Bars of one colour, a value per label; `upper` adds a pale extension up to it."""

    name: str
    color: str
    values: Sequence[float | None]
    upper: Sequence[float | None] | None = None


def linear_axis(lo: float, hi: float, label: str, count: int = 5) -> Axis:
    """An axis from `lo` to `hi` widened to round ticks (1, 2, 2.5 or 5 × 10^k apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = tuple(round(i * step, 12) for i in range(first, last + 1))
    return Axis(label, ticks[0], ticks[-1], ticks)


def log_axis(lo: float, hi: float, label: str) -> Axis:
    """An axis over whole decades around [lo, hi] (lo > 0), ticked at powers of ten."""
    lo = lo if lo > 0 and math.isfinite(lo) else 1e-3
    hi = hi if hi > lo and math.isfinite(hi) else lo * 10
    first, last = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    ticks = tuple(float(f"1e{k}") for k in range(first, max(last, first + 1) + 1))
    return Axis(label, ticks[0], ticks[-1], ticks, log=True)


def num(value: float) -> str:
    """A short, stable label for a number: 3 significant digits, thousands separated."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def ecdf_points(values: np.ndarray, right: float, *, presorted: bool = False) -> list[Point]:
    """Steps of the empirical CDF of finite `values` (at most ECDF_POINTS), ending at
    `right`; draw with `step=True`. `presorted`: `values` are sorted already (no sorted
    copy: 10 M think times are 80 MB)."""
    v, n = (values if presorted else np.sort(values)), values.size
    if not n:
        return []
    idx = np.arange(n)
    if n > ECDF_POINTS:
        idx = np.ceil(np.arange(1, ECDF_POINTS + 1) * n / ECDF_POINTS).astype(int) - 1
    points: list[Point] = [(float(v[0]), 0.0)]
    return [*points, *((float(v[i]), (i + 1) / n) for i in idx), (right, 1.0)]


def _f(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    xy = f'x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}"'
    return f'<line {xy} stroke="{stroke}"{extra}/>'


def _rect(
    x: float, y: float, w: float, h: float, fill: str, tip: str | None = None, extra: str = ""
) -> str:
    """A rectangle; with a tooltip it is a data mark."""
    mark = ' class="mark"' if tip else ""
    tail = f"><title>{escape(tip)}</title></rect>" if tip else "/>"
    xy = f'x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}"'
    return f'<rect{mark} {xy} fill="{fill}"{extra}{tail}'


def _text(x: float, y: float, text: str, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in sorted(attrs.items()))
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _open(chart_id: str, title: str, height: float) -> list[str]:
    # No xmlns: inline in HTML the parser puts <svg> in the SVG namespace by itself.
    size = f'viewBox="0 0 {WIDTH} {_f(height)}" width="{WIDTH}" height="{_f(height)}"'
    return [
        f'<svg version="1.1" class="chart" id="{escape(chart_id)}" {size} '
        f'preserveAspectRatio="xMinYMin meet" font-family="{escape(FONT)}" '
        f'font-size="12" fill="{INK}">',
        f"<title>{escape(title)}</title>",
        _rect(0, 0, WIDTH, height, "#ffffff"),
    ]


def _axes(
    out: list[str], box: Box, height: float, x: Axis | None, y: Axis | None, fmt: Fmt
) -> None:
    """Grid lines, tick labels and axis titles (categorical sides pass None)."""
    left, right, top, bottom = box
    if x is not None:
        for tick in x.ticks:
            px = x.pos(tick, left, right)
            out += [_line(px, top, px, bottom, GRID), _text(px, bottom + 16, fmt(tick), "middle")]
        out.append(_text((left + right) / 2, height - 8, x.label, "middle"))
    if y is not None:
        for tick in y.ticks:
            py = y.pos(tick, bottom, top)
            out += [_line(left, py, right, py, GRID), _text(left - 6, py + 4, fmt(tick), "end")]
        rotate = {"transform": f"rotate(-90 14 {_f((top + bottom) / 2)})"}
        out.append(_text(14, (top + bottom) / 2, y.label, "middle", **rotate))


def _legend(out: list[str], entries: Sequence[tuple[str, str, bool]], right: float) -> None:
    """Swatches right-aligned at `right` on the top line: (name, colour, dashed)."""
    x = right
    for name, color, dashed in reversed(entries):
        x -= len(name) * CHAR_W + 30
        dash = ' stroke-dasharray="6 3"' if dashed else ""
        out += [
            _line(x, 16, x + 20, 16, color, f' stroke-width="3"{dash}'),
            _text(x + 25, 20, name),
        ]


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    x: Axis,
    y: Axis,
    *,
    height: float = 300,
    hlines: Sequence[tuple[float, str]] = (),
) -> str:
    """Lines (or steps) of several series over shared axes, with grid, ticks and legend."""
    box = left, right, top, bottom = 64.0, WIDTH - 16.0, 34.0, height - 44.0
    out = _open(chart_id, title, height)
    _axes(out, box, height, x, y, num)
    for value, label in hlines:
        py = y.pos(value, bottom, top)
        out.append(_line(left, py, right, py, MUTED, ' stroke-dasharray="2 3"'))
        out.append(_text(right - 4, py - 4, label, "end", fill=MUTED))
    for s in series:
        if d := _path_data(s, x, y, box):
            dash = ' stroke-dasharray="7 4"' if s.dashed else ""
            out.append(
                f'<path class="mark" d="{d}" fill="none" stroke="{s.color}" '
                f'stroke-width="{s.width:g}" stroke-linejoin="round"{dash}>'
                f"<title>{escape(s.name)}</title></path>"
            )
        for p in (p for p in s.points if p is not None and s.markers):
            cx, cy = _f(x.pos(p[0], left, right)), _f(y.pos(p[1], bottom, top))
            tip = escape(f"{s.name}: {num(p[0])} → {num(p[1])}")
            circle = f'<circle class="mark" cx="{cx}" cy="{cy}" r="4" fill="{s.color}">'
            out.append(f"{circle}<title>{tip}</title></circle>")
    out.append(_rect(left, top, right - left, bottom - top, "none", extra=f' stroke="{MUTED}"'))
    _legend(out, [(s.name, s.color, s.dashed) for s in series], right)
    return "\n".join([*out, "</svg>"])


def _path_data(s: Series, x: Axis, y: Axis, box: Box) -> str:
    left, right, top, bottom = box
    parts: list[str] = []
    drawing = False
    for p in s.points:
        if p is None:
            drawing = False
            continue
        px, py = _f(x.pos(p[0], left, right)), _f(y.pos(p[1], bottom, top))
        parts.append(
            f"H{px} V{py}" if drawing and s.step else f"{'L' if drawing else 'M'}{px} {py}"
        )
        drawing = True
    return " ".join(parts)


def hbar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    groups: Sequence[BarGroup],
    *,
    x_label: str,
    fmt: Fmt,
    notes: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars, a row per label and a bar per group; `notes` are called out in red
    at the row's right end, with the label in bold."""
    notes = notes or {}
    bar_h, gap = 13.0, 9.0
    row_h = bar_h * len(groups) + gap
    label_w = min(max((len(t) for t in labels), default=4), LABEL_CHARS) * CHAR_W + 16
    note_w = max((len(n) for n in notes.values()), default=0) * CHAR_W + 12
    height = 34.0 + row_h * len(labels) + 40
    box = left, right, top, bottom = label_w, WIDTH - 70.0 - note_w, 34.0, height - 40
    highs = [v for g in groups for v in (*g.values, *(g.upper or ())) if v is not None]
    x = linear_axis(0.0, max(highs, default=1.0) or 1.0, x_label)
    out = _open(chart_id, title, height)
    _axes(out, box, height, x, None, fmt)
    for row, label in enumerate(labels):
        y0 = top + row * row_h + gap / 2
        bold = {"font_weight": "bold"} if label in notes else {}
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        text = _text(left - 8, y0 + row_h / 2, short, "end", **bold)
        out.append(f"<g><title>{escape(label)}</title>{text}</g>")
        if label in notes:
            out.append(_text(WIDTH - 8, y0 + row_h / 2, notes[label], "end", fill=ALERT, **bold))
        for g, group in enumerate(groups):
            out += _bar(label, group, row, x, (left, right, y0 + g * bar_h, bar_h), fmt)
    out.append(_line(left, top, left, bottom, MUTED))
    _legend(out, [(g.name, g.color, False) for g in groups], WIDTH - 8)
    return "\n".join([*out, "</svg>"])


def _bar(label: str, group: BarGroup, row: int, x: Axis, place: Box, fmt: Fmt) -> list[str]:
    left, right, y, bar_h = place
    value = group.values[row]
    upper = group.upper[row] if group.upper is not None else None
    if value is None:
        return [_text(left + 4, y + bar_h - 3, f"{group.name}: –", fill=MUTED, font_size="11")]
    end, out = x.pos(value, left, right), []
    tip = f"{label} · {group.name}: {fmt(value)}"
    text_x, text = end, fmt(value)
    if upper is not None and upper > value:
        text_x, text = x.pos(upper, left, right), f"{fmt(value)}–{fmt(upper)}"
        pale, width = ' fill-opacity="0.35"', text_x - end
        out.append(_rect(end, y + 1, width, bar_h - 2, group.color, f"{tip} to {fmt(upper)}", pale))
    out.append(_rect(left, y + 1, end - left, bar_h - 2, group.color, tip))
    out.append(_text(text_x + 4, y + bar_h - 3, text, fill=MUTED, font_size="11"))
    return out


def vbar_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    groups: Sequence[BarGroup],
    *,
    x_label: str,
    y_label: str,
    fmt: Fmt,
    height: float = 300,
) -> str:
    """Vertical bars side by side within each category (an overlaid histogram)."""
    box = left, right, top, bottom = 64.0, WIDTH - 16.0, 34.0, height - 44.0
    values = [v for g in groups for v in g.values if v is not None]
    y = linear_axis(0.0, max(values, default=1.0) or 1.0, y_label, 4)
    out = _open(chart_id, title, height)
    _axes(out, box, height, None, y, fmt)
    slot = (right - left) / max(len(categories), 1)
    bar_w = slot * 0.8 / max(len(groups), 1)
    longest = max((len(c) for c in categories), default=1) * CHAR_W + 8
    every = math.ceil(longest / slot)  # keep category labels from overlapping
    for c, category in enumerate(categories):
        x0 = left + c * slot + slot * 0.1
        if c % every == 0:
            out.append(_text(x0 + slot * 0.4, bottom + 16, category, "middle"))
        for g, group in enumerate(groups):
            if (value := group.values[c]) is not None and value > 0:
                py = y.pos(value, bottom, top)
                tip = f"{category} · {group.name}: {fmt(value)}"
                out.append(_rect(x0 + g * bar_w, py, bar_w, bottom - py, group.color, tip))
    out.append(_text((left + right) / 2, height - 8, x_label, "middle"))
    out.append(_line(left, bottom, right, bottom, MUTED))
    _legend(out, [(g.name, g.color, False) for g in groups], right)
    return "\n".join([*out, "</svg>"])


def ecdf_chart(
    chart_id: str, title: str, samples: Sequence[tuple[str, str, Any]], x_label: str,
    *, log_floor: float | None = None,
) -> str | None:  # fmt: skip
    """`ecdf_chart`'s chart, the same page, holding one sample's finite values at a
    time (sorted in place) instead of every sample's, concatenated, and their positive
    part (~0.5 GB more of 10 M think times a side): each sample is cut to its ECDF steps
    first, the axis read from the ends of the sorted values, the steps' right end set last."""
    steps, low, high, positive = [], math.inf, -math.inf, math.inf
    for name, color, values in samples:
        array = np.asarray(values, dtype=float)
        finite = array[np.isfinite(array)]
        del array
        finite.sort()
        if finite.size:
            low, high = min(low, float(finite[0])), max(high, float(finite[-1]))
            above = int(np.searchsorted(finite, 0.0, side="right"))
            if above < finite.size:
                positive = min(positive, float(finite[above]))
        steps.append((name, color, finite.size, ecdf_points(finite, math.nan, presorted=True)))
        del finite
    if not math.isfinite(high):
        return None
    if log_floor is not None:
        x = log_axis(max(positive if math.isfinite(positive) else 0.0, log_floor), high,
                         x_label)  # fmt: skip
    else:
        x = linear_axis(min(0.0, low), high, x_label)
    series = []
    for i, (name, color, n, points) in enumerate(steps):
        if points:
            points[-1] = (x.hi, 1.0)
        width = 2.0 + 1.5 * (len(samples) - 1 - i)
        series.append(Series(f"{name} (n={n:,})", color, points, step=True, width=width))
    return line_chart(chart_id, title, series, x, linear_axis(0, 1, "share ≤ x", 4))


def int_histogram(
    samples: Sequence[np.ndarray], bars: int = 40
) -> tuple[list[str], list[list[float | None]]]:
    """Bin labels and each sample's share per bin for positive integers: one bin per value
    up to the 99th percentile (wider bins past `bars` values), then one "≥" overflow bin."""
    cap = max(1, int(np.quantile(np.concatenate(samples), 0.99)))
    width = math.ceil(cap / bars)
    edges = list(range(1, cap + 1, width))
    names = [str(a) if width == 1 else f"{a}–{a + width - 1}" for a in edges]
    if any((sample >= edges[-1] + width).any() for sample in samples):
        edges.append(edges[-1] + width)
        names.append(f"≥{edges[-1]}")
    shares: list[list[float | None]] = []
    for sample in samples:
        bins = np.searchsorted(np.asarray(edges), sample, side="right") - 1
        counts = np.bincount(np.clip(bins, 0, len(edges) - 1), minlength=len(edges))
        shares.append([float(c) / max(sample.size, 1) for c in counts])
    return names, shares


def pct(share: float) -> str:
    return f"{100 * share:.3g} %"


def time_unit(span_s: float) -> tuple[float, str]:
    """Divisor and unit name for a time axis of this span."""
    return (3600.0, "h") if span_s > 7200 else (60.0, "min") if span_s > 600 else (1.0, "s")
