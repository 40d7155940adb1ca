"""`tracereplay info | capture | import | scan`: traces in, anonymized, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracereplay.cli_app import EXIT_OK, EXIT_THRESHOLD, KeyFileOpt, PolicyOpt, app
from tracereplay.errors import UsageError


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
    policy: PolicyOpt = None,
    key_file: KeyFileOpt = None,
    duration: Annotated[
        str | None, typer.Option(help="Stop after this long (e.g. 10m) [default: Ctrl-C].")
    ] = None,
    flush_interval: Annotated[
        str, typer.Option(help="How often buffered rows reach the disk.")
    ] = "1s",
    append: Annotated[
        bool, typer.Option("--append", help="Add rows to an existing trace.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(help="Anonymizing worker processes [default: usable cores - 1, >= 1]."),
    ] = None,
    max_backlog: Annotated[
        str,
        typer.Option(
            help="Exchanges waiting to be anonymized may hold this much; beyond it they are "
            "left out and counted (dropped_backlog), so the proxy never slows down."
        ),
    ] = "4MiB",
    rewrite_host: Annotated[
        bool,
        typer.Option(
            "--rewrite-host",
            help="Reverse mode: send the target's host:port as Host, for a target routed by "
            "virtual host [default: the client's Host, so links the app builds from it "
            "lead back through the proxy].",
        ),
    ] = False,
) -> int:
    """Record live traffic through mitmproxy into an anonymized trace (Ctrl-C stops it).

    Exit 1 when the trace could not be written to the end (a full disk): what was
    written before stays readable.
    """
    import logging

    from rich.console import Console

    from tracereplay.capture.cli_support import live_status, summary_line
    from tracereplay.capture.run import CaptureSettings, run_capture
    from tracereplay.units import parse_duration_s, parse_host_port, parse_size_bytes

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
        workers=workers,
        max_backlog_bytes=parse_size_bytes(max_backlog),
        rewrite_host=rewrite_host,
    )
    console = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="capture: %(message)s")

    def ready(address: str) -> None:
        where = f"in front of {target}" if mode == "reverse" else "as an HTTP proxy"
        console.print(f"capturing on {address} {where} into {out}", highlight=False)

    with live_status(console) as status:
        result = run_capture(settings, on_status=status, on_ready=ready)
    line = summary_line(result.stats, out, result.stopped_by, result.elapsed_s)
    console.print(line, highlight=False, soft_wrap=True)
    return EXIT_THRESHOLD if result.stats.failure is not None else EXIT_OK


@app.command("import")
def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="HAR files and/or mitmproxy dumps.")],
    out: Annotated[Path, typer.Option(help="Trace directory to write (traces/NAME).")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto, har or mitm (mitmdump -w files).")
    ] = "auto",
    policy: PolicyOpt = None,
    key_file: KeyFileOpt = None,
) -> None:
    """Import HAR 1.2 files or mitmproxy dumps into an anonymized trace (all or nothing)."""
    from rich.console import Console

    from tracereplay.capture.anonymize.policy import load_policy
    from tracereplay.capture.anonymize.pseudonyms import load_key
    from tracereplay.capture.anonymize.record import Anonymizer
    from tracereplay.capture.exchange import anonymizing
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
            to_record=anonymizing(anonymizer.record),
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
    canaries: Annotated[
        Path | None,
        typer.Option(help="File of values (one a line) that must not appear anywhere."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="A host URLs may name besides the trace's own (repeatable)."),
    ] = None,
) -> int:
    """Look for personal data and secrets left in a trace (exit 1 if anything is found)."""
    from rich.console import Console

    from tracereplay.capture.scan import read_canaries, render_scan, scan_trace

    listed = read_canaries(canaries) if canaries is not None else ()
    report = scan_trace(trace, canaries=listed, allow_hosts=allow_host or ())
    render_scan(report, Console())
    return EXIT_OK if report.clean else EXIT_THRESHOLD
