"""--out checked before any work (read-only, a file, a missing parent: one line, exit 2) for
model, synthesize, compare, import and replay; and removed when a command fails half-way."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.bad_input import assert_exit_2
from tests.factories import T0, make_record, write_trace
from tracereplay.errors import UsageError
from tracereplay.models.model import build_model, write_model
from tracereplay.outdir import check_out_dir, check_out_file, removed_on_failure


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nothing can be written in: chmod 555, or for root (whom permission bits
    do not stop) a read-only kernel file system."""
    if os.geteuid() != 0:
        directory = tmp_path / "ro"
        directory.mkdir()
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield directory
        directory.chmod(stat.S_IRWXU)
        return
    for candidate in (Path("/sys/fs"), Path("/sys"), Path("/proc")):
        if candidate.is_dir():
            yield candidate
            return
    pytest.skip("no read-only directory on this machine")


@pytest.fixture(scope="module")
def trace_and_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("outdir")
    rows = [make_record(ts=T0 + timedelta(seconds=i), session=f"s{i % 10}",
                        path=f"/api/items/{i % 3}") for i in range(60)]  # fmt: skip
    trace = write_trace(tmp / "trace", rows)
    return trace, write_model(build_model(trace), tmp / "m.model.json")


def test_check_out_dir_accepts_new_and_empty_and_refuses_the_rest(
    tmp_path: Path, read_only_dir: Path
) -> None:
    assert check_out_dir(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    check_out_dir(tmp_path / "full", empty=False)
    (tmp_path / "file").write_text("x")
    cases = {
        tmp_path / "full": "is not empty",
        tmp_path / "file": "exists and is not a directory",
        tmp_path / "no" / "such" / "out": "does not exist; create it first",
        tmp_path / "file" / "out": "is not a directory",
        read_only_dir / "out": "cannot write in",
    }
    for out, says in cases.items():
        with pytest.raises(UsageError, match=says):
            check_out_dir(out)
    assert not (tmp_path / "no").exists()
    assert not any(p.name.startswith(".tracereplay-probe") for p in tmp_path.rglob("*"))


def test_check_out_file(tmp_path: Path, read_only_dir: Path) -> None:
    check_out_file(tmp_path / "m.json")
    (tmp_path / "old.json").write_text("{}")
    check_out_file(tmp_path / "old.json")  # replaced, as `model` always did
    with pytest.raises(UsageError, match="is a directory"):
        check_out_file(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        check_out_file(tmp_path / "nope" / "m.json")
    with pytest.raises(UsageError, match="cannot write in"):
        check_out_file(read_only_dir / "m.json")


def test_removed_on_failure_removes_only_what_the_block_added(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError), removed_on_failure(fresh):
        (fresh / "part").mkdir(parents=True)
        raise RuntimeError("half-way")
    assert not fresh.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("user file")
    with pytest.raises(KeyboardInterrupt), removed_on_failure(kept):
        (kept / "compare.json").write_text("{}")
        (kept / "sub").mkdir()
        raise KeyboardInterrupt
    assert sorted(p.name for p in kept.iterdir()) == ["mine.txt"]
    with removed_on_failure(kept):
        (kept / "ok.json").write_text("{}")
    assert (kept / "ok.json").exists()


@pytest.mark.parametrize("case", ["file", "missing-parent", "read-only"])
def test_every_writing_command_refuses_a_bad_out_with_one_line(
    case: str,
    tmp_path: Path,
    read_only_dir: Path,
    trace_and_model: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace, model = trace_and_model
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = {
        "file": blocker,
        "missing-parent": tmp_path / "missing" / "out",
        "read-only": read_only_dir / "tracereplay-out",
    }[case]
    har = tmp_path / "in.har"
    har.write_text('{"log": {"entries": []}}')
    commands = {
        "model": ["model", str(trace), "--out", str(out / "m.json" if case == "file" else out)],
        "synthesize": ["synthesize", str(model), "--out", str(out)],
        "compare": ["compare", str(trace), str(trace), "--out", str(out)],
        "import": ["import", str(har), "--out", str(out)],
        "replay": ["replay", str(model), "--host", "http://127.0.0.1:9", "--out", str(out)],
    }
    for name, argv in commands.items():
        message = assert_exit_2(argv, capsys, out=out)
        assert str(out) in message or str(blocker) in message, (name, message)
    assert blocker.read_text() == "not a directory"
    assert not (tmp_path / "missing").exists()


def test_synthesize_that_fails_half_way_leaves_no_out(
    tmp_path: Path, trace_and_model: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from tracereplay.errors import TraceError
    from tracereplay.models import synthesize as synth_module

    _, model = trace_and_model
    real = synth_module.Synthesizer.chunk

    def failing(self: object, index: Any, starts_s: Any) -> object:
        if index[0] > 0:  # the second chunk, after the first was written
            raise TraceError("disk went away")  # stands in for any failure mid-write
        return real(self, index, starts_s)  # type: ignore[arg-type]

    monkeypatch.setattr(synth_module, "CHUNK_SESSIONS", 2)
    monkeypatch.setattr(synth_module.Synthesizer, "chunk", failing)
    out = tmp_path / "synth"
    assert_exit_2(["synthesize", str(model), "--out", str(out)], capsys, says="disk went away")
    assert not out.exists()
