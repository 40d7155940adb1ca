"""`tracereplay replay`: a model or a trace replayed open-loop with Locust, or a profile."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli_app import EXIT_OK, EnableSloOpt, SloOpt, app


@app.command("replay")
def replay_cmd(
    source: Annotated[Path, typer.Argument(help="Model file or trace directory to replay.")],
    host: Annotated[str, typer.Option(help="Base URL of the target; nothing else is sent to.")],
    out: Annotated[Path, typer.Option(help="Run directory (reports/RUN), new or empty.")],
    scale: Annotated[
        float, typer.Option(help="N × the real arrival rate (trace: N copies per session).")
    ] = 1.0,
    duration: Annotated[
        str | None, typer.Option(help="Window of session starts [default: the source's span].")
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Time compression of arrivals and think times (1 = real).")
    ] = 1.0,
    processes: Annotated[int, typer.Option(help="Locust worker processes (1 = local).")] = 1,
    max_rps: Annotated[float | None, typer.Option(help="Hard cap on requests per second.")] = None,
    credentials: Annotated[
        Path | None, typer.Option(help="CSV email,password[,role] for the sessions' logins.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the plan.")] = 0,
    ui: Annotated[bool, typer.Option("--ui", help="Run with Locust's web UI.")] = False,
    grace: Annotated[
        str | None,
        typer.Option(
            help="How long sessions may run past the last planned start [default: the "
            "source's p99 session duration]."
        ),
    ] = None,
    arrivals: Annotated[
        str, typer.Option(help="stratified or poisson session arrivals (model source).")
    ] = "stratified",
    profile: Annotated[
        str | None,
        typer.Option(help="Scenario (model source): peak, spike, soak or stress (see --help)."),
    ] = None,
    steps: Annotated[
        str, typer.Option(help="stress: the N of each step, increasing.")
    ] = "1,2,4,8,16,32,64",
    refine: Annotated[
        int, typer.Option(help="stress: extra steps bisecting between the last pass and fail.")
    ] = 0,
    slo: SloOpt = None,
    enable_slo: EnableSloOpt = None,
    watch_pid: Annotated[
        list[int] | None, typer.Option(help="soak: also sample this process's memory.")
    ] = None,
    run_time: Annotated[
        str | None,
        typer.Option(
            help="Hard bound on the whole run, stopping included [default: the window + "
            "--grace + 25s]."
        ),
    ] = None,
    max_body: Annotated[
        str, typer.Option(help="Bytes of a response body read at most (the rest is not read).")
    ] = "8MiB",
    max_rss: Annotated[
        str, typer.Option(help="Memory one Locust process may use; over it the run stops.")
    ] = "4GiB",
    force: Annotated[
        bool, typer.Option("--force", help="Allow more --processes than cores.")
    ] = False,
) -> int:
    """Replay a model's or a trace's sessions open-loop at N× with Locust.

    Profiles reshape a model's arrivals: peak replays the busiest window (--duration wide,
    default 1/12 of the span) at N×; spike runs the mean rate with an N× burst in the
    middle fifth; soak runs N× the mean rate for --duration and reports latency and memory
    drift; stress replays the busiest window at each N of --steps until an SLO fails and
    reports the capacity (exit 1 when an SLO fails at the first step).
    """
    started = time.monotonic()  # --run-time bounds the whole command, imports included
    from rich.console import Console

    from tracereplay.replay.run import ReplaySettings, run_replay
    from tracereplay.units import parse_duration_s, parse_size_bytes

    settings = ReplaySettings(
        source=source,
        host=host.rstrip("/"),
        out=out,
        scale=scale,
        duration_s=parse_duration_s(duration) if duration else None,
        speed=speed,
        processes=processes,
        max_rps=max_rps,
        credentials=credentials,
        seed=seed,
        ui=ui,
        grace_s=parse_duration_s(grace) if grace else None,
        arrivals=arrivals,
        profile=profile,
        watch_pids=tuple(watch_pid or ()),
        run_time_s=parse_duration_s(run_time) if run_time else None,
        max_body=parse_size_bytes(max_body),
        max_rss=parse_size_bytes(max_rss),
        force=force,
    )
    console = Console(stderr=True)
    if profile == "stress":
        from tracereplay.replay.stress import stress_cli

        return stress_cli(settings, steps, slo, enable_slo or (), console, refine)
    with console.status("replaying…") as status:
        outcome = run_replay(
            settings,
            on_tick=lambda t, w: status.update(f"replaying… {t:.0f} s (plan window {w:.0f} s)"),
            started=started,
        )
    s = outcome.summary
    if "profile" in s:
        from tracereplay.replay.profiles import describe

        console.print(describe(s["profile"]), highlight=False)
    from tracereplay.replay.accounting import final_line

    console.print(final_line(s, outcome.out), highlight=False)
    outcome.raise_failure()
    return outcome.exit_code if outcome.interrupted else EXIT_OK
