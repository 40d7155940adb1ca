"""The report in a real browser: headless Chromium (Debian's; .ci/run installs it) opens the
file offline, and each chart's screenshot shows the real and the other colour drawn."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.compare.test_report import _render
from tracereplay.compare.compare import compare_sessionized
from tracereplay.compare.report import COLORS, load_pair, render_report, write_report
from tracereplay.models.model import build_model
from tracereplay.models.synthesize import synthesize

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")

# Section ids of the charts that draw both sides (status mix and latency over time may
# show one side only, by design, when a side has no responses).
CHARTS = ["endpoint-mix", "status-by-endpoint", "session-length", "session-duration",
          "think-time", "interarrival", "arrival-rate", "burstiness", "latency"]  # fmt: skip


def screenshot(html: Path, png: Path, width: int = 1100, height: int = 900) -> Image.Image:
    assert CHROMIUM is not None
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", f"--window-size={width},{height}",
         f"--screenshot={png}", html.as_uri()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Image.open(png).convert("RGB")


def pixels_near(image: Image.Image, hex_colour: str, tolerance: int = 40) -> int:
    target = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        count
        for count, rgb in image.getcolors(maxcolors=1 << 20) or []
        if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
    )


def test_each_chart_renders_both_sides_in_chromium(tmp_path: Path) -> None:
    html, _ = _render()
    full = tmp_path / "report.html"
    full.write_text(html, encoding="utf-8")
    page = screenshot(full, tmp_path / "report.png", height=1600)
    assert pixels_near(page, COLORS["real"]) > 500 and pixels_near(page, COLORS["other"]) > 500
    for chart in CHARTS:
        # Only this chart's section on the page: its own screenshot must show both colours.
        solo = html.replace(
            "</head>", f"<style>header,nav,section:not(#{chart}){{display:none}}</style></head>"
        )
        path = tmp_path / f"{chart}.html"
        path.write_text(solo, encoding="utf-8")
        shot = screenshot(path, tmp_path / f"{chart}.png")
        real, other = pixels_near(shot, COLORS["real"]), pixels_near(shot, COLORS["other"])
        assert real > 150 and other > 150, (chart, real, other)


def test_report_of_a_real_staging_trace(staging_trace: Path, tmp_path: Path) -> None:
    """A synthetic 5× trace against the staging capture, rendered and photographed whole.
    With TRACEREPLAY_SCREENSHOT=PATH the screenshot is kept there (docs/report.png in the
    README is made this way)."""
    model = build_model(staging_trace)
    synthesize(model, tmp_path / "syn", scale=5, seed=1)
    real_s, other_s = load_pair(staging_trace, tmp_path / "syn")
    result = compare_sessionized(real_s, other_s, scale=5)
    html = render_report(result.to_json(), real_s, other_s, title="staging users vs model, 5×")
    report = write_report(html, tmp_path)
    png = tmp_path / "report.png"
    shot = screenshot(report, png, width=1100, height=2400)
    assert pixels_near(shot, COLORS["real"]) > 2000 and pixels_near(shot, COLORS["other"]) > 2000
    if target := os.environ.get("TRACEREPLAY_SCREENSHOT"):
        shutil.copyfile(png, target)
