"""`tracereplay demo-target | demo-traffic | demo`: the bundled sandbox and the pipeline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli_app import EXIT_INTERRUPTED, EXIT_OK, EXIT_THRESHOLD, SeedOpt, app
from tracereplay.errors import UsageError


@app.command("demo-target")
def demo_target_cmd(
    port: Annotated[int | None, typer.Option(help="TCP port [default: 8000].")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind [default: 127.0.0.1].")] = None,
    seed: SeedOpt = None,
    service_time_scale: Annotated[
        float | None,
        typer.Option(help="Multiply the simulated service times (0 = answer at once)."),
    ] = None,
    login_rate_limit: Annotated[
        int | None,
        typer.Option(help="Login attempts per client per minute before 429 (0 = off)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML settings file ([target] table).")
    ] = None,
    print_accounts: Annotated[
        bool, typer.Option("--print-accounts", help="Print the test accounts as CSV and exit.")
    ] = False,
) -> None:
    """Run the sandbox target: a FlowMastery-like API on 127.0.0.1 (Ctrl-C stops it)."""
    from tracereplay.demo.accounts import accounts_csv, sandbox_accounts
    from tracereplay.demo.target import load_settings, serve

    settings = load_settings(
        config,
        flags={
            "port": port,
            "host": host,
            "seed": seed,
            "service_time_scale": service_time_scale,
            "login_rate_limit": login_rate_limit,
        },
    )
    if print_accounts:
        sys.stdout.write(accounts_csv(sandbox_accounts(settings.seed)))
        return
    serve(settings)


@app.command("demo-traffic")
def demo_traffic_cmd(
    host: Annotated[
        str, typer.Option(help="Target base URL, loopback only (e.g. http://127.0.0.1:8000).")
    ],
    duration: Annotated[
        str, typer.Option(help="Wall time the compressed 24 h day takes (e.g. 90s, 2m, 1h).")
    ] = "2m",
    users: Annotated[int, typer.Option(help="Peak number of simulated users.")] = 30,
    seed: Annotated[
        int, typer.Option(help="Seed of the users' choices and of the sandbox accounts.")
    ] = 7,
    accounts: Annotated[
        Path | None,
        typer.Option(
            help="CSV email,password,role (demo-target --print-accounts) to sign in "
            "with [default: the sandbox's accounts for --seed]."
        ),
    ] = None,
    grace: Annotated[
        str, typer.Option(help="How long running sessions may finish after --duration.")
    ] = "20s",
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the end-of-run summary here as JSON.")
    ] = None,
    users_per_account: Annotated[
        int, typer.Option(help="Concurrent users that share one account.")
    ] = 3,
    failed_logins: Annotated[
        float,
        typer.Option(
            help="Share of sessions whose first login mistypes the password (401); most "
            "of them then sign in right, the others give up."
        ),
    ] = 0.0,
) -> None:
    """Play the sandbox's staging users: a bounded, seeded Locust population (loopback only)."""
    from tracereplay.demo.traffic.settings import staging_settings
    from tracereplay.units import parse_duration_s

    settings = staging_settings(
        host,
        parse_duration_s(duration),
        users,
        seed,
        accounts=accounts,
        grace_s=parse_duration_s(grace),
        users_per_account=users_per_account,
        failed_login_share=failed_logins,
    )
    from tracereplay.demo.traffic.runner import run_and_report  # loads locust (gevent)

    if run_and_report(settings, summary_json).interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command("demo")
def demo_cmd(
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for the results [default: reports/demo-DATE-TIME]."),
    ] = None,
    duration: Annotated[
        str, typer.Option(help="Length of the staging users' compressed day (e.g. 2m).")
    ] = "60s",
    users: Annotated[int, typer.Option(help="Staging users at the day's peak.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the sandbox data and the users.")] = 7,
    scale: Annotated[
        float, typer.Option(help="Replay the model at N× (0 = stop after the capture).")
    ] = 5.0,
) -> int:
    """Run the pipeline on the bundled sandbox: target, capture proxy, staging users,
    model, replay at N×, compare."""
    from tracereplay.demo.pipeline import default_out_dir, run_demo
    from tracereplay.units import parse_duration_s

    if scale < 0:
        raise UsageError("--scale must be >= 0")
    result = run_demo(
        out or default_out_dir(),
        duration_s=parse_duration_s(duration),
        users=users,
        seed=seed,
        replay_scale=scale,
    )
    if result.staging.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_THRESHOLD if result.leaks else EXIT_OK
