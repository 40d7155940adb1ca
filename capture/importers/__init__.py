"""Importers: HAR 1.2 files and mitmproxy flow dumps into the trace schema.

`iter_har` / `iter_mitm` read one file as `Exchange`s; `import_files` writes a new trace.
"""

from __future__ import annotations

from tracereplay.capture.importers.detect import detect_format
from tracereplay.capture.importers.har import iter_har
from tracereplay.capture.importers.mitm import iter_mitm
from tracereplay.capture.importers.run import ImportResult, import_files

__all__ = ["ImportResult", "detect_format", "import_files", "iter_har", "iter_mitm"]
