"""What a replay's Locust process does before its first start: it imports no scipy (its
stats and spatial modules took ~0.8 s of CPU in every worker's start-up; only a profile's
report after the run needs it), and a single process's time zero lies far enough ahead
that the sessions due first are spawned and waiting before it. In a child process: the
replay's modules import Locust, which patches the interpreter with gevent."""

from __future__ import annotations

from .children import child_output


def test_a_replay_process_imports_no_scipy() -> None:
    code = (
        "import sys\n"
        "import tracereplay.replay.locustfile\n"
        "import tracereplay.replay.profiles\n"
        "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))\n"
    )
    assert child_output(code).strip() == "[]"


def test_a_single_process_time_zero_leaves_its_first_sessions_their_lead() -> None:
    code = (
        "import time, types\n"
        "from tracereplay.replay.driver import START_LEAD_S\n"
        "from tracereplay.replay.user import ReplayUser\n"
        "local = types.SimpleNamespace(environment=types.SimpleNamespace(runner=object()))\n"
        "before = time.time()\n"
        "zero = ReplayUser._time_zero(local, 0)\n"
        "print(zero - before - START_LEAD_S)\n"
    )
    # The sessions due within START_LEAD_S of zero are spawned that long ahead of their
    # start: with zero this far ahead, before it (at 0.02 s they were spawned at once).
    assert float(child_output(code)) >= 0.15


def test_the_soak_report_still_imports_scipy_where_it_runs() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from tracereplay.replay.profiles import _drift\n"
        "t = np.arange(10.0)\n"
        "d = _drift(t, 2 * t + 1, 1.0)\n"
        "print(round(d['slope'], 6), 'scipy.stats' in sys.modules)\n"
    )
    assert child_output(code).split() == ["2.0", "True"]
