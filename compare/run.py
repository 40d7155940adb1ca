"""`run_compare`: what `tracereplay compare` and the demo's last step do — read both traces
(and the replay's summary.json), compare, print the table and SLOs, write compare.json
and report.html, and warn on stderr about SLOs that select nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S

from .compare import CompareResult, compare_sessionized, read_compared, write_compare
from .compare_render import render_compare
from .run_summary import read_run_summary
from .slo import Slo, needs_binding, render_slos, slo_warnings
from .verdicts import Goals


def run_compare(
    real: Path,
    other: Path,
    *,
    out: Path | None,
    title: str,
    console: Console,
    errors: Console,
    scale: float | None = None,
    slos: Sequence[Slo] | None = None,
    enable_slos: Sequence[str] = (),
    goals: Goals | None = None,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
) -> CompareResult:
    """Compare OTHER with REAL; tables to `console`, warnings and paths to `errors`."""
    from .report import render_report, write_report

    # Each trace is read and sessionized once, for the numbers, the SLO binding and the
    # report alike; REAL's noise floor while OTHER is read.
    binds = slos is not None and needs_binding(slos)
    pair = read_compared(
        real, other, session_timeout_s=session_timeout_s, bind=binds, lean=True
    )  # fmt: skip
    real_s, other_s = pair.real_s, pair.other_s
    result = compare_sessionized(
        real_s, other_s, scale=scale, slos=slos, enable_slos=enable_slos, goals=goals,
        run_summary=read_run_summary(other), learned=pair.learned,
        session_timeout_s=session_timeout_s, real=pair.real, real_noise=pair.real_noise,
    )  # fmt: skip
    render_compare(result, console)
    if result.slo_results:
        render_slos(result.slo_results, console)
        for line in slo_warnings(result.slo_results):
            errors.print(f"tracereplay: {line}", highlight=False, soft_wrap=True)
    if out is not None:
        from tracereplay.outdir import removed_on_failure

        with removed_on_failure(out):
            path = write_compare(result, out)
            html = render_report(result.to_json(), real_s, other_s, title=title)
            report = write_report(html, out)
        errors.print(f"wrote {path} and {report}", highlight=False, soft_wrap=True)
    return result
