"""`tracereplay demo-target` as a command: --print-accounts, a busy port (exit 2, one
line, no traceback), bad settings, and stopping on SIGTERM / SIGINT (real processes)."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys

import pytest

from tests.servers import SandboxTarget, free_port, running_server, target_argv
from tracereplay.cli import main

RUN_TIMEOUT_S = 60


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`tracereplay ARGS...` in a subprocess, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`tracereplay ARGS...` through `main` in this process: (exit code, stdout, stderr)."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_print_accounts_is_deterministic_csv(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_in_process(capsys, "demo-target", "--print-accounts")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.startswith("email,password,role\n")
    assert len(rows) == 20
    assert {r["role"] for r in rows} == {"admin", "client"}
    assert sum(r["role"] == "admin" for r in rows) == 4
    assert all(r["email"].rsplit(".", 1)[0].endswith("@example") for r in rows)
    assert run_in_process(capsys, "demo-target", "--print-accounts")[1] == out
    other = run_in_process(capsys, "demo-target", "--print-accounts", "--seed", "8")
    assert other[0] == 0 and other[1] != out


def test_busy_port_exits_2_with_one_line(sandbox_target: SandboxTarget) -> None:
    result = run_cli("demo-target", "--port", str(sandbox_target.port))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("tracereplay: error: port ")
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--service-time-scale", "-1"], "service_time_scale=-1.0: must be >= 0"),
        (["--login-rate-limit", "-5"], "login_rate_limit=-5: must be >= 0"),
        (["--port", "70000"], "port=70000: must be 0..65535"),
    ],
)
def test_bad_settings_exit_2(
    capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    code, _, err = run_in_process(capsys, "demo-target", *options)
    assert code == 2
    assert err == f"tracereplay: error: target setting {message}\n"


# Runs the rest of its arguments with SIGINT ignored (kept across exec), as a shell without
# job control starts a background job.
SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def test_sigint_stops_the_target_with_130_where_it_started_ignored() -> None:
    port = free_port()
    argv = [sys.executable, "-c", SIGINT_IGNORED, *target_argv(port, "--service-time-scale", "0")]
    with running_server(argv, port=port) as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=10) == 130
    assert "Traceback" not in server.stderr()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signals_stop_the_target_gracefully(sig: signal.Signals, code: int) -> None:
    port = free_port()
    with running_server(target_argv(port, "--service-time-scale", "0"), port=port) as server:
        assert "sandbox target on http://127.0.0.1:" in server.stderr()
        assert "20 accounts" in server.stderr()
        server.process.send_signal(sig)
        assert server.process.wait(timeout=10) == code
    assert "Traceback" not in server.stderr()
