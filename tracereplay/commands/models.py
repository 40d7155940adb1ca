"""`tracereplay model | synthesize`: learn a model, draw from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tracereplay.cli_app import app
from tracereplay.errors import OutOfMemoryError, UsageError


@app.command("model")
def model_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace directory (traces/NAME).")],
    out: Annotated[
        Path | None, typer.Option(help="Model file to write [default: traces/NAME.model.json].")
    ] = None,
    session_timeout: Annotated[
        str, typer.Option(help="Inactivity that ends a session (e.g. 30m).")
    ] = "30m",
    payload_sample: Annotated[
        int, typer.Option(help="Requests per endpoint whose bodies and queries are read.")
    ] = 1000,
    behavior_sample: Annotated[
        int, typer.Option(help="Sessions the behaviors are clustered on (all are assigned).")
    ] = 2000,
    correlation_sample: Annotated[
        int, typer.Option(help="Sessions drawn for correlation and auth finding.")
    ] = 2000,
    correlation_per_endpoint: Annotated[
        int, typer.Option(help="... plus at least this many sessions calling each endpoint.")
    ] = 20,
    correlation_requests: Annotated[
        int,
        typer.Option(help="Most requests read of those sessions (a long one: its first and last)."),
    ] = 200_000,
    partitions: Annotated[
        int | None,
        typer.Option(
            help="Make the model in N partitions of session keys spilled to disk: memory"
            " follows the sessions, not the requests (0: in memory) [default: in memory up"
            " to 4 M requests, else ~262 k requests a partition]."
        ),
    ] = None,
) -> None:
    """Learn a model (templates, sessions, behaviors, arrivals, payloads, correlations)."""
    from rich.console import Console

    from tracereplay.models.model import StageReport, build_model, default_model_path, write_model
    from tracereplay.outdir import check_out_file
    from tracereplay.units import session_timeout_s

    timeout_s = session_timeout_s(session_timeout)
    path = check_out_file(out or default_model_path(trace))
    console = Console(stderr=True)
    last: list[StageReport] = []
    with console.status("modelling…") as status:

        def stage(report: StageReport) -> None:
            last[:] = [report]
            status.update(f"modelling: {report}…")
            if report.seconds is not None or not console.is_terminal:
                console.print(f"model: {report}", highlight=False)

        try:
            model = build_model(
                trace,
                session_timeout_s=timeout_s,
                progress=stage,
                payload_sample=payload_sample,
                behavior_sample=behavior_sample,
                correlation_sample=correlation_sample,
                correlation_per_endpoint=correlation_per_endpoint,
                correlation_requests=correlation_requests,
                partitions=partitions,
            )
        except MemoryError as exc:
            raise OutOfMemoryError(_out_of_memory(trace, last, exc)) from exc
    write_model(model, path)
    prov = model["provenance"]
    console.print(
        f"model of {prov['rows']} requests, {prov['sessions']} sessions, "
        f"{len(model['endpoints'])} endpoints, {len(model['behaviors'])} behaviors, "
        f"{len(model['correlations'])} correlations → {path}",
        highlight=False,
    )


def _out_of_memory(trace: Path, last: list[Any], exc: MemoryError) -> str:
    """The model's out-of-memory line: where the stage lines had come to, and the rows."""
    from tracereplay.cli import OUT_OF_MEMORY_HINT

    where, rows = "", ""
    if last:
        report = last[0]
        where = f" {'after' if report.seconds is not None else 'in'} its {report.stage} stage"
        rows = f" ({report.rows:,} rows)" if report.rows else ""
    return (
        f"model of {trace}{rows}: out of memory{where} ({exc}): {OUT_OF_MEMORY_HINT};"
        " `--partitions N` makes the model in N key partitions on disk"
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
    processes: Annotated[
        int,
        typer.Option(help="Processes drawing and writing sessions: this one and P-1 workers."),
    ] = 1,
) -> None:
    """Write synthetic sessions drawn from a model (request side; no target needed)."""
    from contextlib import nullcontext

    from tracereplay.models.arrivals import ARRIVAL_PROCESSES
    from tracereplay.models.model_file import read_model
    from tracereplay.models.synthesize import plan_of, start_team, synthesize
    from tracereplay.outdir import check_out_dir, removed_on_failure
    from tracereplay.units import parse_duration_s

    check_out_dir(out)
    duration_s = parse_duration_s(duration) if duration else None
    if arrivals not in ARRIVAL_PROCESSES:
        raise UsageError(f"--arrivals {arrivals!r}: choose one of {', '.join(ARRIVAL_PROCESSES)}")
    if processes < 1:
        raise UsageError("--processes must be ≥ 1")
    source = read_model(model)
    # The workers start now, forked with this process's imports and before any thread of
    # its own (the status display below runs one): they render the pools while the model
    # and the options are checked here, and draw only once they pass. What only this
    # process needs is imported after.
    plan = plan_of(scale=scale, duration_s=duration_s, seed=seed, arrivals=arrivals)
    with start_team(source, plan, processes) or nullcontext() as team:
        from rich.console import Console

        from tracereplay.models.arrivals import ArrivalModel
        from tracereplay.models.model_check import check_draw
        from tracereplay.models.model_file import parse_model

        loaded = parse_model(source, model)
        check_draw(
            ArrivalModel.from_json(loaded["arrivals"]),
            scale=scale,
            duration_s=duration_s,
            seed=seed,
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
                processes=processes,
                team=team,
                progress=lambda done, total: status.update(
                    f"synthesizing… {done}/{total} sessions"
                ),
            )
    console.print(
        f"{result.sessions} sessions, {result.requests} requests over {result.duration_s:g} s "
        f"at {result.scale:g}× → {result.out}",
        highlight=False,
    )
