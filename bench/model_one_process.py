"""`tracereplay model ...` with every stage in this process (`processes=1`), whatever the
load: the path a busy machine takes (`free_processes` says 1 above a 1-minute load of 1.5
on 2 cores), for its peak RSS and time under `/usr/bin/time -v`.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_one_process.py TRACE --out F

Runs the console script of the tree whose venv runs it (model_two_processes.py: the other
path).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_two_processes import run

if __name__ == "__main__":
    sys.exit(run(1))
