"""Which importer reads a file: HAR or mitmproxy flow dump, told apart by its first bytes.

Owns the sniffing rules, so `--format auto` and the readers' own checks agree.
"""

from __future__ import annotations

import re
from pathlib import Path

from tracereplay.errors import UsageError

FORMATS = ("har", "mitm")
HEAD_BYTES = 4096
"""How much of a file sniffing reads: enough to find `"log"` after a HAR's opening brace."""

_UTF8_BOM = b"\xef\xbb\xbf"  # Fiddler and some Windows tools write HAR files with one
# A dump is a sequence of tnetstrings, each a dict: `<length>:` then its first key's
# `<length>:`. Asking for both keeps plain text that starts with "12:30" from matching.
_TNETSTRING_DICT = re.compile(rb"\d{1,12}:\d")


def sniff_format(head: bytes) -> str | None:
    """'har' or 'mitm' from a file's first bytes, None when they look like neither."""
    text = head.removeprefix(_UTF8_BOM).lstrip()
    if text.startswith(b"{") and b'"log"' in text:
        return "har"
    if _TNETSTRING_DICT.match(head):
        return "mitm"
    return None


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of `path`; an unreadable file is a `UsageError`."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def detect_format(path: Path) -> str:
    """'har' or 'mitm' for the file at `path`; anything else is a `UsageError`."""
    head = read_head(path)
    kind = sniff_format(head)
    if kind is None:
        empty = "empty file, " if not head else ""
        raise UsageError(f"{path}: {empty}not a HAR file or a mitmproxy flow dump")
    return kind
