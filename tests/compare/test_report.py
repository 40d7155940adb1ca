"""The compare report: one self-contained HTML page whose charts are drawn, escaped, stable,
and that says "no responses" for a synthetic OTHER instead of failing."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.compare.compare_factory import frame, session_records, session_records_list, workload
from tracereplay.compare.compare import compare_frames
from tracereplay.compare.report import render_report, sessionized_pair, write_report
from tracereplay.compare.slo import DISABLED, Slo, SloResult, slo_json
from tracereplay.errors import TraceEmptyError, UsageError

EVIL_PATH = "/<script>alert(1)</script>"
CHARTS = (
    "chart-endpoint-mix",
    "chart-status-mix",
    "chart-session-length",
    "chart-session-duration",
    "chart-think-time",
    "chart-interarrival",
    "chart-arrival-rate",
    "chart-burstiness",
)
# Charts of responses: OTHER must have some (a synthetic trace has none).
LATENCY_CHARTS = ("chart-status-endpoint", "chart-latency-endpoint", "chart-latency-time")
MARKS = {"rect", "path", "polyline", "circle"}


class Page(HTMLParser):
    """Tags, links and the drawn marks (class "mark") inside each <svg id=...>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.marks: dict[str, int] = {}
        self.svg: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "svg":
            self.svg = attributes.get("id") or ""
            self.marks.setdefault(self.svg, 0)
        elif self.svg is not None and tag in MARKS and attributes.get("class") == "mark":
            self.marks[self.svg] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg = None


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def _traces(*, synthetic: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """REAL: 30 sessions with responses, one visiting EVIL_PATH; OTHER: 36 sessions, as a
    replay (slower responses, a few 500s) or as a synthesis (no status, no durations)."""
    real = session_records_list(30, every_s=7.0)
    real += session_records("evil", 3.0, ["/api/items", EVIL_PATH])
    real += session_records("gone", 5.0, ["/api/orders", "/api/users"], status=404)
    if synthetic:
        other = session_records_list(36, every_s=6.0, prefix="o", status=None, duration_ms=None)
    else:
        other = session_records_list(33, every_s=6.5, prefix="o", duration_ms=40.0)
        other += session_records("o-err", 1.0, ["/api/orders", EVIL_PATH], status=500)
    return frame(real), frame(other)


def _render(*, synthetic: bool = False, slo: Any = "keep") -> tuple[str, dict[str, Any]]:
    real, other = _traces(synthetic=synthetic)
    doc = compare_frames(real, other).to_json()
    if slo != "keep":
        doc["slo"] = slo
    real_s, other_s = sessionized_pair(real, other)
    return render_report(doc, real_s, other_s, title="staging <vs> replay"), doc


def test_page_parses_is_self_contained_and_draws_every_chart() -> None:
    html, _ = _render()
    page = parse(html)
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html  # nothing to fetch, not even a link
    for tag, attrs in page.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        assert not (tag == "script" and "src" in attrs)
        assert "src" not in attrs
    assert "@import" not in html and "url(" not in html
    for chart in (*CHARTS, *LATENCY_CHARTS):
        assert page.marks.get(chart, 0) >= 1, chart
    assert len(page.marks) == len(CHARTS) + len(LATENCY_CHARTS)
    assert "<title>staging &lt;vs&gt; replay</title>" in html


def test_endpoint_names_from_traces_are_escaped() -> None:
    html, doc = _render()
    assert f"GET {EVIL_PATH}" in doc["endpoint_mix"]["real"]  # the name does reach the page
    assert "<script" not in html
    assert "GET /&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not [tag for tag, _ in parse(html).tags if tag == "script"]


def test_synthetic_other_says_no_responses_instead_of_drawing_latency() -> None:
    html, doc = _render(synthetic=True)
    assert doc["latency_ms"]["other"] is None and doc["status_mix"]["other"] is None
    page = parse(html)
    for chart in CHARTS:
        assert page.marks.get(chart, 0) >= 1, chart
    for chart in LATENCY_CHARTS:
        assert chart not in page.marks, chart
    assert html.count("No responses in OTHER") == 3
    assert "synthetic: no responses" in html


def test_same_input_gives_the_same_bytes() -> None:
    first, _ = _render()
    second, _ = _render()
    assert first == second


def test_verdicts_show_fidelity_and_each_slo_in_file_order() -> None:
    slos = [
        Slo("p95 <b>fast</b>", "latency_p95_ms", "<", 500.0, ("GET /api/*",)),
        Slo("errors", "error_rate", "<", 0.01),
        Slo("spare", "throughput_rps", ">=", 1.0, enabled=False),
    ]
    results = [
        SloResult(slos[0], 812.5, False, 40, None),
        SloResult(slos[1], 0.001, True, 90, None),
        SloResult(slos[2], 2.5, None, 90, DISABLED),
    ]
    html, doc = _render(slo=slo_json(results))
    assert '<div class="verdict fail">FAIL</div>' in html
    assert '<code class="nw">p95 &lt;b&gt;fast&lt;/b&gt;</code>' in html
    assert "latency_p95_ms &lt; 500" in html and "812" in html and "GET /api/*" in html
    assert "error_rate &lt; 1 %" in html and "0.1 %" in html
    assert html.index("fast&lt;/b&gt;") < html.index(">errors</code>") < html.index("spare")
    assert DISABLED in html
    for metric in doc["fidelity"]["goal"]:
        assert f'<code class="nw">{metric}</code>' in html


@pytest.mark.parametrize("slo", [None, {"passed": None, "checked": False}])
def test_slo_absent_or_not_checked_is_not_a_verdict(slo: Any) -> None:
    html, doc = _render(slo=slo)
    assert "not checked" in html
    assert f">{doc['fidelity']['overall'].upper()}</div>" in html


def test_slo_results_as_mapping_by_name_are_read_leniently() -> None:
    html, _ = _render(slo={"checked": True, "results": {"latency": {"passed": True}}})
    assert '<code class="nw">latency</code>' in html


def test_unsessionized_or_empty_frames_are_refused() -> None:
    real, other = _traces()
    doc = compare_frames(real, other).to_json()
    with pytest.raises(UsageError, match="lacks endpoint"):
        render_report(doc, real, other, title="t")
    real_s, other_s = sessionized_pair(real, other)
    with pytest.raises(TraceEmptyError, match="other"):
        render_report(doc, real_s, other_s.iloc[:0], title="t")


def test_write_report(tmp_path: Path) -> None:
    path = write_report("<!DOCTYPE html>\n<p>é</p>", tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    assert path.read_text(encoding="utf-8") == "<!DOCTYPE html>\n<p>é</p>"


def test_a_one_request_other_renders_with_its_reasons() -> None:
    real, _ = _traces()
    other = frame(session_records("o", 0.0, ["/api/items"]))
    doc = compare_frames(real, other).to_json()
    html = render_report(doc, *sessionized_pair(real, other), title="t")
    assert "a trace spans no time" in html
    assert "KS not computed: no other samples" in html
    assert parse(html).marks["chart-endpoint-mix"] >= 2


def test_a_noise_verdict_says_what_would_settle_it() -> None:
    """Few sessions, a real difference (OTHER's pauses twice as long): the header says
    NOISE, the row gives the sessions it would take, the caption the floor and p."""
    real = frame(workload(6, seed=1, think_s=1.0))
    other = frame(workload(6, seed=2, think_s=2.0, prefix="o"))
    doc = compare_frames(real, other, scale=1).to_json()
    assert doc["think_time"]["verdict"] == "noise" and doc["verdict"] == "noise"
    html = render_report(doc, *sessionized_pair(real, other), title="t")
    assert '<div class="verdict noise">NOISE</div>' in html
    needed = doc["fidelity"]["sessions_needed"]["think_time.ks"]
    assert f"≈ {needed:,} real sessions would tell" in html
    floor = doc["think_time"]["judged_by"]["noise_floor"]
    assert "noise floor" in html and f"{floor:.3g}" in html


def test_the_header_gives_load_errors_and_cut_sessions() -> None:
    html, doc = _render()
    doc = {**doc,
           "load": {"offered_scale": 5.0, "achieved_scale": 4.6, "source": "summary.json",
                    "sessions_planned": 50, "sessions_started": 48, "sessions_cut": 3,
                    "sessions_skipped": 2, "requests_skipped": 7},
           "cut_sessions": {"count": 1, "how": "listed in summary.json",
                            "session_keys": ["o-err"]}}  # fmt: skip
    real_s, other_s = sessionized_pair(*_traces())
    html = render_report(doc, real_s, other_s, title="t")
    assert "achieved <b>4.6×</b> (summary.json); 48 of 50 planned sessions started" in html
    assert "3 cut, 2 never started, 7 requests skipped" in html
    assert "status ≥ 400 or no response" in html and "client errors (4xx)" in html
    assert "The 1 sessions the replay cut" in html
    assert "D(c / N) = D(c) / N" in html  # burstiness compares counts ÷ N


def test_the_report_reads_no_session_key_of_real() -> None:
    # `read_compared` lets REAL's session keys go once the SLO classes are bound: the
    # report is the same without them; OTHER's (the sessions a replay cut) it reads.
    real_s, other_s = sessionized_pair(*_traces())
    doc = compare_frames(*_traces()).to_json()
    keyless = real_s.drop(columns="session_key")
    expected = render_report(doc, real_s, other_s, title="t")
    assert render_report(doc, keyless, other_s, title="t") == expected
    with pytest.raises(UsageError, match="lacks session_key"):
        render_report(doc, real_s, other_s.drop(columns="session_key"), title="t")
