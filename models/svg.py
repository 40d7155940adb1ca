"""Chart primitives for the HTML report: line and step charts, grouped bar charts, axes and
legends, returned as strings of inline SVG 1.1 (drawn by attributes alone: no script, no CSS).

Every data mark carries class "mark" and a <title> (the browser's tooltip), so tests and
readers can find what was drawn. Numbers are printed with fixed precision: same input, same
bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
GRID = "#e5e7eb"
INK = "#374151"
MUTED = "#6b7280"
ALERT = "#b91c1c"
CHAR_W = 6.6  # average width of a 12 px sans-serif character, to size label columns

Point = tuple[float, float] | None  # None breaks a line


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
            lo, hi = math.log10(self.lo), math.log10(self.hi)
            value = math.log10(max(value, self.lo))
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


@dataclass(frozen=True)
class BarGroup:
    """One colour of bars: a value per label, optionally a lighter extension to `upper`."""

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
    last = max(last, first + 1)
    ticks = tuple(float(f"1e{k}") for k in range(first, last + 1))
    return Axis(label, ticks[0], ticks[-1], ticks, log=True)


def num(value: float) -> str:
    """A short, stable label for a number: 3 significant digits, thousands separated."""
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def _f(value: float) -> str:
    """Pixel coordinates to 0.1 px: plenty for the eye, and byte-stable."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _open(chart_id: str, title: str, height: float) -> list[str]:
    return [
        # No xmlns: inline in HTML the parser puts <svg> in the SVG namespace itself.
        f'<svg version="1.1" class="chart" '
        f'id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {_f(height)}" width="{WIDTH}" '
        f'height="{_f(height)}" preserveAspectRatio="xMinYMin meet" role="img" '
        f'font-family="{escape(FONT)}" font-size="12" fill="{INK}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{_f(height)}" fill="#ffffff"/>',
    ]


def _text(x: float, y: float, text: str, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in sorted(attrs.items()))
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _legend(entries: Sequence[tuple[str, str, bool]], right: float, y: float) -> list[str]:
    """Swatches right-aligned at `right`: (name, colour, dashed)."""
    out: list[str] = []
    x = right
    for name, color, dashed in reversed(entries):
        x -= len(name) * CHAR_W + 30
        dash = ' stroke-dasharray="6 3"' if dashed else ""
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(y - 4)}" x2="{_f(x + 20)}" y2="{_f(y - 4)}" '
            f'stroke="{color}" stroke-width="3"{dash}/>'
        )
        out.append(_text(x + 25, y, name))
    return out


def _clip(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


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
    left, right, top, bottom = 64.0, WIDTH - 16.0, 34.0, height - 44.0
    out = _open(chart_id, title, height)
    for tick in x.ticks:
        px = x.pos(tick, left, right)
        out.append(
            f'<line x1="{_f(px)}" y1="{_f(top)}" x2="{_f(px)}" y2="{_f(bottom)}" stroke="{GRID}"/>'
        )
        out.append(_text(px, bottom + 16, num(tick), "middle", fill=MUTED))
    for tick in y.ticks:
        py = y.pos(tick, bottom, top)
        out.append(
            f'<line x1="{_f(left)}" y1="{_f(py)}" x2="{_f(right)}" y2="{_f(py)}" stroke="{GRID}"/>'
        )
        out.append(_text(left - 6, py + 4, num(tick), "end", fill=MUTED))
    out.append(_text((left + right) / 2, height - 8, x.label, "middle"))
    out.append(
        _text(
            14,
            (top + bottom) / 2,
            y.label,
            "middle",
            transform=f"rotate(-90 14 {_f((top + bottom) / 2)})",
        )
    )
    for value, label in hlines:
        py = y.pos(value, bottom, top)
        out.append(
            f'<line x1="{_f(left)}" y1="{_f(py)}" x2="{_f(right)}" y2="{_f(py)}" '
            f'stroke="{MUTED}" stroke-dasharray="2 3"/>'
        )
        out.append(_text(right - 4, py - 4, label, "end", fill=MUTED))
    for s in series:
        d = _path_data(s, x, y, (left, right, bottom, top))
        if d:
            dash = ' stroke-dasharray="7 4"' if s.dashed else ""
            out.append(
                f'<path class="mark" d="{d}" fill="none" stroke="{s.color}" '
                f'stroke-width="2" stroke-linejoin="round"{dash}>'
                f"<title>{escape(s.name)}</title></path>"
            )
        for p in s.points if s.markers else ():
            if p is not None:
                cx, cy = x.pos(p[0], left, right), y.pos(p[1], bottom, top)
                out.append(
                    f'<circle class="mark" cx="{_f(cx)}" cy="{_f(cy)}" r="4" '
                    f'fill="{s.color}"><title>{escape(s.name)}: {num(p[0])} → '
                    f"{num(p[1])}</title></circle>"
                )
    out.append(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" '
        f'height="{_f(bottom - top)}" fill="none" stroke="{MUTED}"/>'
    )
    out += _legend([(s.name, s.color, s.dashed) for s in series], right, 20)
    return "\n".join([*out, "</svg>"])


def _path_data(s: Series, x: Axis, y: Axis, box: tuple[float, float, float, float]) -> str:
    left, right, bottom, top = box
    parts: list[str] = []
    previous: tuple[float, float] | None = None
    for p in s.points:
        if p is None:
            previous = None
            continue
        px, py = x.pos(p[0], left, right), y.pos(p[1], bottom, top)
        if previous is None:
            parts.append(f"M{_f(px)} {_f(py)}")
        elif s.step:
            parts.append(f"H{_f(px)} V{_f(py)}")
        else:
            parts.append(f"L{_f(px)} {_f(py)}")
        previous = (px, py)
    return " ".join(parts)


def hbar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    groups: Sequence[BarGroup],
    *,
    x_label: str,
    value_fmt: Callable[[float], str],
    notes: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars, one row per label and one bar per group; `notes` are called out in
    red at the row's right end (and its label set bold)."""
    notes = notes or {}
    bar_h, row_gap = 13.0, 9.0
    row_h = bar_h * len(groups) + row_gap
    label_w = min(max((len(lab) for lab in labels), default=4), 44) * CHAR_W + 16
    note_w = max((len(n) for n in notes.values()), default=0) * CHAR_W + 12
    left, right, top = label_w, WIDTH - 70.0 - note_w, 34.0
    height = top + row_h * len(labels) + 40
    highs = [v for g in groups for v in (*g.values, *(g.upper or ())) if v is not None]
    x = linear_axis(0.0, max(highs, default=1.0) or 1.0, x_label, 4)
    bottom = height - 40
    out = _open(chart_id, title, height)
    for tick in x.ticks:
        px = x.pos(tick, left, right)
        out.append(
            f'<line x1="{_f(px)}" y1="{_f(top)}" x2="{_f(px)}" y2="{_f(bottom)}" stroke="{GRID}"/>'
        )
        out.append(_text(px, bottom + 16, value_fmt(tick), "middle", fill=MUTED))
    out.append(_text((left + right) / 2, height - 6, x.label, "middle"))
    for row, label in enumerate(labels):
        y0 = top + row * row_h + row_gap / 2
        weight = {"font_weight": "bold"} if label in notes else {}
        out.append(
            f"<g><title>{escape(label)}</title>"
            + _text(left - 8, y0 + row_h / 2, _clip(label, 44), "end", **weight)
            + "</g>"
        )
        if label in notes:
            out.append(
                _text(
                    WIDTH - 8, y0 + row_h / 2, notes[label], "end", fill=ALERT, font_weight="bold"
                )
            )
        for g_index, group in enumerate(groups):
            out += _bar(
                label, group, g_index, row, x, left, right, y0 + g_index * bar_h, bar_h, value_fmt
            )
    out.append(
        f'<line x1="{_f(left)}" y1="{_f(top)}" x2="{_f(left)}" y2="{_f(bottom)}" stroke="{MUTED}"/>'
    )
    out += _legend([(g.name, g.color, False) for g in groups], WIDTH - 8, 20)
    return "\n".join([*out, "</svg>"])


def _bar(
    label: str,
    group: BarGroup,
    g_index: int,
    row: int,
    x: Axis,
    left: float,
    right: float,
    y: float,
    bar_h: float,
    value_fmt: Callable[[float], str],
) -> list[str]:
    value = group.values[row]
    upper = group.upper[row] if group.upper is not None else None
    if value is None:
        return [_text(left + 4, y + bar_h - 3, f"{group.name}: –", fill=MUTED, font_size="11")]
    out: list[str] = []
    end = x.pos(value, left, right)
    tip = f"{label} · {group.name}: {value_fmt(value)}"
    if upper is not None and upper > value:
        out.append(
            f'<rect class="mark" x="{_f(end)}" y="{_f(y + 1)}" '
            f'width="{_f(x.pos(upper, left, right) - end)}" height="{_f(bar_h - 2)}" '
            f'fill="{group.color}" fill-opacity="0.35"><title>{escape(tip)} to '
            f"{escape(value_fmt(upper))}</title></rect>"
        )
        tip_end, text = x.pos(upper, left, right), f"{value_fmt(value)}–{value_fmt(upper)}"
    else:
        tip_end, text = end, value_fmt(value)
    out.append(
        f'<rect class="mark" x="{_f(left)}" y="{_f(y + 1)}" width="{_f(end - left)}" '
        f'height="{_f(bar_h - 2)}" fill="{group.color}"><title>{escape(tip)}</title></rect>'
    )
    out.append(_text(tip_end + 4, y + bar_h - 3, text, fill=MUTED, font_size="11"))
    return out


def vbar_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    groups: Sequence[BarGroup],
    *,
    x_label: str,
    y_label: str,
    value_fmt: Callable[[float], str],
    height: float = 300,
) -> str:
    """Vertical bars side by side within each category (an overlaid histogram)."""
    left, right, top, bottom = 64.0, WIDTH - 16.0, 34.0, height - 44.0
    values = [v for g in groups for v in g.values if v is not None]
    y = linear_axis(0.0, max(values, default=1.0) or 1.0, y_label, 4)
    out = _open(chart_id, title, height)
    for tick in y.ticks:
        py = y.pos(tick, bottom, top)
        out.append(
            f'<line x1="{_f(left)}" y1="{_f(py)}" x2="{_f(right)}" y2="{_f(py)}" stroke="{GRID}"/>'
        )
        out.append(_text(left - 6, py + 4, value_fmt(tick), "end", fill=MUTED))
    slot = (right - left) / max(len(categories), 1)
    bar_w = slot * 0.8 / max(len(groups), 1)
    every = math.ceil(len(categories) / 24)  # keep category labels from overlapping
    for c, category in enumerate(categories):
        x0 = left + c * slot + slot * 0.1
        if c % every == 0:
            out.append(_text(x0 + slot * 0.4, bottom + 16, category, "middle", fill=MUTED))
        for g_index, group in enumerate(groups):
            value = group.values[c]
            if value is None or value <= 0:
                continue
            py = y.pos(value, bottom, top)
            out.append(
                f'<rect class="mark" x="{_f(x0 + g_index * bar_w)}" y="{_f(py)}" '
                f'width="{_f(bar_w)}" height="{_f(bottom - py)}" fill="{group.color}">'
                f"<title>{escape(category)} · {escape(group.name)}: "
                f"{escape(value_fmt(value))}</title></rect>"
            )
    out.append(_text((left + right) / 2, height - 8, x_label, "middle"))
    out.append(
        _text(
            14,
            (top + bottom) / 2,
            y.label,
            "middle",
            transform=f"rotate(-90 14 {_f((top + bottom) / 2)})",
        )
    )
    out.append(
        f'<line x1="{_f(left)}" y1="{_f(bottom)}" x2="{_f(right)}" y2="{_f(bottom)}" '
        f'stroke="{MUTED}"/>'
    )
    out += _legend([(g.name, g.color, False) for g in groups], right, 20)
    return "\n".join([*out, "</svg>"])
