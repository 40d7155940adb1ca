"""`run_stress`: the stress profile. The model's busiest window (as `--profile peak` picks
it) is replayed at N = each step in turn, one full replay per step into
`<out>/step-KK-xN/`, and each step is judged by the SLOs over what it sent (latency from
the actual send, as `compare` judges a replay). The ladder stops at the first step that
fails an SLO; `refine` more steps then bisect (geometric mean) between the highest N that
passed and the lowest that failed. The capacity is the highest N that passed.
`stress.json` and a self-contained `stress.html` (latency and throughput against N) go to
`<out>`.

SLOs that already fail at the first step fail whatever the load (a query that is slow on
an idle target): they are reported as such ("baseline-failed"), make the command exit 1,
and do not end the ladder; the capacity is then against the other SLOs, and says so.

A step whose sessions started late (p99 start lateness over GENERATOR_LATE_MS) is marked
"generator-bound": the load generator, not only the target, was short of CPU, and that
step says less about the target (on one machine both compete for the cores).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from tracereplay.compare import svg
from tracereplay.compare.html import CSS, badge, slo_table
from tracereplay.compare.slo import Slo, evaluate_slos, load_slos, slo_json
from tracereplay.errors import ReplayFailedError, UsageError

from .run import ReplaySettings, check, run_replay

DEFAULT_STEPS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64)
GENERATOR_LATE_MS = 1000.0
QUANTILE_COLORS = {"p50": "#93c5fd", "p95": "#2563eb", "p99": "#1e3a8a"}


@dataclass(frozen=True)
class StressStep:
    scale: float
    out: Path
    summary: dict[str, Any]
    slo: dict[str, Any]
    """slo_json of the step."""
    baseline_failed: frozenset[str] = frozenset()
    """SLOs that failed at the first step: reported, not what ends the ladder."""

    @property
    def failed(self) -> list[str]:
        """The SLOs that failed here, beyond those that failed at the first step."""
        return [n for n in self.slo.get("failed", []) if n not in self.baseline_failed]

    @property
    def passed(self) -> bool:
        """Every SLO judged here held, except those that failed at the first step; and at
        least one SLO was judged."""
        judged = {
            r["name"]
            for r in self.slo.get("results", [])
            if r.get("passed") is not None and r["name"] not in self.baseline_failed
        }
        return bool(judged) and not self.failed

    @property
    def verdict(self) -> str:
        """ "pass", or "FAIL" and the SLOs that failed here."""
        return "pass" if self.passed else "FAIL " + (", ".join(self.failed) or "n/a")

    @property
    def generator_bound(self) -> bool:
        late = (self.summary.get("start_lateness_ms") or {}).get("p99")
        return late is not None and late > GENERATOR_LATE_MS


@dataclass(frozen=True)
class StressOutcome:
    steps: tuple[StressStep, ...]
    interrupted: bool
    out: Path
    signal: int | None = None
    """The stop signal that interrupted it (exit 128 + signal), when one did."""

    @property
    def baseline_failed(self) -> list[str]:
        return sorted(self.steps[0].baseline_failed) if self.steps else []

    @property
    def capacity(self) -> float | None:
        """The highest N whose step passed (see StressStep.passed); None when none did."""
        passed = [s.scale for s in self.steps if s.passed]
        return max(passed) if passed else None

    @property
    def by_scale(self) -> list[StressStep]:
        """The steps in order of N (a refined ladder runs them out of order)."""
        return sorted(self.steps, key=lambda s: s.scale)

    @property
    def lowest_failure(self) -> StressStep | None:
        """The failed step of the lowest N: the limit the capacity is under."""
        return next((s for s in self.by_scale if not s.passed), None)

    @property
    def limit_found(self) -> bool:
        """A step failed: the capacity is a measured limit, not a lower bound."""
        return any(not s.passed for s in self.steps)


def parse_steps(text: str) -> tuple[float, ...]:
    """ "1,2,4,8" → (1.0, 2.0, 4.0, 8.0): positive and increasing, else UsageError."""
    try:
        steps = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--steps {text!r}: want numbers separated by commas") from None
    if not steps or any(not (math.isfinite(s) and s > 0) for s in steps):
        raise UsageError(f"--steps {text!r}: want one or more numbers > 0")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise UsageError(f"--steps {text!r}: steps must increase")
    return steps


def run_stress(
    settings: ReplaySettings,
    steps: Sequence[float],
    slos: Sequence[Slo],
    *,
    enable: Sequence[str] = (),
    refine: int = 0,
    on_step: Callable[[int, float], None] | None = None,
    on_tick: Callable[[float, float], None] | None = None,
    on_result: Callable[[StressStep], None] | None = None,
) -> StressOutcome:
    """Replay the busiest window at each N of `steps` until an SLO fails, then `refine`
    more steps bisecting (geometric mean, 3 significant digits) between the highest N
    that passed and the one that failed; see the module doc. `settings.scale` is ignored
    (each step sets it)."""
    base = replace(settings, profile="stress", scale=float(steps[0]))
    check(base)  # every option, once, before the first step starts anything
    settings.out.mkdir(exist_ok=True)  # the steps' directories go in it
    done: list[StressStep] = []
    interrupted = False
    signals: list[int] = []  # the stop signal that interrupted a step
    baseline: frozenset[str] = frozenset()

    def run_step(n: float) -> tuple[StressStep, bool]:
        """One step at N = n, judged; and whether it was interrupted."""
        nonlocal baseline
        index = len(done)
        if on_step is not None:
            on_step(index, n)
        step_out = settings.out / f"step-{index + 1:02d}-x{n:g}"
        outcome = run_replay(replace(base, scale=float(n), out=step_out), on_tick=on_tick)
        signals.extend([outcome.signal] if outcome.signal is not None else [])
        outcome.raise_failure()
        timing = pq.read_table(step_out / "timing.parquet").to_pandas()
        judged = slo_json(evaluate_slos(slos, timing, latency_column="latency_ms",
                                        enable=enable))  # fmt: skip
        if index == 0:
            baseline = frozenset(judged["failed"])
        step = StressStep(float(n), step_out, outcome.summary, judged, baseline)
        done.append(step)
        if on_result is not None:
            on_result(step)
        return step, outcome.interrupted

    try:
        for n in steps:
            step, interrupted = run_step(n)
            if interrupted or not step.passed:
                break
        passed = [s.scale for s in done if s.passed]
        if not interrupted and passed and not done[-1].passed:
            low, high = max(passed), done[-1].scale
            for _ in range(refine):
                middle = float(f"{math.sqrt(low * high):.3g}")
                if not low < middle < high:
                    break
                step, interrupted = run_step(middle)
                if interrupted:
                    break
                low, high = (middle, high) if step.passed else (low, middle)
    except KeyboardInterrupt:
        interrupted = True
    except ReplayFailedError:
        if done:  # the steps that ran are summed up before the failure is reported
            write_stress(StressOutcome(tuple(done), False, settings.out))
        raise
    result = StressOutcome(tuple(done), interrupted, settings.out, next(iter(signals), None))
    if done:  # the steps that ran are summed up, also after Ctrl-C
        write_stress(result)
    return result


# --- stress.json and stress.html -------------------------------------------------------


def stress_json(outcome: StressOutcome) -> dict[str, Any]:
    return {
        "capacity": outcome.capacity,
        "baseline_failed_slos": outcome.baseline_failed,
        "limit_found": outcome.limit_found,
        "interrupted": outcome.interrupted,
        "steps": [
            {
                "scale": s.scale,
                "dir": s.out.name,
                "passed": s.passed,
                "failed_slos": s.failed,
                "generator_bound": s.generator_bound,
                "requests": s.summary.get("requests"),
                "achieved_rps": s.summary.get("achieved_rps"),
                "failures": s.summary.get("failures"),
                "latency_ms": s.summary.get("latency_ms"),
                "latency_intended_ms": s.summary.get("latency_intended_ms"),
                "start_lateness_ms": s.summary.get("start_lateness_ms"),
                "slo": s.slo,
            }
            for s in outcome.steps
        ],
    }


def write_stress(outcome: StressOutcome) -> tuple[Path, Path]:
    doc = stress_json(outcome)
    outcome.out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = outcome.out / "stress.json", outcome.out / "stress.html"
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path.write_text(render_stress(outcome), encoding="utf-8")
    return json_path, html_path


def verdict_line(outcome: StressOutcome) -> str:
    capacity, first = outcome.capacity, outcome.steps[0]
    baseline = ""
    if outcome.baseline_failed:
        baseline = (
            f"; {', '.join(outcome.baseline_failed)} failed already at N = "
            f"{svg.num(first.scale)}, whatever the load: the capacity is against the other SLOs"
        )
    if capacity is None:
        names = ", ".join(first.failed) or "no other SLO could be judged"
        return f"no capacity: the first step (N = {svg.num(first.scale)}) failed: {names}{baseline}"
    if not outcome.limit_found:
        return f"capacity ≥ {svg.num(capacity)}× (no step failed; try higher steps){baseline}"
    limit = outcome.lowest_failure
    assert limit is not None  # limit_found
    names = ", ".join(limit.failed) or "nothing could be judged"
    return f"capacity {svg.num(capacity)}× (N = {svg.num(limit.scale)} failed: {names}){baseline}"


def _latency_chart(outcome: StressOutcome, thresholds: Sequence[float]) -> str:
    scales = [s.scale for s in outcome.by_scale]
    geometric = len(scales) > 2 and scales[-1] / scales[0] >= 8
    x = (svg.log_axis if geometric else svg.linear_axis)(
        min(scales) if geometric else 0.0, max(scales), "N × the busiest window's rate"
    )
    series, highest = [], 1.0
    for q, color in QUANTILE_COLORS.items():
        points = [(s.scale, (s.summary.get("latency_ms") or {}).get(q)) for s in outcome.by_scale]
        kept: list[svg.Point] = [(n, float(v)) for n, v in points if v is not None]
        highest = max([highest, *(p[1] for p in kept if p is not None)])
        series.append(svg.Series(f"latency {q}", color, kept, markers=True))
    y = svg.log_axis(max(0.1, min(thresholds, default=1.0) / 100), highest * 1.2, "latency (ms)")
    lines = [(t, f"SLO {svg.num(t)} ms") for t in thresholds]
    return svg.line_chart("chart-stress-latency", "Latency against N", series, x, y, hlines=lines)


def _throughput_chart(outcome: StressOutcome) -> str:
    first = outcome.by_scale[0]
    per_n = float(first.summary.get("achieved_rps") or 0.0) / first.scale
    achieved: list[svg.Point] = [(s.scale, float(s.summary.get("achieved_rps") or 0.0))
                                 for s in outcome.by_scale]  # fmt: skip
    ideal: list[svg.Point] = [(s.scale, per_n * s.scale) for s in outcome.by_scale]
    top = max([1.0, *(p[1] for p in [*achieved, *ideal] if p is not None)])
    x = svg.linear_axis(0.0, max(s.scale for s in outcome.steps), "N")
    y = svg.linear_axis(0.0, top * 1.1, "requests/s")
    series = [
        svg.Series("achieved", "#2563eb", achieved, markers=True),
        svg.Series("proportional to the first step", "#6b7280", ideal, dashed=True),
    ]
    return svg.line_chart("chart-stress-throughput", "Throughput against N", series, x, y)


def render_stress(outcome: StressOutcome) -> str:
    """The stress page: verdict, one row per step, latency and throughput against N."""
    thresholds = sorted(
        {float(r["threshold"]) for s in outcome.steps for r in s.slo.get("results", [])
         if r.get("metric") == "latency_p95_ms" and r.get("passed") is not None}
    )  # fmt: skip
    rows = []
    for s in outcome.by_scale:
        latency = s.summary.get("latency_ms") or {}
        note = ", ".join(s.failed)
        if s.generator_bound:
            note += " (generator-bound: sessions started late)"
        rows.append(
            f"<tr><td>{badge(s.passed)}</td><td class=n>{svg.num(s.scale)}×</td>"
            f"<td class=n>{s.summary.get('requests')}</td>"
            f"<td class=n>{svg.num(float(s.summary.get('achieved_rps') or 0))}</td>"
            + "".join(f"<td class=n>{latency.get(q)}</td>" for q in QUANTILE_COLORS)
            + f"<td>{escape(note)}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("", "N", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "failed SLOs")
    )
    capacity = outcome.capacity
    shown = outcome.lowest_failure or outcome.by_scale[-1]  # the limit, else the top step
    slos = slo_table(shown.slo)[1]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>tracereplay stress</title>"
        f"<style>{CSS}</style></head>\n<body><main>\n"
        f'<header><div class="verdict {"fail" if capacity is None else "pass"}">'
        f"{'no capacity' if capacity is None else 'capacity ' + svg.num(capacity) + '×'}</div>"
        f"<h1>Stress: capacity against the SLOs</h1><p class=meta>{escape(verdict_line(outcome))}"
        "</p></header>\n"
        '<section id="stress-steps"><h2>Steps</h2><p class=caption>Each step replays the '
        "model's busiest window at N × its rate; the ladder stops at the first step that "
        "fails an SLO that held at the first step.</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table></section>\n"
        f'<section id="stress-latency"><h2>Latency against N</h2>'
        f"{_latency_chart(outcome, thresholds)}</section>\n"
        f'<section id="stress-throughput"><h2>Throughput against N</h2>'
        f"{_throughput_chart(outcome)}</section>\n"
        f'<section id="stress-slo"><h2>SLOs at N = {svg.num(shown.scale)}</h2>{slos}</section>\n'
        "</main></body></html>\n"
    )


def stress_cli(
    settings: ReplaySettings,
    steps_text: str,
    slo_path: Path | None,
    enable: Sequence[str],
    console: Console,
    refine: int = 0,
) -> int:
    """`tracereplay replay MODEL --profile stress`: progress, a table, the verdict; exit 0
    with a capacity, 1 when the first step failed, 130 when interrupted."""
    slos = load_slos(slo_path)
    steps = parse_steps(steps_text)
    if refine < 0:
        raise UsageError(f"--refine must be >= 0, not {refine}")
    with console.status("stress…") as status:
        current = {"n": steps[0], "k": 0}

        def on_step(index: int, n: float) -> None:
            current.update(n=n, k=index)

        def on_tick(t: float, window: float) -> None:
            status.update(
                f"stress step {current['k'] + 1}: N = {svg.num(current['n'])}, "
                f"{t:.0f} s (plan window {window:.0f} s)"
            )

        def on_result(step: StressStep) -> None:
            latency = step.summary.get("latency_ms") or {}
            console.print(
                f"step {current['k'] + 1} N = {svg.num(step.scale)}: "
                f"{step.summary.get('requests')} requests, {step.summary.get('achieved_rps')} "
                f"req/s, p95 {latency.get('p95')} ms: {step.verdict}",
                highlight=False,
            )

        outcome = run_stress(settings, steps, slos, enable=enable, refine=refine,
                             on_step=on_step, on_tick=on_tick, on_result=on_result)  # fmt: skip
    stopped = 128 + outcome.signal if outcome.signal is not None else 130
    if not outcome.steps:
        console.print("interrupted before the first step was done", highlight=False)
        return stopped
    table = Table(title="stress")
    for column in ("N", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "verdict"):
        table.add_column(column, justify="right")
    for s in outcome.by_scale:
        latency = s.summary.get("latency_ms") or {}
        verdict = s.verdict
        if s.generator_bound:
            verdict += " (generator-bound)"
        table.add_row(svg.num(s.scale), str(s.summary.get("requests")),
                      str(s.summary.get("achieved_rps")),
                      *(str(latency.get(q)) for q in QUANTILE_COLORS), verdict)  # fmt: skip
    console.print(table)
    console.print(f"{verdict_line(outcome)} → {outcome.out / 'stress.html'}", highlight=False)
    if outcome.interrupted:
        return stopped
    # Exit 1 as any SLO failure does: no capacity, or SLOs that fail at any load.
    return 0 if outcome.capacity is not None and not outcome.baseline_failed else 1
