"""Durations, addresses and the one-way settings merge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tracereplay.config import resolve_settings
from tracereplay.errors import ConfigError, UsageError
from tracereplay.units import parse_duration_s, parse_host_port


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("1h30m", 5400.0), ("250ms", 0.25),
     (" 2H ", 7200.0), ("1d", 86400.0), ("0", 0.0)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "m5", "1h 30m", "-3", "nan", "inf", "5m3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration_s(text)


def test_host_port() -> None:
    assert parse_host_port("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_host_port(":9000") == ("127.0.0.1", 9000)
    assert parse_host_port("9000") == ("127.0.0.1", 9000)
    assert parse_host_port("[::1]:80") == ("::1", 80)
    with pytest.raises(UsageError):
        parse_host_port("host:http")
    with pytest.raises(UsageError):
        parse_host_port("host:70000")


@dataclass(frozen=True)
class Settings:
    port: int = 1
    name: str = "default"
    scale: float = 1.0
    on: bool = False
    path: Path | None = None


def test_layers_apply_in_order(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text('[target]\nport = 2\nname = "file"\nscale = 2.0\n')
    env = {"TR_NAME": "env", "TR_SCALE": "3.5", "TR_ON": "yes", "TR_PATH": "/x"}
    got = resolve_settings(
        Settings, file=file, section="target", env=env, env_prefix="TR_",
        flags={"scale": 4.0, "port": None},
    )  # fmt: skip
    assert got == Settings(port=2, name="env", scale=4.0, on=True, path=Path("/x"))
    assert resolve_settings(Settings, env={}) == Settings()


def test_bad_layers_say_which(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text("port = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_settings(Settings, file=file, env={})
    file.write_text("colour = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve_settings(Settings, file=file, env={})
    with pytest.raises(ConfigError, match=r"TR_PORT='x': not a valid int"):
        resolve_settings(Settings, env={"TR_PORT": "x"}, env_prefix="TR_")
    with pytest.raises(ConfigError, match="TR_ON='maybe'"):
        resolve_settings(Settings, env={"TR_ON": "maybe"}, env_prefix="TR_")
    with pytest.raises(ConfigError, match="cannot read settings file"):
        resolve_settings(Settings, file=tmp_path / "missing.toml", env={})
