"""tracereplay: turn real HTTP traffic into realistic load.

Shared core: the trace schema and its Parquet IO, errors, settings and the CLI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tracereplay")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
