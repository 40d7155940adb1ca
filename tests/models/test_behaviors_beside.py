"""The behaviors' k-means fits on threads, and the work made beside them: `meanwhile` is
called once on every path of `fit_behaviors`, while the fits are still to be read where
they run on threads, and `_behaviors_and_shape` gives the answers of its steps one after
the other."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pandas as pd
import pytest

from tests.models.test_behaviors_vectorized import random_sessions
from tests.models.test_sessions_behaviors import chain_trace
from tracereplay.models import behaviors, model
from tracereplay.models.arrivals import fit_arrivals
from tracereplay.models.behaviors import fit_behaviors
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import session_table


@pytest.mark.parametrize("case", ["sessions", "one_kind", "empty"])
def test_meanwhile_is_called_once_while_the_fits_are_still_unread(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(behaviors, "_core_free", lambda: True)
    made: list[Any] = []
    real = behaviors._Fits

    def spy(*args: Any) -> Any:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(behaviors, "_Fits", spy)
    calls: list[int] = []

    def meanwhile() -> None:  # how many fits were still to be read when it ran
        calls.append(sum(1 for _ in made[0].pending) if made else -1)

    sessions = chain_trace(300, seed=2)
    if case == "one_kind":  # one request of one endpoint each: one distinct row, no K
        sessions = sessions.groupby("session_id").head(1).assign(endpoint="GET /only")
    if case == "empty":
        sessions = sessions.iloc[:0]
    found = fit_behaviors(sessions, meanwhile=meanwhile)
    assert len(calls) == 1
    if case == "sessions":
        assert calls == [5] and len(found) >= 1  # K = 2..6, none read yet
    else:
        assert calls == [-1] and len(found) == (0 if case == "empty" else 1)


@pytest.mark.parametrize("free", [False, True])
def test_the_child_work_gives_the_answers_of_its_steps_one_after_the_other(
    free: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_behaviors_and_shape` (the arrivals and quantiles beside the fits, on threads or
    not) equals fit_behaviors, fit_arrivals and `censored_quantiles` called in turn; and with a
    `fit_behaviors` that never calls `meanwhile` it still gives them."""
    monkeypatch.setattr(behaviors, "_core_free", lambda: free)
    sessions = random_sessions(3)
    table = session_table(sessions)
    edges = censoring(sessions, 60.0)
    span = float(sessions["t_s"].max())
    inputs = model._BehaviorInputs.of(sessions, table, edges, 0, 40, span)
    expected_behaviors = [b.to_json() for b in fit_behaviors(sessions, sample=40, censored=edges)]
    expected_arrivals = fit_arrivals(table["start_s"].to_numpy(float), span).to_json()
    expected_shape = {
        name: model.censored_quantiles(table[name].to_numpy(float), edges.any)
        for name in ("length", "duration_s")
    }
    got, shape, (arrivals, seconds) = model._behaviors_and_shape(inputs)
    assert [b.to_json() for b in got] == expected_behaviors
    assert shape == expected_shape and arrivals.to_json() == expected_arrivals
    assert seconds >= 0

    def deaf(frame: pd.DataFrame, **kw: Any) -> Any:  # (as tests that stand in for it)
        kw.pop("meanwhile")
        return fit_behaviors(frame, **kw)

    monkeypatch.setattr(model, "fit_behaviors", deaf)
    got, shape, (arrivals, _) = model._behaviors_and_shape(inputs)
    assert [b.to_json() for b in got] == expected_behaviors
    assert shape == expected_shape and arrivals.to_json() == expected_arrivals


_LIMITED = """
import sys
import numpy as np
import tracereplay.models.behaviors as b
assert "sklearn.cluster" not in sys.modules
seen = []
made = b._Fits.__init__
def spy(self, points, seed, ks, controller):
    seen.append(sorted({lib.internal_api for lib in controller.lib_controllers}))
    made(self, points, seed, ks, controller)
b._Fits.__init__ = spy
rng = np.random.default_rng(0)
b.choose_clusters(rng.normal(size=(300, 4)) + np.repeat(rng.normal(size=(3, 4)) * 3, 100, 0))
print(seen)
"""


def test_the_fits_are_limited_where_sklearn_was_not_yet_imported() -> None:
    """In a process that has not imported sklearn (one process: no child imported it
    first), the thread limits know its OpenMP library when the fits run (a controller
    made before the import did not: the fits ran on the default thread count)."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", _LIMITED], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[['openblas', 'openmp']]"
