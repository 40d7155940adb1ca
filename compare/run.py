"""`run_compare`: what `tracereplay compare` and the demo's last step do — read both traces
(and the replay's summary.json), compare, print the table and SLOs, write compare.json
and report.html, and warn on stderr about SLOs that select nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tracereplay.errors import TraceReplayError
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.trace import open_trace

from .bindings import Learned, learned_from_model
from .compare import CompareResult, compare_sessionized, load_pair, write_compare
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

    # Each trace is read and sessionized once, for the numbers and the report alike.
    binding = slos is not None and needs_binding(slos)
    learned = model_beside(real, open_trace(real).num_rows) if binding else None
    real_s, other_s = load_pair(
        real, other, session_timeout_s=session_timeout_s, full_real=binding and learned is None
    )
    result = compare_sessionized(
        real_s, other_s, scale=scale, slos=slos, enable_slos=enable_slos, goals=goals,
        run_summary=read_run_summary(other), learned=learned,
        session_timeout_s=session_timeout_s,
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


def model_beside(real: Path, rows: int) -> Learned | None:
    """What REAL's own model file (traces/NAME.model.json) learned, when there is one of
    this trace (as many rows): reading it is much faster than finding the correlations
    again. None otherwise: compare then learns from REAL itself."""
    from tracereplay.models.model import default_model_path, load_model

    path = default_model_path(real)
    if not path.is_file():
        return None
    try:
        model = load_model(path)
    except TraceReplayError:
        return None
    if (model.get("provenance") or {}).get("rows") != rows:
        return None
    return learned_from_model(model, source=f"model {path}")
