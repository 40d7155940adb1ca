"""HTML pieces the reports share (compare's report.html, stress.html): the page CSS,
tables of ready cells, pass/fail badges, number formatting and the SLO table.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Mapping, Sequence
from html import escape
from typing import Any

from . import svg

CSS = """*{box-sizing:border-box} svg.chart{display:block;width:100%;height:auto}
body{margin:0;background:#f3f4f6;color:#111827;font:15px/1.5 system-ui,-apple-system,sans-serif}
main{max-width:1000px;margin:0 auto;padding:24px 16px 48px} h2{margin:0 0 6px;font-size:19px}
header,section{background:#fff;border-radius:10px;padding:18px 22px;margin:0 0 18px;overflow-x:auto}
h1{margin:0 0 4px;font-size:24px} .meta,.caption,.muted{color:#4b5563}
code{font-size:13px;overflow-wrap:anywhere} code.nw{white-space:nowrap;overflow-wrap:normal}
.caption{margin:0 0 12px;max-width:80ch} nav a{margin-right:12px;white-space:nowrap}
.verdict{float:right;font-size:20px;font-weight:700;padding:6px 16px;border-radius:8px}
.badge{display:inline-block;min-width:44px;text-align:center;font-size:12px;border-radius:9px}
.pass{background:#dcfce7;color:#166534} .fail{background:#fee2e2;color:#991b1b}
.na{background:#e5e7eb;color:#374151} .badge,.real,.other{font-weight:700}
.noise,.warn{background:#fef3c7;color:#92400e}
table{border-collapse:collapse;width:100%;font-size:14px;margin:8px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e5e7eb} th,.n{white-space:nowrap}
.n{text-align:right;font-variant-numeric:tabular-nums} .real{color:#2563eb} .other{color:#ea580c}
.empty{padding:18px;background:#f9fafb;border-radius:8px;color:#4b5563}
"""


def table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Container[int] = ()) -> str:
    """A table of cells that are HTML already; `numeric` columns are aligned right."""

    def row(cells: Sequence[str], tag: str) -> str:
        cls = [' class="n"' if i in numeric else "" for i in range(len(cells))]
        return "<tr>" + "".join(f"<{tag}{c}>{x}</{tag}>" for c, x in zip(cls, cells, strict=True))

    return (
        "<table>" + row(head, "th") * bool(head) + "".join(row(r, "td") for r in rows) + "</table>"
    )


VERDICT_WORDS = {"pass": "PASS", "noise": "NOISE", "fail": "FAIL", "warn": "WARN", "off": "off"}


def verdict(value: Any) -> tuple[str, str]:
    """CSS class and word of a verdict: "pass", "noise", "fail", "warn" or "off", or a
    boolean (True pass, False fail); anything else is n/a."""
    if isinstance(value, bool):
        value = "pass" if value else "fail"
    if value in VERDICT_WORDS:
        return ("na" if value == "off" else str(value)), VERDICT_WORDS[value]
    return "na", "n/a"


def badge(value: Any) -> str:
    cls, word = verdict(value)
    return f'<span class="badge {cls}">{word}</span>'


def val(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    return svg.num(value) if isinstance(value, float) else escape(str(value))


def pct(value: Any) -> str:
    return svg.pct(float(value)) if isinstance(value, int | float) else "–"


def caption(html: str) -> str:
    return f'<p class="caption">{html}</p>\n'


def empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def slo_table(slo: Any) -> tuple[bool | None, str]:
    """The SLO verdict and table from compare.json's `slo` (see compare/slo.py `slo_json`):
    one row per result, in file order, with the endpoints a class SLO bound to; absent,
    null or empty says "not checked"."""
    if not isinstance(slo, Mapping) or not slo.get("results"):
        return None, table([], [[badge(None), '<span class="muted">not checked</span>']])
    results = slo["results"]
    items: Iterable[Any] = (
        sorted(results.items()) if isinstance(results, Mapping) else enumerate(results)
    )
    rows, verdicts = [], []
    for key, result in items:
        entry = result if isinstance(result, Mapping) else {"passed": result}
        ok = entry.get("passed") if isinstance(entry.get("passed"), bool) else None
        metric = str(entry.get("metric") or "")
        fmt = pct if metric.endswith("_rate") else val  # rates are shares: shown as %
        rule = f"{metric} {entry.get('op') or ''} " if "threshold" in entry else ""
        name = escape(str(entry.get("name") or key))
        note = escape(str(entry.get("warning") or entry.get("reason") or ""))
        threshold, value = escape(rule) + fmt(entry.get("threshold")), fmt(entry.get("value"))
        requests = val(entry.get("requests"))
        shown = entry.get("verdict", ok)
        rows.append([badge(shown), f'<code class="nw">{name}</code>', threshold, value,
                     _where(entry), requests, note])  # fmt: skip
        verdicts += [ok] if ok is not None else []
    head = ["", "SLO", "threshold", "measured", "endpoints", "requests", ""]
    passed = slo.get("passed")
    verdict = passed if isinstance(passed, bool) else (all(verdicts) if verdicts else None)
    return verdict, table(head, rows, numeric=(3, 5))


def _where(entry: Mapping[str, Any]) -> str:
    """An SLO's selector: its patterns, or its class and the endpoints that bound to."""
    endpoints = entry.get("endpoints") or []
    if entry.get("binds") and not endpoints:
        matched = entry.get("matched") or []
        names = "<br>".join(f'<code class="nw">{escape(str(e))}</code>' for e in matched) or "–"
        return f"{escape(str(entry['binds']))}: {names}"
    return escape(", ".join(map(str, endpoints)) if isinstance(endpoints, list) else str(endpoints))
