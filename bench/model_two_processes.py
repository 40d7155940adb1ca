"""`tracereplay model ...` with the behaviors always in a forked child (`processes=2`),
whatever the load: `free_processes` says 1 above a 1-minute load of 1.5 on 2 cores, so an
A/B on a machine other helpers share would otherwise time the one-process path.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_two_processes.py TRACE --out F

Runs the console script of the tree whose venv runs it (bench/ab_model_two_processes.sh).
"""

from __future__ import annotations

import sys

from tracereplay.cli import console
from tracereplay.models import model


def run(processes: int) -> int:
    """`tracereplay model` with this argv, `processes` processes whatever the load."""
    model.free_processes = lambda: processes  # type: ignore[attr-defined]
    sys.argv[0] = "tracereplay"
    sys.argv.insert(1, "model")
    return console()


if __name__ == "__main__":
    sys.exit(run(2))
