"""`tracereplay replay`: a model or a trace replayed open-loop with Locust, or a profile."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

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
            "--grace + 25s, + the discovery phase's budget when it runs]."
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
    protect: Annotated[
        str,
        typer.Option(
            help="Methods whose requests go only to objects their own session created "
            "(others are skipped and counted); add POST to protect actions too."
        ),
    ] = "DELETE,PUT,PATCH",
    allow_foreign_writes: Annotated[
        bool,
        typer.Option(
            "--allow-foreign-writes",
            help="UNSAFE: let protected requests change objects the run did not create.",
        ),
    ] = False,
    spread_addresses: Annotated[
        bool,
        typer.Option(
            "--spread-addresses",
            help="Send each session's X-Forwarded-For from its captured address pseudonym "
            "(only for targets that trust that header, e.g. behind your own proxy).",
        ),
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
        protect=protect,
        allow_foreign_writes=allow_foreign_writes,
        spread_addresses=spread_addresses,
    )
    console = Console(stderr=True)
    if allow_foreign_writes:
        console.print(
            "[bold red]--allow-foreign-writes: DELETE/PUT/PATCH requests will change objects "
            "this run did not create (real data on the target)[/]"
        )
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
    console.print(objects_line(s, outcome.out, settings.host, credentials), highlight=False)
    outcome.raise_failure()
    return outcome.exit_code if outcome.interrupted else EXIT_OK


def objects_line(s: dict[str, Any], out: Path, host: str, credentials: Path | None) -> str:
    """What the run created and left, skipped and (with --allow-foreign-writes) changed."""
    created = s.get("created_objects") or {}
    skipped = (s.get("skipped") or {}).get("total", 0)
    foreign = (s.get("foreign_writes_sent") or {}).get("total", 0)
    text = f"{skipped} requests skipped (not the session's own objects, or no live credential)"
    if foreign:
        text += f", {foreign} SENT to objects the run did not create (--allow-foreign-writes)"
    left = int(created.get("left", 0))
    text += f"; created {created.get('created', 0)} objects, {left} left"
    if left:
        command = f"tracereplay cleanup {out} --host {host}"
        text += f": remove them with `{command}" + (
            f" --credentials {credentials}`" if credentials else "`"
        )
    return text


@app.command("cleanup")
def cleanup_cmd(
    run: Annotated[Path, typer.Argument(help="Run directory of a replay (reports/RUN).")],
    host: Annotated[str, typer.Option(help="Base URL of the target the run was played against.")],
    credentials: Annotated[
        Path | None, typer.Option(help="The replay's --credentials (to sign in as its accounts).")
    ] = None,
) -> int:
    """Delete the objects a replay created and left, through the learned DELETE endpoints
    only (idempotent); exit 1 when anything is left."""
    from rich.console import Console

    from tracereplay.replay.cleanup import run_cleanup

    result = run_cleanup(run, host.rstrip("/"), credentials)
    console = Console(stderr=True)
    console.print(result.line(run), highlight=False)
    for value, why in result.left[:20]:
        console.print(f"  left {value}: {why}", highlight=False)
    return result.exit_code
