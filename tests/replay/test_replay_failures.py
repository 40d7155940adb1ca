"""Every failure surfaces: a worker that cannot go on ends the run at once with one line and
a non-zero exit (not a quiet "0/0 sessions" after the whole window), with no credential in
that line or in any file; a session that raises stops its whole driver."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from faker import Faker

from tests.replay.stub_server import connection_recorder, stub_server
from tests.replay.test_replay_e2e import tiny_model
from tracereplay.cli import main
from tracereplay.replay import run as run_module

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("processes", [1, 2])
def test_a_worker_failure_ends_the_run_with_one_line_and_no_password(
    processes: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = Faker()
    fake.seed_instance(processes)
    email, password = fake.email(), fake.password(length=18)
    creds = tmp_path / "accounts.csv"
    creds.write_text(f"email,password\n{email},{password}\n")
    model = tiny_model(tmp_path, sessions=30, span_s=40.0)
    real_start = run_module._start

    def start_after_breaking_the_file(argv: list[str], log: Any) -> Any:
        # Checked good in the parent; the workers then read it without its header (the
        # reported case: the password is on line 1).
        creds.write_text(f"{email},{password}\n")
        return real_start(argv, log)

    monkeypatch.setattr(run_module, "_start", start_after_breaking_the_file)
    out = tmp_path / "run"
    with stub_server() as stub:
        started = time.monotonic()
        code = main(["replay", str(model), "--host", stub.url, "--out", str(out),
                     "--credentials", str(creds), "--processes", str(processes)])  # fmt: skip
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    # The first worker to fail ends the run (with 2, the other may not have started).
    assert re.match(r"tracereplay: error: replay stopped: worker-\d: --credentials", last), last
    assert "line 1: the header needs columns named email and password" in last
    assert elapsed < 25  # not the 40 s window + grace: it stopped when the worker failed
    assert password not in err
    for path in (p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert password.encode() not in data and email.encode() not in data, path
    log = (out / "locust.log").read_text()
    assert log.count("replay stopped:") <= processes  # said once per process, not per retry


def test_a_session_that_raises_stops_its_driver(tmp_path: Path) -> None:
    with stub_server() as stub, connection_recorder() as other:
        done = subprocess.run(
            [sys.executable, "-m", "tests.replay.driver_child", stub.url, str(tmp_path / "w"),
             f"//{other.address}/api/items"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert other.connections == []
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["raised"].startswith("UnsafeUrlError: request: '//127.0.0.1:")
    assert result["seconds"] < 5  # the others (8 s of think time left) were stopped
    assert result["started"] == 3 and result["cut"] == 2 and result["failed"] == 1
    assert result["completed"] == 0
    assert "Traceback" not in done.stderr
