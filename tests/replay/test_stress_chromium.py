"""stress.html in headless Chromium: the latency-against-N chart draws its three quantile
lines and the throughput chart its line (screenshot pixels, not just markup)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compare.test_report_chromium import CHROMIUM, pixels_near, screenshot
from tests.replay.test_profiles import step
from tracereplay.replay.stress import QUANTILE_COLORS, StressOutcome, render_stress

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")


def test_stress_charts_render_in_chromium(tmp_path: Path) -> None:
    outcome = StressOutcome(
        (step(tmp_path, 1, [], p95=20), step(tmp_path, 4, [], p95=60),
         step(tmp_path, 16, [], p95=300), step(tmp_path, 64, ["latency"], p95=2000)),
        False,
        tmp_path,
    )  # fmt: skip
    html = render_stress(outcome)
    for section, colours in (
        ("stress-latency", list(QUANTILE_COLORS.values())),
        ("stress-throughput", [QUANTILE_COLORS["p95"]]),
    ):
        solo = html.replace(
            "</head>", f"<style>header,section:not(#{section}){{display:none}}</style></head>"
        )
        page = tmp_path / f"{section}.html"
        page.write_text(solo, encoding="utf-8")
        shot = screenshot(page, tmp_path / f"{section}.png")
        for colour in colours:
            assert pixels_near(shot, colour, tolerance=12) > 150, (section, colour)
