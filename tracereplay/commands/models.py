"""`tracereplay model | synthesize | compare`: learn a model, draw from it, judge a trace."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli_app import EXIT_OK, EXIT_THRESHOLD, EnableSloOpt, SloOpt, app
from tracereplay.errors import UsageError


def _session_timeout_s(text: str) -> float:
    from tracereplay.units import parse_duration_s

    timeout_s = parse_duration_s(text)
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise UsageError(f"--session-timeout must be > 0, not {text!r}")
    return timeout_s


@app.command("model")
def model_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace directory (traces/NAME).")],
    out: Annotated[
        Path | None, typer.Option(help="Model file to write [default: traces/NAME.model.json].")
    ] = None,
    session_timeout: Annotated[
        str, typer.Option(help="Inactivity that ends a session (e.g. 30m).")
    ] = "30m",
) -> None:
    """Learn a model (templates, sessions, behaviors, arrivals, payloads, correlations)."""
    from rich.console import Console

    from tracereplay.models.model import build_model, default_model_path, write_model
    from tracereplay.outdir import check_out_file

    timeout_s = _session_timeout_s(session_timeout)
    path = check_out_file(out or default_model_path(trace))
    console = Console(stderr=True)
    with console.status("modelling…") as status:

        def stage(name: str) -> None:
            status.update(f"modelling: {name}…")
            if not console.is_terminal:
                console.print(f"model: {name}", highlight=False)

        model = build_model(trace, session_timeout_s=timeout_s, progress=stage)
    write_model(model, path)
    prov = model["provenance"]
    console.print(
        f"model of {prov['rows']} requests, {prov['sessions']} sessions, "
        f"{len(model['endpoints'])} endpoints, {len(model['behaviors'])} behaviors, "
        f"{len(model['correlations'])} correlations → {path}",
        highlight=False,
    )


@app.command("synthesize")
def synthesize_cmd(
    model: Annotated[Path, typer.Argument(help="Model file (from tracereplay model).")],
    out: Annotated[Path, typer.Option(help="Trace directory to write (traces/NAME).")],
    scale: Annotated[float, typer.Option(help="N × the modeled arrival rate.")] = 1.0,
    duration: Annotated[
        str | None, typer.Option(help="Length of the synthetic trace [default: the model's].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: same model + seed → same trace.")] = 0,
    arrivals: Annotated[
        str,
        typer.Option(
            help="stratified (each time bucket gets its expected sessions) or poisson "
            "(adds count noise)."
        ),
    ] = "stratified",
) -> None:
    """Write synthetic sessions drawn from a model (request side; no target needed)."""
    from rich.console import Console

    from tracereplay.models.arrivals import ARRIVAL_PROCESSES, ArrivalModel
    from tracereplay.models.model import load_model
    from tracereplay.models.model_check import check_draw
    from tracereplay.models.synthesize import synthesize
    from tracereplay.outdir import check_out_dir, removed_on_failure
    from tracereplay.units import parse_duration_s

    check_out_dir(out)
    loaded = load_model(model)
    duration_s = parse_duration_s(duration) if duration else None
    if arrivals not in ARRIVAL_PROCESSES:
        raise UsageError(f"--arrivals {arrivals!r}: choose one of {', '.join(ARRIVAL_PROCESSES)}")
    check_draw(
        ArrivalModel.from_json(loaded["arrivals"]), scale=scale, duration_s=duration_s, seed=seed
    )
    console = Console(stderr=True)
    with console.status("synthesizing…") as status, removed_on_failure(out):
        result = synthesize(
            loaded,
            out,
            scale=scale,
            duration_s=duration_s,
            seed=seed,
            arrivals=arrivals,
            progress=lambda done, total: status.update(f"synthesizing… {done}/{total} sessions"),
        )
    console.print(
        f"{result.sessions} sessions, {result.requests} requests over {result.duration_s:g} s "
        f"at {result.scale:g}× → {result.out}",
        highlight=False,
    )


@app.command("compare")
def compare_cmd(
    real: Annotated[Path, typer.Argument(help="The real trace (traces/NAME).")],
    other: Annotated[Path, typer.Argument(help="A synthetic or replayed trace.")],
    out: Annotated[
        Path | None, typer.Option(help="Directory for compare.json and report.html.")
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option(help="N of the other trace [default: estimated from session rates]."),
    ] = None,
    session_timeout: Annotated[
        str, typer.Option(help="Inactivity that ends a session (e.g. 30m).")
    ] = "30m",
    slo: SloOpt = None,
    enable_slo: EnableSloOpt = None,
) -> int:
    """Say how close OTHER is to REAL (endpoint mix, sessions, think times, arrivals) and
    check OTHER against the SLOs; exit 1 if a fidelity goal or an SLO is missed."""
    from rich.console import Console

    from tracereplay.models.compare import compare_sessionized, load_pair, write_compare
    from tracereplay.models.compare_render import render_compare
    from tracereplay.models.slo import load_slos, render_slos
    from tracereplay.outdir import check_out_dir, removed_on_failure

    timeout_s = _session_timeout_s(session_timeout)
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"--scale must be a finite number > 0, not {scale!r}")
    if out is not None:
        check_out_dir(out, empty=False)
    slos = load_slos(slo)
    # Each trace is read and sessionized once, for the numbers and the report alike.
    real_s, other_s = load_pair(real, other, session_timeout_s=timeout_s)
    result = compare_sessionized(
        real_s, other_s, scale=scale, slos=slos, enable_slos=enable_slo or ()
    )
    console = Console()
    render_compare(result, console)
    if result.slo_results:
        render_slos(result.slo_results, console)
    if out is not None:
        from tracereplay.models.report import render_report, write_report

        title = f"{real.name} vs {other.name}"
        with removed_on_failure(out):
            path = write_compare(result, out)
            html = render_report(result.to_json(), real_s, other_s, title=title)
            report = write_report(html, out)
        Console(stderr=True).print(f"wrote {path} and {report}", highlight=False)
    # Exit 1 when a fidelity goal that could be computed was missed (DESIGN: thresholds).
    failed = result.fidelity_passed is False or result.slo_passed is False
    return EXIT_THRESHOLD if failed else EXIT_OK
