"""`tracereplay model ...` with the behaviors in a forked child (as model_two_processes.py),
then the peak RSS of each process on stderr: this process's (VmHWM) and the child's
(`RUSAGE_CHILDREN`), MiB. `/usr/bin/time` gives only the larger of the two.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_peaks.py TRACE --out F
"""

from __future__ import annotations

import atexit
import resource
import sys
from pathlib import Path

from tracereplay.cli import console
from tracereplay.models import model


def _hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peaks() -> None:
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peaks MiB: parent {_hwm_mib():.0f} child {child:.0f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    model.free_processes = lambda: 2  # type: ignore[attr-defined]
    # (the command ends by os._exit once atexit's functions ran: tracereplay/process_end.py)
    atexit.register(_peaks)
    sys.argv[0] = "tracereplay"
    sys.argv.insert(1, "model")
    sys.exit(console())
