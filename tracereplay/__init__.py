"""tracereplay: turn real HTTP traffic into realistic load.

Shared core: the trace schema and its Parquet IO, errors, settings and the CLI.
"""

__version__ = "0.1.0"
"""The package's version (pyproject.toml reads it from here). A constant, not
`importlib.metadata.version`: that import (zipfile, email, csv) cost every command
~0.03 CPU s before it did anything."""

__all__ = ["__version__"]
