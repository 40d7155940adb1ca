"""The behaviors fitted in a forked child beside the payload and correlation reads
(models/forked.py, `build_model(processes=2)`): the same model as one process, errors
that come back as one line, and no child left behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.models.test_session_sample import _write_api_trace
from tracereplay.cli import main
from tracereplay.errors import TraceCorruptError, TraceReplayError
from tracereplay.models import model as model_module
from tracereplay.models.forked import forked
from tracereplay.models.model import build_model, model_json

SAMPLED = {"correlation_sample": 24, "correlation_per_endpoint": 4}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _fits_where(monkeypatch: pytest.MonkeyPatch, pid_file: Path) -> Callable[[], list[int]]:
    """Each `fit_behaviors` of `build_model` writes its process id; the ids, in order."""
    fit = model_module.fit_behaviors

    def fit_where(*args: Any, **kw: Any) -> Any:
        with pid_file.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return fit(*args, **kw)

    monkeypatch.setattr(model_module, "fit_behaviors", fit_where)
    return lambda: [int(line) for line in pid_file.read_text().split()]


def _wait_for(pid_file: Path) -> None:
    deadline = time.monotonic() + 30
    while (not pid_file.exists() or not pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_work_runs_in_a_child_and_its_result_comes_back() -> None:
    parent = os.getpid()
    with forked(lambda: (os.getpid(), list(range(5)))) as pending:
        pid, values = pending.result()
        assert pending.result() == (pid, values)  # asked again: the same, not run again
    assert pid != parent and values == [0, 1, 2, 3, 4] and pending.seconds is not None
    assert not _alive(pid) and not multiprocessing.active_children()
    with forked(os.getpid, child=False) as pending:
        assert pending.result() == parent


def test_an_error_in_the_child_is_raised_in_the_caller() -> None:
    def corrupt() -> None:
        raise TraceCorruptError("part-000001.parquet: not Parquet")

    with pytest.raises(TraceCorruptError) as raised, forked(corrupt) as pending:
        pending.result()
    assert str(raised.value) == "part-000001.parquet: not Parquet"

    def bug() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug") as bug_raised, forked(bug) as pending:
        pending.result()
    assert "in the forked child" in "".join(bug_raised.value.__notes__)
    assert not multiprocessing.active_children()


def test_a_child_that_dies_is_a_one_line_error() -> None:
    killed = forked(lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(TraceReplayError, match="ended by SIGKILL"), killed as pending:
        pending.result()
    assert not multiprocessing.active_children()


def test_an_error_in_the_caller_kills_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def slow() -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)

    start = time.monotonic()
    with pytest.raises(TraceCorruptError), forked(slow):
        _wait_for(pid_file)
        raise TraceCorruptError("the caller's read failed")
    assert time.monotonic() - start < 30
    assert not _alive(int(pid_file.read_text())) and not multiprocessing.active_children()


def test_two_processes_build_the_model_of_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_api_trace(tmp_path / "t", 90)
    pids = _fits_where(monkeypatch, tmp_path / "pids")
    one = build_model(tmp_path / "t", processes=1, **SAMPLED)
    two = build_model(tmp_path / "t", processes=2, **SAMPLED)
    assert model_json(two) == model_json(one)
    # What the comparison covers: behaviors, rules, auth and every session's addresses.
    assert one["behaviors"] and one["correlations"] and one["auth"]["login"]
    assert one["outcomes"]["addresses"] and one["outcomes"]["behaviors"]
    first, second = pids()
    assert first == os.getpid() != second


def test_bad_input_in_either_process_is_a_one_line_error_and_no_child_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_api_trace(tmp_path / "t", 30)
    pid_file = tmp_path / "pid"
    monkeypatch.setattr(model_module, "free_processes", lambda: 2)  # the CLI forks

    def corrupt_behaviors(*_: Any, **__: Any) -> Any:
        raise TraceCorruptError("behaviors: a bad page")

    monkeypatch.setattr(model_module, "fit_behaviors", corrupt_behaviors)
    assert main(["model", str(tmp_path / "t"), "--out", str(tmp_path / "a.json")]) == 2

    def slow_behaviors(*_: Any, **__: Any) -> Any:
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)

    def corrupt_payloads(*_: Any, **__: Any) -> Any:
        _wait_for(pid_file)  # the child has begun
        raise TraceCorruptError("payloads: a bad page")

    monkeypatch.setattr(model_module, "fit_behaviors", slow_behaviors)
    monkeypatch.setattr(model_module, "_payload_models", corrupt_payloads)
    start = time.monotonic()
    assert main(["model", str(tmp_path / "t"), "--out", str(tmp_path / "b.json")]) == 2
    assert time.monotonic() - start < 30
    assert not _alive(int(pid_file.read_text())) and not multiprocessing.active_children()
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("tracereplay: error: ")]
    said = [e.split(": ", 2)[2] for e in errors]
    assert said == ["behaviors: a bad page", "payloads: a bad page"]
    assert "Traceback" not in "".join(lines)
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()


@pytest.mark.parametrize(("load", "cores", "expected"), [(0.3, 2, 2), (1.2, 2, 2), (1.6, 2, 1),
                                                         (5.0, 8, 2), (0.0, 1, 1)])  # fmt: skip
def test_a_child_is_forked_only_beside_an_idle_core(
    monkeypatch: pytest.MonkeyPatch, load: float, cores: int, expected: int
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert model_module.free_processes() == expected


def test_by_default_the_load_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_api_trace(tmp_path / "t", 30)
    pids = _fits_where(monkeypatch, tmp_path / "pids")
    for free in (1, 2):
        monkeypatch.setattr(model_module, "free_processes", lambda free=free: free)
        build_model(tmp_path / "t")
    first, second = pids()
    assert first == os.getpid() != second


def test_the_clustering_imports_are_preloaded_for_large_traces_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracereplay.models import forked as forked_module
    from tracereplay.models.source import ParquetSource

    _write_api_trace(tmp_path / "t", 30)
    source = ParquetSource.open(tmp_path / "t")
    rows = source.trace.num_rows
    scipy, clustering = forked_module.SCIPY_MODULES, forked_module.CLUSTERING_MODULES
    assert "scipy.stats" in scipy and "sklearn.cluster" in clustering
    for threshold, expected in ((rows + 1, scipy), (rows, [*scipy, *clustering])):
        monkeypatch.setattr(forked_module, "PRELOAD_CLUSTERING_ROWS", threshold)
        assert forked_module.preloaded_modules(source) == expected

    class Unsized:  # a source that does not say its rows: taken as large
        pass

    assert forked_module.preloaded_modules(Unsized()) == [*scipy, *clustering]  # type: ignore[arg-type]
    models = []
    for threshold in (rows + 1, 0):  # the child imports sklearn itself; inherits it
        monkeypatch.setattr(forked_module, "PRELOAD_CLUSTERING_ROWS", threshold)
        models.append(model_json(build_model(tmp_path / "t", processes=2, **SAMPLED)))
    assert models[0] == models[1]


def test_the_child_skips_the_callers_objects_and_the_caller_keeps_collecting() -> None:
    import gc

    before = gc.get_freeze_count()
    with forked(gc.get_freeze_count) as pending:
        assert gc.get_freeze_count() == before and gc.isenabled()  # the caller: as it was
        frozen_in_child = pending.result()
    assert frozen_in_child > before  # the objects made before the fork: frozen in the child


def test_no_collection_while_the_preload_imports_and_then_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import sys

    from tracereplay.models.forked import preload

    for n, enabled in enumerate((True, False)):
        name = f"preload_probe_{n}"
        (tmp_path / f"{name}.py").write_text("import gc\nCOLLECTING = gc.isenabled()\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        (gc.enable if enabled else gc.disable)()
        try:
            preload([name, "no_such_module_anywhere"]).join()
            assert sys.modules[name].COLLECTING is False
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
            sys.modules.pop(name, None)
