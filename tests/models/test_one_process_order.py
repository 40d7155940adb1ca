"""With no child (`build_model(processes=1)`, a busy machine), the behaviors are fitted as
soon as the sessions' sensitivity is done, their inputs let go and glibc's freed memory
given back after them and again between the clustering and the chains, before the
payloads and correlations read: one fit, the model of two processes. In a child none of
that trimming is done (its memory goes with it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.models.test_model_forked import SAMPLED
from tests.models.test_session_sample import _write_api_trace
from tracereplay.models import behaviors as behaviors_module
from tracereplay.models import model as model_module
from tracereplay.models.forked import forked
from tracereplay.models.model import build_model, model_json


def _recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happens, in order: each fit of the behaviors, each trim of glibc's heap, each
    clustering's end, and the start of each model stage."""
    seen: list[str] = []
    work, fit = model_module._behaviors_and_shape, behaviors_module.fit_behaviors

    def working(inputs: Any) -> Any:
        seen.append(f"fit in_caller={inputs.in_caller}")
        return work(inputs)

    def fitting(*args: Any, clustered: Any = None, **kw: Any) -> Any:
        def said() -> None:
            seen.append("clustered")
            clustered()

        return fit(*args, clustered=None if clustered is None else said, **kw)

    monkeypatch.setattr(model_module, "_behaviors_and_shape", working)
    monkeypatch.setattr(model_module, "fit_behaviors", fitting)
    monkeypatch.setattr(model_module, "give_back_freed", lambda: seen.append("trim"))
    return seen


def _stages(seen: list[str]) -> Any:
    def progress(report: Any) -> None:
        if report.seconds is None:
            seen.append(f"start {report.stage}")

    return progress


def test_one_process_fits_the_behaviors_before_the_payloads_and_trims_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_api_trace(tmp_path / "t", 90)
    two = build_model(tmp_path / "t", processes=2, **SAMPLED)
    seen = _recorded(monkeypatch)
    one = build_model(tmp_path / "t", processes=1, progress=_stages(seen), **SAMPLED)
    assert model_json(one) == model_json(two)
    assert seen.count("fit in_caller=True") == 1
    fit = seen.index("fit in_caller=True")
    assert seen.index("start sensitivity") < fit < seen.index("start payloads")
    assert seen[fit + 1 : fit + 3] == ["clustered", "trim"]
    assert seen[fit + 3] == "trim"  # after the fit, before the payloads
    assert one["behaviors"] and one["correlations"]


def test_two_processes_trim_nothing_for_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_api_trace(tmp_path / "t", 90)
    seen = _recorded(monkeypatch)
    build_model(tmp_path / "t", processes=2, progress=_stages(seen), **SAMPLED)
    assert "fit in_caller=True" not in seen and "clustered" not in seen
    # (the child's own record is not seen here: its fit was told it is no caller's)


def test_a_result_asked_twice_in_the_caller_is_worked_out_once_and_its_inputs_let_go() -> None:
    calls: list[int] = []

    def work(inputs: list[int]) -> int:
        calls.append(1)
        return sum(inputs)

    with forked(work, child=False) as pending:
        assert pending.in_caller
        pending.send([1, 2, 3])
        assert pending.result() == 6 and pending.result() == 6
        assert calls == [1] and pending.inputs is None and pending.seconds is not None
    with forked(work, child=True) as pending:
        assert not pending.in_caller
        pending.send([4, 5])
        assert pending.result() == 9 and pending.result() == 9
