"""Every replay input is checked in the parent before Locust starts: each bad option (NaN,
inf, negative, out of range), --host, --out, --credentials and model is one line, exit 2,
nothing written, no process started, no request sent (the reported cases among them)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.bad_input import BAD_MODELS, assert_exit_2, bad_model
from tests.replay.stub_server import Stub, stub_server
from tests.replay.test_replay_e2e import tiny_model

OPTION_CASES = {
    "seed -1": (["--seed", "-1"], "--seed must be in [0, 2^63)"),
    "scale nan": (["--scale", "nan"], "--scale must be a finite number > 0"),
    "scale inf": (["--scale", "inf"], "--scale must be a finite number > 0"),
    "scale 0": (["--scale", "0"], "--scale must be a finite number > 0"),
    "scale 1e9": (["--scale", "1e9"], "sessions (at most 10,000,000)"),
    "speed inf": (["--speed", "inf"], "--speed must be a finite number > 0"),
    "speed -1": (["--speed", "-1"], "--speed must be a finite number > 0"),
    "arrivals bogus": (["--arrivals", "bogus"], "--arrivals 'bogus': choose one of"),
    "max-rps nan": (["--max-rps", "nan"], "--max-rps must be a finite number > 0"),
    "max-rps 0": (["--max-rps", "0"], "--max-rps must be a finite number > 0"),
    "duration nan": (["--duration", "nan"], "not a duration"),
    "duration 0": (["--duration", "0"], "--duration must be a finite number > 0"),
    "grace -5s": (["--grace", "-5s"], "not a duration"),
    "run-time 0": (["--run-time", "0s"], "--run-time must be a finite number > 0"),
    "max-body 0": (["--max-body", "0"], "--max-body must be >= 1 byte"),
    "max-body words": (["--max-body", "lots"], "not a size"),
    "max-rss 1MiB": (["--max-rss", "1MiB"], "--max-rss must be >= 64 MiB"),
    "processes 0": (["--processes", "0"], "--processes must be >= 1"),
    "processes 100": (["--processes", "100"], "add --force to run them anyway"),
    "profile bogus": (["--profile", "bogus"], "--profile 'bogus': choose one of"),
    "watch-pid gone": (["--watch-pid", "999999999"], "--watch-pid 999999999: no such process"),
}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("checks"))


@pytest.fixture(scope="module")
def stub() -> Any:
    with stub_server() as server:
        yield server


def replay_exits_2(
    source: Path, stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    *options: str, host: str | None = None, says: str | None = None,
) -> str:  # fmt: skip
    out = tmp_path / "run"
    started = time.monotonic()
    message = assert_exit_2(
        ["replay", str(source), "--host", host or stub.url, "--out", str(out), *options],
        capsys, says=says, out=out,
    )  # fmt: skip
    assert time.monotonic() - started < 10  # refused up front: no Locust run
    assert not out.exists() and stub.received == []
    return message


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_a_bad_option_is_one_line_exit_2(
    case: str, model: Path, stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, says = OPTION_CASES[case]
    replay_exits_2(model, stub, tmp_path, capsys, *options, says=says)


def test_processes_over_the_cores_need_force(
    model: Path, stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cores = os.cpu_count() or 1
    replay_exits_2(model, stub, tmp_path, capsys, "--processes", str(cores + 1),
                   says=f"more than the {cores} cores here")  # fmt: skip


@pytest.mark.parametrize(
    ("host", "says"),
    [("ftp://x", "want an http(s)"), ("http://user:pw@127.0.0.1:9", "no user or password"),
     ("http://127.0.0.1:9/api", "no path"), ("127.0.0.1:9", "want an http(s)")],
)  # fmt: skip
def test_a_bad_host_is_one_line_exit_2(
    host: str, says: str, model: Path, stub: Stub, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    replay_exits_2(model, stub, tmp_path, capsys, host=host, says=says)


@pytest.mark.parametrize(
    ("text", "says"),
    [("a@x.test,Pw-on-line-1-0000\n", "line 1: the header needs columns named email"),
     ("", "line 1: empty file"), ("email,password\n", "line 2: no accounts"),
     ("email,password\nb@x.test\n", "line 2: expected 2 columns")],
)  # fmt: skip
def test_a_bad_credentials_file_is_one_line_and_never_echoed(
    text: str, says: str, model: Path, stub: Stub, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    creds = tmp_path / "creds.csv"
    creds.write_text(text)
    message = replay_exits_2(model, stub, tmp_path, capsys, "--credentials", str(creds),
                             says=says)  # fmt: skip
    assert "Pw-on-line-1" not in message and "a@x.test" not in message


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_a_bad_model_is_one_line_exit_2_before_locust(
    case: str, model: Path, stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.model.json"
    # json writes NaN and Infinity as the bare words Python's json reads back.
    path.write_text(json.dumps(bad_model(json.loads(model.read_text()), case)))
    message = replay_exits_2(path, stub, tmp_path, capsys, says=BAD_MODELS[case])
    assert str(path) in message
