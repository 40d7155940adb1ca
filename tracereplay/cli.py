"""The `tracereplay` command: thin typer wrappers over plain functions.

Each stage is imported inside its command, so `capture` and `model` never load gevent
(only replay code imports locust). `main` turns every `TraceReplayError` and usage error
into one line on stderr and exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tracereplay.errors import TraceReplayError

app = typer.Typer(
    name="tracereplay",
    help="Trace-replay traffic simulator for HTTP APIs: capture, model, replay, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

SeedOpt = Annotated[
    int | None, typer.Option(help="Seed of the sandbox's data and accounts [default: 7].")
]


@app.command("info")
def info_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace directory (traces/NAME).")],
) -> None:
    """Show what a trace holds: rows, files, time span, where it came from."""
    from tracereplay.trace.info import describe_trace, render_trace_info

    render_trace_info(describe_trace(trace))


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
    ] = "2m",
    users: Annotated[int, typer.Option(help="Staging users at the day's peak.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the sandbox data and the users.")] = 7,
) -> int:
    """Run the pipeline on the bundled sandbox: target up, staging users, summary."""
    from tracereplay.demo.pipeline import default_out_dir, run_demo
    from tracereplay.units import parse_duration_s

    result = run_demo(
        out or default_out_dir(), duration_s=parse_duration_s(duration), users=users, seed=seed
    )
    return EXIT_INTERRUPTED if result.staging.interrupted else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        result = app(args=argv, prog_name="tracereplay", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except TraceReplayError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "tracereplay"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # empty when no arguments were given and the help was printed
            _fail(f"{where}: {message} (see {where} --help)")
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    return result if isinstance(result, int) else EXIT_OK


def _fail(message: str) -> None:
    line = " ".join(message.split())
    sys.stderr.write(f"tracereplay: error: {line}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
