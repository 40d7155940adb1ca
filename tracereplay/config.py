"""Settings flow one way: defaults, then a TOML file, then environment, then flags.

`resolve_settings` is the one function that merges them into a frozen dataclass that is
then passed explicitly; nothing reads the environment behind a caller's back.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from tracereplay.errors import ConfigError

T = TypeVar("T")
MAX_CONFIG_BYTES = 16 << 20


def resolve_settings(
    cls: type[T],
    *,
    file: Path | None = None,
    section: str | None = None,
    env: Mapping[str, str] | None = None,
    env_prefix: str = "",
    flags: Mapping[str, Any] | None = None,
) -> T:
    """An instance of the frozen dataclass `cls`, each field taken from the last layer
    that sets it: its default, the TOML `file` (its `[section]` when given), the
    environment variable `env_prefix + FIELD_NAME` (upper case), then `flags` whose
    value is not None.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    if file is not None:
        values.update(_from_file(file, section, fields))
    environ = os.environ if env is None else env
    for name in fields:
        key = f"{env_prefix}{name}".upper()
        if key in environ:
            values[name] = _coerce(environ[key], hints[name], key)
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return cls(**values)


def read_config_text(
    path: Path | None, *, label: str, package: str, default_name: str
) -> tuple[str, str]:
    """(text, source) of a TOML file a user may give (policy, SLOs), else of the default
    shipped as `default_name` in `package` (source "default"). ConfigError when unreadable:
    "<label> <path>: cannot read it (<reason>)"."""
    if path is None:
        return resources.files(package).joinpath(default_name).read_text("utf-8"), "default"
    return _read_text(Path(path), f"{label} {path}: cannot read it"), str(path)


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """TOML text as a dict; ConfigError "<where>: not valid TOML (<why>)" otherwise."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise ConfigError(f"{where}: not valid TOML (nested too deeply)") from None


def _read_text(path: Path, failing: str) -> str:
    """A settings file's text; ConfigError "<failing> (<reason>)" when it is not a file
    that can be read as UTF-8 text of a sane size."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{failing} (larger than {MAX_CONFIG_BYTES >> 20} MiB)")
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{failing} (not UTF-8 text: byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{failing} ({exc.strerror or type(exc).__name__})") from None


def _from_file(
    file: Path, section: str | None, fields: Mapping[str, dataclasses.Field[Any]]
) -> dict[str, Any]:
    text = _read_text(file, f"{file}: cannot read settings file")
    data = parse_toml(text, str(file))
    if section is not None:
        data = data.get(section, {})
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: [{section}] must be a table")
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"{file}: unknown setting(s): {', '.join(sorted(unknown))}")
    return dict(data)


def _coerce(text: str, hint: Any, key: str) -> Any:
    """The environment's string as the field's type (bool, int, float, str, Path)."""
    if isinstance(hint, types.UnionType):  # `X | None`: use X
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    try:
        if hint is bool:
            lowered = text.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(text)
            return lowered in {"1", "true", "yes", "on"}
        if hint in (int, float, str, Path):
            return hint(text)
    except ValueError:
        raise ConfigError(f"{key}={text!r}: not a valid {hint.__name__}") from None
    raise ConfigError(f"{key}: this setting cannot be set from the environment")
