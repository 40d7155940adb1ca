"""`tracereplay model` starts BLAS with one thread (`cli.ONE_BLAS_THREAD_COMMANDS`) unless
OPENBLAS_NUM_THREADS is set, before numpy loads its OpenBLAS: a case that loads numpy runs
in its own interpreter, as the setting is read once per process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tracereplay import cli

# The console on the arguments given, its command replaced by one that loads numpy (as the
# allocator setting does first for `model`) and prints the threads its BLAS has.
BLAS_THREADS = """
import sys
from tracereplay import cli

def command():
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info
    print(",".join(str(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"))
    return 0

cli.main = command
cli.end_now = lambda code, inherited: None
sys.argv = ["tracereplay", *sys.argv[1:]]
sys.exit(cli.console())
"""


BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _blas_threads(argv: list[str], preset: str | None) -> str:
    # (OpenBLAS reads these too, after its own: none left to the test's environment)
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    done = subprocess.run(
        [sys.executable, "-P", "-c", BLAS_THREADS, *argv],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has one thread anyway")
def test_the_model_loads_blas_with_one_thread_and_other_commands_as_they_were() -> None:
    assert _blas_threads(["model", "trace"], None) == "1"
    assert _blas_threads(["model", "trace"], "2") == "2"  # the user's setting kept
    assert _blas_threads(["synthesize", "model.json"], "2") == "2"
    others = _blas_threads(["compare", "a", "b"], None)
    assert others and all(int(n) > 1 for n in others.split(","))


@pytest.mark.parametrize(
    ("argv", "preset", "after"),
    [(["model", "x"], None, "1"), (["model", "x"], "3", "3"), (["compare", "x"], None, None),
     (["--help"], None, None), ([], None, None)],
)  # fmt: skip
def test_the_commands_that_set_it(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], preset: str | None, after: str | None
) -> None:
    if preset is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", preset)
    monkeypatch.setattr(cli, "reuse_freed_memory", lambda: True)
    monkeypatch.setattr(cli, "main", lambda: 2)
    monkeypatch.setattr(cli, "end_now", lambda code, inherited: None)
    monkeypatch.setattr(sys, "argv", ["tracereplay", *argv])
    assert cli.console() == 2
    assert os.environ.get("OPENBLAS_NUM_THREADS") == after
