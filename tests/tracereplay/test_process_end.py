"""The process's end (tracereplay/process_end.py): without the interpreter's teardown only
when nothing is left for it, with every byte delivered and the exit code kept.

Each case runs in its own interpreter. A `Marker` held by `__main__` says, on stderr, when
the interpreter finalized its modules: it is absent when the process ended early.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.factories import realistic_records, write_trace

TEARDOWN = "teardown ran"
PROLOGUE = f"""
import os, sys, threading, time
class Marker:
    def __del__(self):
        os.write(2, b"{TEARDOWN}\\n")
marker = Marker()
from tracereplay.process_end import end_now, open_fds
inherited = open_fds()
"""
CONSOLE = PROLOGUE + "from tracereplay.cli import console\nsys.exit(console())\n"
BIG = 3_000_000  # well past any pipe's and buffer's size


def _run(code: str, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    # Buffered stdout, as a console script's is into a pipe (PYTHONUNBUFFERED would hide
    # a missing flush).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-P", "-c", code, *args],
        capture_output=True, text=True, timeout=timeout_s, check=False, env=env,
    )  # fmt: skip


def test_the_console_script_is_console() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["tracereplay"] == "tracereplay.cli:console"


def test_after_a_model_the_teardown_is_skipped_and_everything_delivered(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "trace", list(realistic_records(400)))
    out = tmp_path / "m.json"
    done = _run(CONSOLE, "model", str(trace), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["provenance"]["rows"] == 400
    assert "model of 400 requests" in done.stderr  # its last line, written after the file
    assert done.stderr.endswith(f"{out.name}\n"), done.stderr
    assert TEARDOWN not in done.stderr  # ended early


def test_bad_input_keeps_exit_2_and_its_one_line(tmp_path: Path) -> None:
    done = _run(CONSOLE, "model", str(tmp_path / "missing"), "--out", str(tmp_path / "m.json"))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("tracereplay: error")]
    assert len(errors) == 1 and "missing" in errors[0], done.stderr
    assert TEARDOWN not in done.stderr


def test_other_commands_end_as_before(tmp_path: Path) -> None:
    done = _run(CONSOLE, "info", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.startswith("tracereplay: error") and TEARDOWN in done.stderr


@pytest.mark.parametrize("code", [0, 2, 130])
def test_large_piped_output_and_the_exit_code(code: int) -> None:
    program = PROLOGUE + (
        f"sys.stdout.write('o' * {BIG})\n"
        "sys.stdout.write('END')\n"  # in the buffer: a large write goes straight through
        f"sys.stderr.write('e' * {BIG} + 'END\\n')\n"
        "sys.stderr.write('no newline')\n"
        f"end_now({code}, inherited)\n"
        "os.write(2, b'returned\\n')\n"
    )
    done = _run(program)
    assert done.returncode == code
    assert done.stdout == "o" * BIG + "END"
    assert done.stderr == "e" * BIG + "END\nno newline"  # neither the teardown nor a return


def test_a_non_daemon_thread_finishes_its_work() -> None:
    program = PROLOGUE + (
        "def work():\n"
        "    time.sleep(0.5)\n"
        "    print('thread done')\n"
        "threading.Thread(target=work).start()\n"
        "end_now(0, inherited)\n"
    )
    done = _run(program)
    assert done.returncode == 0
    assert done.stdout == "thread done\n"
    assert TEARDOWN in done.stderr


def test_a_file_left_open_for_writing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "left-open.txt"
    program = PROLOGUE + (
        f"left = open({str(path)!r}, 'w')\n"
        "left.write('x' * 100)\n"  # in its buffer, not on disk yet
        "end_now(0, inherited)\n"
    )
    done = _run(program)
    assert done.returncode == 0
    assert path.read_text() == "x" * 100
    assert TEARDOWN in done.stderr


def test_a_deleted_file_left_open_does_not_hold_the_end() -> None:
    program = PROLOGUE + (
        "import tempfile\n"
        "left = tempfile.TemporaryFile('w')\n"  # no name: what it holds no one reads
        "left.write('x' * 100)\n"
        "end_now(0, inherited)\n"
    )
    done = _run(program)
    assert done.returncode == 0
    assert TEARDOWN not in done.stderr


def test_a_live_child_leaves_the_end_to_the_interpreter() -> None:
    program = PROLOGUE + (
        "import subprocess\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1)'])\n"
        "end_now(0, inherited)\n"
        "child.wait()\n"
    )
    done = _run(program)
    assert done.returncode == 0
    assert TEARDOWN in done.stderr


def test_atexit_functions_run_once() -> None:
    program = PROLOGUE + (
        "import atexit\natexit.register(lambda: print('atexit ran'))\nend_now(0, inherited)\n"
    )
    done = _run(program)
    assert done.returncode == 0
    assert done.stdout == "atexit ran\n"
    assert TEARDOWN not in done.stderr
