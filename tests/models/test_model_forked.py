"""The behaviors fitted in a forked child beside the payload and correlation reads
(models/forked.py, `build_model(processes=2)`), forked before the read and sent its inputs
once the sessions are made: the same model as one process, the inputs as they were sent,
errors that come back as one line, and no child left behind (the process table)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.factories import T0, make_record, write_trace
from tests.models.test_id_select import session as selecting_session
from tests.models.test_session_sample import _write_api_trace
from tracereplay.cli import main
from tracereplay.errors import TraceCorruptError, TraceReplayError
from tracereplay.models import forked as forked_module
from tracereplay.models import model as model_module
from tracereplay.models.forked import forked
from tracereplay.models.model import build_model, model_json

SAMPLED = {"correlation_sample": 24, "correlation_per_endpoint": 4}


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (an ended one not yet reaped does not)."""
    return _state(pid) not in ("gone", "Z")


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


_EARLIER: set[int] = set()
"""The child processes this process had when the test began (other tests': a resource
tracker, a pool's workers), left out of `_children`."""


@pytest.fixture(autouse=True)
def _earlier_children() -> Iterator[None]:
    _EARLIER.clear()
    _EARLIER.update(_all_children())
    yield


def _children() -> list[int]:
    """The child processes this process made during the test, running or not yet reaped."""
    return [pid for pid in _all_children() if pid not in _EARLIER]


def _all_children() -> list[int]:
    """This process's child processes, running or not yet reaped (the process table)."""
    mine, found = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state_and_parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:  # (ended meanwhile)
            continue
        if state_and_parent[1] == mine:
            found.append(int(stat.parent.name))
    return found


def test_the_work_runs_in_a_child_on_what_it_is_sent() -> None:
    parent = os.getpid()
    with forked(lambda sent: (os.getpid(), sent)) as pending:
        pending.send([0, 1, 2, 3, 4])
        pid, values = pending.result()
        assert pending.result() == (pid, values)  # asked again: the same, not run again
    assert pid != parent and values == [0, 1, 2, 3, 4] and pending.seconds is not None
    assert not _alive(pid) and not multiprocessing.active_children() and not _children()
    with forked(lambda sent: (os.getpid(), sent), child=False) as pending:
        pending.send("here")
        assert pending.result() == (parent, "here")


def test_the_inputs_arrive_as_they_were_sent() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({
        "session_id": np.arange(1000, dtype=np.int32) // 7,
        "endpoint": pd.Categorical.from_codes(np.arange(1000) % 3, ["GET /a", "GET /b", "x"]),
        "think_s": np.where(np.arange(1000) % 7, 0.5, np.nan),
    })  # fmt: skip
    read_only = np.linspace(0.0, 1.0, 33)
    read_only.flags.writeable = False
    sent = {
        "frame": frame,
        "strided": np.arange(30, dtype=np.int64)[::3],  # (not contiguous: pickled in the header)
        "empty": np.zeros(0, dtype=np.float64),
        "odd": np.arange(5, dtype=np.int8),  # (the next array starts aligned all the same)
        "read_only": read_only,
        "bools": np.arange(9) % 2 == 0,
        "objects": np.array(["a", None, 3], dtype=object),
    }

    def seen(got: dict[str, Any]) -> dict[str, Any]:
        arrays = {k: v for k, v in got.items() if isinstance(v, np.ndarray)}
        return {
            "got": got,
            "writeable": {k: bool(v.flags.writeable) for k, v in arrays.items()},
            "aligned": all(v.ctypes.data % 8 == 0 for v in arrays.values() if v.size),
        }

    with forked(seen) as pending:
        pending.send(sent)
        answer = pending.result()
    got = answer["got"]
    assert got.keys() == sent.keys() and answer["aligned"]
    pd.testing.assert_frame_equal(got["frame"], frame)
    for name in sent.keys() - {"frame"}:
        assert got[name].dtype == sent[name].dtype
        assert np.array_equal(got[name], sent[name], equal_nan=name != "objects")
    assert answer["writeable"] == {"strided": True, "empty": True, "odd": True,
                                   "read_only": False, "bools": True, "objects": True}  # fmt: skip


def test_the_child_imports_its_modules_before_its_inputs_come(tmp_path: Path) -> None:
    import sys

    (tmp_path / "child_probe.py").write_text("import os\nPID = os.getpid()\n")
    sys.path.insert(0, str(tmp_path))
    try:
        imports = ["child_probe", "no_such_module_anywhere"]  # (one that fails: left to work)
        with forked(lambda _: sys.modules["child_probe"].PID, imports=imports) as pending:
            pending.send(None)
            assert pending.result() == pending.pid
        assert "child_probe" not in sys.modules  # imported there, not here
    finally:
        sys.path.remove(str(tmp_path))


def _answers_then_lingers(release: Path, _: object) -> int:
    """Answers its pid; its process ends only once `release` exists (a thread that is not
    a daemon holds its exit, as the kernel's unmapping of a big child's memory does)."""
    import threading

    def held() -> None:
        _wait_for(release)

    threading.Thread(target=held).start()
    return os.getpid()


def test_the_caller_takes_the_answer_without_waiting_for_the_child_to_end(
    tmp_path: Path,
) -> None:
    """The result comes once the child has answered; the child, ending on its own, is
    reaped when the block is left (not killed: its exit runs beside the caller's work)."""
    release = tmp_path / "release"
    with forked(partial(_answers_then_lingers, release)) as pending:
        pending.send(None)
        child = pending.result()
        assert child == pending.pid and _alive(child)  # answered, not yet ended
        release.write_text("go")
    assert not _alive(child) and not _children()
    assert pending.process is None


def _pid_and(arg: object) -> tuple[int, object]:
    return os.getpid(), arg


def _fails(arg: object) -> None:
    raise ValueError(f"a bug with {arg}")


def _dies(_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_child_answers_questions_once_its_work_is_done() -> None:
    """Asked before or after the work's result is taken, the child answers (its answer to
    the work kept); once the caller asks no more (`done_asking`, or the result taken), or
    with no child, the question runs here."""
    parent = os.getpid()
    with forked(lambda sent: (os.getpid(), sent)) as pending:
        pending.send("work")
        assert pending.ask(_pid_and, "first") == (pending.pid, "first")
        assert pending.ask(_pid_and, [1, 2]) == (pending.pid, [1, 2])
        assert pending.result() == (pending.pid, "work")
        assert pending.ask(_pid_and, "after") == (parent, "after")
    assert not _children()
    with forked(lambda sent: sent) as pending:
        pending.send("work")
        pending.done_asking()
        assert pending.ask(_pid_and, "told") == (parent, "told")
        assert pending.result() == "work"
    with forked(lambda sent: sent, child=False) as pending:
        pending.send("work")
        assert pending.ask(_pid_and, "none") == (parent, "none")
        assert pending.result() == "work"
    assert not multiprocessing.active_children() and not _children()


def test_a_question_that_fails_or_kills_the_child_is_raised_in_the_caller() -> None:
    with pytest.raises(ValueError, match="a bug with 3") as raised, forked(abs) as pending:
        pending.send(-1)
        pending.ask(_fails, 3)
    assert "in the forked child" in "".join(raised.value.__notes__)
    with forked(lambda sent: sent) as pending:
        pending.send("kept")
        with pytest.raises(TraceReplayError, match="ended by SIGKILL"):
            pending.ask(_dies, None)
        assert pending.result() == "kept"  # (its answer to the work came first)
    with forked(_dies) as pending:  # died at its work: said by the question and the result
        pending.send(None)
        with pytest.raises(TraceReplayError, match="ended by SIGKILL"):
            pending.ask(_pid_and, None)
        with pytest.raises(TraceReplayError, match="ended by SIGKILL"):
            pending.result()
    assert not multiprocessing.active_children() and not _children()


def test_a_child_waiting_for_questions_ends_when_the_block_is_left() -> None:
    start = time.monotonic()
    with forked(abs) as pending:
        pending.send(-1)
        assert pending.ask(_pid_and, None)[0] == pending.pid  # done, and waiting for more
        child = pending.pid
    assert time.monotonic() - start < 30
    assert child is not None and not _alive(child) and not _children()


def test_an_error_in_the_child_is_raised_in_the_caller() -> None:
    def corrupt(_: object) -> None:
        raise TraceCorruptError("part-000001.parquet: not Parquet")

    with pytest.raises(TraceCorruptError) as raised, forked(corrupt) as pending:
        pending.send(None)
        pending.result()
    assert str(raised.value) == "part-000001.parquet: not Parquet"

    def bug(_: object) -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug") as bug_raised, forked(bug) as pending:
        pending.send(None)
        pending.result()
    assert "in the forked child" in "".join(bug_raised.value.__notes__)
    assert not multiprocessing.active_children() and not _children()


def test_a_child_that_dies_is_a_one_line_error() -> None:
    killed = forked(lambda _: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(TraceReplayError, match="ended by SIGKILL"), killed as pending:
        pending.send(None)
        pending.result()
    assert not multiprocessing.active_children() and not _children()
    with forked(lambda _: None) as pending:  # gone before its inputs: said by result()
        os.kill(pending.pid or 0, signal.SIGKILL)
        pending.process.join()
        pending.send(list(range(100_000)))
        with pytest.raises(TraceReplayError, match="ended by SIGKILL"):
            pending.result()
    assert not _children()


@pytest.mark.parametrize("sent", [False, True])
def test_an_error_in_the_caller_kills_the_child(tmp_path: Path, sent: bool) -> None:
    pid_file = tmp_path / "pid"

    def slow(_: object) -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)

    start = time.monotonic()
    with pytest.raises(TraceCorruptError), forked(slow) as pending:
        child = pending.pid
        assert child in _children()  # forked at the block's start, before any input
        if sent:
            pending.send(None)
            _wait_for(pid_file)
        raise TraceCorruptError("the caller's read failed")
    assert time.monotonic() - start < 30
    assert child is not None and not _alive(child)
    assert not multiprocessing.active_children() and not _children()


def test_ctrl_c_in_the_caller_kills_the_child_and_only_the_caller_hears_it() -> None:
    with pytest.raises(KeyboardInterrupt), forked(lambda _: time.sleep(60)) as pending:
        child = pending.pid
        assert child is not None
        os.kill(child, signal.SIGINT)  # (as a terminal's Ctrl-C: to both; the child ignores it)
        time.sleep(0.2)
        assert _alive(child)
        pending.send(None)
        raise KeyboardInterrupt
    assert not _alive(child) and not _children()


@pytest.mark.parametrize("answered", [False, True])
def test_a_caller_killed_outright_leaves_no_child(tmp_path: Path, answered: bool) -> None:
    """SIGKILL leaves no `finally`: the child waiting for its inputs, or done and waiting
    for questions, sees the caller's end of the pipe close, and ends."""
    import subprocess
    import sys

    script = (
        "import os, time\n"
        "from tracereplay.models.forked import forked\n"
        "with forked(lambda _: None) as pending:\n"
        + ("    pending.send(None)\n    pending.ask(abs, -1)\n" if answered else "")
        + "    print(pending.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as caller:
        assert caller.stdout is not None
        child = int(caller.stdout.readline())
        assert _alive(child)
        caller.kill()
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(child)  # (ended: reaped by init, or soon)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_the_child_is_forked_before_the_read_and_killed_when_the_read_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_api_trace(tmp_path / "t", 30)
    at_the_read: list[list[int]] = []

    def failing_read(*_: Any, **__: Any) -> Any:
        at_the_read.append(_children())
        raise TraceCorruptError("part-000000.parquet: a bad page")

    monkeypatch.setattr(model_module, "read_light_columns", failing_read)
    for processes in (2, 1):
        with pytest.raises(TraceCorruptError, match="a bad page"):
            build_model(tmp_path / "t", processes=processes)
        assert not _children() and not multiprocessing.active_children()
    forked_child, none = at_the_read
    assert len(forked_child) == 1 and none == []
    assert not _alive(forked_child[0])


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


def test_the_child_imports_clustering_and_arrivals_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_api_trace(tmp_path / "t", 30)
    scipy, clustering = forked_module.SCIPY_MODULES, forked_module.CLUSTERING_MODULES
    assert "scipy.stats" in scipy and "sklearn.cluster" in clustering
    asked: list[list[str]] = []
    monkeypatch.setattr(model_module, "forked", lambda *a, imports, **k: (
        asked.append(list(imports)) or forked(*a, imports=imports, **k)))  # fmt: skip
    build_model(tmp_path / "t", processes=2, **SAMPLED)
    assert asked == [[*clustering, *scipy]]


_SCIPY_HERE = """
import sys
from pathlib import Path
from tracereplay.models import model
work = model._behaviors_and_shape
def scipy_loaded():
    return sum(name.split(".")[0] == "scipy" for name in sys.modules)
def fits(inputs):
    Path(sys.argv[2]).write_text(str(scipy_loaded()))  # (in the child)
    return work(inputs)
model._behaviors_and_shape = fits
built = model.build_model(Path(sys.argv[1]), processes=2)
Path(sys.argv[3]).write_text(model.model_json(built))
print(scipy_loaded())
"""


def _write_selecting_trace(path: Path) -> None:
    """Eight sessions that each list six items and sync a ready one (tests/models/
    test_id_select.py): ids the model selects by `ready`, a binomial test."""
    records = [
        make_record(ts=T0 + timedelta(hours=s, seconds=i), session=f"s-{s}", **exchange)
        for s in range(8)
        for i, exchange in enumerate(selecting_session(s, pick=2 * (s % 3), read=s % 6))
    ]
    write_trace(path, records)


@pytest.mark.parametrize("selecting", [False, True])
def test_the_caller_loads_no_scipy_where_the_child_fits(tmp_path: Path, selecting: bool) -> None:
    """`build_model` with its child: the read, templates, sessions, payloads and
    correlations load no scipy in the caller (the sessions' counting sort is pandas'), so
    it forks at once; the child loads its own (sklearn's and the arrivals'), and tests
    the ids' selections once it has fitted (`Pending.ask`): the model of one process."""
    import subprocess

    if selecting:
        _write_selecting_trace(tmp_path / "t")
    else:
        _write_api_trace(tmp_path / "t", 30)
    in_child, built = tmp_path / "in_child.txt", tmp_path / "model.json"
    done = subprocess.run(
        [sys.executable, "-c", _SCIPY_HERE, str(tmp_path / "t"), str(in_child), str(built)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(done.stdout.split()[-1]) == 0
    assert int(in_child.read_text()) > 0
    assert built.read_text() == model_json(build_model(tmp_path / "t", processes=1))
    model = json.loads(built.read_text())
    selects = [t["select"] for t in model["ids"]["targets"] if "select" in t]
    assert selects == ([{"field": "ready", "value": True, "chosen": 1.0, "among": 0.5,
                         "sessions": 8}] if selecting else [])  # fmt: skip


_DEPTH_PROBE = """
import os, sys, threading
frame, depth = sys._getframe(), 0
while frame is not None:
    frame, depth = frame.f_back, depth + 1
LOADED = (os.getpid(), threading.current_thread() is threading.main_thread(), depth)
"""


def test_imports_run_as_deep_whatever_the_callers_depth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The modules the child imports load on a thread of their own, whose frame stack
    starts empty: as deep however deep `forked` is called (CPython maps and unmaps a
    frame-stack chunk at each call across its edge, and where the edge falls depends on
    the depth: `preload`)."""
    (tmp_path / "child_depth.py").write_text(_DEPTH_PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))

    def loaded(extra: int) -> Any:
        if extra:
            return loaded(extra - 1)
        with forked(
            lambda _: sys.modules["child_depth"].LOADED, imports=["child_depth"]
        ) as pending:
            pending.send(None)
            return pending.result()

    shallow, deep = loaded(0), loaded(40)
    for child in (shallow, deep):
        assert child[0] != os.getpid() and child[1] is False  # there, not on its main thread
    assert deep[2] == shallow[2]  # the same depth, 40 frames deeper or not


@pytest.mark.parametrize(("cores", "load", "in_caller", "in_child"),
                         [(2, 0.0, True, False), (2, 1.6, False, False),
                          (4, 0.0, True, True), (4, 2.6, True, False)])  # fmt: skip
def test_the_childs_fits_take_a_second_thread_only_beside_its_caller_s_core(
    monkeypatch: pytest.MonkeyPatch, cores: int, load: float, in_caller: bool, in_child: bool
) -> None:
    """The K sweep's second thread (`behaviors._core_free`) wants a core that idles: in
    the forked child, one beside the caller's too (quiet, 2 cores: the caller's payload
    reads run on the other core then)."""
    from tracereplay.models import behaviors

    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert behaviors._core_free() is in_caller
    with forked(lambda _: behaviors._core_free()) as pending:
        pending.send(None)
        assert pending.result() is in_child


def test_the_child_skips_the_callers_objects_and_the_caller_keeps_collecting() -> None:
    import gc

    before = gc.get_freeze_count()
    with forked(lambda _: gc.get_freeze_count()) as pending:
        assert gc.get_freeze_count() == before and gc.isenabled()  # the caller: as it was
        pending.send(None)
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
