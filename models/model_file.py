"""Reading a model file (`tracereplay.model/1`): its size bound, format id and checks.

Apart from model.py (which re-exports it) so that what only reads a model (synthesize,
replay) loads none of the model-building stages' imports (pandas, scipy, sklearn).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracereplay.errors import ConfigError, TraceEmptyError

MODEL_FORMAT = "tracereplay.model/1"
MAX_MODEL_BYTES = 512 << 20


def load_model(path: Path) -> dict[str, Any]:
    """A model file, checked for its format id, its schema and the ranges of its numbers
    (see `check_model`); ConfigError naming the file and the field otherwise."""
    return parse_model(read_model(path), path)


def read_model(path: Path) -> bytes:
    """A model file's bytes, unparsed (within its size bound); ConfigError otherwise."""
    try:
        if Path(path).stat().st_size > MAX_MODEL_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_MODEL_BYTES >> 20} MiB, not a model file")
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such model file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: not a model file ({type(exc).__name__})") from None


def parse_model(raw: bytes, path: Path) -> dict[str, Any]:
    """`load_model` of the bytes `read_model(path)` gave."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: bad JSON, or an integer too long to convert; RecursionError: nesting.
        raise ConfigError(f"{path}: not a model file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ConfigError(f"{path}: not a {MODEL_FORMAT} file (format {found!r:.60})")
    if not data.get("behaviors"):
        raise TraceEmptyError(f"{path}: the model has no sessions to synthesize from")
    # Imported here: the command reads the file before it forks its workers, which do
    # not check the model and need none of the checks' imports (correlations, ids, ...).
    from .model_check import check_model

    check_model(data, str(path))
    return data
