"""An anonymizer worker never outlives its capture, even when it is stuck mid-exchange
and so never reads the pipe's EOF (two such orphans once spun for 1 h 40 min)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PARENT = """
import multiprocessing, os, sys, time
from pathlib import Path
from tests.capture.stuck_worker import StuckSpec
from tracereplay.capture.workers import worker_main
ctx = multiprocessing.get_context("spawn")
tasks_out, tasks = ctx.Pipe(duplex=False)
results, results_in = ctx.Pipe(duplex=False)
started = Path(sys.argv[1])
spec = StuckSpec(str(started))
worker = ctx.Process(
    target=worker_main, args=(spec, tasks_out, results_in, os.getpid()), daemon=True
)
worker.start()
tasks.send([(0, None)])
deadline = time.monotonic() + 30
while not started.exists():
    if time.monotonic() > deadline or not worker.is_alive():
        raise SystemExit("the worker never started spinning")
    time.sleep(0.05)
print(worker.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


def test_a_stuck_worker_exits_when_its_capture_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "spinning")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = 0
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _alive(worker)  # and spinning in its anonymizer
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5.0
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the stuck worker outlived its killed capture"
    finally:
        parent.kill()
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)
