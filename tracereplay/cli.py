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

from tracereplay.errors import TraceReplayError, UsageError

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
SloOpt = Annotated[
    Path | None, typer.Option(help="SLO thresholds (TOML) [default: the FlowMastery plan's].")
]
EnableSloOpt = Annotated[
    list[str] | None,
    typer.Option(help="Turn on an SLO that is off by default (e.g. throughput)."),
]


@app.command("info")
def info_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace directory (traces/NAME).")],
) -> None:
    """Show what a trace holds: rows, files, time span, where it came from."""
    from tracereplay.trace.info import describe_trace, render_trace_info

    render_trace_info(describe_trace(trace))


@app.command("capture")
def capture_cmd(
    out: Annotated[Path, typer.Option(help="Trace directory to write (traces/NAME).")],
    target: Annotated[
        str | None,
        typer.Option(
            help="Base URL of the server to capture (reverse mode: required; regular "
            "mode: record only flows to its host)."
        ),
    ] = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT the proxy listens on.")] = (
        "127.0.0.1:8080"
    ),
    mode: Annotated[
        str, typer.Option(help="reverse (in front of --target) or regular (an HTTP proxy).")
    ] = "reverse",
    policy: Annotated[
        Path | None, typer.Option(help="Anonymization policy TOML [default: built-in].")
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Pseudonym key file [default: $TRACEREPLAY_KEY, else random]."),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Stop after this long (e.g. 10m) [default: Ctrl-C].")
    ] = None,
    flush_interval: Annotated[
        str, typer.Option(help="How often buffered rows reach the disk.")
    ] = "1s",
    append: Annotated[
        bool, typer.Option("--append", help="Add rows to an existing trace.")
    ] = False,
) -> None:
    """Record live traffic through mitmproxy into an anonymized trace (Ctrl-C stops it)."""
    import logging

    from rich.console import Console

    from tracereplay.capture.cli_support import live_status
    from tracereplay.capture.run import CaptureSettings, run_capture
    from tracereplay.units import parse_duration_s, parse_host_port

    listen_host, listen_port = parse_host_port(listen)
    flush_s = parse_duration_s(flush_interval)
    if flush_s <= 0:
        raise UsageError("--flush-interval must be > 0")
    settings = CaptureSettings(
        out=out,
        target=target,
        listen_host=listen_host,
        listen_port=listen_port,
        mode=mode,
        policy_file=policy,
        key_file=key_file,
        duration_s=parse_duration_s(duration) if duration else None,
        flush_interval_s=flush_s,
        append=append,
    )
    console = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="capture: %(message)s")

    def ready(address: str) -> None:
        where = f"in front of {target}" if mode == "reverse" else "as an HTTP proxy"
        console.print(f"capturing on {address} {where} into {out}", highlight=False)

    with live_status(console) as status:
        result = run_capture(settings, on_status=status, on_ready=ready)
    s = result.stats
    console.print(
        f"stopped ({result.stopped_by}) after {result.elapsed_s:.1f}s: {s.flows} flows, "
        f"{s.rows_flushed} rows written to {out}, {s.transport_errors} transport errors, "
        f"{s.dropped} dropped",
        highlight=False,
    )


@app.command("import")
def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="HAR files and/or mitmproxy dumps.")],
    out: Annotated[Path, typer.Option(help="Trace directory to write (traces/NAME).")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto, har or mitm (mitmdump -w files).")
    ] = "auto",
    policy: Annotated[
        Path | None, typer.Option(help="Anonymization policy TOML [default: built-in].")
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(help="Pseudonym key file [default: $TRACEREPLAY_KEY, else random]."),
    ] = None,
) -> None:
    """Import HAR 1.2 files or mitmproxy dumps into an anonymized trace (all or nothing)."""
    from rich.console import Console

    from tracereplay.capture.anonymize.policy import load_policy
    from tracereplay.capture.anonymize.pseudonyms import load_key
    from tracereplay.capture.anonymize.record import Anonymizer
    from tracereplay.capture.importers.run import import_files

    console = Console(stderr=True)
    loaded = load_policy(policy)
    key, key_source = load_key("TRACEREPLAY_KEY", key_file)
    if key_source == "random":
        console.print(
            "note: no key in $TRACEREPLAY_KEY or --key-file: pseudonyms will not match "
            "another trace's",
            highlight=False,
        )
    anonymizer = Anonymizer(loaded, key)
    with console.status("importing…") as status:
        result = import_files(
            files,
            out,
            to_record=anonymizer.record,
            policy_hash=loaded.hash,
            fmt=fmt,
            progress=lambda rows: status.update(f"importing… {rows} rows"),
        )
    console.print(
        f"imported {result.rows} rows from {result.files} file(s) into {result.out}"
        + (f" ({result.skipped} non-HTTP flows skipped)" if result.skipped else ""),
        highlight=False,
    )


@app.command("scan")
def scan_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace directory (traces/NAME).")],
) -> int:
    """Look for personal data and secrets left in a trace (exit 1 if anything is found)."""
    from rich.console import Console

    from tracereplay.capture.scan import render_scan, scan_trace

    report = scan_trace(trace)
    render_scan(report, Console())
    return EXIT_OK if report.clean else EXIT_THRESHOLD


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
    from tracereplay.units import parse_duration_s

    timeout_s = parse_duration_s(session_timeout)
    if timeout_s <= 0:
        raise UsageError("--session-timeout must be > 0")
    console = Console(stderr=True)
    with console.status("modelling…") as status:

        def stage(name: str) -> None:
            status.update(f"modelling: {name}…")
            if not console.is_terminal:
                console.print(f"model: {name}", highlight=False)

        model = build_model(trace, session_timeout_s=timeout_s, progress=stage)
    path = write_model(model, out or default_model_path(trace))
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

    from tracereplay.models.model import load_model
    from tracereplay.models.synthesize import synthesize
    from tracereplay.units import parse_duration_s

    loaded = load_model(model)
    console = Console(stderr=True)
    with console.status("synthesizing…") as status:
        result = synthesize(
            loaded,
            out,
            scale=scale,
            duration_s=parse_duration_s(duration) if duration else None,
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
    from tracereplay.units import parse_duration_s

    slos = load_slos(slo)
    # Each trace is read and sessionized once, for the numbers and the report alike.
    real_s, other_s = load_pair(real, other, session_timeout_s=parse_duration_s(session_timeout))
    result = compare_sessionized(
        real_s, other_s, scale=scale, slos=slos, enable_slos=enable_slo or ()
    )
    console = Console()
    render_compare(result, console)
    if result.slo_results:
        render_slos(result.slo_results, console)
    if out is not None:
        from tracereplay.models.report import render_report, write_report

        path = write_compare(result, out)
        title = f"{real.name} vs {other.name}"
        report = write_report(render_report(result.to_json(), real_s, other_s, title=title), out)
        Console(stderr=True).print(f"wrote {path} and {report}", highlight=False)
    # Exit 1 when a fidelity goal that could be computed was missed (DESIGN: thresholds).
    failed = result.fidelity_passed is False or result.slo_passed is False
    return EXIT_THRESHOLD if failed else EXIT_OK


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
        str, typer.Option(help="How long sessions may run past the last planned start.")
    ] = "30s",
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
    slo: SloOpt = None,
    enable_slo: EnableSloOpt = None,
    watch_pid: Annotated[
        list[int] | None, typer.Option(help="soak: also sample this process's memory.")
    ] = None,
) -> int:
    """Replay a model's or a trace's sessions open-loop at N× with Locust.

    Profiles reshape a model's arrivals: peak replays the busiest window (--duration wide,
    default 1/12 of the span) at N×; spike runs the mean rate with an N× burst in the
    middle fifth; soak runs N× the mean rate for --duration and reports latency and memory
    drift; stress replays the busiest window at each N of --steps until an SLO fails and
    reports the capacity (exit 1 when even the first step fails).
    """
    from rich.console import Console

    from tracereplay.replay.run import ReplaySettings, run_replay
    from tracereplay.units import parse_duration_s

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
        grace_s=parse_duration_s(grace),
        arrivals=arrivals,
        profile=profile,
        watch_pids=tuple(watch_pid or ()),
    )
    console = Console(stderr=True)
    if profile == "stress":
        from tracereplay.replay.stress import stress_cli

        return stress_cli(settings, steps, slo, enable_slo or (), console)
    with console.status("replaying…") as status:
        outcome = run_replay(
            settings,
            on_tick=lambda t, w: status.update(f"replaying… {t:.0f} s (plan window {w:.0f} s)"),
        )
    s = outcome.summary
    console.print(
        f"{s['sessions_started']}/{s['sessions_planned']} sessions, {s['requests']} requests, "
        f"{s['failures']} failures, {s['achieved_rps']} req/s; latency p95 "
        f"{s['latency_ms']['p95']} ms (from intended send {s['latency_intended_ms']['p95']} ms)"
        f" → {outcome.out}",
        highlight=False,
    )
    if "profile" in s:
        from tracereplay.replay.profiles import describe

        console.print(describe(s["profile"]), highlight=False)
    return EXIT_INTERRUPTED if outcome.interrupted else EXIT_OK


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
