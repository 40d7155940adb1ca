"""`tracereplay compare`: how close a replayed or synthetic trace is to the real one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli_app import EXIT_OK, EXIT_THRESHOLD, EnableSloOpt, SloOpt, app
from tracereplay.errors import UsageError


@app.command("compare")
def compare_cmd(
    real: Annotated[Path, typer.Argument(help="The real trace (traces/NAME).")],
    other: Annotated[
        Path, typer.Argument(help="A synthetic trace, or a replay's reports/RUN/replayed.")
    ],
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
    goals: Annotated[
        Path | None,
        typer.Option(help="Fidelity goals (TOML) over the defaults [default: built-in]."),
    ] = None,
) -> int:
    """Say how close OTHER is to REAL (endpoint mix, status codes, sessions, think times,
    arrivals): each metric PASS, NOISE (above its goal by less than the sample can tell)
    or FAIL, and check OTHER against the SLOs; exit 1 only on a FAIL."""
    from rich.console import Console

    from tracereplay.compare.run import run_compare
    from tracereplay.compare.slo import load_slos
    from tracereplay.compare.verdicts import load_goals
    from tracereplay.outdir import check_out_dir
    from tracereplay.units import session_timeout_s

    timeout_s = session_timeout_s(session_timeout)
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"--scale must be a finite number > 0, not {scale!r}")
    if out is not None:
        check_out_dir(out, empty=False)
    result = run_compare(
        real,
        other,
        out=out,
        title=f"{real.name} vs {other.name}",
        console=Console(),
        errors=Console(stderr=True),
        scale=scale,
        slos=load_slos(slo),
        enable_slos=enable_slo or (),
        goals=load_goals(goals),
        session_timeout_s=timeout_s,
    )
    return EXIT_THRESHOLD if result.failed else EXIT_OK
