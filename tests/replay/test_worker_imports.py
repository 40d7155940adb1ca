"""What a replay's Locust process imports before its first request: not scipy (its
stats and spatial modules took ~0.8 s of CPU in every worker's start-up), which only a
profile's report after the run needs."""

from __future__ import annotations

import subprocess
import sys


def test_a_replay_process_imports_no_scipy() -> None:
    code = (
        "import sys\n"
        "import tracereplay.replay.locustfile\n"
        "import tracereplay.replay.profiles\n"
        "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_the_soak_report_still_imports_scipy_where_it_runs() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from tracereplay.replay.profiles import _drift\n"
        "t = np.arange(10.0)\n"
        "d = _drift(t, 2 * t + 1, 1.0)\n"
        "print(round(d['slope'], 6), 'scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["2.0", "True"]
