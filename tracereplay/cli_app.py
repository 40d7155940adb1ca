"""The `tracereplay` typer app, its exit codes and the options several commands share.

Commands live in tracereplay/commands/ (one module per stage) and register on this app;
tracereplay/cli.py imports them and runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="tracereplay",
    help="Trace-replay traffic simulator for HTTP APIs: capture, model, replay, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: …]" is not a markup tag
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
PolicyOpt = Annotated[
    Path | None, typer.Option(help="Anonymization policy TOML [default: built-in].")
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(help="Pseudonym key file [default: $TRACEREPLAY_KEY, else random]."),
]
